"""Tiny random-weight MusicGen and MusicGen-melody checkpoints, saved like the Hub repos.

The key values are the real checkpoints': a 32 kHz mono EnCodec with upsampling ratios
[8, 5, 4, 4] (50 frames a second, hop 640) and one 2.2 kbps bandwidth (four codebooks), four
codebooks of 2048 entries in the decoder with the delay pattern, pad / decoder-start token 2048, the
Hub's generation config (sampling, guidance 3, 1500 tokens), and for the melody model a chroma of 12
bins over 235 frames with the Hub's `preprocessor_config.json`. Only the widths and depths shrink.

The codebook size must stay 2048: EnCodec derives the number of codebooks it encodes from the
bandwidth and log2(codebook size) (2.2 kbps / (11 bits x 50 Hz) = 4); a 64-entry codebook would
encode 7 codebooks and a continuation prompt would not fit the 4-codebook decoder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.engines.local.tiny import repo_dir, vocab_size, word_tokenizer

CODEBOOK_SIZE = 2048
SAMPLING_RATE = 32_000

# facebook/musicgen-melody's preprocessor_config.json (the feature extractor needs torchaudio, so it
# cannot be built and saved here: the file is written as the Hub has it).
MELODY_PREPROCESSOR = {
    "chunk_length": 30,
    "feature_extractor_type": "MusicgenMelodyFeatureExtractor",
    "feature_size": 12,
    "hop_length": 4096,
    "n_fft": 16384,
    "num_chroma": 12,
    "padding_side": "right",
    "padding_value": 0.0,
    "processor_class": "MusicgenMelodyProcessor",
    "return_attention_mask": True,
    "sampling_rate": SAMPLING_RATE,
    "stem_indices": [3, 2],
}


def _sub_configs() -> tuple[Any, Any]:
    from transformers import EncodecConfig, T5Config

    text = T5Config(
        vocab_size=vocab_size(),
        d_model=32,
        d_kv=8,
        d_ff=64,
        num_layers=2,
        num_heads=4,
        decoder_start_token_id=0,
    )
    audio = EncodecConfig(
        sampling_rate=SAMPLING_RATE,
        audio_channels=1,
        target_bandwidths=[2.2],
        upsampling_ratios=[8, 5, 4, 4],
        codebook_size=CODEBOOK_SIZE,
        num_filters=4,
        hidden_size=16,
        num_lstm_layers=2,
        use_causal_conv=False,
        use_conv_shortcut=False,
        normalize=False,
        chunk_length_s=None,
        overlap=None,
    )
    return text, audio


def _decoder_kwargs() -> dict[str, Any]:
    return {
        "vocab_size": CODEBOOK_SIZE,
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "ffn_dim": 64,
        "num_codebooks": 4,
        "audio_channels": 1,
        "pad_token_id": CODEBOOK_SIZE,
        "bos_token_id": CODEBOOK_SIZE,
        "max_position_embeddings": 2048,
    }


def _fill_codebooks(model: Any) -> None:
    """EnCodec starts its codebooks at zero (real ones are trained): every code would decode to the
    same sound and every clip encode to code 0. Random entries make the audio depend on the codes."""
    import torch

    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for layer in model.audio_encoder.quantizer.layers:
            book = layer.codebook
            book.embed.copy_(torch.randn(book.embed.shape, generator=generator))
            book.embed_avg.copy_(book.embed)
            book.cluster_size.fill_(1.0)


def _set_generation_config(model: Any) -> None:
    gen = model.generation_config
    gen.decoder_start_token_id = CODEBOOK_SIZE
    gen.pad_token_id = CODEBOOK_SIZE
    gen.bos_token_id = CODEBOOK_SIZE
    gen.do_sample = True
    gen.guidance_scale = 3.0
    gen.max_length = 1500


def save_tiny_musicgen(models_dir: Path, repo_id: str = "facebook/musicgen-small") -> Path:
    """A MusicgenForConditionalGeneration with tokenizer and EnCodec feature extractor."""
    import torch
    from transformers import (
        EncodecFeatureExtractor,
        MusicgenConfig,
        MusicgenDecoderConfig,
        MusicgenForConditionalGeneration,
    )

    path = repo_dir(models_dir, repo_id)
    text, audio = _sub_configs()
    config = MusicgenConfig(
        text_encoder=text, audio_encoder=audio, decoder=MusicgenDecoderConfig(**_decoder_kwargs())
    )
    torch.manual_seed(0)
    model = MusicgenForConditionalGeneration(config).eval()
    _fill_codebooks(model)
    _set_generation_config(model)
    model.save_pretrained(path)
    word_tokenizer().save_pretrained(path)
    EncodecFeatureExtractor(feature_size=1, sampling_rate=SAMPLING_RATE, padding_value=0.0).save_pretrained(
        path
    )
    return path


def save_tiny_musicgen_melody(models_dir: Path, repo_id: str = "facebook/musicgen-melody") -> Path:
    """A MusicgenMelodyForConditionalGeneration (235 chroma frames of 12 bins) with its tokenizer."""
    import torch
    from transformers import (
        MusicgenMelodyConfig,
        MusicgenMelodyDecoderConfig,
        MusicgenMelodyForConditionalGeneration,
    )

    path = repo_dir(models_dir, repo_id)
    text, audio = _sub_configs()
    config = MusicgenMelodyConfig(
        text_encoder=text,
        audio_encoder=audio,
        decoder=MusicgenMelodyDecoderConfig(**_decoder_kwargs()),
        num_chroma=12,
        chroma_length=235,
    )
    torch.manual_seed(0)
    model = MusicgenMelodyForConditionalGeneration(config).eval()
    _fill_codebooks(model)
    _set_generation_config(model)
    model.save_pretrained(path)
    word_tokenizer().save_pretrained(path)
    (path / "preprocessor_config.json").write_text(json.dumps(MELODY_PREPROCESSOR, indent=2) + "\n")
    return path

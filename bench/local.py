"""Local MusicGen: our engine against plain `model.generate` on the same model, inputs and seeds.

Run: .venv/bin/python bench/local.py [--shape small|tiny] [--seconds 2] [--requests 8]

`--shape small` (default) builds a model with musicgen-small's dimensions (T5-base text encoder,
24-layer 1024-wide decoder, 32 kHz EnCodec; random weights, ~590M parameters) and saves it with
`save_pretrained`, so the engine loads it through the real path. Three figures:

1. per-clip latency, one request: our engine (LocalEngine.submit: batcher, progress hook, seeded
   sampler, encode) vs plain `generate` — goal ≤ 1.1× (overhead only);
2. aggregate throughput of `--requests` concurrent requests: our engine (one batch) vs the same
   number of sequential plain calls — goal ≥ 3× on the CPU;
3. memory of the loaded model: parameter and buffer bytes, and how much the process's peak RSS
   grew while the engine loaded it (the model is built and saved in a child process).

Both sides use the same loaded weights, guidance 3, top-k 250, and the same clip length.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mediagen.engines.base import Job  # noqa: E402
from mediagen.engines.local.engine import LocalEngine, LocalSpec  # noqa: E402
from mediagen.vocabulary import Kind  # noqa: E402
from tests.engines.local.tiny import word_tokenizer  # noqa: E402

REPO = "facebook/musicgen-small"
MODEL = "local/musicgen-small"
PROMPTS = [
    "upbeat electronic dance music with heavy bass",
    "calm ambient piano",
    "lo-fi hip hop drums",
    "epic cinematic strings",
    "happy guitar",
    "sad slow piano",
    "fast synth drums",
    "warm ambient strings",
]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build_elsewhere(folder: Path, shape: str) -> Path:
    """Build and save in a child process, so this process's peak RSS measures loading alone."""
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        return Path(pool.apply(build, (folder, shape)))


def build(folder: Path, shape: str) -> Path:
    """A random-weight MusicGen of the given shape, saved like the Hub repo."""
    import torch
    from transformers import (
        EncodecConfig,
        EncodecFeatureExtractor,
        MusicgenConfig,
        MusicgenDecoderConfig,
        MusicgenForConditionalGeneration,
        MusicgenProcessor,
        T5Config,
    )

    torch.manual_seed(0)
    tokenizer = word_tokenizer()
    if shape == "small":
        text = T5Config(
            vocab_size=len(tokenizer), d_model=768, d_kv=64, d_ff=3072, num_layers=12, num_heads=12
        )
        decoder = MusicgenDecoderConfig(
            vocab_size=2048, hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, ffn_dim=4096,
            num_codebooks=4, max_position_embeddings=2048,
        )  # fmt: skip
        filters = 64
    else:
        text = T5Config(vocab_size=len(tokenizer), d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4)
        decoder = MusicgenDecoderConfig(
            vocab_size=2048, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, ffn_dim=64,
            num_codebooks=4, max_position_embeddings=2048,
        )  # fmt: skip
        filters = 4
    audio = EncodecConfig(
        sampling_rate=32_000, audio_channels=1, target_bandwidths=[2.2], upsampling_ratios=[8, 5, 4, 4],
        codebook_size=2048, num_filters=filters, hidden_size=filters * 2, num_lstm_layers=2,
        use_causal_conv=False, use_conv_shortcut=False, normalize=False, norm_type="weight_norm",
    )  # fmt: skip
    config = MusicgenConfig(text_encoder=text, audio_encoder=audio, decoder=decoder)
    config.decoder.pad_token_id = config.decoder.decoder_start_token_id = 2048
    model = MusicgenForConditionalGeneration(config).eval()
    model.generation_config.pad_token_id = model.generation_config.decoder_start_token_id = 2048
    model.generation_config.guidance_scale = 3.0
    model.generation_config.do_sample = True
    model.generation_config.top_k = 250
    path = folder / REPO
    model.save_pretrained(path)
    extractor = EncodecFeatureExtractor(feature_size=1, sampling_rate=32_000)
    MusicgenProcessor(feature_extractor=extractor, tokenizer=tokenizer).save_pretrained(path)
    return path


def plain_call(model: Any, processor: Any, prompt: str, seconds: float, seed: int) -> Any:
    import torch

    torch.manual_seed(seed)
    inputs = processor(text=[prompt], padding=True, return_tensors="pt")
    tokens = int(seconds * model.config.audio_encoder.frame_rate) + model.decoder.num_codebooks - 1
    with torch.inference_mode():
        return model.generate(**inputs, do_sample=True, guidance_scale=3.0, top_k=250, max_new_tokens=tokens)


def engine_call(engine: LocalEngine, work: Path, prompt: str, seconds: float, seed: int, gen_id: int) -> Any:
    workdir = work / f"job{gen_id}"
    workdir.mkdir()
    inputs = {
        "prompt": prompt, "duration": seconds, "seed": seed, "guidance_scale": 3.0, "temperature": 1.0,
        "top_k": 250, "top_p": 0.0, "output_format": "wav",
    }  # fmt: skip
    return engine.submit(Job(gen_id, Kind.AUDIO, MODEL, inputs, workdir))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shape", choices=["small", "tiny"], default="small")
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--requests", type=int, default=8)
    args = parser.parse_args()

    import torch
    from transformers import AutoProcessor, MusicgenForConditionalGeneration

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        print(f"building a random-weight MusicGen ({args.shape} shape)…", flush=True)
        path = build_elsewhere(root / "models", args.shape)
        rss_before = peak_rss_mb()
        engine = LocalEngine(
            {MODEL: LocalSpec(MODEL, REPO, "musicgen", memory_gb=1.2)},
            models_dir=root / "models",
            device="cpu",
            batch_window_s=0.15,
            max_batch=args.requests,
            hf_cache=root / "no-cache",
        )
        engine_call(engine, root, PROMPTS[0], 0.2, 1, 0)  # loads the model and warms both paths up
        resident = engine.residency.resident()[0]
        rss_after = peak_rss_mb()
        model = MusicgenForConditionalGeneration.from_pretrained(path, local_files_only=True).eval()
        processor = AutoProcessor.from_pretrained(path, local_files_only=True)
        plain_call(model, processor, PROMPTS[0], 0.2, 1)
        print(f"torch threads: {torch.get_num_threads()}; clip: {args.seconds:g} s\n", flush=True)

        # 1. latency of one clip (best of 2 each, interleaved)
        ours, plain = [], []
        for i in range(2):
            t = time.perf_counter()
            engine_call(engine, root, PROMPTS[1], args.seconds, 10 + i, 100 + i)
            ours.append(time.perf_counter() - t)
            t = time.perf_counter()
            plain_call(model, processor, PROMPTS[1], args.seconds, 10 + i)
            plain.append(time.perf_counter() - t)
        lat_ratio = min(ours) / min(plain)
        print(
            f"1. one clip        engine {min(ours):7.2f} s   plain generate {min(plain):7.2f} s   "
            f"ratio {lat_ratio:.2f}x  (goal <= 1.10x)",
            flush=True,
        )

        # 2. throughput: N concurrent requests through the engine vs N sequential plain calls
        n = args.requests
        prompts = [PROMPTS[i % len(PROMPTS)] for i in range(n)]
        t = time.perf_counter()
        for i, p in enumerate(prompts):
            plain_call(model, processor, p, args.seconds, 20 + i)
        sequential = time.perf_counter() - t
        batches_before = engine.batches_run
        threads = [
            threading.Thread(target=engine_call, args=(engine, root, p, args.seconds, 20 + i, 200 + i))
            for i, p in enumerate(prompts)
        ]
        t = time.perf_counter()
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        batched = time.perf_counter() - t
        ratio = sequential / batched
        batches = engine.batches_run - batches_before
        print(
            f"2. {n} requests     engine {batched:7.2f} s   sequential plain {sequential:7.2f} s   "
            f"throughput {ratio:.2f}x  (goal >= 3x; {batches} batch(es))"
        )

        # 3. memory
        grew = rss_after - rss_before
        print(
            f"3. loaded model    {resident.bytes / 1024**2:8.1f} MB of parameters and buffers; "
            f"peak RSS grew {grew:.0f} MB while loading; load took {resident.load_seconds:.2f} s"
        )


if __name__ == "__main__":
    main()

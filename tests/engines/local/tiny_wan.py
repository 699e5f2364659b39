"""A tiny Wan 2.1 text-to-video pipeline saved like `Wan-AI/Wan2.1-T2V-1.3B-Diffusers` (no downloads).

Real classes with the real configs' key values, shrunk: the VAE keeps z_dim 16, 8x spatial and 4x
temporal compression and the real latent mean/std (so `num_frames` 4k+1 and sizes in multiples of
16 hold as for real weights); the transformer keeps patch (1, 2, 2), 16 latent channels, the
256-wide timestep embedding and the RMS q/k norm; the text encoder is a UMT5 whose width is the
transformer's text width; the scheduler is the repo's UniPC in flow-prediction mode with shift 3.
"""

from __future__ import annotations

from pathlib import Path

from tests.engines.local.tiny import repo_dir, vocab_size, word_tokenizer

REPO_ID = "Wan-AI/Wan2.1-T2V-1.3B-Diffusers"
TEXT_DIM = 32
MAX_TOKENS = 512  # umt5's model_max_length and the pipeline's max_sequence_length


def save_tiny_wan(models_dir: Path, repo_id: str = REPO_ID) -> Path:
    import torch
    from diffusers import AutoencoderKLWan, UniPCMultistepScheduler, WanPipeline, WanTransformer3DModel
    from transformers import UMT5Config, UMT5EncoderModel

    torch.manual_seed(0)
    vae = AutoencoderKLWan(
        base_dim=8,
        z_dim=16,
        dim_mult=[1, 1, 1, 1],
        num_res_blocks=1,
        temperal_downsample=[False, True, True],
    )
    transformer = WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=8,
        in_channels=16,
        out_channels=16,
        text_dim=TEXT_DIM,
        freq_dim=256,
        ffn_dim=32,
        num_layers=2,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        eps=1e-6,
        rope_max_seq_len=1024,
    )
    text_encoder = UMT5EncoderModel(
        UMT5Config(
            vocab_size=vocab_size(),
            d_model=TEXT_DIM,
            d_kv=8,
            d_ff=64,
            num_layers=2,
            num_heads=4,
            relative_attention_num_buckets=8,
            feed_forward_proj="gated-gelu",
            pad_token_id=0,
            eos_token_id=1,
            decoder_start_token_id=0,
        )
    )
    scheduler = UniPCMultistepScheduler(
        num_train_timesteps=1000,
        prediction_type="flow_prediction",
        use_flow_sigmas=True,
        flow_shift=3.0,
        solver_order=2,
    )
    pipe = WanPipeline(
        tokenizer=word_tokenizer(MAX_TOKENS),
        text_encoder=text_encoder,
        vae=vae,
        scheduler=scheduler,
        transformer=transformer,
    )
    path = repo_dir(models_dir, repo_id)
    pipe.save_pretrained(path)
    return path

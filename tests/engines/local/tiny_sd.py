"""Tiny random-weight Stable Diffusion pipelines laid out like Riffusion's and SD-Turbo's repos.

Real classes, tiny widths, the real configs' key values: the VAE keeps four levels (scale factor
8) and scaling factor 0.18215 with 4 latent channels, the schedulers keep their class and
spacing, the text encoders their activation (OpenAI CLIP's quick_gelu for SD 1.x, OpenCLIP's gelu
for SD 2.x). A 64×64 image is an 8×8 latent: a few milliseconds per UNet step on a CPU.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.engines.local.tiny import repo_dir, vocab_size, word_tokenizer

HIDDEN = 32  # text encoder width = the UNet's cross-attention width


def _text_encoder(hidden_act: str) -> Any:
    from transformers import CLIPTextConfig, CLIPTextModel

    config = CLIPTextConfig(
        vocab_size=vocab_size(),
        hidden_size=HIDDEN,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=77,
        hidden_act=hidden_act,
        projection_dim=HIDDEN,
        pad_token_id=0,
        eos_token_id=1,
        bos_token_id=3,
    )
    return CLIPTextModel(config).eval()


def _vae() -> Any:
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 16, 16, 16),
        layers_per_block=1,
        norm_num_groups=8,
        latent_channels=4,
        sample_size=64,
        scaling_factor=0.18215,
    )


def _unet(*, sd2: bool) -> Any:
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        block_out_channels=(32, 64),
        layers_per_block=1,
        norm_num_groups=16,
        cross_attention_dim=HIDDEN,
        # SD 2.x gives a head size per level and linear projections in its transformers.
        attention_head_dim=(2, 4) if sd2 else 8,
        use_linear_projection=sd2,
    )


def _save(pipe: Any, models_dir: Path, repo_id: str) -> Path:
    path = repo_dir(models_dir, repo_id)
    pipe.save_pretrained(str(path))
    return path


def tiny_riffusion_pipeline() -> Any:
    """SD 1.5 layout (Riffusion is a fine-tune of it): PNDM with PLMS steps only."""
    import torch
    from diffusers import PNDMScheduler, StableDiffusionPipeline

    torch.manual_seed(0)
    scheduler = PNDMScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        skip_prk_steps=True,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    return StableDiffusionPipeline(
        vae=_vae(),
        text_encoder=_text_encoder("quick_gelu"),
        tokenizer=word_tokenizer(77, bos=True),
        unet=_unet(sd2=False),
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def tiny_sd_turbo_pipeline() -> Any:
    """SD 2.1 layout as SD-Turbo ships it: Euler with trailing timesteps (1–4 step sampling)."""
    import torch
    from diffusers import EulerDiscreteScheduler, StableDiffusionPipeline

    torch.manual_seed(1)
    scheduler = EulerDiscreteScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        prediction_type="epsilon",
        timestep_spacing="trailing",
        steps_offset=1,
    )
    return StableDiffusionPipeline(
        vae=_vae(),
        text_encoder=_text_encoder("gelu"),
        tokenizer=word_tokenizer(77, bos=True),
        unet=_unet(sd2=True),
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def save_tiny_riffusion(models_dir: Path, repo_id: str = "riffusion/riffusion-model-v1") -> Path:
    return _save(tiny_riffusion_pipeline(), models_dir, repo_id)


def save_tiny_sd_turbo(models_dir: Path, repo_id: str = "stabilityai/sd-turbo") -> Path:
    return _save(tiny_sd_turbo_pipeline(), models_dir, repo_id)

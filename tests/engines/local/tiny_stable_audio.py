"""A tiny random-weight Stable Audio Open saved the way `stabilityai/stable-audio-open-1.0` is.

Kept from the real repo: every class (`StableAudioDiTModel`, `AutoencoderOobleck`,
`T5EncoderModel`, `StableAudioProjectionModel`, `CosineDPMSolverMultistepScheduler`), 44.1 kHz
stereo, the Oobleck downsampling ratios [2, 4, 4, 8, 8] (2,048 samples per latent frame), the
projection's seconds range 0–512, the identity text projection (T5 width == conditioning width),
grouped-query attention (2 query heads per key/value head), the tokenizer's 128 tokens and the
scheduler config value for value.

Made small: widths and depths, the latent width (4 instead of 64: it is the VAE encoder's output
width halved, and 64 would need 2,048-channel convolutions), and the transformer's window,
`sample_size` 32 latent frames instead of 1,024, so the tiny model makes at most 32 × 2048 /
44100 ≈ 1.49 s where the real one makes 47.55 s. The pipeline always denoises and decodes the
whole window, so the window, not the asked duration, sets the cost of every test.
"""

from __future__ import annotations

from pathlib import Path

from tests.engines.local.tiny import repo_dir, vocab_size, word_tokenizer

REPO_ID = "stabilityai/stable-audio-open-1.0"
SAMPLE_SIZE = 32  # latent frames in the tiny window (real: 1024)
HOP = 2 * 4 * 4 * 8 * 8  # samples per latent frame, as in the real VAE
SAMPLE_RATE = 44_100
MAX_SECONDS = SAMPLE_SIZE * HOP / SAMPLE_RATE

# The real repo's scheduler/scheduler_config.json, value for value.
SCHEDULER_CONFIG = {
    "num_train_timesteps": 1000,
    "prediction_type": "v_prediction",
    "sigma_data": 1.0,
    "sigma_max": 500.0,
    "sigma_min": 0.3,
    "sigma_schedule": "exponential",
    "solver_order": 2,
    "solver_type": "midpoint",
    "final_sigmas_type": "zero",
    "euler_at_final": False,
    "lower_order_final": True,
    "rho": 7.0,
}


def save_tiny_stable_audio(models_dir: Path, repo_id: str = REPO_ID) -> Path:
    """Write the tiny pipeline under `models_dir/repo_id` with `save_pretrained` and return that path."""
    import torch
    from diffusers import (
        AutoencoderOobleck,
        CosineDPMSolverMultistepScheduler,
        StableAudioDiTModel,
        StableAudioPipeline,
        StableAudioProjectionModel,
    )
    from transformers import T5Config, T5EncoderModel

    torch.manual_seed(0)
    text_width = 32
    text_encoder = T5EncoderModel(
        T5Config(
            vocab_size=vocab_size(),
            d_model=text_width,
            d_kv=8,
            d_ff=64,
            num_layers=1,
            num_heads=4,
            relative_attention_num_buckets=8,
            feed_forward_proj="relu",
        )
    ).eval()
    latent_width = 4
    vae = AutoencoderOobleck(
        encoder_hidden_size=2 * latent_width,  # mean and scale, split in two
        downsampling_ratios=[2, 4, 4, 8, 8],
        channel_multiples=[1, 2, 4, 8, 16],
        decoder_channels=2,
        decoder_input_channels=latent_width,
        audio_channels=2,
        sampling_rate=SAMPLE_RATE,
    )
    projection = StableAudioProjectionModel(
        text_encoder_dim=text_width, conditioning_dim=text_width, min_value=0, max_value=512
    )
    transformer = StableAudioDiTModel(
        sample_size=SAMPLE_SIZE,
        in_channels=latent_width,
        num_layers=1,
        attention_head_dim=8,
        num_attention_heads=2,
        num_key_value_attention_heads=1,
        out_channels=latent_width,
        cross_attention_dim=16,
        time_proj_dim=16,
        global_states_input_dim=2 * text_width,  # seconds start and end, side by side
        cross_attention_input_dim=text_width,
    )
    pipe = StableAudioPipeline(
        vae=vae,
        text_encoder=text_encoder,
        projection_model=projection,
        tokenizer=word_tokenizer(model_max_length=128),
        transformer=transformer,
        scheduler=CosineDPMSolverMultistepScheduler(**SCHEDULER_CONFIG),
    )
    path = repo_dir(models_dir, repo_id)
    pipe.save_pretrained(path)
    return path

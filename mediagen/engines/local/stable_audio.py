"""Stable Audio Open through diffusers' `StableAudioPipeline`: text-to-audio and audio-to-audio.

The pipeline always denoises and decodes its whole window (`transformer.config.sample_size`
latent frames, 47.55 s for the real model) and conditions on the asked length, then cuts the
waveform to it; so a 5 s clip costs as much as a 47 s one, and requests of one duration batch well.

Audio-to-audio: diffusers takes `initial_audio_waveforms`, encodes them with the VAE and adds the
latent to the starting noise, but it has no strength: the schedule still starts at
`sigma_max` (500), where a unit-scale latent is drowned. We give it a strength the way image-to-image
pipelines do, by running only the tail of the schedule: with `s` the strength and `N` the steps,
the run starts at the noise level the full `N`-step schedule reaches after `N - round(s * N)` steps
and takes the remaining `round(s * N)` steps. The pipeline computes its schedule from the
scheduler's `sigma_max`, so each run gets a fresh scheduler whose `sigma_max` is that level (for the
exponential and Karras schedules the shorter schedule is then exactly the tail of the full one),
and we hand it latents `noise * level / init_noise_sigma`, which the pipeline scales back up and adds
the clip's latent to: `clip + level * noise`, the noised clip the sampler expects at that level.
"""

from __future__ import annotations

import warnings
from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import Any

import av
import numpy as np

from mediagen.engines.audio_io import write_audio
from mediagen.engines.local.family import (
    Device,
    InputError,
    LocalOutput,
    LocalRequest,
    StepCallback,
    WeightsError,
)

DEFAULTS: dict[str, Any] = {
    "negative_prompt": None,
    "duration": 10.0,
    "num_inference_steps": 100,
    "guidance_scale": 7.0,
    "audio": None,
    "strength": 0.4,
    "output_format": "mp3",
}


def _value(inputs: dict[str, Any], name: str) -> Any:
    value = inputs.get(name)
    return DEFAULTS[name] if value is None else value


def _dtype_keyword() -> str:
    """diffusers renamed `torch_dtype` to `dtype` (PR #14205; 0.42 warns on the old name) and older
    releases know only `torch_dtype`. The loader's own dtype matters: it keeps the modules a model
    marks for fp32 (T5's `wo`, which overflows in fp16) in fp32, which a later `.to(dtype)` would not."""
    from diffusers.utils import deprecation_utils

    return "dtype" if hasattr(deprecation_utils, "_resolve_dtype") else "torch_dtype"


def _negative(inputs: dict[str, Any]) -> str | None:
    """The negative prompt when it changes anything: guidance must be on and the text non-blank."""
    text = inputs.get("negative_prompt")
    if not isinstance(text, str) or not text.strip() or float(_value(inputs, "guidance_scale")) <= 1.0:
        return None
    return text


class StableAudioFamily:
    """Stable Audio Open 1.0 (and checkpoints of the same layout): 44.1 kHz stereo up to 47 s."""

    name = "stable-audio"
    # torchsde: the scheduler (CosineDPMSolverMultistepScheduler) draws its noise from a Brownian tree.
    requires = ("torch", "transformers", "diffusers", "torchsde")

    def load(self, path: Path, device: Device) -> Any:
        from diffusers import StableAudioPipeline
        from safetensors import SafetensorError

        # torchsde warns whenever a query touches its interval's ends: the schedule's last step
        # goes to sigma 0, below the tree's sigma_min, and sigma_max comes back with float rounding.
        # Every run does both, by design of the pipeline.
        warnings.filterwarnings("ignore", message="Should have", category=UserWarning, module=r"torchsde\.")
        if not (path / "model_index.json").is_file():
            raise WeightsError(f"no Stable Audio weights at {path} (model_index.json is missing)")
        try:
            pipe = StableAudioPipeline.from_pretrained(
                str(path),
                local_files_only=True,
                use_safetensors=True,  # never unpickle a .bin from the models folder
                **{_dtype_keyword(): device.torch_dtype},
            )
        except (OSError, ValueError, KeyError, TypeError, RuntimeError, SafetensorError) as exc:
            raise WeightsError(
                f"Stable Audio weights in {path} are missing, corrupt or of another model: {exc}"
            ) from exc
        # A config that asks for tensors the file lacks loads without error, leaving them on the
        # meta device (diffusers only logs it); the first `.to()` would then fail obscurely.
        for name, module in pipe.components.items():
            params = module.parameters() if hasattr(module, "parameters") else ()
            if any(p.is_meta for p in params):
                raise WeightsError(
                    f"Stable Audio weights in {path}: {name} lacks tensors its config asks for"
                )
        pipe.to(device.type)
        pipe.set_progress_bar_config(disable=True)
        return pipe

    def batch_key(self, inputs: dict[str, Any]) -> Hashable:
        """One pipeline call shares its length, schedule, guidance and init-audio mode; prompts,
        negative prompts (when all of a batch have one), clips and output formats are per request."""
        has_audio = inputs.get("audio") is not None
        return (
            float(_value(inputs, "duration")),
            int(_value(inputs, "num_inference_steps")),
            float(_value(inputs, "guidance_scale")),
            has_audio,
            float(_value(inputs, "strength")) if has_audio else None,
            # Without a negative prompt the unconditional branch is all zeros; with one, even a
            # blank one, it is that text's embedding: the pipeline takes one or the other per call.
            _negative(inputs) is not None,
        )

    def run(
        self, loaded: Any, requests: Sequence[LocalRequest], device: Device, step: StepCallback
    ) -> list[LocalOutput]:
        import torch
        from diffusers.utils.torch_utils import randn_tensor

        first = requests[0].inputs
        duration = float(_value(first, "duration"))
        steps = int(_value(first, "num_inference_steps"))
        guidance = float(_value(first, "guidance_scale"))
        has_audio = first.get("audio") is not None
        strength = float(_value(first, "strength"))

        vae, transformer = loaded.vae, loaded.transformer
        rate = int(vae.config.sampling_rate)
        channels = int(vae.config.audio_channels)
        hop = int(vae.hop_length)
        window = int(transformer.config.sample_size) * hop
        longest = window / rate
        if not 0 < duration <= longest:
            raise InputError(
                f"duration {duration:g} s: this model makes between 0 and {longest:.2f} s", field="duration"
            )
        if steps < 2:
            raise InputError("at least 2 steps", field="num_inference_steps")
        if has_audio and not 0 < strength <= 1:
            raise InputError("strength must be above 0 and at most 1", field="strength")

        keep = round(duration * rate)
        clips: list[tuple[np.ndarray, int]] = []
        if has_audio:
            clips = [
                read_clip(
                    r.inputs["audio"], rate=rate, channels=channels, keep=keep, window=window, shortest=hop
                )
                for r in requests
            ]

        # CPU generators: the same seed starts from the same noise on any device, and the
        # scheduler seeds each request's Brownian tree from its generator's seed.
        generators = [torch.Generator("cpu").manual_seed(r.seed) for r in requests]
        shape = (len(requests), int(transformer.config.in_channels), int(transformer.config.sample_size))
        noise = randn_tensor(
            shape, generator=generators, device=torch.device(device.type), dtype=transformer.dtype
        )

        extra: dict[str, Any] = {}
        if has_audio:
            scheduler, run_steps, level = partial_schedule(loaded.scheduler, steps, strength)
            # The pipeline multiplies by init_noise_sigma and adds the clip's latent.
            noise = noise * (level / scheduler.init_noise_sigma)
            extra = {
                "initial_audio_waveforms": torch.from_numpy(np.stack([c for c, _ in clips])).to(
                    device=device.type, dtype=vae.dtype
                ),
                "initial_audio_sampling_rate": rate,
            }
        else:
            # A scheduler keeps per-run state (step index, solver history): each run gets its own.
            scheduler, run_steps = type(loaded.scheduler).from_config(loaded.scheduler.config), steps

        negatives = [_negative(r.inputs) for r in requests]
        pipe = type(loaded)(**{**loaded.components, "scheduler": scheduler})
        pipe.set_progress_bar_config(disable=True)

        def on_step(index: int, _timestep: Any, _latents: Any) -> None:
            step(index + 1, run_steps)

        latents = pipe(
            prompt=[str(r.inputs["prompt"]) for r in requests],
            negative_prompt=[n or "" for n in negatives] if negatives[0] is not None else None,
            audio_start_in_s=0.0,
            audio_end_in_s=duration,
            num_inference_steps=run_steps,
            guidance_scale=guidance,
            generator=generators,
            latents=noise,
            callback=on_step,
            callback_steps=1,
            # We decode: the pipeline cuts at int(duration * rate), a sample short for 0.7 s.
            output_type="latent",
            **extra,
        ).audios
        with torch.inference_mode():
            audios = vae.decode(latents).sample[:, :, :keep]
        samples = np.clip(audios.float().cpu().numpy(), -1.0, 1.0)

        outputs = []
        for i, request in enumerate(requests):
            fmt = str(_value(request.inputs, "output_format"))
            path = request.workdir / f"stable-audio.{fmt}"
            content_type = write_audio(samples[i], path, fmt, rate=rate)
            metadata: dict[str, Any] = {
                "sample_rate": rate,
                "channels": channels,
                "duration": samples.shape[-1] / rate,
                "steps": run_steps,
                "guidance": guidance,
            }
            if has_audio:
                metadata.update(strength=strength, input_seconds=round(clips[i][1] / rate, 3))
            outputs.append(LocalOutput(path=path, content_type=content_type, metadata=metadata))
        return outputs


def partial_schedule(scheduler: Any, steps: int, strength: float) -> tuple[Any, int, float]:
    """A fresh scheduler whose `steps`-step schedule is the last `round(strength * steps)` steps
    (at least 2) of the full one, the number of those steps, and the noise level they start at."""
    run_steps = min(steps, max(2, round(strength * steps)))
    full = type(scheduler).from_config(scheduler.config)
    full.set_timesteps(steps)
    level = float(full.sigmas[steps - run_steps])
    return type(scheduler).from_config(scheduler.config, sigma_max=level), run_steps, level


def read_clip(
    source: Any, *, rate: int, channels: int, keep: int, window: int, shortest: int
) -> tuple[np.ndarray, int]:
    """The clip at the model's rate and channel count, cut to the asked duration (`keep` samples)
    so its latent ends where the duration conditioning says the audio ends, then zero-padded to
    the model's window (the pipeline would pad it too, with a warning per call). Returns the
    padded waveform and how many samples came from the clip."""
    parts: list[np.ndarray] = []
    have = 0
    try:
        with av.open(str(source)) as container:
            if not container.streams.audio:
                raise InputError("the clip has no audio stream", field="audio")
            stream = container.streams.audio[0]
            # A mono clip stays mono here and is copied to both channels below, at full level
            # (as the pipeline itself does): FFmpeg's mono-to-stereo upmix is 3 dB down.
            mono = channels == 1 or stream.codec_context.layout.nb_channels == 1
            resampler = av.AudioResampler(format="fltp", layout="mono" if mono else "stereo", rate=rate)
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    parts.append(out.to_ndarray())
                    have += parts[-1].shape[1]
                if have >= keep:
                    break
            else:
                for out in resampler.resample(None):
                    parts.append(out.to_ndarray())
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise InputError(f"the clip cannot be read as audio: {exc}", field="audio") from exc
    clip = np.concatenate(parts, axis=1)[:, :keep] if parts else np.zeros((channels, 0), np.float32)
    if clip.shape[0] != channels:
        clip = np.repeat(clip, channels, axis=0)
    if clip.shape[1] < shortest:
        raise InputError(
            f"the clip holds {clip.shape[1] / rate:.3f} s of audio: at least {shortest / rate:.3f} s "
            "(one latent frame) is needed",
            field="audio",
        )
    padded = np.zeros((channels, window), dtype=np.float32)
    padded[:, : clip.shape[1]] = clip
    return padded, int(clip.shape[1])

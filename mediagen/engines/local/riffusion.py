"""Riffusion: text-to-music (and audio-to-audio) by painting mel spectrograms with Stable Diffusion.

The model makes one 512×512 image at a time: 512 mel bands by 512 columns of 10 ms, i.e. 5.12 s.
Longer music is several clips, and stitching fixed clips is where Riffusion's users heard gaps
between segments (riffusion-hobby#116). Here:

- neighbouring clips start from related noise: clip k's initial latent is a spherical
  interpolation along a walk of seeded keyframe noises (half a keyframe per clip), so each clip
  shares half its noise with the next and the music drifts instead of jumping;
- clips overlap by an eighth of a clip, and the overlap is an equal-power crossfade of the
  spectrograms (not of waveforms), so one Griffin-Lim pass runs across every join: one phase
  estimate, no seam, no click;
- the joined spectrogram is trimmed to the asked duration and kept as the asset's spectrogram
  image (`extra["spectrogram"]`), one column per 10 ms, as wide as the music is long.

Audio-to-audio reads the stored clip, turns it into the same spectrogram windows (all scaled by
the clip's own maximum, so windows keep their relative levels), runs image-to-image on them with
`strength`, and joins the result the same way. Text-to-image and image-to-image share one set of
loaded modules.

Every clip of every request in a batch goes through one pipeline call (in chunks of
`max_images_per_call`, which bounds the VAE's memory), each clip with its own CPU generator
derived from its request's seed: a request gives the same music alone or in a batch.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mediagen.engines.audio_io import write_audio
from mediagen.engines.base import InputError
from mediagen.engines.local.family import Device, LocalOutput, LocalRequest, StepCallback, WeightsError
from mediagen.engines.local.sd_image import dtype_argument
from mediagen.engines.local.spectrogram import (
    SpectrogramParams,
    audio_from_mel,
    crossfade_join,
    image_from_mel,
    mel_from_audio,
    mel_from_pixels,
    peak_normalise,
)

Array = np.ndarray
_SEED_STRIDE = 0x9E3779B97F4A7C15  # odd 64-bit constant: per-clip seeds never collide across requests
MIN_CLIP_SECONDS = 1.0


@dataclass
class RiffusionPipelines:
    """Text-to-image and image-to-image over the same modules (one copy of the weights)."""

    text2img: Any
    img2img: Any


@dataclass
class _Job:
    """One request's share of the batch: its clips and how to turn them back into audio."""

    request: LocalRequest
    frames: int  # spectrogram columns of the output
    samples: int  # output length in samples (≤ frames × hop)
    clips: int
    latents: list[Any] | None = None  # text-to-music: initial noise per clip
    images: list[Any] | None = None  # audio-to-audio: the input's spectrogram windows


@dataclass
class _Item:
    """One image of the batched call."""

    job: int
    prompt: str
    negative_prompt: str
    generator: Any
    latent: Any = None
    image: Any = None


def clip_seed(seed: int, clip: int) -> int:
    return (seed + clip * _SEED_STRIDE) % (1 << 64)


def slerp(a: Any, b: Any, t: float) -> Any:
    """Spherical interpolation: Gaussian noise keeps its norm (a linear mix of two independent
    draws is too quiet halfway and the model paints a washed-out image)."""
    import torch

    a_flat, b_flat = a.flatten(), b.flatten()
    cos = torch.clamp(torch.dot(a_flat / a_flat.norm(), b_flat / b_flat.norm()), -1.0, 1.0)
    omega = torch.arccos(cos)
    if float(torch.sin(omega)) < 1e-6:
        return (1 - t) * a + t * b
    return (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)


def read_clip(path: str, sample_rate: int, max_samples: int) -> Array:
    """The clip's first `max_samples` samples, mono float32 at `sample_rate`."""
    import av

    chunks: list[Array] = []
    total = 0
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise InputError("the clip has no audio stream", field="audio")
            resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
            stream = container.streams.audio[0]
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
                    total += len(chunks[-1])
                if total >= max_samples:
                    break
            else:
                for out in resampler.resample(None):
                    chunks.append(out.to_ndarray().reshape(-1))
    except InputError:
        raise
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise InputError(f"the clip is not readable audio: {exc}", field="audio") from exc
    samples = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, dtype=np.float32)
    return samples[:max_samples]


class RiffusionFamily:
    """riffusion/riffusion-model-v1 through diffusers' Stable Diffusion pipelines."""

    name = "riffusion"
    requires: tuple[str, ...] = ("torch", "diffusers", "transformers", "safetensors")
    # The spectrogram converter and the clip width; tests shrink both to keep a toy UNet at 64 px.
    params = SpectrogramParams()
    clip_px = 512  # columns per generated image (5.12 s); the height is `params.n_mels`
    max_images_per_call = 16
    keyframes_per_clip = 0.5  # how far along the noise walk each clip moves

    @property
    def overlap_px(self) -> int:
        return self.clip_px // 8

    def load(self, path: Path, device: Device) -> RiffusionPipelines:
        from diffusers import StableDiffusionImg2ImgPipeline, StableDiffusionPipeline
        from safetensors import SafetensorError

        try:
            # No safety checker: it judges photos, and Riffusion's authors found it flags
            # spectrograms; skipping it also saves loading a 1.2 GB CLIP vision model (the
            # catalog entry does not even download it).
            text2img = StableDiffusionPipeline.from_pretrained(
                str(path),
                local_files_only=True,
                safety_checker=None,
                feature_extractor=None,  # only the safety checker reads it
                requires_safety_checker=False,
                **dtype_argument(device.torch_dtype),
            )
        except (OSError, ValueError, KeyError, RuntimeError, TypeError, SafetensorError) as exc:
            raise WeightsError(
                f"Riffusion weights in {path} are missing, corrupt or of another model: {exc}"
            ) from exc
        if text2img.unet.config.in_channels != 4 or text2img.vae.config.latent_channels != 4:
            raise WeightsError(f"{path} is not a Stable Diffusion 1.x checkpoint (Riffusion)")
        text2img.to(device.type)
        text2img.set_progress_bar_config(disable=True)
        img2img = StableDiffusionImg2ImgPipeline(**text2img.components, requires_safety_checker=False)
        img2img.set_progress_bar_config(disable=True)
        return RiffusionPipelines(text2img=text2img, img2img=img2img)

    def batch_key(self, inputs: dict[str, Any]) -> Hashable:
        with_audio = inputs.get("audio") is not None
        return (
            float(inputs.get("duration", 5.12)),
            int(inputs.get("num_inference_steps", 50)),
            float(inputs.get("guidance_scale", 7.0)),
            with_audio,
            float(inputs.get("strength", 0.6)) if with_audio else None,
        )

    def clips_for(self, frames: int) -> int:
        """Clips of `clip_px` columns, overlapping by `overlap_px`, that cover `frames` columns."""
        if frames <= self.clip_px:
            return 1
        return 1 + math.ceil((frames - self.clip_px) / (self.clip_px - self.overlap_px))

    def _noise_walk(self, seed: int, clips: int, shape: tuple[int, ...]) -> list[Any]:
        import torch

        generator = torch.Generator(device="cpu").manual_seed(seed)
        last = (clips - 1) * self.keyframes_per_clip
        keyframes = [torch.randn(shape, generator=generator) for _ in range(math.floor(last) + 2)]
        latents = []
        for k in range(clips):
            where = k * self.keyframes_per_clip
            j = math.floor(where)
            latents.append(slerp(keyframes[j], keyframes[j + 1], where - j))
        return latents

    def _prepare(self, pipes: RiffusionPipelines, request: LocalRequest) -> _Job:
        p = self.params
        inputs = request.inputs
        duration = float(inputs.get("duration", 5.12))
        frames = p.frames(duration)
        samples = round(duration * p.sample_rate)
        audio = inputs.get("audio")
        if audio is None:
            clips = self.clips_for(frames)
            pipe = pipes.text2img
            shape = (
                pipe.unet.config.in_channels,
                p.n_mels // pipe.vae_scale_factor,
                self.clip_px // pipe.vae_scale_factor,
            )
            latents = self._noise_walk(request.seed, clips, shape)
            return _Job(request=request, frames=frames, samples=samples, clips=clips, latents=latents)
        clip = read_clip(str(audio), p.sample_rate, frames * p.hop_length)
        needed = min(MIN_CLIP_SECONDS * p.sample_rate, frames * p.hop_length)
        if len(clip) < needed:
            seconds = len(clip) / p.sample_rate
            raise InputError(
                f"the clip is {seconds:.2f} s long; at least {needed / p.sample_rate:g} s is needed",
                field="audio",
            )
        mel = mel_from_audio(clip, p)
        frames = mel.shape[1]
        samples = min(samples, frames * p.hop_length)
        clips = self.clips_for(frames)
        stride = self.clip_px - self.overlap_px
        width = self.clip_px + (clips - 1) * stride
        padded = np.pad(mel, ((0, 0), (0, width - frames)))  # silence after the clip's end
        peak = float(mel.max())
        windows = [
            image_from_mel(
                padded[:, k * stride : k * stride + self.clip_px], p, max_value=peak if peak > 0 else 1.0
            )
            for k in range(clips)
        ]
        return _Job(request=request, frames=frames, samples=samples, clips=clips, images=windows)

    def run(
        self, loaded: RiffusionPipelines, requests: Sequence[LocalRequest], device: Device, step: StepCallback
    ) -> list[LocalOutput]:
        import torch

        first = requests[0].inputs
        steps = int(first.get("num_inference_steps", 50))
        guidance = float(first.get("guidance_scale", 7.0))
        with_audio = first.get("audio") is not None
        strength = float(first.get("strength", 0.6))
        if with_audio and int(steps * strength) < 1:
            raise InputError(
                f"{steps} steps at strength {strength:g} leave no denoising step (steps × strength < 1)",
                field="strength",
            )
        jobs = [self._prepare(loaded, r) for r in requests]
        items: list[_Item] = []
        for index, job in enumerate(jobs):
            inputs = job.request.inputs
            for k in range(job.clips):
                items.append(
                    _Item(
                        job=index,
                        prompt=str(inputs.get("prompt", "")),
                        negative_prompt=str(inputs.get("negative_prompt") or ""),
                        generator=torch.Generator(device="cpu").manual_seed(clip_seed(job.request.seed, k)),
                        latent=job.latents[k] if job.latents is not None else None,
                        image=job.images[k] if job.images is not None else None,
                    )
                )
        chunks = [
            items[i : i + self.max_images_per_call] for i in range(0, len(items), self.max_images_per_call)
        ]
        done = 0

        def on_step(pipe: Any, i: int, t: Any, tensors: dict[str, Any]) -> dict[str, Any]:
            nonlocal done
            done += 1
            # Every chunk runs the same schedule; PNDM runs steps + 1 iterations, so ask the pipe.
            step(done, len(chunks) * pipe.num_timesteps)
            return tensors

        pixels: list[Array] = []
        for chunk in chunks:
            common: dict[str, Any] = {
                "prompt": [it.prompt for it in chunk],
                "negative_prompt": [it.negative_prompt for it in chunk],
                "num_inference_steps": steps,
                "guidance_scale": guidance,
                "generator": [it.generator for it in chunk],
                "output_type": "np",
                "callback_on_step_end": on_step,
            }
            with torch.inference_mode():
                if with_audio:
                    out = loaded.img2img(image=[it.image for it in chunk], strength=strength, **common)
                else:
                    dtype = loaded.text2img.unet.dtype
                    latents = torch.stack([it.latent for it in chunk]).to(dtype=dtype)
                    out = loaded.text2img(
                        latents=latents, height=self.params.n_mels, width=self.clip_px, **common
                    )
            pixels.extend(np.asarray(img, dtype=np.float32) * 255.0 for img in out.images)

        outputs: list[LocalOutput] = []
        cursor = 0
        for job in jobs:
            clip_pixels = pixels[cursor : cursor + job.clips]
            cursor += job.clips
            outputs.append(
                self._finish(job, clip_pixels, device, steps=steps, guidance=guidance, strength=strength)
            )
        return outputs

    def _finish(
        self,
        job: _Job,
        clip_pixels: list[Array],
        device: Device,
        *,
        steps: int,
        guidance: float,
        strength: float,
    ) -> LocalOutput:
        p = self.params
        mels = [mel_from_pixels(px, p) for px in clip_pixels]
        mel = crossfade_join(mels, self.overlap_px)[:, : job.frames]
        # MPS has no complex FFT support worth trusting; the CPU does Griffin-Lim there instead.
        gl_device = "cpu" if device.type == "mps" else device.type
        samples = audio_from_mel(mel, p, device=gl_device, seed=job.request.seed)[: job.samples]
        samples = peak_normalise(samples, peak_dbfs=-1.0)
        inputs = job.request.inputs
        fmt = str(inputs.get("output_format", "mp3"))
        path = job.request.workdir / f"riffusion.{fmt}"
        mime = write_audio(samples[None, :], path, fmt, rate=p.sample_rate)
        picture = image_from_mel(mel, p)
        picture_path = job.request.workdir / "spectrogram.png"
        picture.save(picture_path, format="PNG")
        metadata: dict[str, Any] = {
            "sample_rate": p.sample_rate,
            "channels": 1,
            "duration": round(len(samples) / p.sample_rate, 3),
            "clips": job.clips,
            "clip_seconds": round(p.seconds(self.clip_px), 3),
            "crossfade_seconds": round(p.seconds(self.overlap_px), 3) if job.clips > 1 else 0.0,
            "steps": steps,
            "guidance_scale": guidance,
            "spectrogram_width": picture.width,
            "spectrogram_height": picture.height,
            "griffin_lim_iterations": p.griffin_lim_iters,
        }
        if job.images is not None:
            metadata["strength"] = strength
        return LocalOutput(
            path=path,
            content_type=mime,
            extra={"spectrogram": (picture_path, "image/png")},
            metadata=metadata,
        )


__all__ = ["RiffusionFamily", "RiffusionPipelines", "read_clip", "slerp"]

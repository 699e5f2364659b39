"""Wan 2.1 text-to-video through diffusers' `WanPipeline`.

One batch is one pipeline call: the prompts (and their negative prompts) go in as lists with one
`torch.Generator` per request, so each request's starting noise depends on its own seed only and
a request gives the same clip alone or beside others. The pipeline stops at the latents; we then
decode each video on its own, which keeps the VAE's peak memory at one clip whatever the batch
size, reports progress per clip, and lets a cancel land between clips.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import Any

from mediagen.engines.base import InputError
from mediagen.engines.local.family import Device, LocalOutput, LocalRequest, StepCallback, WeightsError
from mediagen.engines.video_io import write_mp4

MAX_FRAMES = 81  # what the 1.3B model was trained on; longer clips fall apart
DEFAULTS: dict[str, Any] = {
    "negative_prompt": "",
    "width": 832,
    "height": 480,
    "num_frames": MAX_FRAMES,
    "fps": 16,
    "num_inference_steps": 50,
    "guidance_scale": 5.0,
}
OUTPUT_NAME = "video.mp4"


def frames_for(inputs: dict[str, Any]) -> int:
    """The clip's frame count: `duration` (seconds) when given, else `num_frames`.

    A duration becomes the nearest 4k+1 frames at the request's fps (at least 5), the only
    lengths the VAE's 4x temporal compression can make; it is not capped here, so that `run`
    can refuse a too-long clip with a message rather than silently shorten it.
    """
    duration = inputs.get("duration")
    if duration is None:
        return int(inputs.get("num_frames", DEFAULTS["num_frames"]))
    fps = int(inputs.get("fps", DEFAULTS["fps"]))
    groups = max(1, math.floor(float(duration) * fps / 4 + 0.5))
    return 4 * groups + 1


def _compute_dtype(device: Device) -> Any:
    """bf16 on a GPU that has it, else the engine's choice.

    Wan and its UMT5-XXL text encoder were trained in bf16. T5-family activations exceed fp16's
    range (transformers clamps them to keep inf out), so the engine's "float16" is read as "half
    precision" and the half with fp32's range is used where the hardware offers it.
    """
    import torch

    if device.type == "cuda" and device.dtype == "float16" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return device.torch_dtype


def _check_index(path: Path) -> None:
    index_path = path / "model_index.json"
    try:
        index = json.loads(index_path.read_text())
    except (OSError, ValueError) as exc:
        raise WeightsError(
            f"Wan weights at {path}: model_index.json is missing or unreadable ({exc})"
        ) from exc
    if not isinstance(index, dict) or index.get("_class_name") != "WanPipeline":
        found = index.get("_class_name") if isinstance(index, dict) else None
        raise WeightsError(f"{path} holds a {found or 'unknown'} model, not a Wan text-to-video pipeline")


class WanFamily:
    """Wan 2.1 text-to-video: prompt → H.264 MP4."""

    name = "wan"
    requires: tuple[str, ...] = ("torch", "diffusers", "transformers", "accelerate")

    def load(self, path: Path, device: Device) -> Any:
        import torch
        from diffusers import AutoencoderKLWan, WanPipeline
        from safetensors import SafetensorError

        _check_index(path)
        try:
            # The VAE stays in float32 on every device: in half precision its decode bands and
            # shifts colour, and it is small (~0.5 GB) next to the text encoder.
            vae = AutoencoderKLWan.from_pretrained(
                path, subfolder="vae", torch_dtype=torch.float32, local_files_only=True
            )
            pipe = WanPipeline.from_pretrained(
                path, vae=vae, torch_dtype=_compute_dtype(device), local_files_only=True
            )
        except (OSError, ValueError, KeyError, RuntimeError, TypeError, SafetensorError) as exc:
            raise WeightsError(
                f"Wan weights at {path} are missing, corrupt or of another model: {exc}"
            ) from exc
        if pipe.transformer is None:
            # `transformer` is an optional component of WanPipeline, so a missing folder loads
            # without complaint and would only fail at the first run.
            raise WeightsError(f"Wan weights at {path} have no transformer")
        pipe.set_progress_bar_config(disable=True)
        return pipe.to(device.type)

    def batch_key(self, inputs: dict[str, Any]) -> Hashable:
        # Everything one pipeline call shares. The negative prompt is per request (a list beside
        # the prompts) and guidance ≤ 1 turns the negative pass off for the whole call, which
        # guidance_scale in the key already covers. fps only matters when muxing, so it stays out.
        # The frame count is the raw derived one, so an invalid length only ever shares a call
        # with the same invalid length and fails alone.
        return (
            "t2v",
            int(inputs.get("width", DEFAULTS["width"])),
            int(inputs.get("height", DEFAULTS["height"])),
            frames_for(inputs),
            int(inputs.get("num_inference_steps", DEFAULTS["num_inference_steps"])),
            float(inputs.get("guidance_scale", DEFAULTS["guidance_scale"])),
        )

    def run(
        self, loaded: Any, requests: Sequence[LocalRequest], device: Device, step: StepCallback
    ) -> list[LocalOutput]:
        first = requests[0].inputs
        width = int(first.get("width", DEFAULTS["width"]))
        height = int(first.get("height", DEFAULTS["height"]))
        frames = frames_for(first)
        steps = int(first.get("num_inference_steps", DEFAULTS["num_inference_steps"]))
        guidance = float(first.get("guidance_scale", DEFAULTS["guidance_scale"]))
        for request in requests:
            _validate(loaded, request.inputs, width, height, frames)

        total = steps + len(requests)  # denoising steps, then one VAE decode per clip
        latents = denoise(
            loaded,
            prompts=[str(r.inputs["prompt"]) for r in requests],
            negative_prompts=[str(r.inputs.get("negative_prompt") or "") for r in requests],
            seeds=[r.seed for r in requests],
            width=width,
            height=height,
            num_frames=frames,
            steps=steps,
            guidance_scale=guidance,
            on_step=lambda done: step(done, total),
        )
        outputs = []
        for i, request in enumerate(requests):
            video = decode(loaded, latents[i : i + 1])
            fps = int(request.inputs.get("fps", DEFAULTS["fps"]))
            path = request.workdir / OUTPUT_NAME
            content_type = write_mp4(video, path, fps=fps)
            outputs.append(
                LocalOutput(
                    path=path,
                    content_type=content_type,
                    metadata={
                        "width": int(video.shape[2]),
                        "height": int(video.shape[1]),
                        "fps": fps,
                        "num_frames": int(video.shape[0]),
                        "duration": round(video.shape[0] / fps, 6),
                        "steps": steps,
                        "guidance_scale": guidance,
                    },
                )
            )
            step(steps + i + 1, total)
        return outputs


def _validate(pipe: Any, inputs: dict[str, Any], width: int, height: int, frames: int) -> None:
    """What the schema cannot say: the VAE's frame grid and the size grid of this checkpoint."""
    temporal = int(pipe.vae_scale_factor_temporal)
    grid = int(pipe.vae_scale_factor_spatial) * int(pipe.transformer.config.patch_size[1])
    if inputs.get("duration") is not None and frames > MAX_FRAMES:
        fps = int(inputs.get("fps", DEFAULTS["fps"]))
        raise InputError(
            f"at {fps} fps this model makes at most {MAX_FRAMES / fps:.2f} s ({MAX_FRAMES} frames); "
            "ask for less, or lower fps for a longer, choppier clip",
            field="duration",
        )
    if frames % temporal != 1 or not 1 <= frames <= MAX_FRAMES:
        raise InputError(
            f"must be {temporal}k+1 frames between 1 and {MAX_FRAMES} (e.g. 33, 49, 81), got {frames}",
            field="num_frames",
        )
    for field, value in (("width", width), ("height", height)):
        if value % grid or value < grid:
            raise InputError(f"must be a positive multiple of {grid}, got {value}", field=field)


def denoise(
    pipe: Any,
    *,
    prompts: list[str],
    negative_prompts: list[str],
    seeds: list[int],
    width: int,
    height: int,
    num_frames: int,
    steps: int,
    guidance_scale: float,
    on_step: Callable[[int], None],
) -> Any:
    """The batch's final latents (batch, 16, latent frames, h/8, w/8), float32.

    Generators live on the CPU: diffusers draws the noise there and moves it, so a seed starts
    from the same noise on every device, and each request's noise comes from its own generator.
    """
    import torch

    generators = [torch.Generator("cpu").manual_seed(int(seed)) for seed in seeds]

    def callback(_pipe: Any, index: int, _timestep: Any, _tensors: dict[str, Any]) -> dict[str, Any]:
        on_step(index + 1)  # may raise Cancelled: it leaves the pipeline call as is
        return {}

    result = pipe(
        prompt=prompts,
        negative_prompt=negative_prompts,
        width=width,
        height=height,
        num_frames=num_frames,
        num_inference_steps=steps,
        guidance_scale=guidance_scale,
        num_videos_per_prompt=1,
        generator=generators,
        output_type="latent",
        callback_on_step_end=callback,
    )
    return result.frames


def decode(pipe: Any, latents: Any) -> Any:
    """One clip's latents (1, C, T, h, w) → RGB frames (frames, height, width, 3) uint8.

    The same un-normalisation and post-processing as the pipeline's own decode (a test holds the
    two equal), done here so each clip is decoded on its own.
    """
    import numpy as np
    import torch

    vae = pipe.vae
    z_dim = int(vae.config.z_dim)
    with torch.no_grad():
        z = latents.to(device=vae.device, dtype=vae.dtype)
        mean = torch.tensor(vae.config.latents_mean).view(1, z_dim, 1, 1, 1).to(z.device, z.dtype)
        inv_std = 1.0 / torch.tensor(vae.config.latents_std).view(1, z_dim, 1, 1, 1).to(z.device, z.dtype)
        video = vae.decode(z / inv_std + mean, return_dict=False)[0]
        frames = pipe.video_processor.postprocess_video(video, output_type="np")[0]
    return np.clip(np.rint(frames * 255.0), 0, 255).astype(np.uint8)


__all__ = ["DEFAULTS", "MAX_FRAMES", "WanFamily", "decode", "denoise", "frames_for"]

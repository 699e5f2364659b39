"""Text-to-image and image-to-image with a small Stable Diffusion model (SD-Turbo) on this machine.

SD-Turbo is SD 2.1 distilled to sample in 1–4 steps without classifier-free guidance, so it is
the one image model fast enough to be worth running locally. diffusers' auto pipelines pick the
pipeline classes from the repo's `model_index.json`; image-to-image is made with `from_pipe`, so
both share the loaded modules.

Steps mean the same in both modes: the number of denoising steps that run. diffusers' image-to-
image runs only `int(num_inference_steps × strength)` of its schedule, which is 0 at Turbo's
defaults (1 step, strength 0.5); we ask it for the schedule length that runs the wanted steps
(2 at the defaults: one step from the schedule's middle, as SD-Turbo's model card does).

Each request draws its noise from its own CPU generator seeded with its seed, so an image is the
same alone or in a batch and on any device.
"""

from __future__ import annotations

import math
import re
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mediagen.engines.base import InputError
from mediagen.engines.local.family import Device, LocalOutput, LocalRequest, StepCallback, WeightsError

if TYPE_CHECKING:
    from PIL import Image

_FORMATS = {"png": ("PNG", "image/png"), "jpg": ("JPEG", "image/jpeg"), "webp": ("WEBP", "image/webp")}


@dataclass
class ImagePipelines:
    text2img: Any
    img2img: Any


def dtype_argument(dtype: Any) -> dict[str, Any]:
    """`from_pretrained`'s precision keyword: diffusers 0.42 renamed `torch_dtype` to `dtype` and
    warns on the old name; older releases (the `local` extra allows ≥ 0.35) know only the old one."""
    import diffusers

    major_minor = tuple(int(part) for part in re.findall(r"\d+", diffusers.__version__)[:2])
    return {"dtype" if major_minor >= (0, 42) else "torch_dtype": dtype}


def schedule_length(steps: int, strength: float) -> int:
    """The `num_inference_steps` for which diffusers' image-to-image runs `steps` steps."""
    n = max(steps, math.ceil(steps / strength))
    while int(n * strength) < steps:  # float rounding (e.g. 3 / 0.3 = 10.000000000000002)
        n += 1
    return n


def read_image(path: str, width: int, height: int) -> Image.Image:
    """The stored image, cropped to the asked aspect ratio around its centre and resized to it.

    Cropping instead of stretching keeps faces and shapes; every image of a batch must have the
    same size anyway.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as src:
            src.load()
            image = ImageOps.exif_transpose(src).convert("RGB")
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as exc:
        raise InputError(f"the image is not readable: {exc}", field="image") from exc
    return ImageOps.fit(image, (width, height), method=Image.Resampling.LANCZOS)


class TextToImageFamily:
    """stabilityai/sd-turbo (or any Stable Diffusion repo) through diffusers' auto pipelines."""

    name = "sd-image"
    requires: tuple[str, ...] = ("torch", "diffusers", "transformers", "safetensors")

    def load(self, path: Path, device: Device) -> ImagePipelines:
        from diffusers import AutoPipelineForImage2Image, AutoPipelineForText2Image
        from safetensors import SafetensorError

        try:
            text2img = AutoPipelineForText2Image.from_pretrained(
                str(path), local_files_only=True, **dtype_argument(device.torch_dtype)
            )
        except (OSError, ValueError, KeyError, RuntimeError, TypeError, SafetensorError) as exc:
            raise WeightsError(
                f"image model weights in {path} are missing, corrupt or of another model: {exc}"
            ) from exc
        if getattr(text2img, "vae", None) is None or getattr(text2img, "unet", None) is None:
            raise WeightsError(f"{path} is not a Stable Diffusion checkpoint (no UNet/VAE)")
        text2img.to(device.type)
        text2img.set_progress_bar_config(disable=True)
        img2img = AutoPipelineForImage2Image.from_pipe(text2img)
        img2img.set_progress_bar_config(disable=True)
        return ImagePipelines(text2img=text2img, img2img=img2img)

    def batch_key(self, inputs: dict[str, Any]) -> Hashable:
        with_image = inputs.get("image") is not None
        return (
            int(inputs.get("width", 512)),
            int(inputs.get("height", 512)),
            int(inputs.get("num_inference_steps", 1)),
            float(inputs.get("guidance_scale", 0.0)),
            with_image,
            float(inputs.get("strength", 0.5)) if with_image else None,
        )

    def run(
        self, loaded: ImagePipelines, requests: Sequence[LocalRequest], device: Device, step: StepCallback
    ) -> list[LocalOutput]:
        import torch

        first = requests[0].inputs
        width = int(first.get("width", 512))
        height = int(first.get("height", 512))
        steps = int(first.get("num_inference_steps", 1))
        guidance = float(first.get("guidance_scale", 0.0))
        with_image = first.get("image") is not None
        strength = float(first.get("strength", 0.5))
        for name, value in (("width", width), ("height", height)):
            if value % 8:
                raise InputError(f"{name} {value} is not a multiple of 8", field=name)

        def on_step(pipe: Any, i: int, t: Any, tensors: dict[str, Any]) -> dict[str, Any]:
            step(i + 1, pipe.num_timesteps)
            return tensors

        common: dict[str, Any] = {
            "prompt": [str(r.inputs.get("prompt", "")) for r in requests],
            # Without guidance (Turbo's default) diffusers ignores these.
            "negative_prompt": [str(r.inputs.get("negative_prompt") or "") for r in requests],
            "guidance_scale": guidance,
            "generator": [torch.Generator(device="cpu").manual_seed(r.seed) for r in requests],
            "callback_on_step_end": on_step,
            "output_type": "pil",
        }
        with torch.inference_mode():
            if with_image:
                images = [read_image(str(r.inputs["image"]), width, height) for r in requests]
                out = loaded.img2img(
                    image=images,
                    strength=strength,
                    num_inference_steps=schedule_length(steps, strength),
                    **common,
                )
            else:
                out = loaded.text2img(width=width, height=height, num_inference_steps=steps, **common)

        outputs: list[LocalOutput] = []
        for request, image in zip(requests, out.images, strict=True):
            fmt = str(request.inputs.get("output_format", "png"))
            pil_format, mime = _FORMATS[fmt]
            path = request.workdir / f"image.{fmt}"
            options: dict[str, Any] = {"quality": 95} if fmt in ("jpg", "webp") else {}
            image.save(path, format=pil_format, **options)
            metadata: dict[str, Any] = {
                "width": image.width,
                "height": image.height,
                "steps": steps,
                "guidance_scale": guidance,
            }
            if with_image:
                metadata["strength"] = strength
            outputs.append(LocalOutput(path=path, content_type=mime, metadata=metadata))
        return outputs


__all__ = ["ImagePipelines", "TextToImageFamily", "dtype_argument", "read_image", "schedule_length"]

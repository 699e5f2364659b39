"""The offline procedural engine: `synth/music`, `synth/image`, `synth/video`.

It finishes inside `submit` (no provider, no reference to poll), writes into the job's workdir,
and re-checks its inputs even though the catalog validated them: the engine is also called from
the CLI and tests, and a bad value should be a 422 naming the field, not a stack trace.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, Protocol, TypeVar

from PIL import Image, UnidentifiedImageError

from mediagen.engines.base import BaseEngine, Capabilities, EngineError, Finished, InputError, Job, OutputFile
from mediagen.engines.synth.geometry import image_size, video_size
from mediagen.engines.synth.image import CONTENT_TYPES as IMAGE_TYPES
from mediagen.engines.synth.image import render_image
from mediagen.engines.synth.music import AUDIO_FORMATS, render_music
from mediagen.engines.synth.prompt import MAX_BPM, MIN_BPM, effective_seed
from mediagen.engines.synth.video import render_video

MODELS = {"synth/music": "audio", "synth/image": "image", "synth/video": "video"}
LABEL = "Offline procedural synth (draft quality, not a neural model)"

Option = TypeVar("Option", bound=str)


def _number(inputs: dict[str, Any], name: str, default: float, lo: float, hi: float) -> float:
    value = inputs.get(name)
    if value is None:
        value = default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(f"{name} must be a number", field=name)
    if not lo <= float(value) <= hi:
        raise InputError(f"{name} must be between {lo:g} and {hi:g}", field=name)
    return float(value)


def _integer(inputs: dict[str, Any], name: str, default: int, lo: int, hi: int) -> int:
    value = inputs.get(name)
    if value is None:
        value = default
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        and not (isinstance(value, float) and value.is_integer())
    ):
        raise InputError(f"{name} must be an integer", field=name)
    if not lo <= int(value) <= hi:
        raise InputError(f"{name} must be between {lo} and {hi}", field=name)
    return int(value)


def _choice(inputs: dict[str, Any], name: str, default: Option, options: tuple[Option, ...]) -> Option:
    value = inputs.get(name) or default
    value = "jpg" if value == "jpeg" else value
    for option in options:
        if value == option:
            return option
    raise InputError(f"{name} must be one of {', '.join(options)}", field=name)


def _frame_size(
    inputs: dict[str, Any], asked: tuple[int | None, int | None], default: tuple[int, int], most: int
) -> tuple[int, int]:
    """Checked width and height: `asked` (explicit, or from the aspect ratio), else `default`."""
    sized = {**inputs, **dict(zip(("width", "height"), asked, strict=True))}
    return _integer(sized, "width", default[0], 64, most), _integer(sized, "height", default[1], 64, most)


def _prompt(inputs: dict[str, Any]) -> str:
    prompt = inputs.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise InputError("prompt must be a non-empty string", field="prompt")
    return prompt.strip()


def _seed(inputs: dict[str, Any], prompt: str) -> int:
    """The seed to render with. The API always sends one (a fresh random seed per take unless the
    caller chose it), so the prompt-derived seed that 0 or no seed means is only for direct calls
    of the engine: the same prompt must not give the same bytes on every regenerate."""
    seed = _integer(inputs, "seed", 0, 0, 2**32 - 1)  # the catalog's range: seed + i of n takes fits
    return effective_seed(prompt, seed)


def _image_path(inputs: dict[str, Any]) -> Path | None:
    """A local picture to start the video from; the API is responsible for where it came from."""
    raw = inputs.get("image")
    if raw in (None, ""):
        return None
    if not isinstance(raw, str | Path):
        raise InputError("image must be a local file path", field="image")
    path = Path(raw)
    if not path.is_file():
        raise InputError("image file not found", field="image")
    try:
        with Image.open(path) as img:
            img.verify()
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise InputError(f"image is not a readable picture: {exc}", field="image") from exc
    return path


class _Render(Protocol):
    """A renderer with every input bound but the file to write."""

    def __call__(self, *, out: Path) -> dict[str, Any]: ...


def _music(inputs: dict[str, Any], prompt: str, seed: int) -> tuple[str, _Render]:
    duration = _number(inputs, "duration", 8.0, 1.0, 300.0)
    fmt = _choice(inputs, "output_format", "mp3", AUDIO_FORMATS)
    bpm = None if inputs.get("bpm") is None else _integer(inputs, "bpm", 120, MIN_BPM, MAX_BPM)
    return fmt, partial(render_music, prompt, duration=duration, seed=seed, output_format=fmt, bpm=bpm)


def _image(inputs: dict[str, Any], prompt: str, seed: int) -> tuple[str, _Render]:
    width, height = _frame_size(inputs, image_size(inputs), (1024, 1024), 2048)
    fmt = _choice(inputs, "output_format", "png", tuple(IMAGE_TYPES))
    return fmt, partial(render_image, prompt, width=width, height=height, seed=seed, output_format=fmt)


def _video(inputs: dict[str, Any], prompt: str, seed: int) -> tuple[str, _Render]:
    duration = _number(inputs, "duration", 5.0, 1.0, 60.0)
    fps = _integer(inputs, "fps", 24, 1, 60)
    width, height = _frame_size(inputs, video_size(inputs), (854, 480), 1920)
    for name, value in (("width", width), ("height", height)):
        if value % 2:
            raise InputError(f"{name} must be even for H.264 (yuv420p)", field=name)
    soundtrack = inputs.get("soundtrack", False)
    if not isinstance(soundtrack, bool):
        raise InputError("soundtrack must be true or false", field="soundtrack")
    return "mp4", partial(
        render_video,
        prompt,
        duration=duration,
        fps=fps,
        width=width,
        height=height,
        seed=seed,
        soundtrack=soundtrack,
        image_path=_image_path(inputs),
    )


# Per model: check the inputs, then name the file's suffix and the render that writes it.
_RENDERS: dict[str, Callable[[dict[str, Any], str, int], tuple[str, _Render]]] = {
    "synth/music": _music,
    "synth/image": _image,
    "synth/video": _video,
}


class SynthEngine(BaseEngine):
    """Inline engine: renders deterministically from prompt + seed, costs nothing."""

    name = "synth"
    capabilities = Capabilities(inline=True)

    def submit(self, job: Job) -> Finished:
        if job.model_id not in MODELS:
            raise EngineError(f"synth does not serve model {job.model_id!r}")
        job.workdir.mkdir(parents=True, exist_ok=True)
        inputs = job.inputs
        prompt = _prompt(inputs)
        seed = _seed(inputs, prompt)
        try:
            suffix, render = _RENDERS[job.model_id](inputs, prompt, seed)
            path = job.workdir / f"synth-{job.generation_id}.{suffix}"
            meta = render(out=path)
        except ValueError as exc:  # renderer-level range checks
            raise InputError(str(exc)) from exc
        content_type = meta.pop("content_type")
        meta.update(
            {"engine": self.name, "model": job.model_id, "label": LABEL, "kind": MODELS[job.model_id]}
        )
        return Finished(
            outputs=[OutputFile(role="main", path=path, content_type=content_type)],
            metadata=meta,
            cost_usd=0.0,
        )

    def cancel(self, ref: str) -> None:
        """Nothing to cancel: a synth job is over by the time anyone could ask."""

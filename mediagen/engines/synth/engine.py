"""The offline procedural engine (DESIGN §5): `synth/music`, `synth/image`, `synth/video`.

It finishes inside `submit` (no provider, no reference to poll), writes into the job's workdir,
and re-checks its inputs even though the catalog validated them: the engine is also called from
the CLI and tests, and a bad value should be a 422 naming the field, not a stack trace.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from mediagen.engines.base import EngineError, Finished, InputError, Job, OutputFile, State
from mediagen.engines.synth.geometry import image_size, video_size
from mediagen.engines.synth.image import CONTENT_TYPES as IMAGE_TYPES
from mediagen.engines.synth.image import render_image
from mediagen.engines.synth.music import render_music
from mediagen.engines.synth.prompt import MAX_BPM, MIN_BPM, effective_seed
from mediagen.engines.synth.video import render_video

MODELS = {"synth/music": "audio", "synth/image": "image", "synth/video": "video"}
LABEL = "Offline procedural synth (draft quality, not a neural model)"


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


def _choice(inputs: dict[str, Any], name: str, default: str, options: tuple[str, ...]) -> str:
    value = inputs.get(name) or default
    value = "jpg" if value == "jpeg" else value
    if value not in options:
        raise InputError(f"{name} must be one of {', '.join(options)}", field=name)
    return str(value)


def _prompt(inputs: dict[str, Any]) -> str:
    prompt = inputs.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise InputError("prompt must be a non-empty string", field="prompt")
    return prompt.strip()


def _seed(inputs: dict[str, Any], prompt: str) -> int:
    seed = _integer(inputs, "seed", 0, 0, 2**31 - 1)
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


class SynthEngine:
    """Inline engine: renders deterministically from prompt + seed, costs nothing."""

    name = "synth"

    def submit(self, job: Job) -> Finished:
        if job.model_id not in MODELS:
            raise EngineError(f"synth does not serve model {job.model_id!r}")
        job.workdir.mkdir(parents=True, exist_ok=True)
        inputs = job.inputs
        prompt = _prompt(inputs)
        seed = _seed(inputs, prompt)
        stem = f"synth-{job.generation_id}"
        try:
            if job.model_id == "synth/music":
                path, meta = self._music(inputs, prompt, seed, job.workdir, stem)
            elif job.model_id == "synth/image":
                path, meta = self._image(inputs, prompt, seed, job.workdir, stem)
            else:
                path, meta = self._video(inputs, prompt, seed, job.workdir, stem)
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

    def refresh(self, ref: str) -> State:
        raise EngineError("synth jobs finish inline")

    def cancel(self, ref: str) -> None:
        """Nothing to cancel: a synth job is over by the time anyone could ask."""

    @staticmethod
    def _music(
        inputs: dict[str, Any], prompt: str, seed: int, workdir: Path, stem: str
    ) -> tuple[Path, dict[str, Any]]:
        duration = _number(inputs, "duration", 8.0, 1.0, 300.0)
        fmt = _choice(inputs, "output_format", "mp3", ("mp3", "wav"))
        bpm = None if inputs.get("bpm") is None else _integer(inputs, "bpm", 120, MIN_BPM, MAX_BPM)
        path = workdir / f"{stem}.{fmt}"
        meta = render_music(prompt, duration=duration, seed=seed, output_format=fmt, bpm=bpm, out=path)  # type: ignore[arg-type]
        return path, meta

    @staticmethod
    def _image(
        inputs: dict[str, Any], prompt: str, seed: int, workdir: Path, stem: str
    ) -> tuple[Path, dict[str, Any]]:
        inputs = {**inputs, **dict(zip(("width", "height"), image_size(inputs), strict=True))}
        width = _integer(inputs, "width", 1024, 64, 2048)
        height = _integer(inputs, "height", 1024, 64, 2048)
        fmt = _choice(inputs, "output_format", "png", tuple(IMAGE_TYPES))
        path = workdir / f"{stem}.{fmt}"
        meta = render_image(prompt, width=width, height=height, seed=seed, output_format=fmt, out=path)  # type: ignore[arg-type]
        return path, meta

    @staticmethod
    def _video(
        inputs: dict[str, Any], prompt: str, seed: int, workdir: Path, stem: str
    ) -> tuple[Path, dict[str, Any]]:
        duration = _number(inputs, "duration", 5.0, 1.0, 60.0)
        fps = _integer(inputs, "fps", 24, 1, 60)
        inputs = {**inputs, **dict(zip(("width", "height"), video_size(inputs), strict=True))}
        width = _integer(inputs, "width", 854, 64, 1920)
        height = _integer(inputs, "height", 480, 64, 1920)
        for name, value in (("width", width), ("height", height)):
            if value % 2:
                raise InputError(f"{name} must be even for H.264 (yuv420p)", field=name)
        soundtrack = inputs.get("soundtrack", False)
        if not isinstance(soundtrack, bool):
            raise InputError("soundtrack must be true or false", field="soundtrack")
        path = workdir / f"{stem}.mp4"
        meta = render_video(
            prompt,
            duration=duration,
            fps=fps,
            width=width,
            height=height,
            seed=seed,
            soundtrack=soundtrack,
            image_path=_image_path(inputs),
            out=path,
        )
        return path, meta

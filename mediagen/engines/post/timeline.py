"""The picture side of a composition: where each clip sits in the output, and each output frame.

Everything stays in yuv420p from the decoder to the encoder: a crop, a paste and a crossfade are
numpy slices and integer blends on the three planes (an affine colour matrix commutes with a
linear blend, so blending YUV is blending RGB), and scaling is swscale through PyAV's
`reformat`. Converting each 1080×1920 frame to RGB and back would cost more than the rest of the
compositing together. Crops are taken in the source before scaling, so a 16:9 source going to
9:16 scales only the part that is kept.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
from PIL import Image, ImageOps

from mediagen.engines.base import InputError
from mediagen.engines.post.recipe import ASPECTS, Clip, Recipe
from mediagen.engines.video_io import BT709

ZOOM = 1.08  # an image's slow push-in ends at this scale
BLUR_SCALE = 16  # the padded background is blurred at 1/16 of the frame: cheap, and heavy enough
BLUR_RADIUS = 3  # box radius at that scale; three passes come close to a Gaussian (σ ≈ 55 px at 1080)
BLUR_DIM = 0.7  # the blurred copy is darkened so the picture in front of it reads as the subject
TIME_EPS = 1e-4  # a source frame due at exactly an output instant is shown at it, despite rounding
CUT_TOLERANCE = 1e-3  # an out point this far past a clip's end is its end (players round lengths)
UPSCALE = av.video.reformatter.Interpolation.BICUBIC


@dataclass(frozen=True)
class Span:
    """Where one clip plays: output seconds [start, end), from source seconds `source_in` on;
    `fade_in`/`fade_out` are the crossfades (s) shared with its neighbours."""

    index: int  # the clip's position in the recipe
    kind: str
    start: float
    end: float
    source_in: float
    fade_in: float
    fade_out: float

    def as_json(self) -> dict[str, Any]:
        return {
            "clip": self.index,
            "kind": self.kind,
            "start": round(self.start, 6),
            "end": round(self.end, 6),
            "in": round(self.source_in, 6),
        }


@dataclass(frozen=True)
class Plan:
    """The edit: the spans that appear, and the output's exact length in frames."""

    spans: list[Span]
    frames: int
    fps: int

    @property
    def duration(self) -> float:
        return self.frames / self.fps


@dataclass(frozen=True)
class VideoInfo:
    length: float  # seconds of picture from the first frame
    origin: float  # the first frame's timestamp: the clip's time 0, for picture and sound alike
    has_audio: bool


def check_frame(recipe: Recipe) -> tuple[int, int]:
    """The output frame size, refusing what the recipe cannot be rendered at."""
    if recipe.size is None and recipe.aspect not in ASPECTS:
        raise InputError(f"unknown aspect {recipe.aspect!r}; one of {', '.join(ASPECTS)}", field="aspect")
    width, height = recipe.frame
    if width < 2 or height < 2 or width % 2 or height % 2:
        raise InputError(f"the frame must have even sides for yuv420p, not {width}x{height}", field="size")
    if recipe.fit not in ("crop", "pad"):
        raise InputError(f"fit is 'crop' or 'pad', not {recipe.fit!r}", field="fit")
    if recipe.fit == "pad":
        background_colour(recipe.background)  # refused now rather than after the audio is mixed
    if not 1 <= recipe.fps <= 120:
        raise InputError(f"fps must be between 1 and 120, not {recipe.fps}", field="fps")
    return width, height


def probe_video(path: Path, field: str) -> VideoInfo:
    """A video clip's picture length and time origin, or an InputError naming `field`."""
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise InputError("this file has no video stream", field=field)
            stream = container.streams.video[0]
            tb = stream.time_base
            origin = float(stream.start_time * tb) if stream.start_time is not None and tb else 0.0
            if stream.duration is not None and tb:
                length = float(stream.duration * tb)
            elif container.duration is not None:
                length = container.duration / 1_000_000 - origin
            else:
                length = 0.0
            if length <= 0:
                raise InputError("this video has no length", field=field)
            return VideoInfo(length, origin, bool(container.streams.audio))
    except av.FFmpegError as exc:
        raise InputError(f"this file cannot be read as video: {exc}", field=field) from exc


def probe_image(path: Path, field: str) -> tuple[int, int]:
    """An image clip's size (reading only its header), or an InputError naming `field`."""
    try:
        with Image.open(path) as im:
            return im.size
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise InputError(f"this file cannot be read as an image: {exc}", field=field) from exc


def plan(recipe: Recipe, lengths: Sequence[float | None]) -> Plan:
    """Lay the clips end to end (overlapping by the crossfade) and trim to the target length.

    `lengths` is each video clip's source length (None for images); the API can call this with
    stored durations to refuse a bad recipe before queueing it.
    """
    fps = recipe.fps
    kind = recipe.transition.type
    if kind not in ("cut", "crossfade"):
        raise InputError(f"transition is 'cut' or 'crossfade', not {kind!r}", field="transition.type")
    overlap = recipe.transition.duration if kind == "crossfade" else 0.0
    if kind == "crossfade" and overlap <= 0:
        raise InputError("a crossfade needs a duration above 0", field="transition.duration")
    if not recipe.clips:
        raise InputError("a video composition needs at least one clip", field="clips")

    spans: list[tuple[Clip, float, float]] = []  # (clip, source in, span length)
    for i, (clip, length) in enumerate(zip(recipe.clips, lengths, strict=True)):
        spans.append((clip, *_clip_extent(clip, length, f"clips[{i}]")))
    last = len(spans) - 1
    for i, (_, _, span) in enumerate(spans):
        shared = overlap * ((i > 0) + (i < last))  # a middle clip crossfades at both ends
        if span <= shared - 1e-9:
            raise InputError(
                f"clip {i} lasts {span:g} s, too short for a {overlap:g} s crossfade at each end",
                field="transition.duration",
            )

    total = sum(span for _, _, span in spans) - overlap * last
    if recipe.length is not None:
        if recipe.length <= 0:
            raise InputError("the target length must be above 0", field="length")
        if recipe.length > total + 0.5 / fps:
            raise InputError(
                f"the clips make {total:.3f} s; a {recipe.length:g} s edit needs more material",
                field="length",
            )
        total = recipe.length
    frames = round(total * fps)
    if frames < 1:
        raise InputError("the edit is shorter than one frame", field="length" if recipe.length else "clips")

    out: list[Span] = []
    at = 0.0
    for i, (clip, source_in, span) in enumerate(spans):
        if at >= frames / fps:
            break
        out.append(
            Span(
                i,
                clip.kind,
                at,
                at + span,
                source_in,
                overlap if i > 0 else 0.0,
                overlap if i < last else 0.0,
            )
        )
        at += span - overlap
    return Plan(out, frames, fps)


def _clip_extent(clip: Clip, length: float | None, field: str) -> tuple[float, float]:
    """(source in point, seconds used) of one clip, checked against its source."""
    if clip.kind == "image":
        if clip.duration is None or clip.duration <= 0:
            raise InputError("an image is held for a duration above 0 s", field=f"{field}.duration")
        return 0.0, float(clip.duration)
    if length is None:
        raise ValueError(f"{field}: a video clip needs its source length")
    start = float(clip.start)
    if start < 0 or start >= length:
        raise InputError(f"the in point must be within the clip's {length:.3f} s", field=f"{field}.in")
    end = length if clip.end is None else float(clip.end)
    if end <= start:
        raise InputError("the out point must come after the in point", field=f"{field}.out")
    if end > length + CUT_TOLERANCE:
        raise InputError(f"the out point is past the clip's end ({length:.3f} s)", field=f"{field}.out")
    return start, min(end, length) - start


# ---------------------------------------------------------------------------------------------
# Frames


def planes(frame: av.VideoFrame) -> list[np.ndarray]:
    """Writable views of a yuv420p frame's Y, U and V planes (no copy)."""
    return [
        np.frombuffer(memoryview(p), np.uint8).reshape(p.height, p.line_size)[:, : p.width]
        for p in frame.planes
    ]


def blank(width: int, height: int) -> av.VideoFrame:
    return av.VideoFrame(width, height, "yuv420p")


def crop(frame: av.VideoFrame, x: int, y: int, width: int, height: int) -> av.VideoFrame:
    """The region at even (x, y) of even size: chroma planes stay aligned with luma."""
    if (x, y, width, height) == (0, 0, frame.width, frame.height):
        return frame
    out = blank(width, height)
    for i, (src, dst) in enumerate(zip(planes(frame), planes(out), strict=True)):
        s = 1 if i == 0 else 2
        dst[...] = src[y // s : (y + height) // s, x // s : (x + width) // s]
    return out


def copy(frame: av.VideoFrame) -> av.VideoFrame:
    out = blank(frame.width, frame.height)
    for src, dst in zip(planes(frame), planes(out), strict=True):
        dst[...] = src
    return out


def paste(dst: av.VideoFrame, src: av.VideoFrame, x: int, y: int) -> None:
    for i, (d, s) in enumerate(zip(planes(dst), planes(src), strict=True)):
        k = 1 if i == 0 else 2
        d[y // k : y // k + s.shape[0], x // k : x // k + s.shape[1]] = s


def blend(a: av.VideoFrame, b: av.VideoFrame, weight: float) -> av.VideoFrame:
    """(1 − weight)·a + weight·b in 8-bit fixed point."""
    w = int(round(weight * 256))
    if w <= 0:
        return a
    if w >= 256:
        return b
    out = blank(a.width, a.height)
    for pa, pb, po in zip(planes(a), planes(b), planes(out), strict=True):
        mixed = pa.astype(np.uint16) * (256 - w)
        mixed += pb.astype(np.uint16) * w
        mixed += 128
        po[...] = mixed >> 8
    return out


def scale(frame: av.VideoFrame, width: int, height: int) -> av.VideoFrame:
    if (frame.width, frame.height) == (width, height) and frame.format.name == "yuv420p":
        return frame
    return frame.reformat(width=width, height=height, format="yuv420p", interpolation=UPSCALE)


def background_colour(spec: str) -> tuple[int, int, int] | None:
    """The pad colour as BT.709 limited-range YUV, or None for the blurred background."""
    if spec == "blur":
        return None
    text = spec[1:] if spec.startswith("#") else ""
    if len(text) != 6 or any(c not in "0123456789abcdefABCDEF" for c in text):
        raise InputError(f"background is 'blur' or a colour '#rrggbb', not {spec!r}", field="background")
    rgb = np.array([[[int(text[i : i + 2], 16) for i in (0, 2, 4)]]], np.uint8).repeat(2, 0).repeat(2, 1)
    yuv = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p", dst_colorspace=BT709)
    y, u, v = (int(p[0, 0]) for p in planes(yuv))
    return y, u, v


def _even(value: float, most: int) -> int:
    """`value` rounded to an even count, at least 2 and at most `most` (floored to even)."""
    return max(2, min(most - most % 2, int(round(value / 2)) * 2))


def _centre(outer: int, inner: int) -> int:
    """The even offset that centres `inner` in `outer`."""
    return max(0, (outer - inner) // 4 * 2)


def _box_blur(a: np.ndarray, radius: int) -> np.ndarray:
    """A separable box blur with edge extension, three passes (≈ Gaussian)."""
    out: np.ndarray = a.astype(np.float32)
    size = 2 * radius + 1
    for _ in range(3):
        for axis in (0, 1):
            widths = [(radius + 1, radius) if ax == axis else (0, 0) for ax in (0, 1)]
            padded = np.pad(out, widths, mode="edge")
            c = np.cumsum(padded, axis=axis, dtype=np.float32)
            hi = np.take(c, np.arange(size, c.shape[axis]), axis=axis)
            lo = np.take(c, np.arange(0, c.shape[axis] - size), axis=axis)
            out = (hi - lo) / size
    return out


class Fitter:
    """Puts a source frame into the output frame: `crop` (cover, centre) or `pad` (fit inside,
    over a blurred copy or a colour). `zoom` above 1 pushes in on the centre."""

    def __init__(self, width: int, height: int, fit: str, background: str) -> None:
        self.width, self.height, self.fit = width, height, fit
        self.colour = background_colour(background) if fit == "pad" else None

    def __call__(
        self, src: av.VideoFrame, zoom: float = 1.0, backdrop: av.VideoFrame | None = None
    ) -> av.VideoFrame:
        """`src` in the output frame; a padded still passes its `backdrop` once made (it does not move)."""
        W, H = self.width, self.height
        sw, sh = src.width, src.height
        if self.fit == "crop":
            k = max(W / sw, H / sh) * zoom
            rw, rh = _even(W / k, sw), _even(H / k, sh)
            return scale(crop(src, _centre(sw, rw), _centre(sh, rh), rw, rh), W, H)
        k = min(W / sw, H / sh) * zoom
        rw, rh = _even(W / k, sw), _even(H / k, sh)  # the whole source unless the zoom overflows the frame
        fw, fh = _even(rw * k, W), _even(rh * k, H)
        front = scale(crop(src, _centre(sw, rw), _centre(sh, rh), rw, rh), fw, fh)
        out = copy(backdrop) if backdrop is not None else self.backdrop(src)
        paste(out, front, _centre(W, fw), _centre(H, fh))
        return out

    def backdrop(self, src: av.VideoFrame) -> av.VideoFrame:
        """What shows around a padded picture: the colour, or the picture cover-scaled, blurred at
        low resolution and darkened."""
        W, H = self.width, self.height
        out = blank(W, H)
        if self.colour is not None:
            for p, value in zip(planes(out), self.colour, strict=True):
                p[...] = value
            return out
        small_w, small_h = max(2, W // BLUR_SCALE // 2 * 2), max(2, H // BLUR_SCALE // 2 * 2)
        k = max(small_w / src.width, small_h / src.height)
        rw, rh = _even(small_w / k, src.width), _even(small_h / k, src.height)
        region = crop(src, _centre(src.width, rw), _centre(src.height, rh), rw, rh)
        small = region.reformat(width=small_w, height=small_h, format="yuv420p")
        blurred = blank(small_w, small_h)
        for i, (s, d) in enumerate(zip(planes(small), planes(blurred), strict=True)):
            soft = _box_blur(s, BLUR_RADIUS if i == 0 else max(1, BLUR_RADIUS // 2))
            if i == 0:
                soft = 16 + (soft - 16) * BLUR_DIM
            else:
                soft = 128 + (soft - 128) * BLUR_DIM
            d[...] = np.clip(np.rint(soft), 0, 255).astype(np.uint8)
        return blurred.reformat(width=W, height=H, format="yuv420p", interpolation=UPSCALE)


# ---------------------------------------------------------------------------------------------
# Sources


class VideoSource:
    """A video clip's frames, taken in order at the output's instants: each instant shows the
    source frame on screen at that time, which converts any frame rate to the output's. Frames
    are decoded as they are needed, never held beyond the two around the current instant."""

    def __init__(self, path: Path, info: VideoInfo, start: float, fitter: Fitter, field: str) -> None:
        self.container = av.open(str(path))
        stream = self.container.streams.video[0]
        stream.thread_type = "AUTO"
        self.origin, self.fitter, self.field = info.origin, fitter, field
        if start > 1.0 and stream.time_base:
            # Back to the key frame at or before the in point; frames before it are skipped below.
            self.container.seek(int((self.origin + start) / stream.time_base), stream=stream, backward=True)
        self.decoded: Iterator[av.VideoFrame] = self.container.decode(stream)
        self.rate = float(stream.average_rate or 30)
        self.count = 0
        self.current: tuple[float, av.VideoFrame] | None = None
        self.upcoming = self._next()
        self.shown: tuple[int, av.VideoFrame] | None = None  # the last fitted frame, by identity

    def _next(self) -> tuple[float, av.VideoFrame] | None:
        frame = next(self.decoded, None)
        if frame is None:
            return None
        self.count += 1
        at = frame.time - self.origin if frame.time is not None else (self.count - 1) / self.rate
        return at, frame

    def picture(self, at: float) -> av.VideoFrame:
        """The fitted frame on screen at `at` s of the clip (the last one once the clip runs out)."""
        while self.upcoming is not None and self.upcoming[0] <= at + TIME_EPS:
            self.current, self.upcoming = self.upcoming, self._next()
        chosen = self.current or self.upcoming
        if chosen is None:
            raise InputError("this video has no frames that decode", field=self.field)
        frame = chosen[1]
        if self.shown is None or self.shown[0] != id(frame):
            source = frame if frame.format.name == "yuv420p" else frame.reformat(format="yuv420p")
            self.shown = (id(frame), self.fitter(source))
        return self.shown[1]

    def close(self) -> None:
        self.container.close()


class ImageSource:
    """A still, scaled once to about the size it is shown at; with zoom, each instant pushes in a
    little further (linearly from 1 to ZOOM over the hold)."""

    def __init__(self, path: Path, hold: float, zoom: bool, fitter: Fitter, field: str) -> None:
        try:
            with Image.open(path) as im:
                rgb = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            raise InputError(f"this file cannot be read as an image: {exc}", field=field) from exc
        h, w = rgb.shape[:2]
        W, H = fitter.width, fitter.height
        k = (max(W / w, H / h) if fitter.fit == "crop" else min(W / w, H / h)) * (ZOOM if zoom else 1.0)
        size = (_even(w * k, w + 1), _even(h * k, h + 1)) if k < 1 else (w, h)
        self.image = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24").reformat(
            width=size[0],
            height=size[1],
            format="yuv420p",
            dst_colorspace=BT709,
            interpolation=av.video.reformatter.Interpolation.AREA,
        )
        self.hold, self.zoom, self.fitter = hold, zoom, fitter
        self.backdrop = fitter.backdrop(self.image) if fitter.fit == "pad" else None
        self.still = None if zoom else fitter(self.image, 1.0, self.backdrop)

    def picture(self, at: float) -> av.VideoFrame:
        if self.still is not None:
            return self.still
        progress = min(1.0, max(0.0, at / self.hold))
        return self.fitter(self.image, 1.0 + (ZOOM - 1.0) * progress, self.backdrop)

    def close(self) -> None:
        return None


class Frames:
    """The output's frames in order (a context manager: it closes the clips it opened)."""

    def __init__(self, recipe: Recipe, timeline: Plan, infos: Sequence[VideoInfo | None]) -> None:
        width, height = recipe.frame
        self.recipe, self.plan, self.infos = recipe, timeline, infos
        self.fitter = Fitter(width, height, recipe.fit, recipe.background)
        self.open: dict[int, VideoSource | ImageSource] = {}
        self.ends = {s.index: s.end for s in timeline.spans}

    def _source(self, span: Span) -> VideoSource | ImageSource:
        source = self.open.get(span.index)
        if source is None:
            clip = self.recipe.clips[span.index]
            if clip.kind == "video":
                info = self.infos[span.index]
                assert info is not None
                field = f"clips[{span.index}].video_id"
                source = VideoSource(clip.path, info, span.source_in, self.fitter, field)
            else:
                field = f"clips[{span.index}].image_id"
                source = ImageSource(clip.path, span.end - span.start, clip.zoom, self.fitter, field)
            self.open[span.index] = source
        return source

    def __iter__(self) -> Iterator[av.VideoFrame]:
        fps = self.plan.fps
        for k in range(self.plan.frames):
            t = k / fps
            for index in [i for i in self.open if self.ends[i] <= t]:
                self.open.pop(index).close()
            active = [s for s in self.plan.spans if s.start <= t < s.end] or [self.plan.spans[-1]]
            pictures = [self._source(s).picture(s.source_in + t - s.start) for s in active[:2]]
            if len(pictures) == 1:
                yield pictures[0]
            else:
                incoming = active[1]
                weight = (t + 0.5 / fps - incoming.start) / incoming.fade_in
                yield blend(pictures[0], pictures[1], min(1.0, max(0.0, weight)))

    def __enter__(self) -> Frames:
        return self

    def __exit__(self, *exc: object) -> None:
        for source in self.open.values():
            source.close()
        self.open.clear()

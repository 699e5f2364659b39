"""Frame size from what people ask for: an aspect ratio and, for video, a resolution name.

The catalog offers `aspect_ratio` (and `resolution` for video) like the hosted models do; explicit
width/height, where a model takes them, win.
"""

from __future__ import annotations

from typing import Any

RESOLUTIONS = {"240p": 240, "360p": 360, "480p": 480, "720p": 720, "1080p": 1080}


def _ratio(aspect: str) -> float:
    w, _, h = aspect.partition(":")
    return float(w) / float(h) if h else 1.0


def _even(n: float) -> int:
    return max(2, int(round(n / 2)) * 2)


def image_size(inputs: dict[str, Any], *, long_side: int = 1024) -> tuple[int | None, int | None]:
    """Width/height for an image: explicit values, else the aspect ratio at `long_side`."""
    w, h = inputs.get("width"), inputs.get("height")
    if w or h:
        return w, h
    r = _ratio(str(inputs.get("aspect_ratio") or "1:1"))
    return (long_side, round(long_side / r)) if r >= 1 else (round(long_side * r), long_side)


def video_size(inputs: dict[str, Any]) -> tuple[int | None, int | None]:
    """Width/height for a video: `resolution` names the short side, `aspect_ratio` the shape."""
    w, h = inputs.get("width"), inputs.get("height")
    if w or h or not inputs.get("resolution"):
        return w, h
    short = RESOLUTIONS.get(str(inputs["resolution"]), 480)
    r = _ratio(str(inputs.get("aspect_ratio") or "16:9"))
    return (_even(short * r), short) if r >= 1 else (short, _even(short / r))

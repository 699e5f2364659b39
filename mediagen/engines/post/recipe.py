"""A composition, validated and with every stored asset resolved to a local file: what the
renderer reads. The API's recipe (asset ids, names a user sends) becomes this in the engine."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

# Output frame for each aspect preset.
ASPECTS: dict[str, tuple[int, int]] = {
    "16:9": (1920, 1080),
    "9:16": (1080, 1920),
    "1:1": (1080, 1080),
    "4:5": (1080, 1350),
}


@dataclass(frozen=True)
class Clip:
    """One item of the timeline: a stored video between its in and out points, or a stored image
    held for `duration` seconds (with a slow zoom if asked)."""

    path: Path
    kind: Literal["video", "image"]
    start: float = 0.0  # video: in point (s)
    end: float | None = None  # video: out point (s); None = the clip's end
    duration: float | None = None  # image: how long it is held (s)
    zoom: bool = False  # image: a slow push-in (Ken Burns)


@dataclass(frozen=True)
class Transition:
    type: Literal["cut", "crossfade"] = "cut"
    duration: float = 0.0  # crossfade length (s); clips overlap by this much


@dataclass(frozen=True)
class Music:
    """A music bed: starts `offset` s into the output, plays from `start` s into the file, loops
    (seamlessly) or is trimmed to fit, fades in and out; `replace` drops the clips' own sound,
    `duck` keeps it and lowers the music under it."""

    path: Path
    offset: float = 0.0
    start: float = 0.0
    loop: bool = False
    fade_in: float = 0.0
    fade_out: float = 0.0
    mode: Literal["replace", "duck"] = "replace"


@dataclass(frozen=True)
class Recipe:
    clips: list[Clip] = field(default_factory=list)
    transition: Transition = field(default_factory=Transition)
    music: Music | None = None
    aspect: str = "16:9"  # a key of ASPECTS
    fit: Literal["crop", "pad"] = "crop"  # fill the frame (centre crop) or fit inside it
    background: str = "blur"  # pad only: "blur" (the clip itself, blurred) or "#rrggbb"
    length: float | None = None  # target length (s): the edit is trimmed, the music fades to end on time
    loudness: str | None = "social"  # a key of mediagen.loudness.PRESETS; None leaves levels alone
    fps: int = 30
    size: tuple[int, int] | None = None  # overrides the aspect's frame (tests, custom channels)

    @property
    def frame(self) -> tuple[int, int]:
        return self.size or ASPECTS[self.aspect]

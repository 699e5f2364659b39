"""What an arrangement is made of: the song form, and notes and drum hits placed in samples.

`layout_sections` decides the form (intro, verses, choruses, bridge, outro) from a length in bars;
`Grid` turns bars and 16th steps, with swing, into sample positions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from mediagen.engines.synth.voices import SR

SECTION_LEVEL = {"bridge": 0, "intro": 1, "outro": 1, "verse": 2, "chorus": 3}
_KICKS = ("kick", "kick_soft")


@dataclass(frozen=True)
class Section:
    name: str
    start_bar: int
    bars: int

    @property
    def level(self) -> int:
        return SECTION_LEVEL[self.name]


@dataclass(frozen=True)
class Note:
    start: int  # sample
    role: str  # bass | chords | melody | arp | ostinato
    voice: str
    midi: int
    length: int  # samples held (the voice adds its release)
    velocity: float
    pan: float = 0.0


@dataclass(frozen=True)
class Hit:
    start: int
    voice: str
    velocity: float
    pan: float = 0.0


@dataclass
class Score:
    n_samples: int
    bar_seconds: float
    sections: list[Section]
    notes: list[Note] = field(default_factory=list)
    hits: list[Hit] = field(default_factory=list)
    risers: list[tuple[int, int]] = field(default_factory=list)  # (start, length) in samples
    progressions: dict[str, list[str]] = field(default_factory=dict)

    @property
    def kicks(self) -> np.ndarray:
        return np.array(sorted(h.start for h in self.hits if h.voice in _KICKS), dtype=np.int64)


def layout_sections(total_bars: int) -> list[Section]:
    """Intro/verse/chorus/bridge/outro in 4-bar phrases, scaled to the length asked for."""
    phrases = math.ceil(total_bars / 4)
    if phrases <= 1:
        names = ["chorus"]
    elif phrases == 2:
        names = ["verse", "chorus"]
    elif phrases == 3:
        names = ["intro", "chorus", "outro"]
    else:
        intro = 2 if phrases >= 16 else 1
        outro = 2 if phrases >= 20 else 1
        middle = phrases - intro - outro
        block = 2 if middle >= 8 else 1
        tail = ["chorus"] * block
        if middle >= 10:
            tail = ["bridge"] * block + tail
        # Fill backwards so that a verse always leads into the last chorus (or the bridge).
        body: list[str] = []
        while len(body) < middle - len(tail):
            body.append("verse" if (len(body) // block) % 2 == 0 else "chorus")
        body.reverse()
        if body and body[0] == "chorus":
            body[0] = "verse"
        names = ["intro"] * intro + body + tail + ["outro"] * outro
    sections: list[Section] = []
    bar = 0
    for name in names:
        bars = min(4, total_bars - bar)
        if bars <= 0:
            break
        if sections and sections[-1].name == name:
            last = sections.pop()
            sections.append(Section(name, last.start_bar, last.bars + bars))
        else:
            sections.append(Section(name, bar, bars))
        bar += bars
    return sections


class Grid:
    """Steps (16 per bar, fractional allowed) → sample positions, with swing."""

    def __init__(self, bpm: int, swing: float, unit: int) -> None:
        self.step = 60.0 / bpm / 4 * SR
        self.swing, self.unit = swing, unit

    def at(self, bar: int, step: float) -> int:
        offset = 0.0
        whole = int(step)
        if self.swing and whole == step:
            if (self.unit == 16 and whole % 2 == 1) or (self.unit == 8 and whole % 4 == 2):
                offset = self.swing
        return int(round((bar * 16 + step + offset) * self.step))

    def length(self, steps: float) -> int:
        return max(1, int(round(steps * self.step)))

"""Rhythmic and harmonic patterns as data: drum grids, bass figures, comping, progressions.

All grids are one 4/4 bar of 16 steps. Velocity letters: x = 1.0, o = 0.6, g = 0.35 (ghost).
A drum layer plays from a minimum section level upward: 0 breakdown, 1 intro/outro, 2 verse,
3 chorus, which is what makes sections sound like sections.
"""

from __future__ import annotations

from dataclasses import dataclass

VELOCITY = {"x": 1.0, "o": 0.6, "g": 0.35}


@dataclass(frozen=True)
class DrumLayer:
    voice: str
    grid: str
    level: int
    gain: float
    pan: float = 0.0


@dataclass(frozen=True)
class DrumPattern:
    layers: tuple[DrumLayer, ...]
    fill: str | None = "snare"  # voice for the roll into a chorus
    crash: bool = True  # crash cymbal on chorus downbeats


# Grids several patterns share.
ON_BEATS = "x...x...x...x..."  # four on the floor
BACKBEAT = "....x.......x..."  # beats 2 and 4
OFF_BEATS = "..x...x...x...x."  # the "and" of every beat
EIGHTHS = "x.o.x.o.x.o.x.o."  # 8ths, accented on the beat
ONE_AND_THREE = "x.......x......."  # beats 1 and 3


DRUM_PATTERNS: dict[str, DrumPattern] = {
    "four_on_floor": DrumPattern(
        (
            DrumLayer("kick", ON_BEATS, 1, 1.0),
            DrumLayer("clap", BACKBEAT, 2, 0.55, 0.05),
            DrumLayer("open_hat", OFF_BEATS, 2, 0.3, 0.2),
            DrumLayer("hat", "gogogogogogogogo", 3, 0.28, -0.25),
        ),
        fill="clap",
    ),
    "techno": DrumPattern(
        (
            DrumLayer("kick", ON_BEATS, 1, 1.0),
            DrumLayer("open_hat", OFF_BEATS, 1, 0.28, 0.2),
            DrumLayer("hat", "gggxgggxgggxgggx", 2, 0.22, -0.2),
            DrumLayer("rim", "...x..x....x..x.", 2, 0.25, 0.3),
            DrumLayer("clap", BACKBEAT, 3, 0.45),
        ),
        fill="clap",
    ),
    "boom_bap": DrumPattern(
        (
            DrumLayer("kick_soft", "x.........x.....", 1, 1.0),
            DrumLayer("kick_soft", ".......o.....o..", 2, 0.8),
            DrumLayer("snare_lofi", BACKBEAT, 2, 0.7, 0.05),
            DrumLayer("hat", "x.o.x.o.x.o.x.og", 1, 0.28, -0.2),
        ),
        fill=None,
        crash=False,
    ),
    "backbeat": DrumPattern(
        (
            DrumLayer("kick", "x.......x.x.....", 1, 0.95),
            DrumLayer("snare", BACKBEAT, 2, 0.7, 0.05),
            DrumLayer("hat", EIGHTHS, 1, 0.3, -0.2),
            DrumLayer("open_hat", "..............x.", 3, 0.25, 0.2),
        ),
    ),
    "cinematic": DrumPattern(
        (
            DrumLayer("tom", ONE_AND_THREE, 2, 0.9, -0.15),
            DrumLayer("tom", "......x.x...x.xx", 3, 0.6, 0.2),
            DrumLayer("snare", BACKBEAT, 3, 0.35),
        ),
        fill="tom",
    ),
    "folk": DrumPattern(
        (
            DrumLayer("kick_soft", ONE_AND_THREE, 2, 0.8),
            DrumLayer("rim", BACKBEAT, 2, 0.35, 0.1),
            DrumLayer("shaker", "gxgogxgogxgogxgo", 1, 0.3, 0.3),
        ),
        fill=None,
        crash=False,
    ),
    "jazz": DrumPattern(
        (
            DrumLayer("ride", "x...x.o.x...x.o.", 1, 0.3, -0.3),
            DrumLayer("hat", "....o.......o...", 1, 0.2, 0.25),
            DrumLayer("kick_soft", "x.........g.....", 2, 0.5),
            DrumLayer("brush", "....g.......g..g", 2, 0.35, 0.1),
        ),
        fill=None,
        crash=False,
    ),
    "trap": DrumPattern(
        (
            DrumLayer("kick", "x.........x..x..", 1, 0.95),
            DrumLayer("clap", "........x.......", 2, 0.65),
            DrumLayer("hat", "x.o.x.o.x.o.xoxo", 1, 0.3, -0.2),
            DrumLayer("hat", "...............g", 3, 0.3, 0.2),
        ),
        fill="hat",
    ),
    "dnb": DrumPattern(
        (
            DrumLayer("kick", "x.........x.....", 1, 1.0),
            DrumLayer("snare", BACKBEAT, 2, 0.75),
            DrumLayer("hat", EIGHTHS, 1, 0.28, -0.2),
            DrumLayer("ride", OFF_BEATS, 3, 0.18, 0.3),
        ),
    ),
    "synthwave": DrumPattern(
        (
            DrumLayer("kick", ON_BEATS, 1, 0.95),
            DrumLayer("snare_gated", BACKBEAT, 2, 0.7),
            DrumLayer("hat", EIGHTHS, 1, 0.26, -0.2),
        ),
        fill="tom",
    ),
    "soft": DrumPattern(
        (
            DrumLayer("kick_soft", ONE_AND_THREE, 2, 0.7),
            DrumLayer("shaker", OFF_BEATS, 1, 0.25, 0.3),
        ),
        fill=None,
        crash=False,
    ),
}


def drum_voices(pattern: str | None) -> tuple[str, ...]:
    if pattern is None:
        return ()
    p = DRUM_PATTERNS[pattern]
    names = [layer.voice for layer in p.layers]
    if p.fill:
        names.append(p.fill)
    if p.crash:
        names.append("crash")
    return tuple(dict.fromkeys(names))


def hits(grid: str) -> list[tuple[int, float]]:
    return [(i, VELOCITY[c]) for i, c in enumerate(grid) if c in VELOCITY]


# Chord progressions in scale degrees, by mode family. One chord per `chord_bars` bars.
PROGRESSIONS: dict[str, tuple[tuple[int, ...], ...]] = {
    "major": (
        (0, 4, 5, 3),
        (0, 5, 3, 4),
        (5, 3, 0, 4),
        (0, 3, 5, 4),
        (0, 3, 0, 4),
        (3, 4, 2, 5),
        (0, 2, 3, 4),
    ),
    "lydian": ((0, 1, 0, 1), (0, 1, 4, 0), (0, 4, 1, 5)),
    "mixolydian": ((0, 6, 3, 0), (0, 3, 6, 3), (0, 6, 4, 3)),
    "minor": ((0, 5, 2, 6), (0, 3, 5, 4), (0, 6, 5, 6), (0, 5, 3, 4), (0, 3, 6, 2), (5, 6, 0, 0)),
    "harmonic_minor": ((0, 5, 3, 4), (0, 3, 4, 0), (0, 5, 1, 4), (0, 3, 5, 4)),
    "phrygian": ((0, 1, 0, 6), (0, 1, 2, 1), (0, 6, 5, 1)),
    "dorian": ((0, 3, 0, 3), (0, 6, 3, 0), (0, 2, 3, 6), (0, 3, 4, 3)),
}
JAZZ_PROGRESSIONS: tuple[tuple[int, ...], ...] = ((1, 4, 0, 5), (0, 5, 1, 4), (0, 3, 1, 4))


# Bass figures: (step, length in steps, which note) per bar; note 'r' root, '5' fifth, '8' octave,
# '3' third, 'a' approach to the next chord's root. Figures that depend on the seed vary per bar.
BASS_FIGURES: dict[str, tuple[tuple[int, int, str], ...]] = {
    "offbeat": ((2, 2, "r"), (6, 2, "r"), (10, 2, "r"), (14, 2, "8")),
    "hiphop": ((0, 6, "r"), (7, 2, "5"), (10, 5, "r")),
    "root_fifth": ((0, 3, "r"), (4, 3, "5"), (8, 3, "r"), (12, 3, "5")),
    "eighths": tuple((s, 2, "r") for s in range(0, 16, 2)),
    "walking": ((0, 4, "r"), (4, 4, "3"), (8, 4, "5"), (12, 4, "a")),
    "pop": ((0, 3, "r"), (3, 3, "r"), (6, 2, "8"), (8, 3, "r"), (11, 3, "5"), (14, 2, "r")),
    "trap": ((0, 10, "r"), (10, 6, "5")),
    "long": ((0, 10, "r"), (10, 6, "r")),
    "octave": tuple((s, 2, "r" if s % 4 == 0 else "8") for s in range(0, 16, 2)),
    "sustain": ((0, 16, "r"),),
    "drone": ((0, 16, "r"),),
}

# Harmony comping: (step, length in steps) per bar. "pad" and "broken" are handled in arrange.
COMP_FIGURES: dict[str, tuple[tuple[int, int], ...]] = {
    "stab": ((2, 2), (6, 2), (10, 2), (14, 2)),
    "comp": ((0, 6), (6, 3), (10, 6)),
    "strum": ((0, 4), (4, 2), (6, 4), (10, 2), (12, 2), (14, 2)),
    "power": tuple((s, 2) for s in range(0, 16, 2)),
    "piano": ((0, 4), (4, 4), (8, 4), (12, 4)),
}

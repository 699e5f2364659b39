"""Genre presets: the musical vocabulary each genre draws from.

A style fixes the grammar (tempo range, modes, drum pattern, which voice plays which role, how
chords are played) and leaves the choices inside it to the seed, so two seeds of "lofi" are two
different lofi tracks, never a lofi and a techno track. The words that name a genre in a prompt
are in `vocabulary.GENRE_WORDS`.

Each preset is written as four small parts (groove, harmony, band, mix) that only state what differs
from the defaults below, so the table reads as a list of what makes each genre itself.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Groove:
    """How the genre moves."""

    bpm: tuple[int, int]
    drums: str | None  # drum pattern id (see patterns.DRUM_PATTERNS), None for drumless
    bass_pattern: str = "roots"  # bass figure (see patterns.BASS_FIGURES)
    comp: str = "pad"  # how the harmony voice plays chords
    energy: float = 0.5
    swing: float = 0.0  # delay of off-beat notes, as a fraction of a 16th
    swing_unit: int = 16  # 16: off-beat 16ths swing (hip hop); 8: off-beat 8ths swing (jazz)


@dataclass(frozen=True)
class Harmony:
    modes: tuple[str, ...]  # preferred first
    sevenths: bool = False
    chord_bars: int = 1  # bars per chord


@dataclass(frozen=True)
class Band:
    """The voices each role may take, most typical first; the seed picks one of each."""

    bass: tuple[str, ...]
    chords: tuple[str, ...]
    melody: tuple[str, ...]
    texture: tuple[str, ...] = ()
    arp: bool = False  # add a 16th-note arpeggio layer in choruses


@dataclass(frozen=True)
class Mix:
    reverb: float = 0.2  # send level
    sidechain: float = 0.0  # ducking depth of bass/harmony under the kick
    echo: bool = False  # ping-pong delay on the melody and arpeggio


@dataclass(frozen=True)
class Style:
    name: str
    groove: Groove
    harmony: Harmony
    band: Band
    mix: Mix = Mix()


STYLES: dict[str, Style] = {
    s.name: s
    for s in (
        Style(
            "edm",
            Groove((120, 128), "four_on_floor", bass_pattern="offbeat", comp="stab", energy=0.75),
            Harmony(("minor", "major")),
            Band(
                ("saw_bass", "sub_bass"), ("supersaw", "pad", "stab"), ("pluck", "lead"), ("riser",), arp=True
            ),
            Mix(reverb=0.18, sidechain=0.6, echo=True),
        ),
        Style(
            "techno",
            Groove((124, 134), "techno", bass_pattern="rolling", comp="stab", energy=0.8),
            Harmony(("minor", "phrygian", "dorian")),
            Band(("acid_bass", "saw_bass"), ("stab", "pad"), ("pluck", "bell"), ("riser",)),
            Mix(reverb=0.16, sidechain=0.5, echo=True),
        ),
        Style(
            "lofi",
            Groove((70, 90), "boom_bap", bass_pattern="hiphop", comp="comp", energy=0.4, swing=0.33),
            Harmony(("dorian", "minor", "major"), sevenths=True),
            Band(("sub_bass", "upright_bass"), ("epiano", "piano"), ("epiano", "bell", "flute"), ("vinyl",)),
            Mix(reverb=0.22, echo=True),
        ),
        Style(
            "ambient",
            Groove((60, 80), None, bass_pattern="drone", energy=0.2),
            Harmony(("lydian", "major", "dorian", "minor"), sevenths=True, chord_bars=2),
            Band(("sub_bass",), ("pad", "strings"), ("bell", "flute"), ("wind",)),
            Mix(reverb=0.45, echo=True),
        ),
        Style(
            "cinematic",
            Groove((80, 110), "cinematic", bass_pattern="sustain", comp="ostinato", energy=0.6),
            Harmony(("minor", "harmonic_minor", "major")),
            Band(("low_strings",), ("strings",), ("brass", "flute"), ("riser",)),
            Mix(reverb=0.35),
        ),
        Style(
            "folk",
            Groove((90, 120), "folk", bass_pattern="root_fifth", comp="strum", swing=0.15),
            Harmony(("major", "mixolydian", "minor")),
            Band(("upright_bass",), ("guitar",), ("flute", "bell")),
            Mix(reverb=0.15),
        ),
        Style(
            "rock",
            Groove((110, 150), "backbeat", bass_pattern="eighths", comp="power", energy=0.8),
            Harmony(("minor", "major", "mixolydian")),
            Band(("pick_bass",), ("dist_guitar",), ("lead",)),
            Mix(reverb=0.12),
        ),
        Style(
            "jazz",
            Groove(
                (96, 150), "jazz", bass_pattern="walking", comp="comp", energy=0.45, swing=0.66, swing_unit=8
            ),
            Harmony(("dorian", "major"), sevenths=True),
            Band(("upright_bass",), ("piano", "epiano"), ("bell", "flute")),
        ),
        Style(
            "pop",
            Groove((100, 124), "backbeat", bass_pattern="pop", comp="piano", energy=0.65),
            Harmony(("major", "minor")),
            Band(("saw_bass", "sub_bass"), ("piano", "pad", "guitar"), ("lead", "pluck", "bell")),
            Mix(reverb=0.18, sidechain=0.2),
        ),
        Style(
            "trap",
            Groove((130, 150), "trap", bass_pattern="trap", energy=0.7),
            Harmony(("minor", "harmonic_minor", "phrygian")),
            Band(("808",), ("pad", "bell"), ("bell", "pluck"), ("riser",)),
            Mix(echo=True),
        ),
        Style(
            "dnb",
            Groove((166, 176), "dnb", bass_pattern="long", energy=0.85),
            Harmony(("minor", "dorian"), sevenths=True),
            Band(("reese",), ("pad",), ("pluck", "bell"), ("riser",)),
            Mix(reverb=0.22, echo=True),
        ),
        Style(
            "synthwave",
            Groove((90, 118), "synthwave", bass_pattern="octave", energy=0.6),
            Harmony(("minor", "dorian", "major")),
            Band(("saw_bass",), ("pad", "supersaw"), ("lead",), arp=True),
            Mix(reverb=0.3, sidechain=0.3, echo=True),
        ),
        Style(
            "classical",
            Groove((60, 90), None, bass_pattern="sustain", comp="broken", energy=0.35),
            Harmony(("major", "minor", "harmonic_minor")),
            Band(("piano",), ("piano",), ("piano",)),
            Mix(reverb=0.3),
        ),
    )
}

# Genres a prompt without genre words may land on, picked by the seed (after mood has had its say).
FALLBACK_GENRES: tuple[str, ...] = ("pop", "lofi", "edm", "folk", "ambient", "synthwave")

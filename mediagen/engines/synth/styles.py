"""Genre presets: the musical vocabulary each genre draws from.

A style fixes the grammar (tempo range, modes, drum pattern, which voice plays which role, how
chords are played) and leaves the choices inside it to the seed, so two seeds of "lofi" are two
different lofi tracks, never a lofi and a techno track.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Style:
    name: str
    keywords: tuple[str, ...]
    bpm: tuple[int, int]
    modes: tuple[str, ...]  # preferred first
    drums: str | None  # drum pattern id (see arrange.DRUM_PATTERNS)
    bass: tuple[str, ...]  # voice options for the bass role
    chords: tuple[str, ...]  # voice options for the harmony role
    melody: tuple[str, ...]  # voice options for the lead role
    texture: tuple[str, ...] = ()
    energy: float = 0.5
    swing: float = 0.0  # delay of off-beat notes, as a fraction of a 16th
    swing_unit: int = 16  # 16: off-beat 16ths swing (hip hop); 8: off-beat 8ths swing (jazz)
    bass_pattern: str = "roots"
    comp: str = "pad"  # how the harmony voice plays chords
    sevenths: bool = False
    chord_bars: int = 1  # bars per chord
    reverb: float = 0.2  # send level
    sidechain: float = 0.0  # ducking depth of bass/harmony under the kick
    arp: bool = False  # add a 16th-note arpeggio layer in choruses


STYLES: dict[str, Style] = {
    s.name: s
    for s in (
        Style(
            "edm",
            (
                "edm",
                "electronic",
                "dance",
                "house",
                "club",
                "electro",
                "festival",
                "rave",
                "disco",
                "big room",
            ),
            (120, 128),
            ("minor", "major"),
            "four_on_floor",
            ("saw_bass", "sub_bass"),
            ("supersaw", "pad", "stab"),
            ("pluck", "lead"),
            ("riser",),
            energy=0.75,
            bass_pattern="offbeat",
            comp="stab",
            reverb=0.18,
            sidechain=0.6,
            arp=True,
        ),
        Style(
            "techno",
            ("techno", "industrial", "warehouse", "minimal techno", "acid"),
            (124, 134),
            ("minor", "phrygian", "dorian"),
            "techno",
            ("acid_bass", "saw_bass"),
            ("stab", "pad"),
            ("pluck", "bell"),
            ("riser",),
            energy=0.8,
            bass_pattern="rolling",
            comp="stab",
            reverb=0.16,
            sidechain=0.5,
        ),
        Style(
            "lofi",
            ("lofi", "lo fi", "hip hop", "hiphop", "chillhop", "boom bap", "study beats", "jazzhop"),
            (70, 90),
            ("dorian", "minor", "major"),
            "boom_bap",
            ("sub_bass", "upright_bass"),
            ("epiano", "piano"),
            ("epiano", "bell", "flute"),
            ("vinyl",),
            energy=0.4,
            swing=0.33,
            bass_pattern="hiphop",
            comp="comp",
            sevenths=True,
            reverb=0.22,
        ),
        Style(
            "ambient",
            (
                "ambient",
                "drone",
                "meditation",
                "meditative",
                "atmospheric",
                "ethereal",
                "new age",
                "soundscape",
            ),
            (60, 80),
            ("lydian", "major", "dorian", "minor"),
            None,
            ("sub_bass",),
            ("pad", "strings"),
            ("bell", "flute"),
            ("wind",),
            energy=0.2,
            bass_pattern="drone",
            comp="pad",
            sevenths=True,
            chord_bars=2,
            reverb=0.45,
        ),
        Style(
            "cinematic",
            (
                "cinematic",
                "orchestral",
                "orchestra",
                "epic",
                "trailer",
                "film score",
                "score",
                "symphonic",
                "heroic",
                "soundtrack",
            ),
            (80, 110),
            ("minor", "harmonic_minor", "major"),
            "cinematic",
            ("low_strings",),
            ("strings",),
            ("brass", "flute"),
            ("riser",),
            energy=0.6,
            bass_pattern="sustain",
            comp="ostinato",
            reverb=0.35,
        ),
        Style(
            "folk",
            ("folk", "acoustic", "country", "singer songwriter", "campfire", "bluegrass", "americana"),
            (90, 120),
            ("major", "mixolydian", "minor"),
            "folk",
            ("upright_bass",),
            ("guitar",),
            ("flute", "bell"),
            energy=0.5,
            swing=0.15,
            bass_pattern="root_fifth",
            comp="strum",
            reverb=0.15,
        ),
        Style(
            "rock",
            ("rock", "punk", "grunge", "indie rock", "garage", "metal", "hard rock", "alt rock"),
            (110, 150),
            ("minor", "major", "mixolydian"),
            "backbeat",
            ("pick_bass",),
            ("dist_guitar",),
            ("lead",),
            energy=0.8,
            bass_pattern="eighths",
            comp="power",
            reverb=0.12,
        ),
        Style(
            "jazz",
            ("jazz", "swing", "bebop", "bossa", "bossa nova", "lounge", "smooth jazz", "jazzy", "cocktail"),
            (96, 150),
            ("dorian", "major"),
            "jazz",
            ("upright_bass",),
            ("piano", "epiano"),
            ("bell", "flute"),
            energy=0.45,
            swing=0.66,
            swing_unit=8,
            bass_pattern="walking",
            comp="comp",
            sevenths=True,
            reverb=0.2,
        ),
        Style(
            "pop",
            (
                "pop",
                "catchy",
                "radio",
                "commercial",
                "corporate",
                "advert",
                "jingle",
                "synthpop",
                "indie pop",
            ),
            (100, 124),
            ("major", "minor"),
            "backbeat",
            ("saw_bass", "sub_bass"),
            ("piano", "pad", "guitar"),
            ("lead", "pluck", "bell"),
            energy=0.65,
            bass_pattern="pop",
            comp="piano",
            reverb=0.18,
            sidechain=0.2,
        ),
        Style(
            "trap",
            ("trap", "drill", "808", "rap"),
            (130, 150),
            ("minor", "harmonic_minor", "phrygian"),
            "trap",
            ("808",),
            ("pad", "bell"),
            ("bell", "pluck"),
            ("riser",),
            energy=0.7,
            bass_pattern="trap",
            comp="pad",
            reverb=0.2,
        ),
        Style(
            "dnb",
            (
                "drum and bass",
                "drum n bass",
                "drum & bass",
                "dnb",
                "jungle",
                "liquid",
                "breakbeat",
                "neurofunk",
            ),
            (166, 176),
            ("minor", "dorian"),
            "dnb",
            ("reese",),
            ("pad",),
            ("pluck", "bell"),
            ("riser",),
            energy=0.85,
            bass_pattern="long",
            comp="pad",
            sevenths=True,
            reverb=0.22,
        ),
        Style(
            "synthwave",
            ("synthwave", "retrowave", "outrun", "80s", "eighties", "retro", "vaporwave", "cyberpunk"),
            (90, 118),
            ("minor", "dorian", "major"),
            "synthwave",
            ("saw_bass",),
            ("pad", "supersaw"),
            ("lead",),
            energy=0.6,
            bass_pattern="octave",
            comp="pad",
            reverb=0.3,
            sidechain=0.3,
            arp=True,
        ),
        Style(
            "classical",
            ("classical", "ballad", "neoclassical", "solo piano", "nocturne", "sonata", "piano piece"),
            (60, 90),
            ("major", "minor", "harmonic_minor"),
            None,
            ("piano",),
            ("piano",),
            ("piano",),
            energy=0.35,
            bass_pattern="sustain",
            comp="broken",
            reverb=0.3,
        ),
    )
}

# Genres a prompt without genre words may land on, picked by the seed (after mood has had its say).
FALLBACK_GENRES: tuple[str, ...] = ("pop", "lofi", "edm", "folk", "ambient", "synthwave")

"""Just enough music theory for the synth: modes, note names, diatonic chords, roman numerals.

Everything is expressed in scale degrees (0-based, may be negative or above 6) so that one
progression or melody works unchanged in any key and mode; `degree_to_midi` is the one place
where degrees become pitches.
"""

from __future__ import annotations

MODES: dict[str, tuple[int, ...]] = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "phrygian": (0, 1, 3, 5, 7, 8, 10),
    "lydian": (0, 2, 4, 6, 7, 9, 11),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "harmonic_minor": (0, 2, 3, 5, 7, 8, 11),
}

# Flats where a musician would write them (Bb, Eb, Ab), sharps for F#/C#.
NOTE_NAMES: tuple[str, ...] = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")

_NAME_TO_PC: dict[str, int] = {
    "c": 0,
    "c#": 1,
    "db": 1,
    "d": 2,
    "d#": 3,
    "eb": 3,
    "e": 4,
    "fb": 4,
    "e#": 5,
    "f": 5,
    "f#": 6,
    "gb": 6,
    "g": 7,
    "g#": 8,
    "ab": 8,
    "a": 9,
    "a#": 10,
    "bb": 10,
    "b": 11,
    "cb": 11,
}

_ROMAN = ("I", "II", "III", "IV", "V", "VI", "VII")


def pitch_class(name: str) -> int:
    """Pitch class of a note name such as "F#", "bb" or "Eb" (KeyError if unknown)."""
    return _NAME_TO_PC[name.strip().lower()]


def degree_to_midi(degree: int, tonic_midi: int, mode: str) -> int:
    """MIDI pitch of a scale degree; degrees wrap into neighbouring octaves."""
    steps = MODES[mode]
    octave, idx = divmod(degree, 7)
    return tonic_midi + 12 * octave + steps[idx]


def chord_degrees(root: int, *, seventh: bool = False) -> tuple[int, ...]:
    """Stacked thirds on a degree, diatonic to whatever mode it is later realised in."""
    return (root, root + 2, root + 4, root + 6) if seventh else (root, root + 2, root + 4)


def roman(root: int, mode: str, *, seventh: bool = False) -> str:
    """Roman numeral of a diatonic chord (upper case major, lower case minor, ° diminished)."""
    pcs = [degree_to_midi(d, 0, mode) for d in chord_degrees(root % 7)]
    third, fifth = pcs[1] - pcs[0], pcs[2] - pcs[0]
    numeral = _ROMAN[root % 7]
    if third == 4:
        text = numeral
    elif fifth == 6:
        text = numeral.lower() + "°"
    else:
        text = numeral.lower()
    return text + ("7" if seventh else "")


def nearest_octave(pc_midi: int, centre: int) -> int:
    """The pitch with `pc_midi`'s pitch class closest to `centre` (for smooth voicings)."""
    pc = pc_midi % 12
    base = centre - ((centre - pc) % 12)
    return base if centre - base <= 6 else base + 12

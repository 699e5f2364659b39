"""Melodies: rhythms from weighted one-beat cells, pitches that land on chord tones on strong beats.

A section's melody is one cycle of bars, written once and repeated, so a chorus melody comes back
identical each time; the third bar of every four answers the first, re-fitted to its own chord.
"""

from __future__ import annotations

import numpy as np

from mediagen.engines.synth.prompt import Plan, rng_for
from mediagen.engines.synth.score import Section
from mediagen.engines.synth.theory import chord_degrees, degree_to_midi, nearest_octave

Motif = list[list[tuple[int, int, int]]]  # one list per bar of (step, steps, midi)

_CENTRE = {"bell": 79, "flute": 76, "brass": 67, "piano": 72, "epiano": 72, "lead": 72, "pluck": 72}
# One beat of rhythm: (step, length) in 16ths.
_CELLS: dict[str, tuple[tuple[int, int], ...]] = {
    "q": ((0, 4),),
    "ee": ((0, 2), (2, 2)),
    "de": ((0, 3), (3, 1)),
    "sse": ((0, 1), (1, 1), (2, 2)),
    "re": ((2, 2),),
    "rest": (),
}


def compose(plan: Plan, section: Section, progression: tuple[int, ...], chord_bars: int) -> Motif:
    """One cycle of melody for a section, or [] for a section without one."""
    if section.name in ("intro", "outro") and section.bars > 2:
        return []
    density = {"verse": 0.45, "chorus": 0.75, "bridge": 0.3}.get(section.name, 0.5)
    density *= 0.6 if plan.style.name in ("ambient", "cinematic") else 1.0
    rng = rng_for(plan.seed, f"melody:{section.name}")
    cycle = max(2, len(progression) * chord_bars)
    rhythm = [_rhythm_bar(rng, density, plan.bpm, phrase_end=(b % 2 == 1)) for b in range(2)]
    tonic_midi = nearest_octave(plan.tonic, _CENTRE.get(plan.melody, 72))
    current = 2 if section.name == "chorus" else 0
    bars: Motif = []
    for b in range(cycle):
        chord = chord_degrees(progression[(b // chord_bars) % len(progression)])
        if b % 4 == 2 and bars:
            # answer phrase: repeat the opening bar, re-fitted to this bar's chord
            out = []
            for step, steps, midi in bars[0]:
                deg = _midi_to_degree(midi, tonic_midi, plan.mode)
                if step % 8 == 0:
                    deg = _nearest_chord_tone(deg, chord)
                out.append((step, steps, degree_to_midi(deg, tonic_midi, plan.mode)))
            bars.append(out)
            continue
        out = []
        for step, steps in rhythm[b % 2]:
            if step % 8 == 0:
                current = _nearest_chord_tone(current, chord)
            else:
                current = min(9, max(-3, current + int(rng.choice((-2, -1, -1, 1, 1, 2, 0, 3, -3)))))
            out.append((step, steps, degree_to_midi(current, tonic_midi, plan.mode)))
        bars.append(out)
    return bars


def _nearest_chord_tone(degree: int, chord: tuple[int, ...]) -> int:
    candidates = [c + 7 * k for c in chord[:3] for k in (-2, -1, 0, 1, 2)]
    return min(candidates, key=lambda c: (abs(c - degree), c))


def _midi_to_degree(midi: int, tonic_midi: int, mode: str) -> int:
    for deg in range(-14, 21):
        if degree_to_midi(deg, tonic_midi, mode) >= midi:
            return deg
    return 0


def _rhythm_bar(
    rng: np.random.Generator, density: float, bpm: int, *, phrase_end: bool
) -> list[tuple[int, int]]:
    weights = {
        "q": 1.0,
        "ee": 2 * density,
        "de": density,
        "sse": 0.7 * density if bpm < 135 else 0.0,
        "re": 0.5,
        "rest": 1.6 * (1 - density),
    }
    names = list(_CELLS)
    p = np.array([weights[n] for n in names])
    out: list[tuple[int, int]] = []
    beats = 2 if phrase_end else 4
    for beat in range(beats):
        cell = _CELLS[names[int(rng.choice(len(names), p=p / p.sum()))]]
        out.extend((beat * 4 + s, d) for s, d in cell)
    if phrase_end:
        out.append((8, 8))  # phrase ends on a long note
    if not out:
        out.append((0, 4))
    return out

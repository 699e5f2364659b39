"""From a plan and a duration to a score: sections, chords, bass, melody and drum hits in samples.

The arrangement is what makes a draft sound like a piece rather than a loop: an intro that holds
back, verses and choruses with their own progressions and melodies (a chorus melody comes back
identical each time), a breakdown in long pieces, fills into choruses, and a cadence at the end.
The form and the score's types live in `score`, the writing of melodies in `melody`; this module
plays the parts (chords, bass, melody, arpeggio, drums) bar by bar into a `Score`.
"""

from __future__ import annotations

import math

from mediagen.engines.synth.melody import Motif, compose
from mediagen.engines.synth.patterns import (
    BASS_FIGURES,
    COMP_FIGURES,
    DRUM_PATTERNS,
    JAZZ_PROGRESSIONS,
    PROGRESSIONS,
    hits,
)
from mediagen.engines.synth.prompt import Plan, rng_for
from mediagen.engines.synth.score import Grid, Hit, Note, Score, Section, layout_sections
from mediagen.engines.synth.theory import chord_degrees, degree_to_midi, nearest_octave, roman
from mediagen.engines.synth.voices import SR


def _voicing(degrees: tuple[int, ...], tonic: int, mode: str, centre: int) -> list[int]:
    pitches = {nearest_octave(degree_to_midi(d, tonic, mode), centre) for d in degrees}
    return sorted(pitches)


def _bass_pitch(degree: int, plan: Plan, base: int) -> int:
    pc = degree_to_midi(degree, plan.tonic, plan.mode) % 12
    return base + (pc - base) % 12


class Arranger:
    def __init__(self, plan: Plan, duration: float) -> None:
        self.plan = plan
        self.style = plan.style
        self.harmony = plan.style.harmony
        self.n = int(round(duration * SR))
        self.bar_seconds = 240.0 / plan.bpm
        self.total_bars = max(1, math.ceil(duration / self.bar_seconds))
        self.grid = Grid(plan.bpm, plan.swing, self.style.groove.swing_unit)
        self.rng = rng_for(plan.seed, "arrange")
        self.sections = layout_sections(self.total_bars)
        self.progs = self._progressions()
        self.sevenths = self.harmony.sevenths

    # --- harmony -------------------------------------------------------------------------------------

    def _progressions(self) -> dict[str, tuple[int, ...]]:
        if self.style.name == "jazz":
            options = JAZZ_PROGRESSIONS
        else:
            options = PROGRESSIONS.get(self.plan.mode, PROGRESSIONS["minor"])
        pick = [options[int(i)] for i in self.rng.choice(len(options), size=3, replace=len(options) < 3)]
        verse, chorus, bridge = pick
        return {"intro": verse, "verse": verse, "chorus": chorus, "bridge": bridge, "outro": verse}

    def chord_root(self, section: Section, bar_in_section: int) -> int:
        prog = self.progs[section.name]
        if section.name == "outro" and section.start_bar + bar_in_section == self.total_bars - 1:
            return 0  # cadence: end on the tonic
        return prog[(bar_in_section // self.harmony.chord_bars) % len(prog)]

    # --- the score -------------------------------------------------------------------------------------

    def score(self) -> Score:
        score = Score(self.n, self.bar_seconds, self.sections)
        melodies: dict[str, Motif] = {}
        rolling = self._rolling_figure()
        for index, section in enumerate(self.sections):
            nxt = self.sections[index + 1] if index + 1 < len(self.sections) else None
            if section.name not in melodies:
                melodies[section.name] = compose(
                    self.plan, section, self.progs[section.name], self.harmony.chord_bars
                )
            for b in range(section.bars):
                bar = section.start_bar + b
                root = self.chord_root(section, b)
                next_root = (
                    self.chord_root(section, b + 1)
                    if b + 1 < section.bars
                    else (self.chord_root(nxt, 0) if nxt else 0)
                )
                new_chord = b % self.harmony.chord_bars == 0 or b == 0
                self._chords(score, section, bar, root, new_chord)
                self._bass(score, section, bar, root, next_root, rolling)
                motif = melodies[section.name]
                if motif:
                    self._melody_bar(score, section, bar, motif[b % len(motif)])
                last_bar = b == section.bars - 1
                self._drums(
                    score, section, bar, b, last_bar and nxt is not None and nxt.level > section.level
                )
            if nxt and nxt.name == "chorus" and self.plan.texture == "riser":
                bars = 2 if self.plan.bpm > 140 and section.bars >= 2 else 1
                start = self.grid.at(nxt.start_bar - bars, 0)
                score.risers.append((start, self.grid.at(nxt.start_bar, 0) - start))
        for name, prog in self.progs.items():
            if any(s.name == name for s in self.sections):
                score.progressions[name] = [roman(d, self.plan.mode, seventh=self.sevenths) for d in prog]
        score.notes = [n for n in score.notes if n.start < self.n]
        score.hits = [h for h in score.hits if h.start < self.n]
        return score

    def _chords(self, score: Score, section: Section, bar: int, root: int, new_chord: bool) -> None:
        plan, comp = self.plan, self.style.groove.comp
        degrees = chord_degrees(root, seventh=self.sevenths)
        voice = plan.chords
        vel = (0.75, 0.8, 0.9, 1.0)[section.level]
        if voice == "guitar" and comp != "strum":
            comp = "strum"
        if comp in ("pad", "ostinato") or section.level == 0 or voice in ("pad", "strings", "organ"):
            if new_chord:
                tones = _voicing(degrees, plan.tonic, plan.mode, 62)
                length = self.grid.length(16 * self.harmony.chord_bars)
                for i, midi in enumerate(tones):
                    pan = (i / max(1, len(tones) - 1) - 0.5) * 0.6
                    score.notes.append(Note(self.grid.at(bar, 0), "chords", voice, midi, length, vel, pan))
            if comp == "ostinato" and section.level >= 2:
                tones = _voicing(degrees[:3], plan.tonic, plan.mode, 52)
                for k, idx in enumerate((0, 1, 2, 1, 0, 1, 2, 1)):
                    pan = -0.3 if idx == 0 else 0.3
                    score.notes.append(
                        Note(
                            self.grid.at(bar, 2 * k),
                            "ostinato",
                            "strings_short",
                            tones[idx],
                            self.grid.length(1.6),
                            0.8 if k % 2 == 0 else 0.6,
                            pan,
                        )
                    )
            return
        if comp == "broken":
            tones = _voicing(degrees[:3], plan.tonic, plan.mode, 60)
            low = _bass_pitch(root, plan, 43)
            seq = (low, tones[2], tones[1], tones[2], tones[0], tones[2], tones[1], tones[2])
            for k, midi in enumerate(seq):
                score.notes.append(
                    Note(
                        self.grid.at(bar, 2 * k), "chords", voice, midi, self.grid.length(4), 0.55 * vel, -0.1
                    )
                )
            return
        if comp == "strum":
            tones = self._guitar_voicing(degrees)
            for k, (step, steps) in enumerate(COMP_FIGURES["strum"]):
                down = k % 2 == 0
                order = tones if down else tones[::-1][:4]
                for i, midi in enumerate(order):
                    start = self.grid.at(bar, step) + int(i * 0.011 * SR)
                    v = vel * (0.9 if down else 0.6) * (1 - 0.05 * i)
                    pan = (midi - 60) / 40
                    score.notes.append(Note(start, "chords", voice, midi, self.grid.length(steps), v, pan))
            return
        if comp == "power" or voice == "dist_guitar":
            root_pitch = _bass_pitch(root, plan, 40)
            for step, steps in COMP_FIGURES["power"]:
                held = steps * (0.95 if section.level >= 3 else 0.5)
                v = vel * (1.0 if step % 4 == 0 else 0.8)
                score.notes.append(
                    Note(
                        self.grid.at(bar, step),
                        "chords",
                        "dist_guitar",
                        root_pitch,
                        self.grid.length(held),
                        v,
                    )
                )
            return
        figure = COMP_FIGURES.get(comp, COMP_FIGURES["piano"])
        if comp == "piano" and section.level < 3:
            figure = ((0, 8), (8, 8))
        tones = _voicing(degrees, plan.tonic, plan.mode, 62)
        for k, (step, steps) in enumerate(figure):
            accent = 1.0 if k == 0 else 0.8
            for i, midi in enumerate(tones):
                pan = (i / max(1, len(tones) - 1) - 0.5) * 0.5
                score.notes.append(
                    Note(
                        self.grid.at(bar, step),
                        "chords",
                        voice,
                        midi,
                        self.grid.length(steps * 0.9),
                        vel * accent,
                        pan,
                    )
                )

    def _guitar_voicing(self, degrees: tuple[int, ...]) -> list[int]:
        plan = self.plan
        root = _bass_pitch(degrees[0], plan, 40)
        pcs = [degree_to_midi(d, plan.tonic, plan.mode) % 12 for d in degrees[:3]]
        tones = [root]
        for pc in (pcs[2], pcs[0], pcs[1], pcs[2]):
            nxt = tones[-1] + 1 + (pc - tones[-1] - 1) % 12
            tones.append(nxt)
        return tones

    def _rolling_figure(self) -> list[tuple[int, str]]:
        choices = ("r", "r", "r", "8", "5", "r")
        steps = [s for s in range(16) if s % 4 != 0]
        return [(s, choices[int(self.rng.integers(len(choices)))]) for s in steps]

    def _bass(
        self,
        score: Score,
        section: Section,
        bar: int,
        root: int,
        next_root: int,
        rolling: list[tuple[int, str]],
    ) -> None:
        plan, style = self.plan, self.style
        drumless = plan.drums is None
        if section.level == 1 and section.name == "intro" and not drumless:
            return
        pattern = style.groove.bass_pattern
        base = {"808": 31, "sub_bass": 31, "upright_bass": 36, "pick_bass": 36, "piano": 36}.get(
            plan.bass, 33
        )
        if plan.bass == "low_strings":
            base = 38
        if section.level == 0:
            pattern = "sustain"
        if pattern == "rolling":
            figure = tuple((s, 1, n) for s, n in rolling) if section.level >= 2 else ((0, 16, "r"),)
        else:
            figure = BASS_FIGURES[pattern]
        if pattern in ("sustain", "drone") and bar % self.harmony.chord_bars != 0 and section.level != 0:
            return
        length_scale = self.harmony.chord_bars if pattern in ("sustain", "drone") else 1
        vel = 0.7 if section.level == 0 else 0.9 if section.level < 3 else 1.0
        r = _bass_pitch(root, plan, base)
        for step, steps, which in figure:
            if which == "r":
                midi = r
            elif which == "8":
                midi = r + 12
            elif which == "5":
                midi = _bass_pitch(root + 4, plan, r)
            elif which == "3":
                midi = _bass_pitch(root + 2, plan, r)
            else:  # approach the next root from a semitone below
                midi = _bass_pitch(next_root, plan, base) - 1
            held = steps * length_scale * (0.98 if steps >= 4 else 0.85)
            score.notes.append(
                Note(self.grid.at(bar, step), "bass", plan.bass, midi, self.grid.length(held), vel)
            )

    # --- melody ------------------------------------------------------------------------------------------

    def _melody_bar(
        self, score: Score, section: Section, bar: int, cells: list[tuple[int, int, int]]
    ) -> None:
        vel = 0.85 if section.level < 3 else 1.0
        for step, steps, midi in cells:
            score.notes.append(
                Note(
                    self.grid.at(bar, step),
                    "melody",
                    self.plan.melody,
                    midi,
                    self.grid.length(steps * 0.9),
                    vel,
                    0.1,
                )
            )
        if self.plan.arp and section.level >= (3 if self.style.band.arp else 2):
            root = self.chord_root(section, bar - section.start_bar)
            tones = _voicing(chord_degrees(root, seventh=self.sevenths), self.plan.tonic, self.plan.mode, 67)
            seq = [*tones, tones[0] + 12, *tones[1:][::-1]]
            for k in range(16):
                score.notes.append(
                    Note(
                        self.grid.at(bar, k),
                        "arp",
                        "arp",
                        seq[k % len(seq)],
                        self.grid.length(0.9),
                        0.9 if k % 4 == 0 else 0.65,
                        -0.3,
                    )
                )

    # --- drums -------------------------------------------------------------------------------------------

    def _drums(self, score: Score, section: Section, bar: int, b: int, fill: bool) -> None:
        if self.plan.drums is None:
            return
        pattern = DRUM_PATTERNS[self.plan.drums]
        level = section.level
        fill_voice = pattern.fill if fill and self.plan.energy >= 0.4 else None
        for layer in pattern.layers:
            if layer.level > level:
                continue
            for step, vel in hits(layer.grid):
                if fill_voice and step >= 12 and layer.voice != "kick":
                    continue
                score.hits.append(Hit(self.grid.at(bar, step), layer.voice, vel * layer.gain, layer.pan))
        if self.plan.drums == "trap" and level >= 2 and b % 2 == 1:
            for k in range(6):  # hi-hat roll in 32nds
                score.hits.append(Hit(self.grid.at(bar, 12 + k * 0.5), "hat", 0.18 + 0.03 * k, -0.2))
        if fill_voice:
            for k in range(4):
                score.hits.append(
                    Hit(self.grid.at(bar, 12 + k), fill_voice, 0.45 + 0.15 * k, 0.05 * (k - 1.5))
                )
        if pattern.crash and level >= 3 and b == 0 and bar > 0:
            score.hits.append(Hit(self.grid.at(bar, 0), "crash", 0.45, -0.2))


def arrange(plan: Plan, duration: float) -> Score:
    return Arranger(plan, duration).score()

"""Procedural music: prompt + seed → plan → score → mix → master → MP3/WAV.

Deterministic: every random choice comes from a named stream of the seed (see `prompt.rng_for`),
and nothing reads the clock or the environment, so the same inputs give the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from mediagen.engines.audio_io import MP3_BITRATE, write_audio
from mediagen.engines.synth.arrange import arrange
from mediagen.engines.synth.dsp import fades, master
from mediagen.engines.synth.mix import render_mix
from mediagen.engines.synth.prompt import Plan, make_plan
from mediagen.engines.synth.score import Score
from mediagen.engines.synth.voices import SR, Array

MIN_DURATION, MAX_DURATION = 1.0, 300.0
CEILING_DB = -1.0  # leaves room for MP3 overshoot; decoded peaks stay under -0.3 dBFS

AudioFormat = Literal["mp3", "wav"]
AUDIO_FORMATS: tuple[AudioFormat, ...] = ("mp3", "wav")


@dataclass(frozen=True)
class Rendition:
    samples: Array  # float32, (2, n), peak ≤ CEILING_DB
    plan: Plan
    score: Score

    def metadata(self) -> dict[str, Any]:
        peak, rms = levels(self.samples)
        sections = []
        for s in self.score.sections:
            start = s.start_bar * self.score.bar_seconds
            end = min((s.start_bar + s.bars) * self.score.bar_seconds, self.samples.shape[1] / SR)
            sections.append({"name": s.name, "start": round(start, 3), "end": round(end, 3), "bars": s.bars})
        return {
            **self.plan.as_metadata(),
            "sections": sections,
            "progression": self.score.progressions,
            "duration": round(self.samples.shape[1] / SR, 6),
            "sample_rate": SR,
            "channels": 2,
            "peak_dbfs": round(20 * np.log10(peak), 2),
            "rms_dbfs": round(20 * np.log10(rms), 2),
        }


def levels(samples: Array) -> tuple[float, float]:
    """Peak and RMS (linear), in slices so a five-minute piece needs no big temporaries."""
    peak, energy = 1e-9, 0.0
    for s in range(0, samples.shape[1], 1 << 18):
        part = samples[:, s : s + (1 << 18)]
        peak = max(peak, float(np.max(np.abs(part))))
        energy += float(np.sum(np.square(part, dtype=np.float64)))
    return peak, max(1e-9, (energy / max(1, samples.size)) ** 0.5)


def synthesize(plan: Plan, duration: float) -> Rendition:
    """Render a plan to mastered float samples (no encoding; the video muxer reuses this)."""
    if not MIN_DURATION <= duration <= MAX_DURATION:
        raise ValueError(f"duration must be between {MIN_DURATION:g} and {MAX_DURATION:g} seconds")
    score = arrange(plan, duration)
    mix = render_mix(score, plan)
    target = -19.0 + 5.0 * plan.energy
    master(mix, ceiling_db=CEILING_DB, target_rms_db=target)
    fades(mix, fade_in=0.005, fade_out=min(2.0, max(0.05, 0.12 * duration)))
    return Rendition(mix, plan, score)


def render_music(
    prompt: str,
    *,
    duration: float,
    seed: int,
    output_format: AudioFormat = "mp3",
    bpm: int | None = None,
    out: Path,
) -> dict[str, Any]:
    """Render a prompt to `out` and return the metadata (plan, sections, levels, content type)."""
    plan = make_plan(prompt, seed, bpm=bpm)
    rendition = synthesize(plan, duration)
    content_type = write_audio(rendition.samples, out, output_format)
    meta = rendition.metadata()
    meta.update({"format": output_format, "content_type": content_type})
    if output_format == "mp3":
        meta["bitrate"] = MP3_BITRATE
    return meta

"""Turn a score into a stereo mix, chunk by chunk.

Mixing in chunks of ~3 s keeps memory flat for five-minute pieces (only the master is kept whole,
because loudness needs the whole piece) and keeps the working set in cache, which matters more for
numpy speed than operation count. Levels are calibrated per voice, so a prompt that swaps the
piano for a supersaw does not change the balance of the mix.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from mediagen.engines.synth import drums as drumkit
from mediagen.engines.synth.dsp import Echo, Reverb, duck_envelope
from mediagen.engines.synth.prompt import Plan, rng_for
from mediagen.engines.synth.score import Score
from mediagen.engines.synth.voices import BASS, F32, SR, TONAL, Array, NoteCache

CHUNK = 1 << 17
DRY, DUCK = 0, 1

ROLE_GAIN = {"bass": 0.5, "chords": 0.2, "melody": 0.3, "arp": 0.12, "ostinato": 0.16}
DRUM_GAIN = 0.55
DRUM_SEND = {
    "snare": 0.18,
    "snare_lofi": 0.15,
    "snare_gated": 0.35,
    "clap": 0.2,
    "rim": 0.15,
    "tom": 0.25,
    "crash": 0.1,
    "brush": 0.15,
    "shaker": 0.08,
    "hat": 0.03,
    "open_hat": 0.06,
    "ride": 0.05,
}


@lru_cache(maxsize=64)
def calibration(voice: str) -> float:
    """1 / RMS of a held note in the voice's usual register, so roles mix at set levels."""
    midi = 40 if voice in BASS else 64
    note = TONAL[voice](midi, SR // 2)[: SR // 2]
    return 1.0 / max(float(np.sqrt(np.mean(note.astype(np.float64) ** 2))), 1e-4)


@dataclass(frozen=True)
class _Event:
    start: int
    signal: Array
    bus: int
    left: float
    right: float
    send: float
    echo: float


def _pan(pan: float) -> tuple[float, float]:
    angle = (max(-1.0, min(1.0, pan)) + 1) * np.pi / 4
    return float(np.cos(angle) * np.sqrt(2)), float(np.sin(angle) * np.sqrt(2))


def _events(score: Score, plan: Plan, kit: drumkit.Kit) -> list[_Event]:
    cache = NoteCache()
    sound = plan.style.mix
    out: list[_Event] = []
    for note in score.notes:
        gain = ROLE_GAIN[note.role] * calibration(note.voice) * note.velocity * 0.3
        if note.role == "bass" and plan.bass_boost:
            gain *= 1.5
        bus = DUCK if note.role in ("bass", "chords", "arp", "ostinato") else DRY
        send = {"bass": 0.02, "melody": sound.reverb * 1.2, "arp": sound.reverb}.get(note.role, sound.reverb)
        echo = (0.3 if note.role == "arp" else 0.22 if note.role == "melody" else 0.0) if sound.echo else 0.0
        left, right = _pan(note.pan)
        signal = cache.get(note.voice, note.midi, note.length)
        out.append(_Event(note.start, signal, bus, gain * left, gain * right, gain * send, gain * echo))
    for hit in score.hits:
        gain = DRUM_GAIN * hit.velocity
        left, right = _pan(hit.pan)
        out.append(
            _Event(
                hit.start,
                kit.get(hit.voice),
                DRY,
                gain * left,
                gain * right,
                gain * DRUM_SEND.get(hit.voice, 0.0),
                0.0,
            )
        )
    riser_rng = rng_for(plan.seed, "riser")
    risers: dict[int, Array] = {}
    for start, length in score.risers:
        if length not in risers:
            risers[length] = drumkit.riser(riser_rng, length)
        out.append(_Event(start, risers[length], DRY, 0.3, 0.3, 0.1, 0.0))
    out.sort(key=lambda e: e.start)
    return out


def _texture(plan: Plan) -> tuple[Array, float] | None:
    rng = rng_for(plan.seed, "texture")
    if plan.texture == "vinyl":
        return drumkit.vinyl(rng), 0.12
    if plan.texture == "wind":
        return drumkit.wind(rng), 0.22
    return None


def render_mix(score: Score, plan: Plan) -> Array:
    """The stereo pre-master (float32, shape (2, n)) of a score."""
    n = score.n_samples
    sound = plan.style.mix
    kit = drumkit.Kit(rng_for(plan.seed, "kit"))
    events = _events(score, plan, kit)
    kicks = score.kicks
    rt60 = 0.8 + 4.5 * sound.reverb
    reverb = Reverb(rng_for(plan.seed, "reverb"), rt60, CHUNK)
    echo = Echo(0.75 * 60.0 / plan.bpm)
    texture = _texture(plan)
    duck_depth = sound.sidechain if plan.drums and len(kicks) else 0.0

    master = np.zeros((2, n), dtype=F32)
    active: list[_Event] = []
    i = 0
    for c0 in range(0, n, CHUNK):
        m = min(CHUNK, n - c0)
        c1 = c0 + m
        while i < len(events) and events[i].start < c1:
            active.append(events[i])
            i += 1
        buses = np.zeros((2, 2, m), dtype=F32)
        send = np.zeros(m, dtype=F32)
        echo_in = np.zeros(m, dtype=F32)
        still: list[_Event] = []
        for ev in active:
            end = ev.start + len(ev.signal)
            s, e = max(ev.start, c0), min(end, c1)
            if e > s:
                seg = ev.signal[s - ev.start : e - ev.start]
                bus = buses[ev.bus]
                bus[0, s - c0 : e - c0] += seg * F32(ev.left)
                bus[1, s - c0 : e - c0] += seg * F32(ev.right)
                if ev.send:
                    send[s - c0 : e - c0] += seg * F32(ev.send)
                if ev.echo:
                    echo_in[s - c0 : e - c0] += seg * F32(ev.echo)
            if end > c1:
                still.append(ev)
        active = still
        if duck_depth:
            buses[DUCK] *= duck_envelope(kicks, c0, m, duck_depth)
        out = buses[DRY]
        out += buses[DUCK]
        if echo_in.any():
            delayed = echo.process(echo_in)
            out += delayed
            send += delayed.mean(axis=0) * F32(0.5)
        else:
            echo.process(echo_in)
        out += reverb.process(send)
        if texture is not None:
            loop, level = texture
            idx = np.arange(c0, c1) % len(loop)
            out[0] += loop[idx] * F32(level)
            out[1] += loop[(idx + len(loop) // 2) % len(loop)] * F32(level)
        master[:, c0:c1] = out
    return master

"""Instrument voices: one function per sound, each returning a mono float32 note.

Speed comes from three choices: band-limited wavetables read with integer phase (no per-sample
Python, no aliasing), float32 everywhere (numpy's float32 sin is SIMD, float64 is not), and a
per-render cache in `NoteCache`, because a song repeats the same pitch at the same length
hundreds of times. Velocity is applied by the mixer, never baked in, so the cache stays small.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import numpy as np

SR = 44_100
F32 = np.float32
TABLE = 4096
_TWO_PI = F32(2 * np.pi)

Array = np.ndarray


def midi_hz(midi: float) -> float:
    return 440.0 * 2.0 ** ((midi - 69.0) / 12.0)


def _t(n: int) -> Array:
    return np.arange(n, dtype=F32) / F32(SR)


def _cycles(n: int, hz: float, *, vibrato: float = 0.0, rate: float = 5.0) -> Array:
    """Oscillator phase in cycles (float64: long notes would lose pitch in float32)."""
    t = np.arange(n, dtype=np.float64) / SR
    phase = hz * t
    if vibrato:
        w = 2 * np.pi * rate
        phase += hz * vibrato * (1.0 - np.cos(w * t)) / w
    return phase


def _sine(cycles: Array) -> Array:
    frac = (cycles - np.floor(cycles)).astype(F32)
    return np.sin(frac * _TWO_PI)


_DRAWBARS = {1: 1.0, 2: 0.7, 3: 0.5, 4: 0.4, 6: 0.25, 8: 0.2}


@lru_cache(maxsize=256)
def _table(shape: str, harmonics: int) -> Array:
    k = np.arange(1, harmonics + 1, dtype=np.float64)
    amps = {
        "saw": 1.0 / k,
        "square": np.where(k % 2 == 1, 1.0 / k, 0.0),
        "triangle": np.where(k % 2 == 1, np.where((k - 1) % 4 == 0, 1.0, -1.0) / k**2, 0.0),
        "pad": np.exp(-k / 5.0) / k,
        "piano": 1.0 / k**1.4 * (1.0 + 0.3 * (k == 2)),
        "organ": np.array([_DRAWBARS.get(int(i), 0.0) for i in k]),
        "acid": (1.0 / k) * (1.0 + 2.5 * np.exp(-((k - 7.0) ** 2) / 6.0)),
        "reed": np.where(k % 2 == 1, 1.0 / k, 0.45 / k),
    }[shape]
    x = np.arange(TABLE) / TABLE
    wave = np.zeros(TABLE)
    for i, a in enumerate(amps):
        if a:
            wave += a * np.sin(2 * np.pi * (i + 1) * x)
    peak = np.max(np.abs(wave)) or 1.0
    return (wave / peak).astype(F32)


def _osc(shape: str, cycles: Array, hz: float, *, max_harmonics: int = 40) -> Array:
    """Band-limited wavetable read: only harmonics below ~20 kHz for this pitch."""
    harmonics = int(max(1, min(max_harmonics, 0.45 * SR / max(hz, 1.0))))
    idx = (cycles * TABLE).astype(np.int64) & (TABLE - 1)
    return _table(shape, harmonics)[idx]


def _env(n_on: int, *, attack: float, decay: float, sustain: float, release: float) -> Array:
    """ADSR with exponential decay/release; the returned note includes its release tail."""
    tail = int(release * 5 * SR)
    n = n_on + tail
    t = _t(n)
    a = max(attack, 1e-4)
    env = np.where(t < a, t / F32(a), F32(sustain) + F32(1 - sustain) * np.exp(-(t - F32(a)) / F32(decay)))
    if n_on < n:
        level = env[n_on - 1] if n_on > 0 else F32(0)
        env[n_on:] = level * np.exp(-_t(tail) / F32(release))
    return env.astype(F32, copy=False)


def _perc(n_on: int, *, attack: float, tau: float, release: float) -> Array:
    """Struck/plucked amplitude: decays while held, damped faster after note-off."""
    return _env(n_on, attack=attack, decay=tau, sustain=0.0, release=release)


def _noise(n: int, key: int) -> Array:
    return np.random.default_rng(key).standard_normal(n, dtype=F32)


def _closing(n: int, tau: float, floor: float = 0.0) -> Array:
    """How open a low-pass filter is over a note: from 1 down towards `floor`, time constant `tau`."""
    decay = np.exp(-_t(n) / F32(tau))
    return F32(floor) + F32(1.0 - floor) * decay if floor else decay


def _filtered(cycles: Array, hz: float, cut: Array, bright: tuple[str, int], dark: tuple[str, int]) -> Array:
    """Subtractive tone: the `bright` wavetable (shape, harmonics) fading into `dark` as `cut` falls to 0.

    Cross-fading two band-limited tables stands in for a sweeping low-pass filter at no per-sample cost.
    """
    hi = _osc(bright[0], cycles, hz, max_harmonics=bright[1])
    lo = _osc(dark[0], cycles, hz, max_harmonics=dark[1])
    return lo + cut * (hi - lo)


def _fm(cycles: Array, ratio: float, index: Array) -> Array:
    """Two-operator FM: a sine carrier phase-modulated by a sine at `ratio`× its pitch, depth `index`."""
    carrier = (cycles - np.floor(cycles)).astype(F32) * _TWO_PI
    return np.sin(carrier + index * _sine(cycles * ratio))


# --- tonal voices -------------------------------------------------------------------------------------

Voice = Callable[[int, int], Array]  # (midi pitch, samples held) → mono note including its release


def sub_bass(midi: int, n_on: int) -> Array:
    env = _env(n_on, attack=0.006, decay=0.4, sustain=0.9, release=0.05)
    c = _cycles(len(env), midi_hz(midi))
    return (_sine(c) + F32(0.2) * _sine(2 * c)) * env


def saw_bass(midi: int, n_on: int) -> Array:
    hz = midi_hz(midi)
    env = _env(n_on, attack=0.003, decay=0.3, sustain=0.75, release=0.05)
    c = _cycles(len(env), hz)
    y = _filtered(c, hz, _closing(len(env), 0.12, floor=0.15), ("saw", 24), ("saw", 3))
    return np.tanh(F32(1.6) * (y * F32(0.7) + _sine(c) * F32(0.5))) * env


def acid_bass(midi: int, n_on: int) -> Array:
    hz = midi_hz(midi)
    env = _env(n_on, attack=0.002, decay=0.2, sustain=0.6, release=0.03)
    y = _filtered(_cycles(len(env), hz), hz, _closing(len(env), 0.09), ("acid", 20), ("saw", 2))
    return np.tanh(F32(2.0) * y) * env


def pick_bass(midi: int, n_on: int) -> Array:
    hz = midi_hz(midi)
    env = _env(n_on, attack=0.002, decay=0.35, sustain=0.6, release=0.04)
    c = _cycles(len(env), hz)
    y = _filtered(c, hz, _closing(len(env), 0.06, floor=0.2), ("saw", 12), ("saw", 2))
    return np.tanh(F32(1.3) * (y + F32(0.4) * _sine(c))) * env


def upright_bass(midi: int, n_on: int) -> Array:
    hz = midi_hz(midi)
    env = _perc(n_on, attack=0.004, tau=0.7, release=0.06)
    c = _cycles(len(env), hz)
    y = _filtered(c, hz, _closing(len(env), 0.05), ("saw", 8), ("triangle", 3))
    return (y * F32(0.6) + _sine(c) * F32(0.6)) * env


def reese(midi: int, n_on: int) -> Array:
    hz = midi_hz(midi)
    env = _env(n_on, attack=0.02, decay=0.5, sustain=0.9, release=0.1)
    n = len(env)
    y = _osc("saw", _cycles(n, hz * 2 ** (-0.12 / 12)), hz, max_harmonics=10)
    y += _osc("saw", _cycles(n, hz * 2 ** (0.12 / 12)), hz, max_harmonics=10)
    return np.tanh(F32(1.2) * y + F32(0.6) * _sine(_cycles(n, hz))) * env * F32(0.8)


def bass_808(midi: int, n_on: int) -> Array:
    hz = midi_hz(midi)
    env = _perc(n_on, attack=0.002, tau=1.1, release=0.08)
    t = np.arange(len(env), dtype=np.float64) / SR
    glide = 0.035
    c = hz * t + hz * 0.9 * glide * (1 - np.exp(-t / glide))
    return np.tanh(F32(1.8) * _sine(c)) * env


def strings(midi: int, n_on: int) -> Array:
    hz = midi_hz(midi)
    env = _env(n_on, attack=0.22, decay=1.0, sustain=1.0, release=0.45)
    n = len(env)
    y = np.zeros(n, dtype=F32)
    for cents, rate in ((-7.0, 5.1), (0.0, 5.5), (7.0, 4.8)):
        f = hz * 2 ** (cents / 1200)
        y += _osc("pad", _cycles(n, f, vibrato=0.003, rate=rate), f, max_harmonics=20)
    return y * env * F32(0.45)


def low_strings(midi: int, n_on: int) -> Array:
    hz = midi_hz(midi)
    env = _env(n_on, attack=0.12, decay=1.0, sustain=1.0, release=0.3)
    n = len(env)
    y = _osc("saw", _cycles(n, hz * 2 ** (-5 / 1200), vibrato=0.002), hz, max_harmonics=14)
    y += _osc("saw", _cycles(n, hz * 2 ** (5 / 1200), vibrato=0.002, rate=4.7), hz, max_harmonics=14)
    return (y * F32(0.4) + _sine(_cycles(n, hz)) * F32(0.5)) * env


def strings_short(midi: int, n_on: int) -> Array:
    hz = midi_hz(midi)
    env = _perc(n_on, attack=0.008, tau=0.18, release=0.06)
    n = len(env)
    return _osc("pad", _cycles(n, hz), hz, max_harmonics=24) * env * F32(0.7)


def pad(midi: int, n_on: int) -> Array:
    hz = midi_hz(midi)
    env = _env(n_on, attack=0.35, decay=1.0, sustain=1.0, release=0.7)
    n = len(env)
    y = _osc("pad", _cycles(n, hz * 2 ** (-9 / 1200)), hz, max_harmonics=16)
    y += _osc("square", _cycles(n, hz * 2 ** (9 / 1200)), hz, max_harmonics=7) * F32(0.5)
    return y * env * F32(0.5)


def supersaw(midi: int, n_on: int) -> Array:
    hz = midi_hz(midi)
    env = _env(n_on, attack=0.01, decay=0.4, sustain=0.8, release=0.25)
    n = len(env)
    y = np.zeros(n, dtype=F32)
    for cents in (-17.0, -8.0, 0.0, 8.0, 17.0):
        f = hz * 2 ** (cents / 1200)
        y += _osc("saw", _cycles(n, f) + (cents / 37.0) % 1.0, f, max_harmonics=30)
    return y * env * F32(0.28)


def stab(midi: int, n_on: int) -> Array:
    hz = midi_hz(midi)
    env = _perc(n_on, attack=0.002, tau=0.16, release=0.05)
    n = len(env)
    cut = _closing(n, 0.07)
    y = _filtered(_cycles(n, hz * 2 ** (-8 / 1200)), hz, cut, ("saw", 24), ("saw", 3))
    y += _filtered(_cycles(n, hz * 2 ** (8 / 1200)), hz, cut, ("saw", 24), ("saw", 3))
    return y * env * F32(0.5)


def organ(midi: int, n_on: int) -> Array:
    hz = midi_hz(midi)
    env = _env(n_on, attack=0.01, decay=1.0, sustain=1.0, release=0.06)
    return (
        _osc("organ", _cycles(len(env), hz, vibrato=0.0015, rate=6.5), hz, max_harmonics=8) * env * F32(0.6)
    )


def piano(midi: int, n_on: int) -> Array:
    hz = midi_hz(midi)
    tau = float(np.clip(1.8 * 2 ** (-(midi - 60) / 18), 0.3, 4.0))
    env = _perc(n_on, attack=0.002, tau=tau, release=0.12)
    n = len(env)
    c = _cycles(n, hz)
    y = _filtered(c, hz, _closing(n, 0.22 * tau, floor=0.15), ("piano", 16), ("piano", 3))
    y += F32(0.25) * _sine(c * 1.0009) * np.exp(-_t(n) / F32(tau * 1.5))
    return y * env * F32(0.8)


def epiano(midi: int, n_on: int) -> Array:
    hz = midi_hz(midi)
    env = _perc(n_on, attack=0.002, tau=1.6, release=0.15)
    n = len(env)
    t = _t(n)
    c = _cycles(n, hz)
    y = _fm(c, 1.0, F32(1.4) * np.exp(-t / F32(0.25)) + F32(0.25))
    tine = _sine(c * 7.0) * np.exp(-t / F32(0.03)) * F32(0.12)
    return (y + tine) * env * F32(0.6)


def _plucked(
    *,
    tau: float,
    release: float,
    bright: tuple[str, int],
    dark: tuple[str, int],
    cut: tuple[float, float],
    gain: float,
) -> Voice:
    """A plucked string or synth pluck: a bright attack whose filter closes while the note rings.

    `bright`/`dark` are the wavetables of the open and the closed filter (see `_filtered`), `cut` the
    filter's (time constant, floor) (see `_closing`).
    """

    def voice(midi: int, n_on: int) -> Array:
        hz = midi_hz(midi)
        env = _perc(n_on, attack=0.001, tau=tau, release=release)
        n = len(env)
        return _filtered(_cycles(n, hz), hz, _closing(n, *cut), bright, dark) * env * F32(gain)

    return voice


guitar = _plucked(tau=0.9, release=0.08, bright=("saw", 24), dark=("triangle", 5), cut=(0.07, 0.1), gain=0.6)
pluck = _plucked(tau=0.3, release=0.1, bright=("saw", 30), dark=("saw", 2), cut=(0.05, 0.0), gain=0.6)
arp = _plucked(tau=0.12, release=0.05, bright=("square", 20), dark=("square", 3), cut=(0.03, 0.0), gain=0.5)


def dist_guitar(midi: int, n_on: int) -> Array:
    """A whole power chord (root, fifth, octave) through one distortion, as an amp would."""
    hz = midi_hz(midi)
    env = _env(n_on, attack=0.003, decay=0.5, sustain=0.7, release=0.05)
    n = len(env)
    y = np.zeros(n, dtype=F32)
    for semis in (0, 7, 12):
        f = hz * 2 ** (semis / 12)
        y += _osc("saw", _cycles(n, f), f, max_harmonics=12)
    return np.tanh(F32(3.5) * y) * env * F32(0.45)


def lead(midi: int, n_on: int) -> Array:
    hz = midi_hz(midi)
    env = _env(n_on, attack=0.01, decay=0.3, sustain=0.85, release=0.12)
    n = len(env)
    c = _cycles(n, hz, vibrato=0.004, rate=5.5)
    y = _osc("square", c, hz, max_harmonics=20) * F32(0.6) + _osc("saw", c, hz, max_harmonics=20) * F32(0.4)
    return y * env * F32(0.5)


def bell(midi: int, n_on: int) -> Array:
    hz = midi_hz(midi)
    env = _perc(n_on, attack=0.001, tau=1.2, release=0.4)
    n = len(env)
    index = F32(2.2) * np.exp(-_t(n) / F32(0.35)) + F32(0.2)
    return _fm(_cycles(n, hz), 3.5, index) * env * F32(0.5)


def flute(midi: int, n_on: int) -> Array:
    hz = midi_hz(midi)
    env = _env(n_on, attack=0.07, decay=0.5, sustain=0.9, release=0.1)
    n = len(env)
    c = _cycles(n, hz, vibrato=0.004, rate=5.0)
    y = _sine(c) + F32(0.22) * _sine(2 * c) + F32(0.07) * _sine(3 * c)
    breath = _noise(n, midi * 7919 + n) * F32(0.04) * np.exp(-_t(n) / F32(0.15))
    return (y * F32(0.6) + breath) * env


def brass(midi: int, n_on: int) -> Array:
    hz = midi_hz(midi)
    env = _env(n_on, attack=0.05, decay=0.6, sustain=0.85, release=0.12)
    n = len(env)
    c = _cycles(n, hz, vibrato=0.003, rate=5.2)
    opening = F32(1.0) - F32(0.7) * np.exp(-_t(n) / F32(0.08))
    return np.tanh(F32(1.4) * _filtered(c, hz, opening, ("reed", 16), ("saw", 3))) * env * F32(0.5)


# The voices that play bass lines: the mixer calibrates their level in the bass register.
BASS: dict[str, Voice] = {
    "sub_bass": sub_bass,
    "saw_bass": saw_bass,
    "acid_bass": acid_bass,
    "pick_bass": pick_bass,
    "upright_bass": upright_bass,
    "reese": reese,
    "808": bass_808,
    "low_strings": low_strings,
}
TONAL: dict[str, Voice] = {
    **BASS,
    "strings": strings,
    "strings_short": strings_short,
    "pad": pad,
    "supersaw": supersaw,
    "stab": stab,
    "organ": organ,
    "piano": piano,
    "epiano": epiano,
    "guitar": guitar,
    "dist_guitar": dist_guitar,
    "lead": lead,
    "pluck": pluck,
    "arp": arp,
    "bell": bell,
    "flute": flute,
    "brass": brass,
}


class NoteCache:
    """Memoises rendered notes for one render: same voice, pitch and length → same array."""

    def __init__(self) -> None:
        self._notes: dict[tuple[str, int, int], Array] = {}

    def get(self, voice: str, midi: int, n_on: int) -> Array:
        key = (voice, midi, n_on)
        note = self._notes.get(key)
        if note is None:
            note = TONAL[voice](midi, max(1, n_on))
            note.setflags(write=False)
            self._notes[key] = note
        return note

    def __len__(self) -> int:
        return len(self._notes)

"""Drum one-shots and background textures.

Each sound is rendered once per track (from a kit seed, so two seeds get slightly different kits)
and then placed on the grid by the mixer. Noise is shaped in the frequency domain: the one-shots
are short, so an FFT mask is both cheaper and cleaner than a sample-by-sample filter in Python.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from mediagen.engines.synth.voices import F32, SR, Array

_TWO_PI = 2 * np.pi


def _t(n: int) -> Array:
    return np.arange(n, dtype=np.float64) / SR


def _clock(seconds: float) -> tuple[int, Array]:
    """Length in samples of a sound `seconds` long, and its time axis in seconds."""
    n = int(seconds * SR)
    return n, _t(n)


def _damped_sines(
    t: Array, tau: float, partials: tuple[tuple[float, float], ...], tune: float = 1.0
) -> Array:
    """The pitched part of a drum: sine partials (Hz, level), shifted by `tune`, dying away with `tau`."""
    tone = np.zeros_like(t)
    for hz, level in partials:
        tone += level * np.sin(_TWO_PI * hz * tune * t)
    return tone * np.exp(-t / tau)


def band(x: Array, lo: float | None = None, hi: float | None = None, order: int = 2) -> Array:
    """Soft band-pass by FFT mask (Butterworth-like magnitude, zero phase)."""
    n_fft = 1 << max(1, int(np.ceil(np.log2(len(x)))))  # odd sizes are many times slower
    spec = np.fft.rfft(x, n_fft)
    f = np.fft.rfftfreq(n_fft, 1 / SR)
    gain = np.ones_like(f)
    if lo:
        gain /= np.sqrt(1 + (lo / np.maximum(f, 1.0)) ** (2 * order))
    if hi:
        gain /= np.sqrt(1 + (f / hi) ** (2 * order))
    return np.fft.irfft(spec * gain.astype(F32), n_fft)[: len(x)].astype(F32)


def _norm(x: Array) -> Array:
    peak = float(np.max(np.abs(x))) or 1.0
    return (x / peak).astype(F32)


class Kit:
    """The drum sounds of one track; `tune` and `decay` nudge the kit per seed."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.tune = float(rng.uniform(0.92, 1.08))
        self.decay = float(rng.uniform(0.85, 1.2))
        self._cache: dict[str, Array] = {}
        self._sounds: dict[str, Callable[[], Array]] = {
            "kick": self._kick,
            "kick_soft": self._kick_soft,
            "snare": self._snare,
            "snare_lofi": self._snare_lofi,
            "snare_gated": self._snare_gated,
            "clap": self._clap,
            "hat": lambda: self._hat(0.035),
            "open_hat": lambda: self._hat(0.22),
            "ride": self._ride,
            "crash": self._crash,
            "shaker": self._shaker,
            "rim": self._rim,
            "tom": self._tom,
            "brush": self._brush,
        }

    def get(self, name: str) -> Array:
        if name not in self._cache:
            sound = self._sounds[name]()
            sound.setflags(write=False)
            self._cache[name] = sound
        return self._cache[name]

    def _noise(self, n: int) -> Array:
        return self.rng.standard_normal(n).astype(F32)

    def _sweep(self, n: int, start: float, end: float, tau: float) -> Array:
        t = _t(n)
        cycles = end * t + (start - end) * tau * (1 - np.exp(-t / tau))
        return np.sin(_TWO_PI * (cycles - np.floor(cycles))).astype(F32)

    def _kick(self) -> Array:
        n, t = _clock(0.45)
        body = self._sweep(n, 190 * self.tune, 48 * self.tune, 0.035) * np.exp(-t / (0.2 * self.decay))
        click = band(self._noise(n), 1500, 8000) * np.exp(-t / 0.003) * 0.5
        return _norm(np.tanh(1.6 * (body + click)).astype(F32))

    def _kick_soft(self) -> Array:
        n, t = _clock(0.35)
        body = self._sweep(n, 120 * self.tune, 55 * self.tune, 0.03) * np.exp(-t / (0.14 * self.decay))
        return _norm(band(body.astype(F32), None, 2500))

    def _snare(self) -> Array:
        n, t = _clock(0.35)
        tone = _damped_sines(t, 0.05, ((185, 1.0), (330, 0.6)), self.tune)
        noise = band(self._noise(n), 1200, 10000) * np.exp(-t / (0.11 * self.decay))
        return _norm((0.6 * tone + noise).astype(F32))

    def _snare_lofi(self) -> Array:
        n, t = _clock(0.3)
        tone = _damped_sines(t, 0.04, ((170, 1.0),), self.tune)
        noise = band(self._noise(n), 800, 4500) * np.exp(-t / (0.09 * self.decay))
        return _norm((0.5 * tone + noise).astype(F32))

    def _snare_gated(self) -> Array:
        n, t = _clock(0.4)
        tone = _damped_sines(t, 0.06, ((200, 1.0),), self.tune)
        noise = band(self._noise(n), 900, 9000) * (0.35 + 0.65 * np.exp(-t / 0.05))
        gate = np.clip((0.32 - t) / 0.03, 0, 1)
        return _norm(((0.5 * tone + noise) * gate).astype(F32))

    def _clap(self) -> Array:
        n, t = _clock(0.35)
        env = np.zeros(n)
        for offset in (0.0, 0.009, 0.018):
            env += np.where(t >= offset, np.exp(-np.maximum(t - offset, 0) / 0.004), 0)
        env += np.where(t >= 0.024, np.exp(-np.maximum(t - 0.024, 0) / (0.09 * self.decay)), 0) * 0.8
        return _norm(band(self._noise(n), 900, 4200) * env.astype(F32))

    def _metal(self, n: int) -> Array:
        t = _t(n)
        ratios = (1.0, 1.342, 1.2312, 1.6532, 1.9523, 2.1523)
        tone = np.zeros(n, dtype=F32)
        for r in ratios:
            cycles = 410 * self.tune * r * t
            tone += np.sign(np.sin((_TWO_PI * (cycles - np.floor(cycles))).astype(F32)))
        return band(tone, 6000, None, order=3)

    def _hat(self, tau: float) -> Array:
        n, t = _clock(tau * 6 + 0.02)
        x = band(self._noise(n), 7000, None, order=3) + 0.4 * self._metal(n)
        return _norm((x * np.exp(-t / (tau * self.decay))).astype(F32))

    def _ride(self) -> Array:
        n, t = _clock(1.6)
        x = 0.5 * band(self._noise(n), 5000, None) + self._metal(n)
        return _norm((x * (0.25 * np.exp(-t / 0.01) + np.exp(-t / 0.7))).astype(F32))

    def _crash(self) -> Array:
        n, t = _clock(2.2)
        x = band(self._noise(n), 3000, 14000) + 0.3 * self._metal(n)
        return _norm((x * np.exp(-t / 0.9)).astype(F32))

    def _shaker(self) -> Array:
        n, t = _clock(0.16)
        env = np.minimum(t / 0.01, 1.0) * np.exp(-t / 0.045)
        return _norm(band(self._noise(n), 4000, 10000) * env.astype(F32))

    def _rim(self) -> Array:
        n, t = _clock(0.08)
        x = _damped_sines(t, 0.012, ((1700, 1.0), (880, 0.7)))
        return _norm((x + 0.3 * band(self._noise(n), 2000, None) * np.exp(-t / 0.004)).astype(F32))

    def _tom(self) -> Array:
        n, t = _clock(1.0)
        body = self._sweep(n, 120 * self.tune, 68 * self.tune, 0.06) * np.exp(-t / (0.4 * self.decay))
        skin = band(self._noise(n), None, 1500) * np.exp(-t / 0.05) * 0.5
        return _norm(np.tanh(1.3 * (body + skin)).astype(F32))

    def _brush(self) -> Array:
        n, t = _clock(0.3)
        env = np.minimum(t / 0.015, 1.0) * np.exp(-t / 0.1)
        return _norm(band(self._noise(n), 2000, 8000) * env.astype(F32))


# --- textures: loops tiled under the whole track ------------------------------------------------------


def _loopable(x: Array) -> Array:
    """Make a noise loop seamless: cross-fade it with its own half-rotation, equal power."""
    n = len(x)
    w = np.sin(np.pi * np.arange(n) / n).astype(F32)
    return x * w + np.roll(x, n // 2) * np.cos(np.pi * np.arange(n) / n).astype(F32)


def vinyl(rng: np.random.Generator, n_loop: int = 3 * SR) -> Array:
    hiss = band(rng.standard_normal(n_loop).astype(F32), 1000, 7000) * F32(0.05)
    clicks = np.zeros(n_loop, dtype=F32)
    count = int(rng.poisson(7 * n_loop / SR))
    pos = rng.integers(0, n_loop - 64, count)
    clicks[pos] = (rng.uniform(0.2, 1.0, count) * rng.choice((-1.0, 1.0), count)).astype(F32)
    clicks = band(clicks, 600, 9000)
    rumble = band(rng.standard_normal(n_loop).astype(F32), None, 120) * F32(0.3)
    return _loopable(hiss + clicks * F32(0.6) + rumble)


def wind(rng: np.random.Generator, n_loop: int = 6 * SR) -> Array:
    dark = band(rng.standard_normal(n_loop).astype(F32), 150, 700)
    airy = band(rng.standard_normal(n_loop).astype(F32), 1500, 5000) * F32(0.3)
    t = np.arange(n_loop) / n_loop
    swell = (0.6 + 0.4 * np.sin(2 * np.pi * t * 2 + rng.uniform(0, 6.28))).astype(F32)
    return _loopable((dark + airy) * swell * F32(0.5))


def riser(rng: np.random.Generator, n: int) -> Array:
    """Noise swell into a section change, brightening as it rises."""
    noise = rng.standard_normal(n).astype(F32)
    low, high = band(noise, 200, 1500), band(noise, 2500, 12000)
    ramp = np.linspace(0.0, 1.0, n, dtype=F32)
    return (low * (1 - ramp) + high * ramp) * ramp**2 * F32(0.7)

"""Mix-bus processing: reverb, echo, sidechain ducking, loudness and a look-ahead limiter.

Everything is block-based and vectorised. The limiter is the one part with a hard promise: its
gain is the moving average of a windowed minimum, which can never exceed the gain needed at any
sample inside the window, so the output peak is at most the ceiling by construction.
"""

from __future__ import annotations

import numpy as np

from mediagen.engines.synth.voices import F32, SR, Array

REVERB_DECIMATE = 4


class Reverb:
    """Convolution with a decaying-noise impulse response, run at a quarter of the sample rate.

    A reverb tail carries little above 5 kHz, so convolving at 11 kHz costs 1/16 of full rate and
    sounds like a well-damped room. Streams chunk by chunk with overlap-add.
    """

    def __init__(self, rng: np.random.Generator, rt60: float, chunk: int, predelay: float = 0.02) -> None:
        rate = SR / REVERB_DECIMATE
        self.block = chunk // REVERB_DECIMATE
        n_ir = min(self.block, int(rt60 * 1.1 * rate))
        t = np.arange(n_ir) / rate
        decay = np.exp(-6.9 * t / rt60)
        onset = np.clip((t - predelay) / 0.01, 0, 1)
        self.fft_n = 1 << int(np.ceil(np.log2(self.block + n_ir)))
        irs = []
        for _ in range(2):
            ir = rng.standard_normal(n_ir) * decay * onset
            ir *= 1.0 / np.sqrt(np.sum(ir**2) + 1e-12)
            irs.append(np.fft.rfft(ir.astype(F32), self.fft_n))
        self.spectra = np.stack(irs)
        self.tail = np.zeros((2, self.fft_n), dtype=F32)

    def process(self, send: Array) -> Array:
        n = len(send)
        pad = (-n) % REVERB_DECIMATE
        x = np.pad(send, (0, pad)) if pad else send
        low = x.reshape(-1, REVERB_DECIMATE).mean(axis=1)
        m = len(low)
        wet = np.fft.irfft(np.fft.rfft(low, self.fft_n)[None, :] * self.spectra, self.fft_n).astype(F32)
        wet += self.tail
        out = wet[:, :m]
        self.tail = np.zeros_like(self.tail)
        self.tail[:, : self.fft_n - m] = wet[:, m:]
        up = np.repeat(out, REVERB_DECIMATE, axis=1)[:, :n]
        # Linear-ish interpolation back to full rate (a 4-tap box on the held samples).
        kernel = np.ones(REVERB_DECIMATE, dtype=F32) / REVERB_DECIMATE
        return np.stack([np.convolve(ch, kernel, mode="same") for ch in up])


class Echo:
    """Ping-pong delay with three repeats; keeps the history it needs across chunks."""

    def __init__(self, delay_s: float, feedback: float = 0.42) -> None:
        self.delay = int(round(delay_s * SR))
        self.feedback = feedback
        self.history = np.zeros(3 * self.delay, dtype=F32)

    def process(self, x: Array) -> Array:
        n = len(x)
        full = np.concatenate([self.history, x])
        out = np.zeros((2, n), dtype=F32)
        h = len(self.history)
        for k in (1, 2, 3):
            tap = full[h - k * self.delay : h - k * self.delay + n] * F32(self.feedback**k)
            out[(k + 1) % 2] += tap
            out[k % 2] += tap * F32(0.3)
        self.history = full[-h:].copy()
        return out


def duck_envelope(kicks: Array, start: int, n: int, depth: float, release: float = 0.16) -> Array:
    """Sidechain gain for samples [start, start+n): dips after every kick and recovers."""
    marker = np.full(n, -(10**9), dtype=np.int64)
    before = kicks[kicks < start]
    inside = kicks[(kicks >= start) & (kicks < start + n)]
    if len(before):
        marker[0] = before[-1]
    marker[inside - start] = inside
    last = np.maximum.accumulate(marker)
    since = (np.arange(start, start + n) - last).astype(F32) / F32(SR)
    attack = np.minimum(since / F32(0.004), F32(1.0))
    return F32(1.0) - F32(depth) * attack * np.exp(-since / F32(release))


def _sliding_min(x: Array, half: int) -> Array:
    """min(x[i-half : i+half+1]) for every i (van Herk / Gil-Werman, O(n))."""
    w = 2 * half + 1
    n = len(x)
    padded_len = n + 2 * half
    total = -(-padded_len // w) * w + w
    p = np.ones(total, dtype=x.dtype)
    p[half : half + n] = x
    blocks = p.reshape(-1, w)
    prefix = np.minimum.accumulate(blocks, axis=1).ravel()
    suffix = np.minimum.accumulate(blocks[:, ::-1], axis=1)[:, ::-1].ravel()
    return np.minimum(suffix[:n], prefix[w - 1 : w - 1 + n])


def _moving_average(x: Array, half: int) -> Array:
    w = 2 * half + 1
    c = np.concatenate([[0.0], np.cumsum(np.pad(x.astype(np.float64), half, mode="edge"))])
    return ((c[w:] - c[:-w]) / w).astype(F32)


def limiter_gain(peak: Array, ceiling: float, *, hold: float = 0.010, smooth: float = 0.005) -> Array:
    """Gain ≤ ceiling/peak everywhere, with look-ahead attack and hold-then-release."""
    need = np.minimum(F32(1.0), F32(ceiling) / np.maximum(peak, F32(1e-9)))
    h, a = int(hold * SR), int(smooth * SR)
    return np.minimum(_moving_average(_sliding_min(need, h), min(a, h)), F32(1.0))


def master(mix: Array, *, ceiling_db: float, target_rms_db: float, max_reduction_db: float = 6.0) -> Array:
    """Loudness to a target, peaks held under the ceiling, no clipping. Works in place on `mix`."""
    ceiling = 10 ** (ceiling_db / 20)
    block = 4096
    energies: list[Array] = []
    peak = 1e-9
    for s in range(0, mix.shape[1], 1 << 18):  # in slices: no full-length temporaries
        part = mix[:, s : s + (1 << 18)]
        peak = max(peak, float(np.max(np.abs(part))))
        mono = part.mean(axis=0, dtype=np.float64)
        usable = len(mono) // block * block
        if usable:
            energies.append(np.mean(mono[:usable].reshape(-1, block) ** 2, axis=1))
        elif not energies:
            energies.append(np.array([np.mean(mono**2)]))
    power = np.concatenate(energies)
    active = power[power > (10 ** (-50 / 20)) ** 2]  # ignore silent blocks (-50 dBFS)
    rms = float(np.sqrt(np.mean(active if len(active) else power)))
    gain = 10 ** (target_rms_db / 20) / max(rms, 1e-9)
    gain = min(gain, ceiling * 10 ** (max_reduction_db / 20) / peak)
    chunk = 1 << 18
    margin = int(0.05 * SR)
    n = mix.shape[1]
    gains = np.empty(n, dtype=F32)
    for s in range(0, n, chunk):
        lo, hi = max(0, s - margin), min(n, s + chunk + margin)
        g = limiter_gain(np.max(np.abs(mix[:, lo:hi]), axis=0) * F32(gain), ceiling) * F32(gain)
        gains[s : min(n, s + chunk)] = g[s - lo : s - lo + min(chunk, n - s)]
    mix *= gains
    np.clip(mix, -ceiling, ceiling, out=mix)
    return mix


def fades(mix: Array, *, fade_in: float, fade_out: float) -> None:
    n = mix.shape[1]
    k = min(n, int(fade_in * SR))
    if k:
        mix[:, :k] *= np.linspace(0, 1, k, dtype=F32) ** 2
    k = min(n, int(fade_out * SR))
    if k:
        mix[:, n - k :] *= np.cos(np.linspace(0, np.pi / 2, k, dtype=F32)) ** 2

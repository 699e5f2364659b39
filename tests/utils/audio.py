"""Audio checks shared by tests: tempo from onset autocorrelation."""

from __future__ import annotations

import numpy as np


def estimate_bpm(mono: np.ndarray, rate: int, lo: float = 60.0, hi: float = 200.0) -> float:
    """Tempo by autocorrelation of spectral-flux onset strength, scored over 1, 2 and 4 beats."""
    hop, win = 256, 1024
    n = (len(mono) - win) // hop
    idx = np.arange(win)[None, :] + hop * np.arange(n)[:, None]
    mag = np.log1p(100 * np.abs(np.fft.rfft(mono[idx] * np.hanning(win), axis=1)))
    flux = np.maximum(np.diff(mag, axis=0), 0).sum(axis=1)
    flux -= flux.mean()
    ac = np.correlate(flux, flux, "full")[len(flux) - 1 :]
    fps = rate / hop
    candidates = np.arange(lo, hi, 0.1)
    scores = []
    for bpm in candidates:
        score = 0.0
        for beats in (1, 2, 4):
            lag = 60 * fps / bpm * beats
            i, frac = int(lag), lag - int(lag)
            if i + 1 < len(ac):
                score += (1 - frac) * ac[i] + frac * ac[i + 1]
        scores.append(score)
    return float(candidates[int(np.argmax(scores))])

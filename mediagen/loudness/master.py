"""Mastering to a delivery preset: gain to the target, true-peak limiting to the ceiling, then
measured again (what is stored is the measurement of what was delivered).

The limiter works on the whole signal at once (this is offline mastering, not a live chain), so its
gain curve is built from array operations rather than a per-sample loop: the per-frame true-peak
envelope is computed once, and each pass of the loudness search only re-derives the gain curve and
re-measures the integrated loudness.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from mediagen.loudness.meter import (
    TP_CONTEXT,
    TP_DELAY,
    Measurement,
    as_channels,
    integrated_loudness,
    measure,
    oversampled_peaks,
)
from mediagen.loudness.presets import LoudnessPreset

# The gain reduction is fully in place by the peak it answers and ramps down over the look-ahead
# before it, so a transient is turned down rather than clipped; it is held a little after (so the
# cycles of a bass note do not each pull the gain) and recovers exponentially (in dB) after that.
LOOK_AHEAD_S = 0.005
HOLD_S = 0.010
RELEASE_S = 0.100  # time constant: a 6 dB reduction is back within 1 dB after ~180 ms

_AIM_UNDER_CEILING_DB = 0.05  # the gain is smooth, not per-point exact: leave a sliver of room
_AIM_LU = 0.1  # how close the search lands before stopping; presets allow ±0.5
_SEARCH_PASSES = 8
_CEILING_RETRIES = 3
_ENVELOPE_CHUNK = 1 << 18


def master(
    samples: np.ndarray,
    rate: int,
    preset: LoudnessPreset,
    *,
    offset_lu: float = 0.0,
    headroom_db: float = 0.0,
) -> tuple[np.ndarray, Measurement]:
    """Samples (channels × frames float32) at the preset's integrated loudness (±0.5 LU) with no true
    peak above its ceiling, and their measurement.

    `offset_lu` and `headroom_db` are for deliveries through a lossy encoder, which changes both
    figures after the fact (AAC and MP3 low-pass the top octave and lose a few tenths of a LU; AAC
    adds true-peak overshoot): aim `offset_lu` above the target and `headroom_db` under the ceiling,
    typically by what a first encode measured as lost and as over.
    """
    if headroom_db < 0:
        raise ValueError("headroom_db is room under the ceiling, it cannot be negative")
    audio = as_channels(samples)
    shape = np.shape(samples)
    loudness = integrated_loudness(audio, rate)
    if loudness is None:  # silence (or all of it under the gate): no gain would make it a programme
        delivered = audio.astype(np.float32).reshape(shape)
        return delivered, measure(delivered, rate)

    target = preset.target_lufs + offset_lu
    ceiling = preset.ceiling_dbtp - headroom_db
    peaks_db = _true_peak_envelope_db(audio)
    aim_db = ceiling - _AIM_UNDER_CEILING_DB
    gain_db = target - loudness
    for _ in range(_CEILING_RETRIES):
        gain_db, delivered = _search_gain(audio, rate, peaks_db, gain_db, aim_db, target)
        measurement = measure(delivered, rate)
        overshoot = (measurement.true_peak_dbtp or -math.inf) - ceiling
        if overshoot <= 0.0:
            break
        aim_db -= overshoot + _AIM_UNDER_CEILING_DB
    return delivered.reshape(shape), measurement


def _search_gain(
    audio: np.ndarray, rate: int, peaks_db: np.ndarray, gain_db: float, ceiling_db: float, target: float
) -> tuple[float, np.ndarray]:
    """The make-up gain that, after limiting, lands on `target`, by the secant method: limiting
    takes back part of each dB added, so the loudness rises with the gain but by less than 1:1."""
    previous: tuple[float, float] | None = None
    delivered = audio.astype(np.float32)
    for _ in range(_SEARCH_PASSES):
        curve_db = gain_db + limiter_gain_db(peaks_db + gain_db, ceiling_db, rate)
        delivered = (audio * 10.0 ** (curve_db / 20.0)).astype(np.float32)
        loudness = integrated_loudness(delivered, rate)
        if loudness is None:
            break
        error = target - loudness
        if abs(error) <= _AIM_LU:
            break
        slope = 1.0
        if previous is not None and gain_db != previous[0]:
            slope = min(1.0, max(0.05, (loudness - previous[1]) / (gain_db - previous[0])))
        previous = (gain_db, loudness)
        gain_db += error / slope
    return gain_db, delivered


def limiter_gain_db(peaks_db: np.ndarray, ceiling_db: float, rate: int) -> np.ndarray:
    """Per-frame gain (dB, ≤ 0) that keeps every true peak of `peaks_db` at or under the ceiling.

    Built so that it never exceeds what any frame within reach needs: a minimum over the look-ahead
    and hold, an exponential release (which only lowers it), then two moving averages over the past
    whose combined reach is the look-ahead, so every averaged value already answers the peak ahead.
    """
    needed = np.minimum(0.0, ceiling_db - peaks_db)
    if needed.min() >= 0.0:
        return needed
    look_ahead = max(2, round(LOOK_AHEAD_S * rate))
    hold = round(HOLD_S * rate)
    # Window [n − hold, n + look_ahead − 1]: ndimage reaches back size // 2 + origin.
    size = hold + look_ahead
    held = ndimage.minimum_filter1d(needed, size, mode="nearest", origin=hold - size // 2)
    released = _release(held, math.exp(-1.0 / (RELEASE_S * rate)))
    smooth = (look_ahead + 1) // 2
    for _ in range(2):  # window [n − smooth + 1, n]
        released = ndimage.uniform_filter1d(released, smooth, mode="nearest", origin=(smooth - 1) // 2)
    return released


def _release(held: np.ndarray, decay: float) -> np.ndarray:
    """r[n] = min(held[n], decay · r[n−1]) without a per-sample loop: scaled by decay⁻ⁿ the
    recursion becomes a running minimum. Done in blocks short enough that decay⁻ⁿ stays moderate."""
    block = max(1, int(20.0 / -math.log(decay)))  # decay^-block = e^20
    scale = decay ** -np.arange(min(block, held.shape[0]), dtype=np.float64)
    out = np.empty_like(held)
    carry = 0.0
    for start in range(0, held.shape[0], block):
        part = held[start : start + block]
        factors = scale[: part.shape[0]]
        scaled = np.minimum(np.minimum.accumulate(part * factors), carry * decay)
        out[start : start + part.shape[0]] = scaled / factors
        carry = float(out[start + part.shape[0] - 1])
    return out


def _true_peak_envelope_db(audio: np.ndarray) -> np.ndarray:
    """Per frame n, the largest true peak (all channels, 4× oversampled) between n − 1 and n + 1,
    in dBFS: the gain at a frame also scales the interpolated points on either side of it."""
    frames = audio.shape[1]
    padded = np.pad(audio, ((0, 0), (TP_CONTEXT, TP_CONTEXT)))
    # interpolated[m]: the points at m − TP_DELAY + 1/4, 1/2, 3/4 (m over the whole ring-in and out)
    interpolated = np.concatenate(
        [
            oversampled_peaks(padded[:, start : start + _ENVELOPE_CHUNK + TP_CONTEXT]).max(axis=0)
            for start in range(0, frames + TP_CONTEXT, _ENVELOPE_CHUNK)
        ]
    )
    between = np.maximum(np.abs(audio).max(axis=0), interpolated[TP_DELAY : TP_DELAY + frames])  # [n, n + 1)
    between[0] = max(between[0], interpolated[:TP_DELAY].max())  # the ring-in before the first frame
    between[-1] = max(between[-1], interpolated[TP_DELAY + frames :].max())  # and the ring-out after
    envelope = between.copy()
    envelope[1:] = np.maximum(between[1:], between[:-1])
    with np.errstate(divide="ignore"):
        return 20.0 * np.log10(envelope)

"""Mastering, judged by FFmpeg's `ebur128` meter (not ours) on what comes out."""

from __future__ import annotations

import time
from pathlib import Path

import av
import numpy as np
import pytest

from mediagen.engines.audio_io import audio_frames
from mediagen.loudness import PRESETS, LoudnessPreset, Measurement, master, measure, measure_file
from mediagen.loudness.master import LOOK_AHEAD_S, limiter_gain_db
from tests.loudness.test_meter import RATE, ebur128, music, sine


def assert_delivered(samples: np.ndarray, rate: int, preset: LoudnessPreset) -> Measurement:
    independent = ebur128(samples, rate)
    assert independent.integrated_lufs == pytest.approx(preset.target_lufs, abs=0.5)
    assert independent.true_peak_dbtp is not None and independent.true_peak_dbtp <= preset.ceiling_dbtp + 0.1
    return independent


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_each_preset_lands_on_target_under_its_ceiling(name: str) -> None:
    preset = PRESETS[name]
    mix = music(12, RATE, -3.0, seed=11)  # about −19 LUFS: social and podcast need limiting
    delivered, reported = master(mix, RATE, preset)
    assert delivered.dtype == np.float32 and delivered.shape == mix.shape
    assert_delivered(delivered, RATE, preset)
    assert reported == measure(delivered, RATE)  # the stored figures are those of the delivery
    assert reported.integrated_lufs == pytest.approx(preset.target_lufs, abs=0.2)
    assert reported.true_peak_dbtp is not None and reported.true_peak_dbtp <= preset.ceiling_dbtp


def test_a_quiet_input_is_raised_and_a_loud_one_lowered() -> None:
    quiet = music(10, RATE, -30.0, seed=12)
    loud = np.tanh(4 * music(10, RATE, 0.0, seed=13))  # squashed: about −9 LUFS
    assert (measure(quiet, RATE).integrated_lufs or 0) < -40
    assert (measure(loud, RATE).integrated_lufs or -99) > -12
    raised, _ = master(quiet, RATE, PRESETS["social"])
    lowered, _ = master(loud, RATE, PRESETS["broadcast_eu"])
    assert np.abs(raised).max() > 10 * np.abs(quiet).max()
    assert np.abs(lowered).max() < np.abs(loud).max() / 5
    assert_delivered(raised, RATE, PRESETS["social"])
    assert_delivered(lowered, RATE, PRESETS["broadcast_eu"])


def test_very_peaky_material_is_limited_hard_and_still_lands() -> None:
    # Sparse loud hits over a quiet bed: reaching −14 LUFS takes ~10 dB of peak reduction.
    bed = music(10, RATE, -30.0, seed=14)
    t = np.arange(bed.shape[1]) / RATE
    hits = np.sin(2 * np.pi * 180 * t) * np.exp(-(t % 1.0) / 0.03) * 0.9
    delivered, _ = master(bed + hits, RATE, PRESETS["social"])
    assert_delivered(delivered, RATE, PRESETS["social"])


def test_silence_stays_silence() -> None:
    silence = np.zeros((2, RATE * 3))
    delivered, reported = master(silence, RATE, PRESETS["social"])
    assert not delivered.any() and reported == Measurement(None, None, None)
    hiss = np.random.default_rng(15).standard_normal((2, RATE * 3)) * 1e-5  # under the −70 gate
    delivered, reported = master(hiss, RATE, PRESETS["social"])
    np.testing.assert_array_equal(delivered, hiss.astype(np.float32))  # no gain at all
    assert reported.integrated_lufs is None


def test_mono_stays_mono() -> None:
    mix = music(10, RATE, -6.0, seed=16, channels=1)
    for samples in (mix, mix[0]):  # channels × frames, or a plain 1-D array
        delivered, reported = master(samples, RATE, PRESETS["podcast"])
        assert delivered.shape == samples.shape
        assert_delivered(delivered.reshape(1, -1), RATE, PRESETS["podcast"])
        assert reported.integrated_lufs == pytest.approx(-16.0, abs=0.2)


def test_the_limiter_leaves_audio_away_from_peaks_untouched() -> None:
    # A steady tone with a few sharp clicks: only the clicks' surroundings may be turned down; the
    # tone elsewhere must come out as a clean copy at one gain (no pumping, no distortion).
    tone = sine(440, -20.0, 8)
    clicks = np.zeros_like(tone)
    at = [RATE * 2, RATE * 4, RATE * 6]
    for i in at:
        clicks[i : i + 48] = 0.9 * np.hanning(48) * np.sign(np.sin(np.arange(48)))
    mix = np.stack([tone + clicks, tone + clicks])
    delivered, _ = master(mix, RATE, PRESETS["social"])
    assert_delivered(delivered, RATE, PRESETS["social"])
    ratio = delivered[0].astype(np.float64) / np.where(np.abs(mix[0]) > 1e-3, mix[0], np.nan)
    gain = np.nanmedian(ratio)
    far = np.ones(tone.shape[0], bool)
    for i in at:
        far[i - RATE // 50 : i + RATE] = False  # the look-ahead before, and a second of release after
    np.testing.assert_allclose(ratio[far & ~np.isnan(ratio)], gain, rtol=2e-4)
    near = slice(at[0] - RATE // 50, at[0] + RATE // 2)
    gain_db = 20 * np.log10(np.abs(ratio[near][~np.isnan(ratio[near])]))
    assert gain_db.min() < 20 * np.log10(gain) - 3  # the click was turned down …
    assert np.abs(np.diff(gain_db)).max() < 0.2  # … smoothly, never by a jump


def test_limiter_gain_never_exceeds_what_any_peak_allows() -> None:
    rng = np.random.default_rng(17)
    peaks_db = rng.normal(-12, 4, 96_000)
    peaks_db[rng.integers(0, 96_000, 40)] = 6.0  # isolated overs
    gain = limiter_gain_db(peaks_db, -1.0, RATE)
    assert (gain <= 0).all()
    assert (peaks_db + gain <= -1.0 + 1e-9).all()
    # Attack spread over the look-ahead: no step larger than a fraction of the largest reduction.
    assert np.abs(np.diff(gain)).max() < 7.0 / (LOOK_AHEAD_S * RATE / 4)
    assert limiter_gain_db(np.full(100, -20.0), -1.0, RATE).tolist() == [0.0] * 100


def test_thirty_seconds_of_stereo_masters_quickly() -> None:
    mix = music(30, RATE, -3.0, seed=18)
    start = time.perf_counter()
    delivered, _ = master(mix, RATE, PRESETS["social"])
    elapsed = time.perf_counter() - start
    assert elapsed < 2.0, f"{elapsed:.2f} s"
    assert_delivered(delivered, RATE, PRESETS["social"])


def _aac(samples: np.ndarray, path: Path) -> np.ndarray:
    """Through FFmpeg's AAC encoder at 160 kb/s and back."""
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=RATE, layout="stereo")
        stream.bit_rate = 160_000
        for frame in audio_frames(samples, rate=RATE, chunk=RATE // 4):
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    with av.open(str(path)) as container:
        return np.concatenate([f.to_ndarray() for f in container.decode(audio=0)], axis=1)


def test_a_lossy_delivery_is_compensated_from_a_first_encode(tmp_path: Path) -> None:
    preset = PRESETS["social"]
    mix = music(8, RATE, -3.0, seed=19)
    fade = np.clip(np.arange(mix.shape[1]) / (RATE * 0.5), 0, 1)
    mix *= np.minimum(fade, fade[::-1])
    delivered, reported = master(mix, RATE, preset)
    _aac(delivered, tmp_path / "first.m4a")
    first = measure_file(tmp_path / "first.m4a")
    assert first is not None and first.integrated_lufs is not None and first.true_peak_dbtp is not None
    assert reported.integrated_lufs is not None and first.integrated_lufs < reported.integrated_lufs
    delivered, _ = master(
        mix,
        RATE,
        preset,
        offset_lu=preset.target_lufs - first.integrated_lufs,
        headroom_db=max(0.0, first.true_peak_dbtp - preset.ceiling_dbtp) + 0.1,
    )
    assert_delivered(_aac(delivered, tmp_path / "second.m4a"), RATE, preset)
    with pytest.raises(ValueError):
        master(mix, RATE, preset, headroom_db=-1.0)

"""Waveform peaks in audiowaveform v2 JSON, checked against signals with known levels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mediagen.engines.synth.video import render_video
from mediagen.media import MediaError, waveform_peaks

SR = 44_100


def tone(path: Path, amplitude: float, seconds: float = 2.0, channels: int = 2) -> Path:
    t = np.arange(int(seconds * SR)) / SR
    x = amplitude * np.sin(2 * np.pi * 220 * t)
    sf.write(str(path), np.stack([x] * channels, axis=1) if channels > 1 else x, SR, subtype="PCM_16")
    return path


def test_format_fields(tmp_path: Path) -> None:
    peaks = waveform_peaks(tone(tmp_path / "a.wav", 0.5))
    assert peaks["version"] == 2 and peaks["channels"] == 1 and peaks["bits"] == 8
    assert peaks["sample_rate"] == SR and peaks["samples_per_pixel"] == SR // 100
    assert peaks["length"] == 200 and len(peaks["data"]) == 2 * peaks["length"]
    mins, maxs = peaks["data"][0::2], peaks["data"][1::2]
    assert all(lo <= hi for lo, hi in zip(mins, maxs, strict=True))
    assert all(-128 <= v <= 127 for v in peaks["data"])
    assert max(maxs) == pytest.approx(64, abs=2) and min(mins) == pytest.approx(-64, abs=2)  # 0.5 × 128


def test_levels_are_absolute_not_normalised(tmp_path: Path) -> None:
    loud = waveform_peaks(tone(tmp_path / "loud.wav", 0.8))
    quiet = waveform_peaks(tone(tmp_path / "quiet.wav", 0.2))
    assert max(quiet["data"]) < max(loud["data"]) / 3
    assert min(quiet["data"]) > min(loud["data"]) / 3


def test_sixteen_bits_and_mono_mix(tmp_path: Path) -> None:
    path = tmp_path / "lr.wav"
    t = np.arange(SR) / SR
    left = 0.6 * np.sin(2 * np.pi * 110 * t)
    sf.write(str(path), np.stack([left, np.zeros_like(left)], axis=1), SR, subtype="PCM_16")
    peaks = waveform_peaks(path, bits=16, pixels_per_second=50)
    assert peaks["bits"] == 16 and peaks["samples_per_pixel"] == SR // 50 and peaks["length"] == 50
    assert max(peaks["data"]) == pytest.approx(0.3 * 32768, rel=0.02)  # averaged to mono
    with pytest.raises(ValueError):
        waveform_peaks(path, bits=12)


def test_long_files_are_capped(tmp_path: Path) -> None:
    path = tone(tmp_path / "long.wav", 0.3, seconds=12.0, channels=1)
    peaks = waveform_peaks(path, max_length=500)
    assert peaks["length"] <= 500
    covered = peaks["length"] * peaks["samples_per_pixel"] / SR
    assert covered == pytest.approx(12.0, abs=peaks["samples_per_pixel"] / SR + 0.01)


def test_mp3_and_video(tmp_path: Path) -> None:
    mp4 = tmp_path / "clip.mp4"
    render_video("edm", duration=1.0, fps=8, width=64, height=48, seed=1, soundtrack=True, out=mp4)
    peaks = waveform_peaks(mp4)
    assert peaks["length"] == pytest.approx(100, abs=3) and max(peaks["data"]) > 5
    silent = tmp_path / "silent.mp4"
    render_video("edm", duration=1.0, fps=8, width=64, height=48, seed=1, out=silent)
    with pytest.raises(MediaError, match="no audio"):
        waveform_peaks(silent)


def test_garbage(tmp_path: Path) -> None:
    bad = tmp_path / "x.mp3"
    bad.write_bytes(b"")
    with pytest.raises(MediaError):
        waveform_peaks(bad)

"""The loudness meter fed from our own decode pass gives the meter's own figures, alone or riding
along the waveform's pass."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mediagen.engines.synth.video import render_video
from mediagen.loudness import Measurement, measure_file
from mediagen.media import MediaError, waveform_peaks
from mediagen.media.metering import MeterTap, measure_loudness


def noise(path: Path, rate: int, channels: int, seconds: float = 4.0) -> Path:
    rng = np.random.default_rng(7)
    sf.write(str(path), 0.1 * rng.standard_normal((int(seconds * rate), channels)), rate, subtype="PCM_16")
    return path


@pytest.mark.parametrize(("rate", "channels"), [(48_000, 2), (44_100, 1), (22_050, 2)])
def test_a_tap_on_the_waveform_pass_measures_what_the_meter_does(
    tmp_path: Path, rate: int, channels: int
) -> None:
    path = noise(tmp_path / "n.wav", rate, channels)
    tap = MeterTap()
    peaks = waveform_peaks(path, tap=tap)
    expected = measure_file(path)
    assert expected is not None and expected.integrated_lufs is not None
    assert tap.result() == expected == measure_loudness(path)
    assert peaks == waveform_peaks(path)  # the tap changes nothing in the waveform


def test_the_tap_sees_every_sample(tmp_path: Path) -> None:
    path = noise(tmp_path / "n.wav", 44_100, 2, seconds=2.5)
    seen: list[tuple[int, int, int]] = []
    waveform_peaks(path, tap=lambda block, rate: seen.append((block.shape[0], block.shape[1], rate)))
    assert {(channels, rate) for channels, _, rate in seen} == {(2, 44_100)}
    assert sum(frames for _, frames, _ in seen) == int(2.5 * 44_100)


def test_a_video_is_measured_by_its_sound_and_one_without_sound_is_not(tmp_path: Path) -> None:
    common = {"duration": 2.0, "fps": 12, "width": 96, "height": 64, "seed": 3}
    render_video("x", soundtrack=True, out=tmp_path / "s.mp4", **common)  # type: ignore[arg-type]
    render_video("x", soundtrack=False, out=tmp_path / "m.mp4", **common)  # type: ignore[arg-type]
    assert measure_loudness(tmp_path / "s.mp4") == measure_file(tmp_path / "s.mp4")
    assert measure_loudness(tmp_path / "m.mp4") is None


def test_a_meter_failure_is_kept_for_the_result(tmp_path: Path) -> None:
    tap = MeterTap()
    tap(np.zeros((2, 100), dtype=np.float32), 48_000)
    tap(np.zeros((3, 100), dtype=np.float32), 48_000)  # the channel count changed mid-stream
    tap(np.zeros((2, 100), dtype=np.float32), 48_000)  # ignored from then on
    with pytest.raises(ValueError):
        tap.result()
    assert MeterTap().result() == Measurement(None, None, None)  # nothing fed: nothing to say
    with pytest.raises(MediaError):
        measure_loudness(tmp_path / "missing.wav")

"""Frames → MP4, decoded back with PyAV: count, size, rate, exact length, colours, stable bytes."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from mediagen.engines.video_io import write_mp4


def clip(frames: int = 9, width: int = 64, height: int = 48) -> np.ndarray:
    """Smooth gradients that move: what x264 keeps well at our quality, so errors mean a bug."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    out = np.empty((frames, height, width, 3), np.uint8)
    for t in range(frames):
        out[t, ..., 0] = np.rint(x * 255 / (width - 1))
        out[t, ..., 1] = np.rint(y * 255 / (height - 1))
        out[t, ..., 2] = np.rint(t * 255 / max(1, frames - 1))
    return out


def decode(path: Path) -> tuple[np.ndarray, Fraction, float, str, str]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(stream)])
        assert stream.average_rate is not None and stream.duration is not None and stream.time_base
        duration = float(stream.duration * stream.time_base)
        pix_fmt = str(stream.codec_context.pix_fmt)
        return frames, Fraction(stream.average_rate), duration, stream.codec_context.name, pix_fmt


def test_frames_decode_back_with_count_size_rate_and_colours(tmp_path: Path) -> None:
    frames = clip(frames=9, width=64, height=48)
    path = tmp_path / "v.mp4"
    assert write_mp4(frames, path, fps=12) == "video/mp4"
    got, rate, duration, codec, pix_fmt = decode(path)
    assert got.shape == frames.shape
    assert rate == 12
    assert duration == pytest.approx(9 / 12, abs=1e-6)
    assert (codec, pix_fmt) == ("h264", "yuv420p")
    # yuv420p halves colour resolution and x264 at CRF 18 is lossy: ~2 levels of 255 on average
    # here (measured 2.1); 4 leaves room for another x264 build, while a wrong colour matrix or
    # channel order errs by tens.
    assert np.abs(got.astype(np.int16) - frames).mean() < 4


def test_faststart_and_same_frames_give_same_bytes(tmp_path: Path) -> None:
    frames = clip(frames=5, width=32, height=32)
    a, b = tmp_path / "a.mp4", tmp_path / "b.mp4"
    write_mp4(frames, a, fps=16)
    write_mp4(frames, b, fps=16)
    data = a.read_bytes()
    assert data == b.read_bytes()
    assert data.index(b"moov") < data.index(b"mdat")  # the index comes first: playback starts early


def test_one_frame_lasts_one_frame_time(tmp_path: Path) -> None:
    path = tmp_path / "one.mp4"
    write_mp4(clip(frames=1, width=32, height=32), path, fps=16)
    got, rate, duration, _, _ = decode(path)
    assert got.shape[0] == 1 and rate == 16 and duration == pytest.approx(1 / 16, abs=1e-6)


@pytest.mark.parametrize(
    "frames",
    [
        np.zeros((3, 33, 32, 3), np.uint8),  # odd height: yuv420p cannot hold it
        np.zeros((3, 32, 32, 3), np.float32),
        np.zeros((3, 32, 32), np.uint8),
        np.zeros((0, 32, 32, 3), np.uint8),
    ],
)
def test_refuses_what_it_cannot_write(tmp_path: Path, frames: np.ndarray) -> None:
    with pytest.raises(ValueError):
        write_mp4(frames, tmp_path / "x.mp4", fps=16)

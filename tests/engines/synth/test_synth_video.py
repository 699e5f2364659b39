"""Procedural video, decoded back with PyAV: frames, duration, size, codecs, determinism."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from mediagen.engines.synth.video import render_video


def decode_video(path: Path) -> dict:
    with av.open(str(path)) as container:
        v = container.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(v)]
        info = {
            "duration": container.duration / av.time_base,
            "codec": v.codec_context.codec.canonical_name,
            "pix_fmt": v.codec_context.pix_fmt,
            "size": (v.codec_context.width, v.codec_context.height),
            "audio": [a.codec_context.codec.canonical_name for a in container.streams.audio],
        }
    info["frames"] = frames
    return info


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("video") / "clip.mp4"
    meta = render_video("sunset over the ocean", duration=2.0, fps=12, width=320, height=180, seed=2, out=out)
    return out, meta


def test_frames_duration_size_codec(clip: tuple[Path, dict]) -> None:
    path, meta = clip
    info = decode_video(path)
    assert len(info["frames"]) == 24
    assert abs(info["duration"] - 2.0) <= 0.1
    assert info["size"] == (320, 180) and info["frames"][0].shape == (180, 320, 3)
    assert info["codec"] == "h264" and info["pix_fmt"] == "yuv420p"
    assert info["audio"] == []
    assert meta["content_type"] == "video/mp4" and meta["frames"] == 24
    assert np.abs(info["frames"][-4].astype(int) - info["frames"][4].astype(int)).mean() > 1  # it moves


def test_same_seed_same_bytes(clip: tuple[Path, dict], tmp_path: Path) -> None:
    again = tmp_path / "again.mp4"
    render_video("sunset over the ocean", duration=2.0, fps=12, width=320, height=180, seed=2, out=again)
    assert again.read_bytes() == clip[0].read_bytes()


def test_soundtrack_is_muxed_and_lengths_match(tmp_path: Path) -> None:
    out = tmp_path / "music.mp4"
    meta = render_video(
        "upbeat edm", duration=1.5, fps=10, width=160, height=90, seed=1, soundtrack=True, out=out
    )
    info = decode_video(out)
    assert info["audio"] == ["aac"]
    assert abs(info["duration"] - 1.5) <= 0.1 and len(info["frames"]) == 15
    with av.open(str(out)) as container:
        samples = sum(f.samples for f in container.decode(audio=0))
    assert abs(samples / 44_100 - 1.5) <= 0.1
    assert meta["music"]["bpm"] > 0 and meta["audio_codec"] == "aac"


def test_fractional_duration_at_low_fps_ends_on_time(tmp_path: Path) -> None:
    out = tmp_path / "slow.mp4"
    render_video("clouds", duration=2.5, fps=1, width=64, height=64, seed=1, out=out)
    info = decode_video(out)
    assert len(info["frames"]) == 3 and abs(info["duration"] - 2.5) <= 0.1


def test_image_is_the_start_frame(tmp_path: Path) -> None:
    src = tmp_path / "start.png"
    gradient = np.zeros((90, 160, 3), dtype=np.uint8)
    gradient[..., 0] = np.linspace(0, 255, 160, dtype=np.uint8)[None, :]
    gradient[..., 2] = 200
    Image.fromarray(gradient).save(src)
    out = tmp_path / "from_image.mp4"
    meta = render_video("x", duration=1.0, fps=8, width=160, height=90, seed=1, image_path=src, out=out)
    first = decode_video(out)["frames"][0].astype(int)
    assert np.abs(first - gradient.astype(int)).mean() < 12  # yuv420p round trip, slight resample
    assert meta["background"] == "image"


def test_rejects_odd_dimensions(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        render_video("x", duration=1.0, fps=8, width=161, height=90, seed=1, out=tmp_path / "x.mp4")

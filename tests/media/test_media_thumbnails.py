"""Thumbnails and posters: WebP, right size, aspect kept."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mediagen.engines.synth.video import render_video
from mediagen.media import MediaError, image_thumbnail, video_poster, video_thumbnail


def open_webp(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    assert img.format == "WEBP"
    return img


@pytest.mark.parametrize(
    ("size", "expected"), [((1200, 600), (400, 200)), ((300, 900), (133, 400)), ((120, 80), (120, 80))]
)
def test_image_thumbnail(tmp_path: Path, size: tuple[int, int], expected: tuple[int, int]) -> None:
    path = tmp_path / "pic.jpg"
    Image.fromarray((np.random.default_rng(1).random((size[1], size[0], 3)) * 255).astype(np.uint8)).save(
        path
    )
    thumb = open_webp(image_thumbnail(path))
    assert max(thumb.size) <= 400
    assert abs(thumb.size[0] - expected[0]) <= 1 and abs(thumb.size[1] - expected[1]) <= 1


def test_alpha_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "alpha.png"
    Image.new("RGBA", (800, 800), (255, 0, 0, 40)).save(path)
    assert open_webp(image_thumbnail(path)).mode == "RGBA"


def test_video_poster_and_thumbnail(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    render_video("sunset", duration=2.0, fps=10, width=640, height=360, seed=1, out=path)
    poster = open_webp(video_poster(path))
    assert poster.size == (640, 360)
    assert np.asarray(poster.convert("L")).mean() > 10  # past the fade-in, not a black frame
    thumb = open_webp(video_thumbnail(path))
    assert thumb.size == (400, 225)


def test_errors(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.png"
    bogus.write_bytes(b"not an image at all")
    with pytest.raises(MediaError):
        image_thumbnail(bogus)
    audio_only = tmp_path / "a.wav"
    audio_only.write_bytes(b"")
    with pytest.raises(MediaError):
        video_poster(audio_only)

"""Procedural images: exact size and format, deterministic for a seed, different across seeds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mediagen.engines.synth.image import render_image


@pytest.mark.parametrize(
    ("fmt", "pil_format", "mime"),
    [("png", "PNG", "image/png"), ("jpg", "JPEG", "image/jpeg"), ("webp", "WEBP", "image/webp")],
)
def test_size_and_format(tmp_path: Path, fmt: str, pil_format: str, mime: str) -> None:
    out = tmp_path / f"img.{fmt}"
    meta = render_image(
        "sunset over the mountains", width=320, height=200, seed=3, output_format=fmt, out=out
    )
    with Image.open(out) as img:
        assert img.format == pil_format and img.size == (320, 200) and img.mode == "RGB"
        pixels = np.asarray(img)
    assert pixels.std() > 5  # a picture, not a flat fill
    assert meta["content_type"] == mime and meta["width"] == 320 and meta["height"] == 200


def test_deterministic_for_a_seed(tmp_path: Path) -> None:
    a, b, c = (tmp_path / n for n in ("a.png", "b.png", "c.png"))
    render_image("neon city at night", width=160, height=96, seed=7, output_format="png", out=a)
    render_image("neon city at night", width=160, height=96, seed=7, output_format="png", out=b)
    render_image("neon city at night", width=160, height=96, seed=8, output_format="png", out=c)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()


def test_colour_words_steer_the_palette(tmp_path: Path) -> None:
    means = {}
    for word in ("red", "blue"):
        out = tmp_path / f"{word}.png"
        render_image(
            f"abstract {word} and {word} shapes", width=128, height=128, seed=1, output_format="png", out=out
        )
        means[word] = np.asarray(Image.open(out), dtype=float).reshape(-1, 3).mean(axis=0)
    assert means["red"][0] > means["red"][2]
    assert means["blue"][2] > means["blue"][0]


def test_motifs_reported(tmp_path: Path) -> None:
    meta = render_image(
        "calm ocean waves at sunset", width=96, height=64, seed=1, output_format="png", out=tmp_path / "x.png"
    )
    assert "waves" in meta["motifs"] and "sun" in meta["motifs"]


def test_rejects_bad_size(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        render_image("x", width=0, height=64, seed=1, output_format="png", out=tmp_path / "x.png")

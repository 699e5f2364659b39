"""Procedural images: palette from the prompt's colour and mood words, composition from the seed.

The picture is built in layers, the way an illustrator would block it in: a gradient sky or
field, a soft cloud texture, the motifs the prompt names (sun, mountains, sea, city, stars, …) or
abstract shapes when it names none, then light (glow, vignette) and film grain. `compose` returns
pixels so the video renderer can animate the same picture.
"""

from __future__ import annotations

import colorsys
import io
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from mediagen.engines.synth.prompt import Plan, make_plan, rng_for

ImageFormat = Literal["png", "jpg", "webp"]
CONTENT_TYPES: dict[ImageFormat, str] = {"png": "image/png", "jpg": "image/jpeg", "webp": "image/webp"}
_PIL_FORMATS = {"png": "PNG", "jpg": "JPEG", "webp": "WEBP"}
ABSTRACT = ("geometric", "bokeh", "flow", "blobs")

Array = np.ndarray
RGB = tuple[float, float, float]


def _rgb(c: tuple[int, int, int]) -> np.ndarray:
    return np.array(c, dtype=np.float32) / 255.0


def _adjust(colour: np.ndarray, modifiers: tuple[str, ...], rng: np.random.Generator) -> np.ndarray:
    h, l_, s = colorsys.rgb_to_hls(*(float(v) for v in colour))
    h = (h + rng.uniform(-0.025, 0.025)) % 1.0
    if "pastel" in modifiers or "soft" in modifiers:
        l_, s = 0.55 + 0.4 * l_, s * 0.55
    if "neon" in modifiers or "vibrant" in modifiers:
        s, l_ = min(1.0, s * 1.4 + 0.2), min(0.65, max(0.45, l_))
    if "muted" in modifiers or "vintage" in modifiers:
        s *= 0.5
    if "dark" in modifiers:
        l_ *= 0.6
    if "bright" in modifiers:
        l_ = min(0.9, l_ * 1.2 + 0.05)
    return np.array(colorsys.hls_to_rgb(h, min(1.0, l_), min(1.0, s)), dtype=np.float32)


def palette(plan: Plan, rng: np.random.Generator) -> list[np.ndarray]:
    cols = [_adjust(_rgb(c), plan.palette_modifiers, rng) for c in plan.colours]
    while len(cols) < 4:
        h, l_, s = colorsys.rgb_to_hls(*(float(v) for v in cols[-1]))
        cols.append(np.array(colorsys.hls_to_rgb((h + 0.08) % 1, l_ * 0.8, s), dtype=np.float32))
    return cols


def fbm(h: int, w: int, rng: np.random.Generator, *, octaves: int = 5, base: int = 4) -> Array:
    """Fractal value noise in [0, 1]: random grids upsampled bicubically and summed."""
    out = np.zeros((h, w), dtype=np.float32)
    amp, total = 1.0, 0.0
    for o in range(octaves):
        cells = base * 2**o
        gh, gw = max(2, cells * h // max(h, w) + 2), max(2, cells * w // max(h, w) + 2)
        grid = Image.fromarray((rng.random((gh, gw)) * 255).astype(np.uint8))
        layer = np.asarray(grid.resize((w, h), Image.Resampling.BICUBIC), dtype=np.float32) / 255.0
        out += amp * layer
        total += amp
        amp *= 0.5
    out /= total
    lo, hi = float(out.min()), float(out.max())
    return (out - lo) / max(hi - lo, 1e-6)


def _gradient(h: int, w: int, a: np.ndarray, b: np.ndarray, rng: np.random.Generator, kind: str) -> Array:
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    y /= max(h - 1, 1)
    x /= max(w - 1, 1)
    if kind == "radial":
        cx, cy = rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.7)
        t = np.sqrt((x - cx) ** 2 + (y - cy) ** 2) / 0.9
    elif kind == "vertical":
        t = y
    else:
        ang = rng.uniform(0, np.pi)
        t = x * np.cos(ang) + y * np.sin(ang)
        t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    t = np.clip(t, 0, 1)[..., None]
    return a * (1 - t) + b * t


def _paste_rgba(canvas: Array, layer: Image.Image) -> None:
    rgba = np.asarray(layer, dtype=np.float32) / 255.0
    alpha = rgba[..., 3:4]
    canvas *= 1 - alpha
    canvas += rgba[..., :3] * alpha


def _c255(c: np.ndarray, alpha: float = 1.0) -> tuple[int, int, int, int]:
    r, g, b = (int(round(float(v) * 255)) for v in np.clip(c, 0, 1))
    return r, g, b, int(alpha * 255)


def _glow_disc(canvas: Array, cx: float, cy: float, r: float, colour: np.ndarray, glow: float) -> None:
    h, w, _ = canvas.shape
    y, x = np.ogrid[0:h, 0:w]
    d = np.sqrt((x - cx) ** 2 + (y - cy) ** 2).astype(np.float32)
    disc = np.clip(r + 1.5 - d, 0, 1)
    halo = np.exp(-np.maximum(d - r, 0) / max(r * glow, 1.0)) * 0.55
    light = np.maximum(disc, halo)[..., None]
    canvas += (colour - canvas) * light


def _ridge(w: int, rng: np.random.Generator, roughness: float) -> Array:
    x = np.linspace(0, 1, w, dtype=np.float32)
    y = np.zeros(w, dtype=np.float32)
    for o in range(6):
        freq = 2**o * rng.uniform(1.5, 3.0)
        y += (roughness**o) * np.sin(2 * np.pi * (freq * x + rng.uniform(0, 1))).astype(np.float32)
    return y / np.max(np.abs(y))


def _mountains(canvas: Array, cols: list[np.ndarray], rng: np.random.Generator, horizon: float) -> None:
    h, w, _ = canvas.shape
    yy = np.arange(h, dtype=np.float32)[:, None]
    layers = int(rng.integers(3, 5))
    haze = canvas.mean(axis=(0, 1))
    for i in range(layers):
        depth = i / max(layers - 1, 1)
        base = h * (horizon + 0.12 * depth)
        ridge = base - _ridge(w, rng, 0.5) * h * (0.12 - 0.04 * depth) - h * 0.05
        mask = np.clip(yy - ridge[None, :], 0, 1)[..., None]
        colour = cols[2] * (1 - depth) * 0.5 + cols[3] * depth * 0.35 + haze * (0.5 - 0.2 * depth)
        canvas[:] = canvas * (1 - mask) + colour * mask


def _waves(canvas: Array, cols: list[np.ndarray], rng: np.random.Generator, horizon: float) -> None:
    h, w, _ = canvas.shape
    y = np.arange(h, dtype=np.float32)[:, None]
    sea = np.clip((y - h * horizon) / 2, 0, 1)[..., None]
    depth = np.clip((y - h * horizon) / (h * (1 - horizon) + 1), 0, 1)
    water = cols[1] * (1 - depth[..., None]) + cols[2] * 0.6 * depth[..., None]
    # Perspective swell: bands crowd towards the horizon, broken up by stretched noise.
    wobble = fbm(h, max(8, w // 6), rng, octaves=3, base=6)
    wobble = (
        np.asarray(Image.fromarray((wobble * 255).astype(np.uint8)).resize((w, h)), dtype=np.float32) / 255
    )
    phase = 14.0 * np.log1p(depth * 30) + wobble * 5
    glint = (np.sin(phase * np.pi) * 0.5 + 0.5) ** 10 * (1 - depth * 0.7)
    water = water + glint[..., None] * 0.3
    canvas[:] = canvas * (1 - sea) + water * sea


def _city(canvas: Array, cols: list[np.ndarray], rng: np.random.Generator, horizon: float) -> None:
    h, w, _ = canvas.shape
    layer = Image.new("RGBA", (w, h))
    draw = ImageDraw.Draw(layer)
    x = 0
    dark = cols[3] * 0.25
    lit = _c255(cols[0] * 0.5 + np.array([1.0, 0.85, 0.5]) * 0.5)
    while x < w:
        bw = int(rng.uniform(0.03, 0.09) * w)
        top = int(h * (horizon - rng.uniform(0.05, 0.35)))
        draw.rectangle((x, top, x + bw, h), fill=_c255(dark))
        step = max(4, bw // 5)
        for wy in range(top + step, h - step, step):
            for wx in range(x + step // 2, x + bw - step // 2, step):
                if rng.random() < 0.35:
                    draw.rectangle((wx, wy, wx + max(1, step // 3), wy + max(1, step // 3)), fill=lit)
        x += bw + int(rng.uniform(0, 0.01) * w)
    _paste_rgba(canvas, layer)


def _forest(canvas: Array, cols: list[np.ndarray], rng: np.random.Generator, horizon: float) -> None:
    h, w, _ = canvas.shape
    for depth in (0.0, 1.0):
        layer = Image.new("RGBA", (w, h))
        draw = ImageDraw.Draw(layer)
        colour = _c255(cols[2] * (0.3 + 0.3 * depth))
        base = min(h - 1.0, h * (horizon + 0.12 + 0.15 * depth))
        for _ in range(int(w / max(8, h * 0.04))):
            cx = rng.uniform(0, w)
            th = h * rng.uniform(0.12, 0.25) * (1 + depth * 0.5)
            tw = th * 0.35
            draw.polygon(((cx, base - th), (cx - tw, base), (cx + tw, base)), fill=colour)
        draw.rectangle((0, int(base), w, h), fill=colour)
        _paste_rgba(canvas, layer)


def _stars(canvas: Array, rng: np.random.Generator, limit: float) -> None:
    h, w, _ = canvas.shape
    count = int(w * h / 900)
    ys = rng.integers(0, max(1, int(h * limit)), count)
    xs = rng.integers(0, w, count)
    bright = rng.uniform(0.3, 1.0, count).astype(np.float32) ** 3
    canvas[ys, xs] = np.maximum(canvas[ys, xs], bright[:, None])


def _bokeh(canvas: Array, cols: list[np.ndarray], rng: np.random.Generator) -> None:
    h, w, _ = canvas.shape
    layer = Image.new("RGBA", (w, h))
    draw = ImageDraw.Draw(layer)
    for _ in range(int(rng.integers(18, 40))):
        r = rng.uniform(0.02, 0.09) * min(w, h)
        x, y = rng.uniform(0, w), rng.uniform(0, h)
        c = cols[int(rng.integers(len(cols)))] * 0.5 + 0.5
        draw.ellipse((x - r, y - r, x + r, y + r), fill=_c255(c, rng.uniform(0.15, 0.45)))
    layer = layer.filter(ImageFilter.GaussianBlur(max(1.0, min(w, h) * 0.006)))
    _paste_rgba(canvas, layer)


def _geometric(canvas: Array, cols: list[np.ndarray], rng: np.random.Generator) -> None:
    h, w, _ = canvas.shape
    layer = Image.new("RGBA", (w, h))
    draw = ImageDraw.Draw(layer)
    for _ in range(int(rng.integers(5, 12))):
        c = _c255(cols[int(rng.integers(len(cols)))], rng.uniform(0.5, 0.9))
        kind = int(rng.integers(3))
        x, y = rng.uniform(-0.1, 1.1) * w, rng.uniform(-0.1, 1.1) * h
        s = rng.uniform(0.08, 0.35) * min(w, h)
        if kind == 0:
            draw.ellipse((x - s, y - s, x + s, y + s), fill=c)
        elif kind == 1:
            a = rng.uniform(0, np.pi)
            pts = [(x + s * np.cos(a + k * np.pi / 2), y + s * np.sin(a + k * np.pi / 2)) for k in range(4)]
            draw.polygon(pts, fill=c)
        else:
            a = rng.uniform(0, 2 * np.pi)
            pts = [
                (x + s * np.cos(a + k * 2 * np.pi / 3), y + s * np.sin(a + k * 2 * np.pi / 3))
                for k in range(3)
            ]
            draw.polygon(pts, fill=c)
    _paste_rgba(canvas, layer)


def _flow(canvas: Array, cols: list[np.ndarray], rng: np.random.Generator) -> None:
    h, w, _ = canvas.shape
    n = fbm(h, w, rng, octaves=4, base=2)
    bands = (np.sin(n * rng.uniform(10, 18) * np.pi) * 0.5 + 0.5)[..., None] ** 2
    canvas[:] = canvas * (1 - bands * 0.6) + (cols[1] * 0.6 + cols[2] * 0.4) * bands * 0.6


def _blobs(canvas: Array, cols: list[np.ndarray], rng: np.random.Generator) -> None:
    h, w, _ = canvas.shape
    y, x = np.ogrid[0:h, 0:w]
    for i in range(int(rng.integers(3, 6))):
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        r = rng.uniform(0.2, 0.5) * max(w, h)
        d2 = ((x - cx) ** 2 + (y - cy) ** 2).astype(np.float32) / (r * r)
        weight = np.exp(-d2 * 2.5)[..., None] * 0.7
        canvas[:] = canvas * (1 - weight) + cols[(i + 1) % len(cols)] * weight


def _finish(canvas: Array, plan: Plan, rng: np.random.Generator) -> Array:
    h, w, _ = canvas.shape
    y, x = np.ogrid[0:h, 0:w]
    d = np.sqrt(((x / max(w, 1)) - 0.5) ** 2 + ((y / max(h, 1)) - 0.5) ** 2).astype(np.float32)
    canvas *= (1 - np.clip(d - 0.35, 0, 1) * 0.9)[..., None]
    if "monochrome" in plan.palette_modifiers:
        lum = canvas @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        canvas[:] = lum[..., None] * (0.6 + 0.4 * _rgb(plan.colours[0]))
    grain = rng.standard_normal((h, w), dtype=np.float32)[..., None] * np.float32(0.012)
    return np.clip((canvas + grain) * 255 + 0.5, 0, 255).astype(np.uint8)


def compose(plan: Plan, width: int, height: int, *, purpose: str = "image") -> tuple[Array, dict[str, Any]]:
    """Pixels (H, W, 3 uint8) for a plan, plus what was drawn (for the metadata)."""
    rng = rng_for(plan.seed, purpose)
    cols = palette(plan, rng)
    motifs = list(plan.motifs) or [ABSTRACT[int(rng.integers(len(ABSTRACT)))]]
    landscape = any(m in motifs for m in ("mountains", "waves", "city", "forest"))
    horizon = float(rng.uniform(0.5, 0.68))
    night = "moon" in motifs or "stars" in motifs
    kind = "vertical" if landscape or "sun" in motifs else ("radial", "linear")[int(rng.integers(2))]
    night_sky = np.array([0.03, 0.05, 0.14], dtype=np.float32)
    top, bottom = (
        (night_sky + cols[3] * 0.15, night_sky * 0.5 + cols[0] * 0.4) if night else (cols[0], cols[1])
    )
    canvas = _gradient(height, width, top, bottom, rng, kind).astype(np.float32)

    clouds = fbm(height, width, rng)[..., None]
    amount = 0.35 if "clouds" in motifs else 0.12
    canvas += (cols[1] * 0.5 + 0.5 - canvas) * (clouds**2) * amount

    if "stars" in motifs:  # nebula: coloured clouds behind the stars
        for colour in cols[1:3]:
            glow = fbm(height, width, rng, octaves=5, base=3)[..., None] ** 3
            canvas += colour * glow * 0.6
    if "stars" in motifs or night:
        _stars(canvas, rng, horizon if landscape else 1.0)
    for celestial in ("sun", "moon"):
        if celestial in motifs:
            r = min(width, height) * rng.uniform(0.06, 0.11)
            cx = width * rng.uniform(0.25, 0.75)
            cy = height * (horizon - rng.uniform(0.08, 0.25)) if landscape else height * rng.uniform(0.2, 0.4)
            colour = (
                np.array([1.0, 0.9, 0.6]) * 0.6 + cols[0] * 0.4
                if celestial == "sun"
                else np.array([0.92, 0.93, 1.0])
            )
            _glow_disc(canvas, cx, cy, r, colour.astype(np.float32), 1.5 if celestial == "sun" else 0.6)
    drawers = {
        "mountains": _mountains,
        "waves": _waves,
        "forest": _forest,
        "city": _city,
    }
    for m in ("mountains", "forest", "waves", "city"):
        if m in motifs:
            drawers[m](canvas, cols, rng, horizon)
    if "bokeh" in motifs:
        _bokeh(canvas, cols, rng)
    if "geometric" in motifs:
        _geometric(canvas, cols, rng)
    if "flow" in motifs:
        _flow(canvas, cols, rng)
    if "blobs" in motifs:
        _blobs(canvas, cols, rng)
    np.clip(canvas, 0, 1, out=canvas)
    pixels = _finish(canvas, plan, rng)
    return pixels, {"motifs": motifs, "palette": list(plan.palette), "gradient": kind}


def encode_image(pixels: Array, fmt: ImageFormat) -> bytes:
    buf = io.BytesIO()
    img = Image.fromarray(pixels, "RGB")
    if fmt == "png":
        img.save(buf, "PNG", compress_level=6)
    elif fmt == "jpg":
        img.save(buf, "JPEG", quality=92, optimize=False, progressive=False)
    elif fmt == "webp":
        img.save(buf, "WEBP", quality=90, method=4)
    else:
        raise ValueError(f"unsupported image format {fmt!r}")
    return buf.getvalue()


def render_image(
    prompt: str, *, width: int, height: int, seed: int, output_format: ImageFormat = "png", out: Path
) -> dict[str, Any]:
    """Render a prompt to `out`; returns the metadata (plan, motifs, palette, size, content type)."""
    if not (16 <= width <= 4096 and 16 <= height <= 4096):
        raise ValueError("width and height must be between 16 and 4096")
    plan = make_plan(prompt, seed)
    pixels, drawn = compose(plan, width, height)
    out.write_bytes(encode_image(pixels, output_format))
    return {
        "seed": plan.seed,
        "moods": list(plan.moods),
        **drawn,
        "width": width,
        "height": height,
        "format": output_format,
        "content_type": CONTENT_TYPES[output_format],
    }

"""Procedural video: a slow camera move over a composed (or supplied) picture, with drifting light.

Frames are cheap by design: the picture is rendered once at 1.1× size, and each frame is a
sub-pixel crop-and-resize of it (the "Ken Burns" move) plus a few pre-rendered glow sprites added
where they are at that moment. That keeps 720p well above real time on one core, leaving the time
to x264.

Reproducible bytes: x264 runs single-threaded with B-frames off (thread count changes x264's
output; B-frame reordering would hide which packet is the last frame), and nothing time-dependent
is written into the MP4.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import av
import numpy as np
from PIL import Image, ImageOps

from mediagen.engines.audio_io import AAC_BITRATE, audio_frames
from mediagen.engines.synth.image import compose, palette
from mediagen.engines.synth.music import synthesize
from mediagen.engines.synth.prompt import Plan, make_plan, rng_for
from mediagen.engines.synth.voices import SR
from mediagen.engines.video_io import TICKS, add_h264_stream

OVERSCAN = 1.1
MAX_ZOOM = 1.08
CONTENT_TYPE = "video/mp4"


def _cover(img: Image.Image, width: int, height: int) -> Image.Image:
    """Scale and centre-crop to exactly width×height, like CSS object-fit: cover."""
    return ImageOps.fit(img.convert("RGB"), (width, height), Image.Resampling.LANCZOS)


def _sprite(radius: int, colour: np.ndarray) -> np.ndarray:
    y, x = np.mgrid[-radius : radius + 1, -radius : radius + 1].astype(np.float32)
    falloff = np.exp(-(x**2 + y**2) / (2 * (radius / 2.2) ** 2))
    return (falloff[..., None] * colour[None, None, :] * 255).astype(np.float32)


class _Particles:
    """Glowing motes drifting on smooth seeded paths; intensity pulses on the beat."""

    def __init__(self, plan: Plan, width: int, height: int, rng: np.random.Generator) -> None:
        cols = palette(plan, rng)
        count = int(np.clip(width * height / 30_000, 8, 40))
        self.pos = rng.uniform(0, 1, (count, 2)) * (width, height)
        self.vel = rng.uniform(-1, 1, (count, 2)) * min(width, height) * 0.03
        self.wobble = rng.uniform(0.1, 0.4, count)
        self.phase = rng.uniform(0, 2 * np.pi, count)
        base = max(3, int(min(width, height) * 0.02))
        self.sprites = []
        for _ in range(count):
            colour = cols[int(rng.integers(len(cols)))] * 0.5 + 0.5
            self.sprites.append(_sprite(int(base * rng.uniform(0.6, 2.5)), colour * rng.uniform(0.25, 0.6)))
        self.width, self.height = width, height

    def draw(self, frame: np.ndarray, t: float, gain: float) -> None:
        h, w = frame.shape[:2]
        for i, sprite in enumerate(self.sprites):
            r = sprite.shape[0] // 2
            x = self.pos[i, 0] + self.vel[i, 0] * t + np.sin(t * self.wobble[i] * 2 + self.phase[i]) * r * 2
            y = self.pos[i, 1] + self.vel[i, 1] * t + np.cos(t * self.wobble[i] * 3 + self.phase[i]) * r * 2
            x, y = int(x) % (w + 2 * r) - r, int(y) % (h + 2 * r) - r
            x0, y0, x1, y1 = max(0, x - r), max(0, y - r), min(w, x + r + 1), min(h, y + r + 1)
            if x1 <= x0 or y1 <= y0:
                continue
            region = frame[y0:y1, x0:x1]
            lit = region + sprite[y0 - (y - r) : y1 - (y - r), x0 - (x - r) : x1 - (x - r)] * np.float32(gain)
            np.minimum(lit, 255, out=lit)
            region[:] = lit


def _camera(rng: np.random.Generator) -> tuple[float, float]:
    """Focal point (as a fraction of the picture) the slow zoom drifts towards."""
    return float(rng.uniform(0.3, 0.7)), float(rng.uniform(0.3, 0.7))


def _frame_box(
    base_w: int, base_h: int, t: float, focus: tuple[float, float]
) -> tuple[float, float, float, float]:
    """Crop box at progress t ∈ [0, 1]: the whole picture at t=0, zoomed in MAX_ZOOM×OVERSCAN at t=1."""
    eased = t * t * (3 - 2 * t)
    zoom = 1.0 + (MAX_ZOOM * OVERSCAN - 1.0) * eased
    bw, bh = base_w / zoom, base_h / zoom
    cx = base_w / 2 + (focus[0] * base_w - base_w / 2) * eased
    cy = base_h / 2 + (focus[1] * base_h - base_h / 2) * eased
    cx = min(max(cx, bw / 2), base_w - bw / 2)
    cy = min(max(cy, bh / 2), base_h - bh / 2)
    return cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2


def _background(plan: Plan, width: int, height: int, image_path: Path | None) -> tuple[Image.Image, str]:
    bw, bh = int(round(width * OVERSCAN)), int(round(height * OVERSCAN))
    if image_path is not None:
        with Image.open(image_path) as src:
            src.load()
            return _cover(src, bw, bh), "image"
    pixels, _ = compose(plan, bw, bh, purpose="video")
    return Image.fromarray(pixels, "RGB"), "procedural"


def _validate(duration: float, fps: int, width: int, height: int) -> None:
    if not 1.0 <= duration <= 60.0:
        raise ValueError("duration must be between 1 and 60 seconds")
    if not 1 <= fps <= 60:
        raise ValueError("fps must be between 1 and 60")
    if width % 2 or height % 2 or not (16 <= width <= 4096 and 16 <= height <= 4096):
        raise ValueError("width and height must be even numbers between 16 and 4096")


def render_video(
    prompt: str,
    *,
    duration: float,
    fps: int,
    width: int,
    height: int,
    seed: int,
    soundtrack: bool = False,
    image_path: Path | None = None,
    out: Path,
) -> dict[str, Any]:
    """Render an H.264/AAC MP4 to `out` and return its metadata."""
    _validate(duration, fps, width, height)
    plan = make_plan(prompt, seed)
    rng = rng_for(plan.seed, "video")
    background, source = _background(plan, width, height, image_path)
    base_w, base_h = background.size
    focus = _camera(rng)
    particles = _Particles(plan, width, height, rng)
    n_frames = max(1, int(np.ceil(duration * fps - 1e-6)))
    beat = 60.0 / plan.bpm
    fade_in = 0.0 if image_path is not None else min(0.4, duration / 5)
    fade_out = min(0.4, duration / 5)

    music = synthesize(plan, duration) if soundtrack else None
    with av.open(str(out), "w", format="mp4", options={"movflags": "+faststart"}) as container:
        container.metadata.clear()
        vstream = add_h264_stream(container, width=width, height=height, fps=fps, crf=23)
        vcc = vstream.codec_context
        astream = None
        audio_iter = None
        if music is not None:
            astream = container.add_stream("aac", rate=SR, layout="stereo")
            astream.bit_rate = AAC_BITRATE
            audio_iter = audio_frames(music.samples, chunk=SR // 4)

        last_packet: av.Packet | None = None
        audio_done = 0  # samples of soundtrack muxed so far
        for i in range(n_frames):
            t = i / fps
            box = _frame_box(base_w, base_h, t / max(duration, 1e-6), focus)
            img = background.resize((width, height), Image.Resampling.BILINEAR, box=box, reducing_gap=None)
            frame = np.array(img)  # uint8; only sprite regions and fades touch floats
            since_beat = (t % beat) / beat
            ramp = min(1.0, t / 0.6) if image_path is not None else 1.0
            particles.draw(frame, t, ramp * (0.8 + 0.35 * np.exp(-since_beat * 5)))
            level = 1.0
            if fade_in and t < fade_in:
                level *= t / fade_in
            if fade_out and t > duration - fade_out:
                level *= max(0.0, (duration - t) / fade_out)
            if level != 1.0:
                frame = (frame * np.float32(level)).astype(np.uint8)
            vf = av.VideoFrame.from_ndarray(frame, format="rgb24")
            vf = vf.reformat(format="yuv420p", dst_colorspace=av.video.reformatter.Colorspace.ITU709)
            vf.pts = i * TICKS
            vf.time_base = vcc.time_base
            for packet in vstream.encode(vf):
                if last_packet is not None:
                    container.mux(last_packet)
                last_packet = packet
            # Keep audio about level with the video so the file is interleaved for streaming.
            while audio_iter is not None and astream is not None and audio_done / SR <= t + 0.5:
                af = next(audio_iter, None)
                if af is None:
                    audio_iter = None
                    break
                audio_done += af.samples
                container.mux(astream.encode(af))
        for packet in vstream.encode(None):
            if last_packet is not None:
                container.mux(last_packet)
            last_packet = packet
        if last_packet is not None:
            # The last frame lasts until the requested end, so the stream ends on time exactly.
            end = int(round(duration * fps * TICKS))
            last_packet.duration = max(1, end - int(last_packet.pts or 0))
            container.mux(last_packet)
        if astream is not None:
            for af in audio_iter or ():
                container.mux(astream.encode(af))
            container.mux(astream.encode(None))

    meta: dict[str, Any] = {
        "seed": plan.seed,
        "width": width,
        "height": height,
        "fps": fps,
        "frames": n_frames,
        "duration": round(duration, 6),
        "video_codec": "h264",
        "background": source,
        "palette": list(plan.palette),
        "motifs": list(plan.motifs),
        "soundtrack": music is not None,
        "content_type": CONTENT_TYPE,
    }
    if music is not None:
        meta["audio_codec"] = "aac"
        meta["music"] = {k: v for k, v in music.metadata().items() if k not in ("palette",)}
    return meta

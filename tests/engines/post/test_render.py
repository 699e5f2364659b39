"""Recipes rendered and decoded back: lengths, frame sizes, streams, A/V sync, crop and pad,
crossfades, zoom, music fades, loops, ducking, cut-downs, audio masters, loudness, bad input.

Every source is made here with PyAV (colour bars with flash frames and clicks, tones, a PNG, a
music bed), rendered at a small frame for speed, and measured from the decoded output.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from mediagen.engines.audio_io import audio_frames, write_audio
from mediagen.engines.base import InputError
from mediagen.engines.post.recipe import Clip, Music, Recipe, Transition
from mediagen.engines.post.render import render_audio, render_video
from mediagen.engines.video_io import TICKS, add_h264_stream

FPS = 30
SMALL = (192, 108)
RATE = 48_000
BARS = np.array(
    [[192, 192, 0], [0, 192, 192], [0, 192, 0], [192, 0, 192], [192, 0, 0], [0, 0, 192], [192, 192, 192]],
    np.uint8,
)


# ---------------------------------------------------------------------------------------------
# Sources


def write_video(
    path: Path,
    *,
    frames: int,
    fps: int,
    size: tuple[int, int],
    picture: Callable[[int], np.ndarray],
    sound: np.ndarray | None = None,
    rate: int = 44_100,
) -> Path:
    """An H.264 MP4 with RGB frames from `picture(k)` and, if given, mono `sound` as AAC."""
    width, height = size
    with av.open(str(path), "w", format="mp4") as container:
        video = add_h264_stream(container, width=width, height=height, fps=fps, crf=18)
        if sound is not None:
            audio = container.add_stream("aac", rate=rate, layout="mono")
            for frame in audio_frames(sound[None].astype(np.float32), rate=rate):
                container.mux(audio.encode(frame))
            container.mux(audio.encode(None))
        for k in range(frames):
            vf = av.VideoFrame.from_ndarray(picture(k), format="rgb24").reformat(format="yuv420p")
            vf.pts, vf.time_base = k * TICKS, video.codec_context.time_base
            container.mux(video.encode(vf))
        container.mux(video.encode(None))
    return path


def bars(width: int, height: int, level: int = 3) -> Callable[[int], np.ndarray]:
    """Colour bars (dimmed by `level`) with a bright line that moves one step a frame."""

    def picture(k: int) -> np.ndarray:
        img = np.repeat(BARS[np.arange(width) * 7 // width][None] // level, height, axis=0)
        img[:, (k * 3) % width] = 255
        return img

    return picture


def tone(seconds: float, hz: float, rate: int, level: float = 0.2) -> np.ndarray:
    return (level * np.sin(2 * np.pi * hz * np.arange(round(seconds * rate)) / rate)).astype(np.float32)


def drums(seconds: float, rate: int) -> np.ndarray:
    """A beat with a crest factor like a real mix's: at −14 LUFS its kicks would peak far above full
    scale, so a master that meets the ceiling has had to limit them."""
    n = round(seconds * rate)
    t = np.arange(n) / rate
    out = 0.03 * np.sin(2 * np.pi * 110 * t)
    rng = np.random.default_rng(7)
    for hit in np.arange(0, seconds, 0.5):
        i = round(hit * rate)
        k = np.arange(min(n - i, rate // 4)) / rate
        out[i : i + k.size] += 0.9 * np.sin(2 * np.pi * 55 * k * (1 + 2 * np.exp(-k * 40))) * np.exp(-k * 12)
        j = round((hit + 0.25) * rate)
        h = min(n - j, rate // 20)
        if h > 0:
            out[j : j + h] += 0.4 * rng.standard_normal(h) * np.exp(-np.arange(h) / rate * 80)
    return np.stack([out, np.roll(out, 7)]).astype(np.float32)


def write_png(path: Path, rgb: np.ndarray) -> Path:
    Image.fromarray(rgb).save(path)
    return path


@dataclass(frozen=True)
class Sources:
    flashes: Path  # 25 fps, 4 s, white frames at FLASHES with a click in its sound at each
    toned: Path  # 30 fps portrait bars, 3 s, 1 kHz tone
    silent: Path  # 30 fps portrait bars, 1 s, no audio stream
    png: Path  # 400×300 gradient
    music: Path  # 44.1 kHz stereo mp3, 6 s: a 220 Hz tone on a 2 Hz pulse
    steady: Path  # 44.1 kHz mono wav, 2.3 s: 227 + 331 Hz (a loop whose end is mid-swing)
    audio_only: Path  # an mp3 (no video stream)
    beat: Path  # 48 kHz stereo wav, 4 s: kicks and hats over a quiet pad, peaks far above its loudness


FLASHES = (0.4, 1.6, 2.8)  # on the 25 fps grid: frames 10, 40, 70


@pytest.fixture(scope="module")
def src(tmp_path_factory: pytest.TempPathFactory) -> Sources:
    d = tmp_path_factory.mktemp("sources")
    rate = 44_100
    clicks = np.zeros(4 * rate, np.float32)
    for t in FLASHES:
        clicks[round(t * rate) : round(t * rate) + 44] = 0.8
    flash_frames = {round(t * 25) for t in FLASHES}
    dark = bars(160, 90, level=4)

    def flashing(k: int) -> np.ndarray:
        return np.full((90, 160, 3), 255, np.uint8) if k in flash_frames else dark(k)

    y, x = np.mgrid[0:300, 0:400]
    gradient = np.stack([x * 255 // 400, y * 255 // 300, np.full_like(x, 90)], -1).astype(np.uint8)
    r = np.arange(6 * rate) / rate
    pulse = 0.3 * np.sin(2 * np.pi * 220 * r) * (0.6 + 0.4 * (np.sin(2 * np.pi * 2 * r) > 0))
    music = d / "music.mp3"
    write_audio(np.stack([pulse, pulse]).astype(np.float32), music, "mp3", rate=rate)
    steady = d / "steady.wav"
    write_audio((tone(2.3, 227, rate, 0.3) + tone(2.3, 331, rate, 0.2))[None], steady, "wav", rate=rate)
    beat = d / "beat.wav"
    write_audio(drums(4.0, RATE), beat, "wav", rate=RATE)
    only = d / "only.mp3"
    write_audio(tone(1, 440, rate)[None], only, "mp3", rate=rate)
    return Sources(
        flashes=write_video(
            d / "flash.mp4", frames=100, fps=25, size=(160, 90), picture=flashing, sound=clicks
        ),
        toned=write_video(
            d / "toned.mp4",
            frames=90,
            fps=30,
            size=(90, 160),
            picture=bars(90, 160, 1),
            sound=tone(3, 1000, rate),
        ),
        silent=write_video(d / "silent.mp4", frames=30, fps=30, size=(90, 160), picture=bars(90, 160, 1)),
        png=write_png(d / "gradient.png", gradient),
        music=music,
        steady=steady,
        audio_only=only,
        beat=beat,
    )


# ---------------------------------------------------------------------------------------------
# Decoding


@dataclass
class Decoded:
    width: int
    height: int
    rate: Fraction
    video_duration: float
    frames: np.ndarray  # (T, H, W, 3) RGB
    audio_duration: float | None
    audio_start: float | None  # the first decoded sample's time
    audio: np.ndarray | None  # (2, n) at 48 kHz


def decode(path: Path) -> Decoded:
    with av.open(str(path)) as container:
        vs = container.streams.video[0]
        frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(vs)])
        assert vs.duration is not None and vs.average_rate is not None and vs.time_base is not None
        decoded = Decoded(
            vs.codec_context.width,
            vs.codec_context.height,
            Fraction(vs.average_rate),
            float(vs.duration * vs.time_base),
            frames,
            None,
            None,
            None,
        )
    with av.open(str(path)) as container:
        if container.streams.audio:
            aus = container.streams.audio[0]
            assert aus.duration is not None and aus.time_base is not None
            assert aus.rate == RATE and aus.codec_context.name == "aac"
            decoded.audio_duration = float(aus.duration * aus.time_base)
            chunks = []
            for f in container.decode(aus):
                if decoded.audio_start is None:
                    decoded.audio_start = f.time
                chunks.append(f.to_ndarray())
            decoded.audio = np.concatenate(chunks, axis=1)
    return decoded


def decode_audio_file(path: Path) -> np.ndarray:
    """(2, n) float: WAV's integers scaled to ±1, nothing resampled."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        assert stream.rate == RATE and stream.channels == 2
        to_float = av.AudioResampler(format="fltp", layout="stereo", rate=RATE)
        chunks = [g.to_ndarray() for f in container.decode(stream) for g in to_float.resample(f)]
        return np.concatenate(chunks, axis=1)


def assert_lengths(d: Decoded, seconds: float, *, audio: bool = True) -> None:
    """Duration within one frame of `seconds`, a constant FPS, and (if any) sound of the same length
    starting at 0."""
    assert d.rate == FPS
    assert abs(d.video_duration - seconds) < 1 / FPS
    assert abs(d.frames.shape[0] / FPS - seconds) < 1 / FPS
    if audio:
        assert d.audio_duration is not None and d.audio_start is not None
        assert abs(d.audio_duration - d.video_duration) < 1 / FPS
        assert abs(d.audio_start) < 1e-3


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def window(audio: np.ndarray, start: float, end: float) -> np.ndarray:
    return audio[:, round(start * RATE) : round(end * RATE)]


def amplitude(audio: np.ndarray, hz: float, start: float, end: float) -> float:
    """The amplitude of one sine component in a window (lock-in: project on sin and cos)."""
    x = window(audio, start, end).mean(axis=0)
    t = (np.arange(x.size) + round(start * RATE)) / RATE
    return float(
        2 * np.hypot(np.mean(x * np.sin(2 * np.pi * hz * t)), np.mean(x * np.cos(2 * np.pi * hz * t)))
    )


def render(recipe: Recipe, out: Path) -> tuple[dict[str, object], Decoded, list[float]]:
    reports: list[float] = []
    meta = render_video(recipe, out, reports.append)
    return meta, decode(out), reports


def small(**kw: object) -> Recipe:
    return Recipe(size=SMALL, loudness=None, **kw)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# Sync, lengths, streams


@pytest.mark.parametrize("transition", [Transition("crossfade", 0.4), Transition("cut")])
def test_flash_frames_land_on_their_clicks(src: Sources, tmp_path: Path, transition: Transition) -> None:
    """25 fps clips whose picture flashes exactly when their sound clicks, cut into a 30 fps edit
    at in points off both frame grids: every flash shows within one frame of its click."""
    recipe = small(
        clips=[
            Clip(src.flashes, "video", start=0.21, end=2.21),  # flashes at 0.19, 1.39 of the output
            Clip(src.flashes, "video", start=1.0, end=3.4),  # its flashes 0.6 and 1.8 s in
            Clip(src.png, "image", duration=1.0),
        ],
        transition=transition,
    )
    meta, d, reports = render(recipe, tmp_path / "sync.mp4")
    overlap = transition.duration
    assert_lengths(d, 2.0 + 2.4 + 1.0 - 2 * overlap)
    assert (d.width, d.height) == SMALL and meta["audio"] is True and meta["frames"] == d.frames.shape[0]
    assert reports[0] == 0.0 and reports[-1] == 1.0 and reports == sorted(reports)

    luma = d.frames.mean(axis=(1, 2, 3))
    lit = luma > 128
    onsets = [k / FPS for k in range(len(lit)) if lit[k] and (k == 0 or not lit[k - 1])]
    assert d.audio is not None
    level = np.abs(d.audio).max(axis=0)
    clicks: list[float] = []
    for i in np.flatnonzero(level > 0.3):
        t = i / RATE
        if not clicks or t - clicks[-1] > 0.1:
            clicks.append(t)
        else:  # the loudest sample of the burst, not its pre-echo
            j = round(clicks[-1] * RATE)
            if level[i] > level[j]:
                clicks[-1] = t
    second = 2.0 - overlap
    expected = [0.19, 1.39, second + 0.6, second + 1.8]
    assert len(onsets) == len(clicks) == 4
    for flash, click, want in zip(onsets, clicks, expected, strict=True):
        assert abs(flash - click) < 1 / FPS
        assert abs(click - want) < 2e-3


@pytest.mark.parametrize(
    ("aspect", "size"),
    [("16:9", (1920, 1080)), ("9:16", (1080, 1920)), ("1:1", (1080, 1080)), ("4:5", (1080, 1350))],
)
def test_each_aspect_preset_has_its_exact_frame(
    src: Sources, tmp_path: Path, aspect: str, size: tuple[int, int]
) -> None:
    recipe = Recipe(
        clips=[Clip(src.png, "image", duration=1.0)],
        music=Music(src.music, fade_in=0.2, fade_out=0.2),
        aspect=aspect,
        loudness=None,
    )
    meta, d, _ = render(recipe, tmp_path / "preset.mp4")
    assert (d.width, d.height) == size == (meta["width"], meta["height"])
    assert_lengths(d, 1.0)


def test_faststart_h264_constant_rate(src: Sources, tmp_path: Path) -> None:
    out = tmp_path / "fs.mp4"
    render_video(small(clips=[Clip(src.silent, "video")]), out, lambda f: None)
    data = out.read_bytes()
    assert data.index(b"moov") < data.index(b"mdat")
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.name, stream.codec_context.pix_fmt) == ("h264", "yuv420p")
        pts = [p.pts for p in container.demux(stream) if p.pts is not None]
        steps = set(np.diff(sorted(pts)))
        assert len(steps) == 1  # one frame every 1/fps: constant frame rate
        assert not container.streams.audio  # nothing in the recipe makes a sound


# ---------------------------------------------------------------------------------------------
# Picture


def test_crop_fills_the_frame_and_pad_leaves_colour_or_blurred_bars(src: Sources, tmp_path: Path) -> None:
    """A portrait clip in a landscape frame: crop fills every column with the picture; pad puts it
    in a 61-pixel-wide middle with the colour, or a smooth blurred copy, either side."""
    clip = [Clip(src.silent, "video", end=0.2)]
    _, cropped, _ = render(small(clips=clip, fit="crop"), tmp_path / "crop.mp4")
    _, coloured, _ = render(small(clips=clip, fit="pad", background="#204080"), tmp_path / "colour.mp4")
    _, blurred, _ = render(small(clips=clip, fit="pad", background="blur"), tmp_path / "blur.mp4")
    row = slice(40, 70)
    c = cropped.frames[0, row].astype(float)
    # Crop: the first and last bars reach the frame's edges (median: the moving line is there too).
    assert np.abs(np.median(c[:, :20], axis=(0, 1)) - BARS[0]).max() < 12
    assert np.abs(np.median(c[:, -20:], axis=(0, 1)) - BARS[6]).max() < 12

    sides = np.r_[0:60, 132:192]
    p = coloured.frames[0].astype(float)
    assert np.abs(p[:, sides] - [32, 64, 128]).max() < 8
    middle = p[row, 70:122]
    assert np.abs(np.diff(middle, axis=1)).max() > 100  # the bars' edges, sharp

    b = blurred.frames[0].astype(float)
    bar_edges = np.abs(np.diff(b[row][:, sides[:55]], axis=1)).mean()
    assert bar_edges < 2  # smooth
    assert b[:, sides].mean() > 25  # but the picture's colours, not black
    assert np.abs(b[:, sides].mean(axis=(0, 1)) - [32, 64, 128]).max() > 10


def test_crossfade_frames_are_linear_blends(tmp_path: Path) -> None:
    red = write_png(tmp_path / "red.png", np.full((90, 160, 3), [200, 40, 40], np.uint8))
    blue = write_png(tmp_path / "blue.png", np.full((90, 160, 3), [40, 60, 200], np.uint8))
    recipe = small(
        clips=[Clip(red, "image", duration=1.0), Clip(blue, "image", duration=1.0)],
        transition=Transition("crossfade", 0.5),
    )
    _, d, _ = render(recipe, tmp_path / "xf.mp4")
    assert_lengths(d, 1.5, audio=False)
    colour = d.frames[:, 20:-20, 20:-20].mean(axis=(1, 2))
    a, b = colour[0], colour[-1]
    assert np.abs(a - b).max() > 100
    for k in range(15, 30):  # the overlap, 0.5 s to 1.0 s
        alpha = (k / FPS + 0.5 / FPS - 0.5) / 0.5
        assert np.abs(colour[k] - ((1 - alpha) * a + alpha * b)).max() < 4
    assert np.abs(colour[:15] - a).max() < 3 and np.abs(colour[30:] - b).max() < 3


def test_image_zoom_pushes_in_on_the_centre(tmp_path: Path) -> None:
    img = np.full((300, 400, 3), 60, np.uint8)
    img[100:200, 150:250] = 230  # a centred square, 100 px of the 300 px height
    png = write_png(tmp_path / "square.png", img)
    size = (384, 216)

    def square_width(frame: np.ndarray) -> float:
        return float((frame[:, :, 0] > 145).sum(axis=1).max())

    _, zoomed, _ = render(
        Recipe(clips=[Clip(png, "image", duration=1.0, zoom=True)], size=size, loudness=None),
        tmp_path / "z.mp4",
    )
    _, still, _ = render(
        Recipe(clips=[Clip(png, "image", duration=1.0)], size=size, loudness=None), tmp_path / "s.mp4"
    )
    first, last = square_width(zoomed.frames[0]), square_width(zoomed.frames[-1])
    assert first == pytest.approx(96, abs=1.5)  # cover scale 0.96
    assert last / first == pytest.approx(1 + 0.08 * 29 / 30, abs=0.02)
    widths = [square_width(f) for f in zoomed.frames]
    assert widths == sorted(widths)  # a steady push-in
    assert np.abs(zoomed.frames[0].astype(int) - zoomed.frames[-1]).mean() > 3
    assert np.abs(still.frames[0].astype(int) - still.frames[-1]).mean() < 1
    centre = zoomed.frames[:, 100:116, 184:200].mean(axis=(1, 2, 3))
    assert np.ptp(centre) < 4  # the centre stays put


# ---------------------------------------------------------------------------------------------
# Sound


def test_music_fades_in_and_out(src: Sources, tmp_path: Path) -> None:
    recipe = small(
        clips=[Clip(src.png, "image", duration=2.0)], music=Music(src.music, fade_in=0.5, fade_out=0.5)
    )
    _, d, _ = render(recipe, tmp_path / "fades.mp4")
    assert_lengths(d, 2.0)
    assert d.audio is not None
    middle = rms(window(d.audio, 0.8, 1.2))
    assert middle > 0.1
    assert rms(window(d.audio, 0.0, 0.1)) < 0.1 * middle
    assert rms(window(d.audio, 1.9, 2.0)) < 0.1 * middle


def test_cut_down_is_exact_and_the_music_fades_to_end_on_time(src: Sources, tmp_path: Path) -> None:
    clips = [Clip(src.toned, "video"), Clip(src.toned, "video", start=0.5)]
    recipe = small(clips=clips, transition=Transition("crossfade", 0.5), music=Music(src.music), length=4.0)
    meta, d, _ = render(recipe, tmp_path / "cut.mp4")
    assert_lengths(d, 4.0)
    assert meta["duration"] == 4.0 and meta["frames"] == 120
    assert meta["timeline"] == [
        {"clip": 0, "kind": "video", "start": 0.0, "end": 3.0, "in": 0.0},
        {"clip": 1, "kind": "video", "start": 2.5, "end": 5.0, "in": 0.5},
    ]
    assert d.audio is not None
    middle = rms(window(d.audio, 1.0, 2.0))
    assert middle > 0.1
    fading = rms(window(d.audio, 3.2, 3.5))
    assert 0.05 * middle < fading < 0.8 * middle  # a fade of at least a second, not a cut
    assert rms(window(d.audio, 3.9, 4.0)) < 0.05 * middle
    assert amplitude(d.audio, 1000, 1.0, 2.0) < 0.01  # `replace`: the clips' tone is gone

    with pytest.raises(InputError) as err:
        render_video(replace(recipe, length=6.0), tmp_path / "long.mp4", lambda f: None)
    assert err.value.field == "length"


def test_duck_lowers_the_music_under_the_clips_sound(src: Sources, tmp_path: Path) -> None:
    clips = [Clip(src.toned, "video", end=2.0), Clip(src.png, "image", duration=3.0)]
    music = Music(src.steady, loop=True, mode="duck")
    _, d, _ = render(small(clips=clips, music=music), tmp_path / "duck.mp4")
    assert d.audio is not None
    under, clear = amplitude(d.audio, 227, 0.5, 1.5), amplitude(d.audio, 227, 3.2, 4.2)
    assert 20 * np.log10(under / clear) == pytest.approx(-12, abs=1)
    assert amplitude(d.audio, 1000, 0.5, 1.5) == pytest.approx(0.2, abs=0.03)  # the clip's own tone, kept

    _, r, _ = render(small(clips=clips, music=replace(music, mode="replace")), tmp_path / "replace.mp4")
    assert r.audio is not None
    assert amplitude(r.audio, 227, 0.5, 1.5) == pytest.approx(amplitude(r.audio, 227, 3.2, 4.2), rel=0.05)
    assert amplitude(r.audio, 1000, 0.5, 1.5) < 0.01


def test_clip_sound_crossfades_with_equal_power(src: Sources, tmp_path: Path) -> None:
    """No music: the clips' own tone runs through a crossfade at constant power (no dip, no bump)."""
    clips = [Clip(src.toned, "video", end=1.5), Clip(src.toned, "video", start=1.0, end=2.5)]
    _, d, _ = render(small(clips=clips, transition=Transition("crossfade", 0.5)), tmp_path / "xa.mp4")
    assert_lengths(d, 2.5)
    assert d.audio is not None
    steady = rms(window(d.audio, 0.2, 0.8))
    for start in np.arange(1.0, 1.5, 0.05):
        assert rms(window(d.audio, start, start + 0.05)) == pytest.approx(steady, rel=0.5)


def test_audio_master_has_exact_length_fades_and_a_seamless_loop(src: Sources, tmp_path: Path) -> None:
    recipe = Recipe(music=Music(src.steady, loop=True, fade_in=0.3, fade_out=0.5), length=5.0, loudness=None)
    meta = render_audio(recipe, tmp_path / "m.wav", "wav", lambda f: None)
    assert meta["samples"] == 5 * RATE
    wav = decode_audio_file(tmp_path / "m.wav")
    assert wav.shape == (2, 5 * RATE)
    render_audio(recipe, tmp_path / "m.mp3", "mp3", lambda f: None)
    assert decode_audio_file(tmp_path / "m.mp3").shape == (2, 5 * RATE)

    middle = rms(window(wav, 1.0, 2.0))
    assert rms(window(wav, 0.0, 0.1)) < 0.2 * middle and rms(window(wav, 4.9, 5.0)) < 0.2 * middle

    # The loop region is 2.3 s; each return to its head is crossfaded over 50 ms ending at
    # 2.3 s, 4.55 s. A hard splice there would jump by ~0.3 (the source ends mid-swing); the
    # seam's sample-to-sample steps must stay within what the music does anywhere else.
    x = wav[0].astype(np.float64)
    steps = np.abs(np.diff(x))
    seams = [round(2.3 * RATE), round((2 * 2.3 - 0.05) * RATE)]
    near = np.zeros(steps.size, bool)
    for s in seams:
        near[s - 3000 : s + 600] = True
    body = steps[round(0.5 * RATE) : round(4.4 * RATE)][~near[round(0.5 * RATE) : round(4.4 * RATE)]]
    source = tone(2.3, 227, RATE, 0.3) + tone(2.3, 331, RATE, 0.2)
    assert abs(source[-1] - source[0]) > 5 * body.max()  # the test signal would click if spliced
    for s in seams:
        assert steps[s - 3000 : s + 600].max() <= 1.05 * body.max()
    assert rms(window(wav, 2.2, 2.4)) == pytest.approx(middle, rel=0.25)  # no dip or bump in level


# ---------------------------------------------------------------------------------------------
# Loudness


def meter(samples: np.ndarray) -> tuple[float, float]:
    """(integrated LUFS, true peak dBTP) by meters other than ours: pyloudnorm for the integrated
    loudness where it is installed, FFmpeg's `ebur128` filter for the rest."""
    graph = av.filter.Graph()
    source = graph.add_abuffer(format="fltp", sample_rate=RATE, layout="stereo", time_base=Fraction(1, RATE))
    ebur = graph.add("ebur128", "peak=true:metadata=1")
    sink = graph.add("abuffersink")
    source.link_to(ebur)
    ebur.link_to(sink)
    graph.configure()
    found: dict[str, str] = {}
    peak = 0.0
    for frame in [
        *audio_frames(np.ascontiguousarray(samples, dtype=np.float32), chunk=4800, rate=RATE),
        None,
    ]:
        graph.push(frame)
        while True:
            try:
                out = graph.pull()
            except (av.BlockingIOError, av.EOFError):
                break
            found = dict(out.metadata)
            peak = max(peak, float(found["lavfi.r128.true_peak"]))
    integrated = float(found["lavfi.r128.I"])
    try:
        pyloudnorm = importlib.import_module("pyloudnorm")
    except ImportError:
        return integrated, 20 * np.log10(peak)
    integrated = float(pyloudnorm.Meter(RATE).integrated_loudness(samples.T.astype(np.float64)))
    return integrated, 20 * np.log10(peak)


def test_a_social_spot_meets_its_preset_as_delivered(src: Sources, tmp_path: Path) -> None:
    """Measured on the decoded AAC, not on what went into the encoder."""
    recipe = replace(
        small(
            clips=[Clip(src.toned, "video"), Clip(src.png, "image", duration=1.5)],
            music=Music(src.beat, fade_in=0.3, fade_out=0.5),
        ),
        loudness="social",
    )
    meta, d, _ = render(recipe, tmp_path / "social.mp4")
    assert d.audio is not None
    integrated, true_peak = meter(d.audio[:, : round(d.video_duration * RATE)])
    assert integrated == pytest.approx(-14.0, abs=0.5)
    assert true_peak <= -1.0 + 0.1
    loudness = meta["loudness"]
    assert isinstance(loudness, dict) and loudness["integrated_lufs"] == pytest.approx(-14.0, abs=0.5)


@pytest.mark.parametrize(
    ("preset", "target", "ceiling"), [("social", -14.0, -1.0), ("broadcast_us", -24.0, -2.0)]
)
def test_an_audio_master_meets_its_preset(
    src: Sources, tmp_path: Path, preset: str, target: float, ceiling: float
) -> None:
    recipe = Recipe(music=Music(src.beat, loop=True, fade_in=0.5, fade_out=1.0), length=8.0, loudness=preset)
    for fmt in ("wav", "mp3"):
        meta = render_audio(recipe, tmp_path / f"m.{fmt}", fmt, lambda f: None)
        samples = decode_audio_file(tmp_path / f"m.{fmt}")
        assert samples.shape == (2, 8 * RATE)
        integrated, true_peak = meter(samples)
        assert integrated == pytest.approx(target, abs=0.5)
        assert true_peak <= ceiling + 0.1
        assert meta["loudness"]["integrated_lufs"] == pytest.approx(target, abs=0.5)


# ---------------------------------------------------------------------------------------------
# Bad input


def test_bad_recipes_name_the_field_and_leave_no_file(src: Sources, tmp_path: Path) -> None:
    video = Clip(src.toned, "video")

    def field(recipe: Recipe) -> str | None:
        out = tmp_path / "bad.mp4"
        with pytest.raises(InputError) as err:
            render_video(recipe, out, lambda f: None)
        assert not out.exists()
        return err.value.field

    assert field(small(clips=[video, video, Clip(src.toned, "video", start=2.0, end=1.0)])) == "clips[2].out"
    assert field(small(clips=[video, video, Clip(src.toned, "video", start=1.0, end=3.5)])) == "clips[2].out"
    assert field(small(clips=[video, Clip(src.toned, "video", start=5.0)])) == "clips[1].in"
    assert field(small(clips=[video, Clip(src.audio_only, "video")])) == "clips[1].video_id"
    assert field(small(clips=[video, Clip(src.png, "video")])) == "clips[1].video_id"
    assert field(small(clips=[Clip(src.toned, "image", duration=1.0)])) == "clips[0].image_id"
    assert field(small(clips=[Clip(src.png, "image", duration=0)])) == "clips[0].duration"
    assert field(small(clips=[video], length=3.5)) == "length"
    assert field(small(clips=[video], music=Music(src.silent))) == "music.audio_id"
    assert field(small(clips=[video], music=Music(src.music, start=60))) == "music.start"
    assert (
        field(small(clips=[video, video], transition=Transition("crossfade", 3.5))) == "transition.duration"
    )
    assert field(small(clips=[video], fit="pad", background="purple")) == "background"
    assert field(replace(small(clips=[video]), loudness="loud")) == "loudness"
    assert field(Recipe(clips=[video], aspect="3:2", loudness=None)) == "aspect"

    with pytest.raises(InputError) as err:
        render_audio(
            Recipe(music=Music(src.steady), length=5.0, loudness=None),
            tmp_path / "a.wav",
            "wav",
            lambda f: None,
        )
    assert err.value.field == "length" and not (tmp_path / "a.wav").exists()


def test_a_failed_render_removes_its_file(src: Sources, tmp_path: Path) -> None:
    out = tmp_path / "stop.mp4"

    def stop(fraction: float) -> None:
        if fraction > 0.3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        render_video(small(clips=[Clip(src.toned, "video")]), out, stop)
    assert not out.exists()

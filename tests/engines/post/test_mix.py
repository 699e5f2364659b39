"""The soundtrack's parts on their own: reading any audio to 48 kHz stereo in sync, the loop seam,
crossfade and fade gains, the music bed's placement, and the ducker's envelope."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mediagen.engines.audio_io import write_audio
from mediagen.engines.base import InputError
from mediagen.engines.post.mix import (
    CUT_FADE,
    DUCK_DB,
    RATE,
    SEAM,
    clip_track,
    duck_gain,
    equal_power,
    fade,
    loop,
    music_bed,
    read_audio,
)
from mediagen.engines.post.recipe import Music
from mediagen.engines.post.timeline import Span


def sines(seconds: float, rate: int, *hz: float) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return np.stack([sum(0.2 * np.sin(2 * np.pi * f * t + c) for f in hz) for c in (0.0, 1.0)]).astype(
        np.float32
    )


def test_reads_any_rate_and_layout_as_48k_stereo_in_place(tmp_path: Path) -> None:
    rate = 44_100
    mono = np.zeros((1, 2 * rate), np.float32)
    mono[0, rate // 2] = 0.9  # a click at 0.5 s
    write_audio(mono, tmp_path / "click.wav", "wav", rate=rate)
    got = read_audio(tmp_path / "click.wav", skip=0.25, limit=RATE, origin=None)
    assert got is not None
    data, more = got
    assert data.shape == (2, RATE) and data.dtype == np.float32 and more
    assert np.array_equal(data[0], data[1])  # mono goes to both sides at its own level
    assert int(np.argmax(np.abs(data[0]))) == pytest.approx(RATE // 4, abs=1)
    assert np.abs(data).max() == pytest.approx(0.9, abs=0.1)

    rest = read_audio(tmp_path / "click.wav", skip=1.5, limit=RATE, origin=None)
    assert rest is not None and rest[0].shape == (2, RATE // 2) and not rest[1]
    assert read_audio(tmp_path / "nothing.wav", skip=0, limit=10, origin=None) is None


def test_equal_power_gains_keep_power_constant() -> None:
    rise, fall = equal_power(480)
    assert np.allclose(rise**2 + fall**2, 1.0, atol=1e-6)
    assert rise[0] < 0.01 and fall[-1] < 0.01 and np.all(np.diff(rise) > 0)


def test_a_loop_repeats_with_no_jump_at_its_seam() -> None:
    region = sines(1.0, RATE, 227.3, 331.2)  # ends mid-swing: a hard splice would jump
    spliced = np.abs(region[:, 0] - region[:, -1]).max()
    steps = np.abs(np.diff(region, axis=1)).max()
    assert spliced > 5 * steps

    out = loop(region, 3 * RATE)
    assert out.shape == (2, 3 * RATE)
    seam = round(SEAM * RATE)
    assert np.array_equal(out[:, : RATE - seam], region[:, : RATE - seam])
    period = RATE - seam  # after the first pass, every pass is the same
    assert np.array_equal(out[:, period : 2 * period], out[:, 2 * period : 3 * period])
    assert np.abs(np.diff(out, axis=1)).max() <= 1.05 * steps


def test_fades_shape_and_never_overlap() -> None:
    data = np.ones((2, RATE), np.float32)
    fade(data, 0.25, 0.25)
    assert data[0, 0] < 0.001 and data[0, -1] < 0.001 and data[0, RATE // 2] == 1.0
    assert np.all(np.diff(data[0, : RATE // 4]) > 0) and np.all(np.diff(data[0, -RATE // 4 :]) < 0)

    short = np.ones((2, 100), np.float32)
    fade(short, 1.0, 1.0)  # both asked longer than the clip: shortened to share it
    assert short[0, 0] < 0.01 and short[0, -1] < 0.01 and short[0, 50] > 0.95


def test_clip_sound_crossfades_keep_uncorrelated_power(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    a = (0.1 * rng.standard_normal((2, 2 * RATE))).astype(np.float32)
    b = (0.1 * rng.standard_normal((2, 2 * RATE))).astype(np.float32)
    spans = [Span(0, "video", 0.0, 2.0, 0.0, 0.0, 0.5), Span(1, "video", 1.5, 3.5, 0.0, 0.5, 0.0)]
    out = clip_track(spans, {0: a, 1: b}, round(3.5 * RATE))
    for start in np.arange(1.5, 2.0, 0.1):
        part = out[:, round(start * RATE) : round((start + 0.1) * RATE)]
        assert np.sqrt(np.mean(part**2)) == pytest.approx(0.1, rel=0.1)


def test_music_bed_is_placed_trimmed_and_faded_to_end_on_time(tmp_path: Path) -> None:
    path = tmp_path / "m.wav"
    write_audio(sines(3.0, 44_100, 440), path, "wav", rate=44_100)
    bed = music_bed(Music(path, offset=0.5), 2 * RATE, must_fill=False)
    assert bed.shape == (2, 2 * RATE)
    assert not bed[:, : RATE // 2].any()  # nothing before the offset
    level = np.sqrt(np.mean(bed[:, RATE // 2 + 2400 : RATE - 2400] ** 2))
    assert level > 0.1
    # Cut short by the end of the track: faded over CUT_FADE, though no fade was asked.
    tail = bed[:, 2 * RATE - round(CUT_FADE * RATE) :]
    assert np.abs(tail[:, -480:]).max() < 0.02 * np.abs(bed).max()
    assert np.sqrt(np.mean(tail[:, : RATE // 10] ** 2)) > 0.8 * level

    fits = music_bed(Music(path), 4 * RATE, must_fill=False)  # ends by itself, then silence
    assert fits[:, 3 * RATE + 10 :].max() == 0
    with pytest.raises(InputError) as err:
        music_bed(Music(path), 4 * RATE, must_fill=True)
    assert err.value.field == "length"
    with pytest.raises(InputError) as err:
        music_bed(Music(path, offset=5.0), 4 * RATE, must_fill=False)
    assert err.value.field == "music.offset"


def test_duck_gain_is_down_before_the_sound_and_back_after() -> None:
    voice = np.zeros((2, 5 * RATE), np.float32)
    voice[:, RATE : 2 * RATE] = sines(1.0, RATE, 300)
    gain = 20 * np.log10(duck_gain(voice))
    assert gain[RATE // 2] == pytest.approx(0.0, abs=0.1)
    assert gain[RATE] < -8  # already most of the way down when the sound starts
    assert gain[round(1.5 * RATE)] == pytest.approx(DUCK_DB, abs=0.2)
    assert gain[round(2.1 * RATE)] == pytest.approx(DUCK_DB, abs=0.5)  # held between words
    assert gain[round(3.5 * RATE)] > -1  # released
    assert np.abs(np.diff(gain)).max() < 0.05  # smooth: no zipper steps

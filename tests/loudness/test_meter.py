"""The meter against the standards' own numbers and test signals, and against an independent meter:
FFmpeg's `ebur128` filter (libavfilter's own BS.1770 / Tech 3342 code), run through PyAV."""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import av
import av.filter
import numpy as np
import pyloudnorm
import pytest
from scipy import signal

from mediagen.engines.audio_io import write_mp3, write_wav
from mediagen.loudness import Measurement, measure, measure_file
from mediagen.loudness.meter import (
    _TP_PHASES,
    TP_CONTEXT,
    LoudnessMeter,
    interpolated_peak,
    k_weighting,
    oversampled_peaks,
)

RATE = 48_000

# ITU-R BS.1770-4, Annex 1, Tables 1 and 2: the K-weighting stages at 48 kHz.
BS1770_SHELF = (
    [1.53512485958697, -2.69169618940638, 1.19839281085285],
    [1.0, -1.69065929318241, 0.73248077421585],
)
BS1770_HIGHPASS = ([1.0, -2.0, 1.0], [1.0, -1.99004745483398, 0.99007225036621])


def ebur128(samples: np.ndarray, rate: int) -> Measurement:
    """FFmpeg's meter: abuffer → ebur128 (peak=true, metadata=1) → abuffersink. Each output frame
    carries the running figures in its metadata; the last one holds the whole programme's."""
    layout = "mono" if samples.shape[0] == 1 else "stereo"
    graph = av.filter.Graph()
    source = graph.add_abuffer(sample_rate=rate, format="fltp", layout=layout, time_base=Fraction(1, rate))
    meter = graph.add("ebur128", "peak=true:metadata=1")
    sink = graph.add("abuffersink")
    source.link_to(meter)
    meter.link_to(sink)
    graph.configure()
    metadata: dict[str, str] = {}

    def drain() -> None:
        nonlocal metadata
        while True:
            try:
                frame = sink.pull()
            except (av.BlockingIOError, av.EOFError):
                return
            if "lavfi.r128.I" in frame.metadata:  # a trailing partial step comes out without
                metadata = dict(frame.metadata)

    for start in range(0, samples.shape[1], rate):
        chunk = np.ascontiguousarray(samples[:, start : start + rate], dtype=np.float32)
        frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=layout)
        frame.sample_rate = rate
        frame.pts = start
        frame.time_base = Fraction(1, rate)
        source.push(frame)
        drain()
    source.push(None)
    drain()
    peak = float(metadata["lavfi.r128.true_peak"])  # linear, the running maximum over all channels
    return Measurement(
        float(metadata["lavfi.r128.I"]),
        20 * math.log10(peak) if peak > 0 else None,
        float(metadata["lavfi.r128.LRA"]),
    )


def sine(freq: float, dbfs: float, seconds: float, rate: int = RATE, phase: float = 0.0) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return 10 ** (dbfs / 20) * np.sin(2 * np.pi * freq * t + phase)


def music(seconds: float, rate: int, peak_dbfs: float, *, seed: int = 0, channels: int = 2) -> np.ndarray:
    """Music-like test material: pink noise (decorrelated per channel) swelling over 7 s, with a
    decaying 55 Hz "kick" every half second for transients and bass, scaled to a sample peak."""
    rng = np.random.default_rng(seed)
    frames = round(seconds * rate)
    spectrum = np.fft.rfft(rng.standard_normal((channels, frames)), axis=1)
    freqs = np.fft.rfftfreq(frames, 1 / rate)
    freqs[0] = freqs[1]
    pink = np.fft.irfft(spectrum / np.sqrt(freqs), n=frames, axis=1)
    pink /= pink.std()
    t = np.arange(frames) / rate
    kick = 4 * np.sin(2 * np.pi * 55 * t) * np.exp(-(t % 0.5) / 0.04)
    mix = pink * 0.5 * (1 + 0.5 * np.sin(2 * np.pi * t / 7)) + kick
    return mix / np.abs(mix).max() * 10 ** (peak_dbfs / 20)


def test_k_weighting_at_48k_is_the_standards_table() -> None:
    expected = np.array([BS1770_SHELF[0] + BS1770_SHELF[1], BS1770_HIGHPASS[0] + BS1770_HIGHPASS[1]])
    np.testing.assert_allclose(k_weighting(48_000), expected, atol=1e-10)


def test_k_weighting_at_other_rates_has_the_same_response() -> None:
    reference = np.array([BS1770_SHELF[0] + BS1770_SHELF[1], BS1770_HIGHPASS[0] + BS1770_HIGHPASS[1]])
    freqs = np.array([20.0, 100.0, 1000.0, 4000.0, 10_000.0])
    _, want = signal.sosfreqz(reference, freqs, fs=48_000)
    for rate in (44_100, 32_000, 96_000):
        _, got = signal.sosfreqz(k_weighting(rate), freqs, fs=rate)
        # Below 10 kHz the bilinear warping differs by hundredths of a dB between these rates.
        np.testing.assert_allclose(20 * np.log10(np.abs(got)), 20 * np.log10(np.abs(want)), atol=0.05)


def test_tech_3341_sine_in_both_channels_reads_its_level() -> None:
    # A stereo 1 kHz sine of peak A carries A² of power (A²/2 per channel); K-weighting adds
    # 20·log10|H(1 kHz)| = +0.698 dB at 48 kHz (from the standard's table), BS.1770 subtracts 0.691:
    # −23 dBFS reads −22.993 LUFS and −20 dBFS reads −19.993 (EBU Tech 3341 case 1: −23.0 ± 0.1).
    _, response = signal.sosfreqz(
        np.array([BS1770_SHELF[0] + BS1770_SHELF[1], BS1770_HIGHPASS[0] + BS1770_HIGHPASS[1]]),
        [1000.0],
        fs=RATE,
    )
    gain_db = 20 * math.log10(abs(response[0]))
    for dbfs in (-23.0, -20.0):
        tone = sine(1000, dbfs, 10)
        got = measure(np.stack([tone, tone]), RATE)
        assert got.integrated_lufs == pytest.approx(dbfs + gain_db - 0.691, abs=0.01)
        assert got.integrated_lufs == pytest.approx(
            ebur128(np.stack([tone, tone]), RATE).integrated_lufs, abs=0.05
        )
        assert got.true_peak_dbtp == pytest.approx(dbfs, abs=0.02)
        assert got.lra == pytest.approx(0.0, abs=0.1)


@pytest.mark.parametrize("rate", [44_100, 32_000, 22_050, 96_000])
def test_any_sample_rate_reads_the_same_sine_alike(rate: int) -> None:
    tone = sine(1000, -23.0, 5, rate)
    got = measure(np.stack([tone, tone]), rate)
    assert got.integrated_lufs == pytest.approx(-23.0, abs=0.1)
    assert got.true_peak_dbtp == pytest.approx(-23.0, abs=0.05)


def test_mono_is_one_channel_as_bs1770_measures_it() -> None:
    tone = sine(1000, -23.0, 5)
    mono, flat = measure(tone[None, :], RATE), measure(tone, RATE)  # channels × frames, or 1-D
    stereo = measure(np.stack([tone, tone]), RATE)
    assert mono == flat
    assert mono.integrated_lufs == pytest.approx(stereo.integrated_lufs - 10 * math.log10(2), abs=0.01)
    assert mono.integrated_lufs == pytest.approx(ebur128(tone[None, :], RATE).integrated_lufs, abs=0.05)


@pytest.mark.parametrize("rate", [48_000, 44_100])
def test_programme_material_agrees_with_ffmpeg_and_pyloudnorm(rate: int) -> None:
    mix = music(12, rate, -3.0, seed=rate)
    ours, ffmpeg = measure(mix, rate), ebur128(mix, rate)
    assert ours.integrated_lufs is not None and ours.true_peak_dbtp is not None and ours.lra is not None
    assert ours.integrated_lufs == pytest.approx(ffmpeg.integrated_lufs, abs=0.1)
    assert ours.true_peak_dbtp == pytest.approx(ffmpeg.true_peak_dbtp, abs=0.15)
    assert ours.lra == pytest.approx(ffmpeg.lra, abs=0.5)
    # pyloudnorm's "DeMan" class is BS.1770's exact filter designed for any rate.
    reference = pyloudnorm.Meter(rate, filter_class="DeMan").integrated_loudness(mix.T)
    assert ours.integrated_lufs == pytest.approx(reference, abs=0.05)


def test_gates_drop_silence_and_quiet_passages() -> None:
    loud, whisper, nothing = sine(1000, -20.0, 8), sine(1000, -36.0, 8), sine(1000, -85.0, 8)
    below_absolute = np.concatenate([loud, nothing])
    below_relative = np.concatenate([loud, whisper])
    for programme in (below_absolute, below_relative):
        stereo = np.stack([programme, programme])
        got = measure(stereo, RATE).integrated_lufs
        # Only the blocks that straddle the change are in, and they pull the result by < 0.3 LU.
        assert got == pytest.approx(-20.0, abs=0.3)
        assert got == pytest.approx(ebur128(stereo, RATE).integrated_lufs, abs=0.1)
    ungated = 10 * math.log10((1 + 10 ** (-1.6)) / 2) - 20.0  # the −36 half would pull it to −22.9
    assert measure(np.stack([below_relative] * 2), RATE).integrated_lufs > ungated + 2


def test_silence_and_too_short() -> None:
    assert measure(np.zeros((2, RATE * 5)), RATE) == Measurement(None, None, None)
    dither = np.random.default_rng(1).standard_normal((2, RATE * 5)) * 1e-5  # about −97 LUFS
    quiet = measure(dither, RATE)
    assert quiet.integrated_lufs is None and quiet.lra is None and quiet.true_peak_dbtp is not None
    tone = sine(1000, -20.0, 0.3)
    blip = measure(np.stack([tone, tone]), RATE)  # shorter than one 400 ms gating block
    assert blip.integrated_lufs is None and blip.lra is None
    assert blip.true_peak_dbtp == pytest.approx(-20.0, abs=0.05)
    tone = sine(1000, -20.0, 2.5)
    short = measure(np.stack([tone, tone]), RATE)  # no 3 s short-term window yet
    assert short.integrated_lufs == pytest.approx(-20.0, abs=0.05) and short.lra is None


def test_true_peak_finds_the_peak_between_samples() -> None:
    # fs/4 with a 45° phase: every sample lands at ±sin 45° of the crest, 3.01 dB under it. Faded
    # in and out, since a tone that starts at full level overshoots at its onset (a real peak too).
    ramp = np.linspace(0, 30, 3 * RATE)  # 0.1 s fades
    tone = sine(RATE / 4, -6.0, 3, phase=math.pi / 4) * np.clip(np.minimum(ramp, ramp[::-1]), 0, 1)
    stereo = np.stack([tone, tone])
    sample_peak = 20 * math.log10(np.abs(tone).max())
    got = measure(stereo, RATE).true_peak_dbtp
    assert sample_peak == pytest.approx(-6.0 - 3.01, abs=0.01)
    assert got is not None and got > sample_peak + 2.5
    assert got == pytest.approx(-6.0, abs=0.05)
    assert got == pytest.approx(ebur128(stereo, RATE).true_peak_dbtp, abs=0.2)


@pytest.mark.parametrize("frames", [1, 31, 32, 2017, 2048, 5000, 70_001])
def test_the_interpolation_is_the_filter_applied_point_by_point(frames: int) -> None:
    # The meter interpolates block by block in the frequency domain (overlap-save); every point
    # must be what the filter gives when applied directly, at block seams and lengths of every kind.
    rng = np.random.default_rng(frames)
    padded = rng.uniform(-1.0, 1.0, (2, frames + TP_CONTEXT))
    direct = np.max(
        [np.abs([np.convolve(ch, phase, mode="valid") for ch in padded]) for phase in _TP_PHASES], axis=0
    )
    assert oversampled_peaks(padded).shape == (2, frames)
    np.testing.assert_allclose(oversampled_peaks(padded), direct, rtol=0, atol=1e-12)
    # float32 samples (what the decoder gives) are interpolated in float32: within ~1e-6 of full scale.
    single = oversampled_peaks(padded.astype(np.float32))
    assert single.dtype == np.float32
    np.testing.assert_allclose(single, direct, rtol=0, atol=2e-6)
    # The meter's reduction sees the same points and no others (not the zero padding past the end).
    assert interpolated_peak(padded) == pytest.approx(float(direct.max()), abs=1e-12)
    assert interpolated_peak(padded.astype(np.float32)) == pytest.approx(float(direct.max()), abs=2e-6)


@pytest.mark.parametrize(
    ("levels", "expected"),
    [
        ((-20.0, -30.0), 10.0),
        ((-20.0, -15.0), 5.0),
        ((-40.0, -20.0), 20.0),
        ((-50, -35, -20, -35, -50), 15.0),
    ],
)
def test_tech_3342_loudness_range_cases(levels: tuple[float, ...], expected: float) -> None:
    # Tech 3342's compliance signals: a stereo 1 kHz sine, 20 s at each level in turn; ±1 LU allowed.
    programme = np.concatenate([sine(1000, level, 20, 16_000) for level in levels])
    stereo = np.stack([programme, programme])
    got = measure(stereo, 16_000).lra
    assert got == pytest.approx(expected, abs=1.0)
    assert got == pytest.approx(ebur128(stereo, 16_000).lra, abs=0.3)


def test_feeding_in_chunks_is_the_same_as_all_at_once() -> None:
    mix = music(7, 44_100, -1.0, seed=3)
    meter = LoudnessMeter(44_100, 2)
    rng = np.random.default_rng(4)
    start = 0
    while start < mix.shape[1]:
        size = int(rng.integers(1, 9000))  # seams anywhere, also inside a 100 ms step
        meter.feed(mix[:, start : start + size])
        start += size
    whole = measure(mix, 44_100)
    assert meter.result() == whole


def _decoded(path: Path) -> tuple[np.ndarray, int]:
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        frames = [frame.to_ndarray() for frame in container.decode(stream)]
        return np.concatenate(frames, axis=1), stream.rate


def _write_mp4(path: Path, samples: np.ndarray | None, rate: int) -> None:
    """A short MPEG-4 video (tiny frames), with an AAC track when there are samples."""
    with av.open(str(path), "w", format="mp4") as container:
        video = container.add_stream("mpeg4", rate=10)
        video.width, video.height, video.pix_fmt = 32, 32, "yuv420p"
        audio = None
        if samples is not None:
            audio = container.add_stream("aac", rate=rate, layout="stereo")
            audio.bit_rate = 192_000
        seconds = 3 if samples is None else samples.shape[1] / rate
        for i in range(int(seconds * 10)):
            picture = av.VideoFrame.from_ndarray(np.full((32, 32, 3), i * 8 % 256, np.uint8), format="rgb24")
            container.mux(video.encode(picture.reformat(format="yuv420p")))
        container.mux(video.encode(None))
        if audio is not None and samples is not None:
            for start in range(0, samples.shape[1], 4096):
                chunk = np.ascontiguousarray(samples[:, start : start + 4096], dtype=np.float32)
                frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
                frame.sample_rate, frame.pts = rate, start
                container.mux(audio.encode(frame))
            container.mux(audio.encode(None))


@pytest.mark.parametrize("kind", ["wav", "mp3", "mp4"])
def test_measure_file_agrees_with_the_decoded_samples(tmp_path: Path, kind: str) -> None:
    rate = 44_100 if kind == "mp3" else 48_000  # measured at the file's own rate, never resampled
    mix = music(6, rate, -2.0, seed=5)
    path = tmp_path / f"mix.{kind}"
    if kind == "wav":
        write_wav(mix, path, rate=rate)
    elif kind == "mp3":
        write_mp3(mix, path, rate=rate)
    else:
        _write_mp4(path, mix, rate)
    got = measure_file(path)
    decoded, decoded_rate = _decoded(path)
    assert decoded_rate == rate
    if decoded.shape[0] == 1:  # packed PCM decodes interleaved: L R L R …
        decoded = decoded.reshape(-1, 2).T
    if decoded.dtype == np.int16:
        decoded = decoded / 32768.0
    assert got == measure(decoded, rate)
    # And it is still the programme: the lossy encoders' low-pass takes the top octave, which pink
    # noise under K-weighting's +4 dB shelf carries a few % of, so they read ~0.3 LU lower.
    original = measure(mix, rate)
    assert got is not None and got.integrated_lufs is not None and original.integrated_lufs is not None
    assert got.integrated_lufs == pytest.approx(original.integrated_lufs, abs=0.5 if kind != "wav" else 0.01)


def test_measure_file_of_a_silent_video_is_none(tmp_path: Path) -> None:
    path = tmp_path / "silent.mp4"
    _write_mp4(path, None, RATE)
    assert measure_file(path) is None

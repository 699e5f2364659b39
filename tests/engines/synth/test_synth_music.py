"""Rendered music, checked by decoding it back (PyAV for both formats, soundfile for WAV)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
import soundfile as sf

from mediagen.engines.synth.music import render_music
from tests.utils.audio import estimate_bpm

SR = 44_100


def decode(path: Path) -> tuple[np.ndarray, int, float]:
    """(float samples (channels, n), sample rate, container duration in seconds)."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        rate = stream.codec_context.sample_rate
        resampler = av.AudioResampler(format="fltp")
        chunks = [out.to_ndarray() for frame in container.decode(stream) for out in resampler.resample(frame)]
        duration = container.duration / av.time_base
    return np.concatenate(chunks, axis=1), rate, duration


@pytest.fixture(scope="module")
def renders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, dict[str, Any]]]:
    out = tmp_path_factory.mktemp("music")
    jobs = {
        "edm_mp3": ("upbeat electronic dance music with heavy bass", 6.5, 0, "mp3", None),
        "edm_wav": ("upbeat electronic dance music with heavy bass", 6.5, 0, "wav", None),
        "edm_wav_again": ("upbeat electronic dance music with heavy bass", 6.5, 0, "wav", None),
        "edm_mp3_again": ("upbeat electronic dance music with heavy bass", 6.5, 0, "mp3", None),
        "edm_seed2": ("upbeat electronic dance music with heavy bass", 6.5, 2, "wav", None),
        "techno": ("dark techno 128 bpm", 8.0, 1, "wav", None),
        "rock": ("punk rock", 8.0, 3, "wav", None),
        "trap": ("trap 808", 8.0, 4, "wav", None),
        "ambient": ("calm ambient meditation", 6.0, 5, "mp3", None),
        "forced": ("acoustic folk", 8.0, 6, "wav", 100),
        "short": ("cinematic orchestral", 1.0, 7, "mp3", None),
    }
    result = {}
    for name, (prompt, duration, seed, fmt, bpm) in jobs.items():
        path = out / f"{name}.{fmt}"
        meta = render_music(prompt, duration=duration, seed=seed, output_format=fmt, bpm=bpm, out=path)
        result[name] = (path, meta)
    return result


@pytest.mark.parametrize("name", ["edm_mp3", "edm_wav", "ambient", "short"])
def test_duration_channels_rate(renders: dict, name: str) -> None:
    path, meta = renders[name]
    samples, rate, container_duration = decode(path)
    requested = meta["duration"]
    assert rate == SR and samples.shape[0] == 2
    assert abs(samples.shape[1] / rate - requested) <= 0.1  # as decoded
    assert abs(container_duration - requested) <= 0.1  # as probed
    if meta["format"] == "wav":
        data, sf_rate = sf.read(str(path))
        assert sf_rate == SR and data.shape == (samples.shape[1], 2)
        assert abs(len(data) / SR - requested) <= 0.01


def test_mp3_is_exact_to_the_sample(renders: dict) -> None:
    samples, _, duration = decode(renders["edm_mp3"][0])
    assert samples.shape[1] == round(6.5 * SR)  # LAME header lets the decoder trim delay and padding
    assert duration == pytest.approx(6.5, abs=0.001)


@pytest.mark.parametrize("name", ["edm_mp3", "edm_wav", "techno", "ambient", "short"])
def test_loud_enough_and_never_clipped(renders: dict, name: str) -> None:
    samples, _, _ = decode(renders[name][0])
    rms_db = 20 * np.log10(np.sqrt(np.mean(samples**2)))
    peak = np.max(np.abs(samples))
    assert rms_db > -30, f"too quiet: {rms_db:.1f} dBFS"
    assert 20 * np.log10(peak) <= -0.3
    hot = np.abs(samples) >= 0.999
    runs = hot[:, 1:] & hot[:, :-1]
    assert not runs.any(), "clipped samples in a row"


@pytest.mark.parametrize("name", ["edm_wav", "techno", "rock", "trap"])
def test_tempo_matches_plan_exactly(renders: dict, name: str) -> None:
    path, meta = renders[name]
    samples, rate, _ = decode(path)
    found = estimate_bpm(samples.mean(axis=0), rate)
    assert found == pytest.approx(meta["bpm"], rel=0.02), f"planned {meta['bpm']}, heard {found}"


def test_forced_tempo_is_heard_up_to_an_octave(renders: dict) -> None:
    """Folk strums 8ths and shakes 16ths, so the strongest periodicity may be twice the beat."""
    path, meta = renders["forced"]
    samples, rate, _ = decode(path)
    found = estimate_bpm(samples.mean(axis=0), rate)
    assert any(found == pytest.approx(meta["bpm"] * k, rel=0.02) for k in (0.5, 1, 2)), found


def test_bpm_parameter_and_prompt_tempo(renders: dict) -> None:
    assert renders["forced"][1]["bpm"] == 100
    assert renders["forced"][1]["tempo_source"] == "parameter"
    assert renders["techno"][1]["bpm"] == 128


def test_same_seed_same_bytes_other_seed_other_bytes(renders: dict) -> None:
    assert renders["edm_wav"][0].read_bytes() == renders["edm_wav_again"][0].read_bytes()
    assert renders["edm_mp3"][0].read_bytes() == renders["edm_mp3_again"][0].read_bytes()
    assert renders["edm_wav"][0].read_bytes() != renders["edm_seed2"][0].read_bytes()


def test_different_prompts_differ_in_tempo_key_and_instruments(renders: dict) -> None:
    metas = [renders[n][1] for n in ("edm_wav", "techno", "rock", "trap", "ambient")]
    assert len({m["genre"] for m in metas}) == 5
    assert len({m["bpm"] for m in metas}) >= 4
    assert len({(m["key"], m["mode"]) for m in metas}) >= 3
    assert len({tuple(m["instruments"]) for m in metas}) == 5
    # and they sound different: spectral centroids of ambient and techno are far apart
    centroids = []
    for name in ("ambient", "techno"):
        mono = decode(renders[name][0])[0].mean(axis=0)
        spec = np.abs(np.fft.rfft(mono))
        freqs = np.fft.rfftfreq(len(mono), 1 / SR)
        centroids.append(float((spec * freqs).sum() / spec.sum()))
    assert abs(centroids[0] - centroids[1]) > 200


def test_metadata_describes_the_piece(renders: dict) -> None:
    meta = renders["techno"][1]
    for key in ("genre", "bpm", "key", "mode", "sections", "instruments", "progression", "seed", "duration"):
        assert key in meta
    sections = meta["sections"]
    assert sections[0]["start"] == 0 and sections[-1]["end"] == pytest.approx(8.0)
    assert all(a["end"] == pytest.approx(b["start"]) for a, b in zip(sections, sections[1:], strict=False))
    assert meta["content_type"] == "audio/wav"
    assert renders["edm_mp3"][1]["content_type"] == "audio/mpeg"


def test_long_piece_has_structure(tmp_path: Path) -> None:
    meta = render_music("upbeat pop", duration=60.0, seed=3, output_format="wav", out=tmp_path / "pop.wav")
    names = [s["name"] for s in meta["sections"]]
    assert names[0] == "intro" and names[-1] == "outro" and "verse" in names and "chorus" in names
    data, _ = sf.read(str(tmp_path / "pop.wav"))
    assert abs(len(data) / SR - 60.0) <= 0.01


def test_rejects_out_of_range_duration(tmp_path: Path) -> None:
    for bad in (0.5, 301.0):
        with pytest.raises(ValueError):
            render_music("edm", duration=bad, seed=1, output_format="wav", out=tmp_path / "x.wav")

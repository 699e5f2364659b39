"""probe(): the truth about a file from its bytes (never its name), and clear errors for bad ones."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from mediagen.engines.synth.music import render_music
from mediagen.engines.synth.video import render_video
from mediagen.media import MediaError, probe


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("probe")
    out = {
        "mp3": d / "song.mp3",
        "wav": d / "song.wav",
        "mp4": d / "clip.mp4",
        "silent_mp4": d / "silent.mp4",
    }
    render_music("upbeat pop", duration=3.0, seed=1, output_format="mp3", out=out["mp3"])
    render_music("upbeat pop", duration=3.0, seed=1, output_format="wav", out=out["wav"])
    render_video("ocean", duration=1.5, fps=10, width=128, height=72, seed=1, soundtrack=True, out=out["mp4"])
    render_video("ocean", duration=1.0, fps=10, width=64, height=48, seed=1, out=out["silent_mp4"])
    pixels = (np.random.default_rng(0).random((60, 90, 3)) * 255).astype(np.uint8)
    for fmt, name in (("PNG", "png"), ("JPEG", "jpg"), ("WEBP", "webp"), ("GIF", "gif")):
        out[name] = d / f"pic.{name}"
        Image.fromarray(pixels).save(out[name], fmt)
    sf.write(str(d / "mono.flac"), np.zeros(22050) + 0.1, 22050)
    out["flac"] = d / "mono.flac"
    return out


def test_audio(files: dict[str, Path]) -> None:
    mp3 = probe(files["mp3"])
    assert (mp3.kind, mp3.container, mp3.content_type) == ("audio", "mp3", "audio/mpeg")
    assert mp3.duration == pytest.approx(3.0, abs=0.01)
    assert (mp3.sample_rate, mp3.channels, mp3.codecs) == (44100, 2, ("mp3",))
    assert 150_000 < (mp3.bitrate or 0) < 230_000
    wav = probe(files["wav"])
    assert (wav.content_type, wav.duration, wav.codecs) == ("audio/wav", 3.0, ("pcm_s16le",))
    flac = probe(files["flac"])
    assert (flac.content_type, flac.channels, flac.sample_rate) == ("audio/flac", 1, 22050)
    assert flac.duration == pytest.approx(1.0, abs=0.01)


def test_video(files: dict[str, Path]) -> None:
    info = probe(files["mp4"])
    assert (info.kind, info.container, info.content_type) == ("video", "mp4", "video/mp4")
    assert info.duration == pytest.approx(1.5, abs=0.05)
    assert (info.width, info.height, info.frames, info.frame_rate) == (128, 72, 15, 10.0)
    assert info.codecs == ("h264", "aac") and info.sample_rate == 44100
    silent = probe(files["silent_mp4"])
    assert silent.codecs == ("h264",) and silent.sample_rate is None


@pytest.mark.parametrize(
    ("name", "mime"),
    [("png", "image/png"), ("jpg", "image/jpeg"), ("webp", "image/webp"), ("gif", "image/gif")],
)
def test_images(files: dict[str, Path], name: str, mime: str) -> None:
    info = probe(files[name])
    assert (info.kind, info.content_type, info.width, info.height) == ("image", mime, 90, 60)
    assert info.duration is None


def test_extension_is_ignored(files: dict[str, Path], tmp_path: Path) -> None:
    liar = tmp_path / "actually_mp3.wav"
    liar.write_bytes(files["mp3"].read_bytes())
    assert probe(liar).content_type == "audio/mpeg"
    liar = tmp_path / "actually_png.mp4"
    liar.write_bytes(files["png"].read_bytes())
    assert probe(liar).content_type == "image/png"
    assert probe(files["mp4"]).as_dict()["codecs"] == ["h264", "aac"]


def test_empty_random_missing(tmp_path: Path) -> None:
    empty = tmp_path / "empty.mp3"
    empty.write_bytes(b"")
    with pytest.raises(MediaError, match="empty"):
        probe(empty)
    noise = tmp_path / "noise.mp4"
    noise.write_bytes(np.random.default_rng(3).bytes(20_000))
    with pytest.raises(MediaError):
        probe(noise)
    with pytest.raises(MediaError):
        probe(tmp_path / "missing.wav")
    text = tmp_path / "notes.png"
    text.write_text("hello, not a picture")
    with pytest.raises(MediaError):
        probe(text)


@pytest.mark.parametrize("name", ["mp3", "wav", "mp4", "png", "jpg"])
def test_truncated_files_are_rejected(files: dict[str, Path], tmp_path: Path, name: str) -> None:
    data = files[name].read_bytes()
    cut = tmp_path / f"cut.{name}"
    cut.write_bytes(data[: len(data) // 3])
    with pytest.raises(MediaError):
        probe(cut)


def test_corrupt_header_is_rejected(files: dict[str, Path], tmp_path: Path) -> None:
    data = bytearray(files["png"].read_bytes())
    data[20:60] = os.urandom(40)
    bad = tmp_path / "bad.png"
    bad.write_bytes(bytes(data))
    with pytest.raises(MediaError):
        probe(bad)


def test_a_file_that_demuxes_but_does_not_decode_is_rejected(files: dict[str, Path], tmp_path: Path) -> None:
    # Every MP3 frame keeps its first bytes (sync word and header: the demuxer is satisfied) but
    # its audio data is overwritten, so the decoder refuses the first packet it is given.
    data = bytearray(files["mp3"].read_bytes())
    for index in range(len(data)):
        if index % 417 > 8:
            data[index] = 0xFF
    broken = tmp_path / "broken.mp3"
    broken.write_bytes(bytes(data))
    with pytest.raises(MediaError, match="corrupt media: .*avcodec_send_packet"):
        probe(broken)

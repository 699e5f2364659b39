"""SynthEngine through the Engine protocol: jobs in, files and metadata out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mediagen.engines.base import Engine, EngineError, Finished, InputError, Job
from mediagen.engines.synth import SynthEngine
from mediagen.media.probe import probe


def job(tmp_path: Path, model: str, kind: str, **inputs: Any) -> Job:
    return Job(generation_id=7, kind=kind, model_id=model, inputs=inputs, workdir=tmp_path / "work")  # type: ignore[arg-type]


def test_is_an_engine() -> None:
    assert isinstance(SynthEngine(), Engine)
    assert SynthEngine.name == "synth"


def test_music_job(tmp_path: Path) -> None:
    result = SynthEngine().submit(
        job(
            tmp_path,
            "synth/music",
            "audio",
            prompt="dark techno 128 bpm",
            duration=2.0,
            seed=0,
            output_format="mp3",
        )
    )
    assert isinstance(result, Finished) and result.cost_usd == 0.0
    (out,) = result.outputs
    assert out.role == "main" and out.content_type == "audio/mpeg" and out.path and out.path.exists()
    assert out.path.parent == tmp_path / "work"
    info = probe(out.path)
    assert info.content_type == "audio/mpeg" and abs((info.duration or 0) - 2.0) <= 0.1
    meta = result.metadata
    for key in ("genre", "bpm", "key", "mode", "sections", "instruments", "seed", "engine", "model"):
        assert key in meta
    assert meta["bpm"] == 128 and meta["seed"] > 0 and meta["engine"] == "synth"
    assert json.loads(json.dumps(meta)) == meta  # stored as JSON on the generation row


def test_seed_from_metadata_reproduces(tmp_path: Path) -> None:
    engine = SynthEngine()
    first = engine.submit(
        job(tmp_path / "a", "synth/music", "audio", prompt="lofi", duration=1.5, output_format="wav")
    )
    seed = first.metadata["seed"]
    second = engine.submit(
        job(
            tmp_path / "b",
            "synth/music",
            "audio",
            prompt="lofi",
            duration=1.5,
            output_format="wav",
            seed=seed,
        )
    )
    assert first.outputs[0].path.read_bytes() == second.outputs[0].path.read_bytes()  # type: ignore[union-attr]


def test_image_job(tmp_path: Path) -> None:
    result = SynthEngine().submit(
        job(
            tmp_path,
            "synth/image",
            "image",
            prompt="teal waves",
            width=128,
            height=96,
            output_format="webp",
            seed=3,
        )
    )
    out = result.outputs[0]
    info = probe(out.path)  # type: ignore[arg-type]
    assert out.content_type == "image/webp" and info.content_type == "image/webp"
    assert (info.width, info.height) == (128, 96)
    json.dumps(result.metadata)


def test_video_job_with_soundtrack(tmp_path: Path) -> None:
    result = SynthEngine().submit(
        job(
            tmp_path,
            "synth/video",
            "video",
            prompt="space",
            duration=1.0,
            fps=8,
            width=96,
            height=64,
            seed=1,
            soundtrack=True,
            image=None,
        )
    )
    info = probe(result.outputs[0].path)  # type: ignore[arg-type]
    assert info.content_type == "video/mp4" and info.codecs == ("h264", "aac")
    assert json.loads(json.dumps(result.metadata))["music"]["bpm"] == result.metadata["music"]["bpm"]
    assert (info.width, info.height) == (96, 64)


def test_bad_inputs_name_the_field(tmp_path: Path) -> None:
    engine = SynthEngine()
    cases = [
        ("synth/music", {"prompt": "x", "duration": 500}, "duration"),
        ("synth/music", {"prompt": "x", "output_format": "ogg"}, "output_format"),
        ("synth/music", {"prompt": "x", "bpm": 10}, "bpm"),
        ("synth/music", {"prompt": "  "}, "prompt"),
        ("synth/image", {"prompt": "x", "width": 4000, "height": 64}, "width"),
        ("synth/video", {"prompt": "x", "width": 65, "height": 64}, "width"),
        ("synth/video", {"prompt": "x", "image": str(tmp_path / "missing.png")}, "image"),
        ("synth/music", {"prompt": "x", "seed": -3}, "seed"),
    ]
    for model, inputs, field in cases:
        with pytest.raises(InputError) as err:
            engine.submit(job(tmp_path, model, "audio", **inputs))
        assert err.value.field == field, (inputs, err.value)


def test_unknown_model_refresh_and_cancel(tmp_path: Path) -> None:
    engine = SynthEngine()
    with pytest.raises(EngineError):
        engine.submit(job(tmp_path, "synth/opera", "audio", prompt="x"))
    with pytest.raises(EngineError, match="inline"):
        engine.refresh("anything")
    assert engine.cancel("anything") is None

"""Every local model of the catalog, from a request to a stored asset that decodes to what was
asked, on tiny random-weight models saved under their real repo ids; the modes that take a stored
clip or image get one (a melody to follow, a clip to continue or re-imagine, an image to repaint)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from mediagen.engines.local.families import family
from mediagen.engines.local.spectrogram import SpectrogramParams
from mediagen.generations.schemas import GenerateRequest
from mediagen.vocabulary import Status
from tests.engines.local.conftest import Local
from tests.engines.local.tiny_musicgen import save_tiny_musicgen, save_tiny_musicgen_melody
from tests.engines.local.tiny_sd import save_tiny_riffusion, save_tiny_sd_turbo
from tests.engines.local.tiny_stable_audio import save_tiny_stable_audio
from tests.engines.local.tiny_wan import save_tiny_wan
from tests.generations.conftest import blob_bytes, reread


@dataclass(frozen=True)
class Case:
    model: str
    kind: str
    save: Callable[[Path], Path]
    fields: dict[str, Any]
    stored_input: str | None = None  # "audio" or "image": a stored asset goes in as audio_id / image_id
    expect: dict[str, Any] = field(default_factory=dict)  # duration (s), or width/height (px)


CASES = [
    Case("local/musicgen-small", "audio", save_tiny_musicgen, {"duration": 1.0}, expect={"duration": 1.0}),
    Case(
        "local/musicgen-small", "audio", save_tiny_musicgen, {"duration": 1.0}, "audio", {"duration": 1.0}
    ),  # continuation of a stored clip
    Case(
        "local/musicgen-melody",
        "audio",
        save_tiny_musicgen_melody,
        {"duration": 1.0},
        "audio",
        {"duration": 1.0},
    ),  # fmt: skip
    Case(
        "local/stable-audio-open",
        "audio",
        save_tiny_stable_audio,
        {"duration": 1.0, "parameters": {"num_inference_steps": 4}},
        expect={"duration": 1.0},
    ),  # fmt: skip
    Case(
        "local/stable-audio-open",
        "audio",
        save_tiny_stable_audio,
        {"duration": 1.0, "parameters": {"num_inference_steps": 4, "strength": 0.5}},
        "audio",
        {"duration": 1.0},
    ),  # fmt: skip
    Case(
        "local/riffusion",
        "audio",
        save_tiny_riffusion,
        {"duration": 1.0, "parameters": {"num_inference_steps": 2}},
        expect={"duration": 1.0},
    ),  # fmt: skip
    Case(
        "local/riffusion",
        "audio",
        save_tiny_riffusion,
        {"duration": 1.0, "parameters": {"num_inference_steps": 4, "strength": 0.5}},
        "audio",
        {"duration": 1.0},
    ),  # fmt: skip
    Case(
        "local/sd-turbo",
        "image",
        save_tiny_sd_turbo,
        {"width": 256, "height": 320},
        expect={"width": 256, "height": 320},
    ),  # fmt: skip
    Case(
        "local/sd-turbo",
        "image",
        save_tiny_sd_turbo,
        {"width": 256, "height": 256},
        "image",
        {"width": 256, "height": 256},
    ),  # fmt: skip
    Case(
        "local/wan2.1-t2v-1.3b",
        "video",
        save_tiny_wan,
        {"width": 256, "height": 256, "parameters": {"num_frames": 5, "num_inference_steps": 2, "fps": 16}},
        expect={"width": 256, "height": 256, "frames": 5},
    ),  # fmt: skip
]


def stored(local: Local, kind: str, tmp_path: Path) -> int:
    """An uploaded asset: a 1.5 s two-note melody, or a 256 px gradient picture."""
    if kind == "audio":
        rate = 32_000
        t = np.arange(int(1.5 * rate)) / rate
        tone = np.where(t < 0.75, np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 660 * t))
        path = tmp_path / "clip.wav"
        sf.write(path, (0.4 * tone).astype(np.float32), rate, subtype="PCM_16")
    else:
        ramp = np.linspace(0, 255, 256, dtype=np.uint8)
        pixels = np.stack(
            [np.tile(ramp, (256, 1)), np.tile(ramp[:, None], (1, 256)), np.full((256, 256), 90)], -1
        )
        path = tmp_path / "picture.png"
        Image.fromarray(pixels.astype(np.uint8)).save(path)
    row = local.services.generations.create_upload(
        local.admin,
        kind,
        path,
        title="input",
        client_id="acme",
        campaign_id=None,
        brief_id=None,
        collection=None,
    )
    return row.id


def measure(data: bytes, kind: str, tmp_path: Path) -> dict[str, Any]:
    path = tmp_path / "output.bin"
    path.write_bytes(data)
    if kind == "image":
        with Image.open(path) as img:
            return {"width": img.width, "height": img.height}
    with av.open(str(path)) as container:
        if kind == "audio":
            stream = container.streams.audio[0]
            samples = sum(f.samples for f in container.decode(stream))
            return {"duration": samples / stream.rate}
        video = container.streams.video[0]
        frames = list(container.decode(video))
        return {"width": frames[0].width, "height": frames[0].height, "frames": len(frames)}


@pytest.mark.parametrize(
    "case", CASES, ids=lambda c: f"{c.model}{'+' + c.stored_input if c.stored_input else ''}"
)
def test_every_local_model_makes_what_was_asked(
    case: Case, local: Local, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    case.save(local.models_dir)
    if case.model == "local/riffusion":
        # Riffusion's real 512 × 512 spectrogram costs a toy UNet minutes on this CPU: a narrower,
        # lower image (64 mel bins, 0.64 s per clip) walks the same code.
        riff = family("riffusion")
        monkeypatch.setattr(riff, "params", SpectrogramParams(n_mels=64, n_fft=4_410))
        monkeypatch.setattr(riff, "clip_px", 64)
    fields = dict(case.fields)
    if case.stored_input:
        fields[f"{case.stored_input}_id"] = stored(local, case.stored_input, tmp_path)
    request = GenerateRequest(prompt="upbeat electronic dance music", model=case.model, seed=5, **fields)
    row, _ = local.services.generations.create(local.admin, case.kind, request)
    local.queue.drain(local.services.pipeline)
    done = reread(local.services, row.id)
    assert done.status == Status.COMPLETED, done.error
    got = measure(blob_bytes(local.services, done.blob_key or ""), case.kind, tmp_path)
    for name, want in case.expect.items():
        assert got[name] == pytest.approx(want, abs=0.03 if name == "duration" else 0), (name, got)
    assert done.meta["seed"] == 5 and done.meta["device"] == "cpu" and done.meta["batch_size"] == 1
    derived = set(local.services.generations.derivations(done.id))
    assert (
        derived
        >= {"audio": {"waveform"}, "image": {"thumbnail"}, "video": {"poster", "thumbnail"}}[case.kind]
    )
    if case.model == "local/riffusion":
        assert "spectrogram" in derived  # the picture the music was painted as is kept beside it

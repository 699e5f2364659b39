"""Local models through the whole core: request, device lane, engine, batching, ingest, progress
and cancel, with tiny random-weight MusicGen saved under its real repo id."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import av
import pytest
from sqlalchemy import func, select

from mediagen.engines.base import Finished, Job
from mediagen.engines.local.engine import LocalEngine, LocalSpec
from mediagen.errors import InvalidInput
from mediagen.generations.ports import Lane, Step
from mediagen.generations.presenters import asset_json
from mediagen.generations.schemas import GenerateRequest
from mediagen.generations.tables import Generation
from mediagen.vocabulary import KINDS, Kind, Status
from tests.engines.local.conftest import Local
from tests.engines.local.tiny_musicgen import save_tiny_musicgen, save_tiny_musicgen_melody
from tests.generations.conftest import blob_bytes, reread

SMALL = "local/musicgen-small"
MELODY = "local/musicgen-melody"


def decoded_seconds(data: bytes, tmp: Path) -> float:
    path = tmp / "out.bin"
    path.write_bytes(data)
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        samples = sum(frame.samples for frame in container.decode(stream))
        return samples / stream.rate


def rows(local: Local) -> int:
    with local.services.db.read() as s:
        return int(s.scalar(select(func.count()).select_from(Generation)) or 0)


def test_a_local_model_runs_on_the_device_lane_and_its_asset_is_ingested(
    local: Local, tmp_path: Path
) -> None:
    save_tiny_musicgen(local.models_dir)
    model = local.services.router.describe(SMALL)
    assert model.available and model.unavailable_reason is None
    assert model.local is not None and model.local["weights"]["present"] is True
    assert model.local["weights"]["source"] == "models_dir" and model.local["weights"]["size_bytes"] > 10_000

    row, _ = local.services.generations.create(
        local.admin, "audio", GenerateRequest(prompt="upbeat electronic", model=SMALL, duration=1.0, seed=7)
    )
    assert row.engine == "local"
    assert local.queue.history[-1].lane is Lane.DEVICE  # never behind (or ahead of) downloads
    local.queue.drain(local.services.pipeline)
    done = reread(local.services, row.id)
    assert done.status == Status.COMPLETED, done.error
    assert decoded_seconds(blob_bytes(local.services, done.blob_key or ""), tmp_path) == pytest.approx(
        1.0, abs=0.05
    )
    meta = done.meta
    assert (meta["device"], meta["dtype"], meta["seed"], meta["batch_size"]) == ("cpu", "float32", 7, 1)
    assert meta["local_model"] == "facebook/musicgen-small" and meta["weights_source"] == "models_dir"
    assert meta["load_seconds"] > 0 and meta["run_seconds"] > 0 and meta["resident_bytes"] > 0
    shown = asset_json(done, KINDS[Kind.AUDIO])
    assert shown["progress"] == 1.0 and shown["progress_note"] is None
    assert "waveform" in shown["derivations"]

    # Resident between jobs: the second job of the model does not load it again.
    again, _ = local.services.generations.create(
        local.admin, "audio", GenerateRequest(prompt="upbeat electronic", model=SMALL, duration=1.0, seed=7)
    )
    local.queue.drain(local.services.pipeline)
    second = reread(local.services, again.id)
    assert second.meta["load_seconds"] is None
    assert second.blob_key == done.blob_key  # same seed, same device: the same bytes


def test_a_request_without_a_seed_gets_one_and_it_is_stored(local: Local) -> None:
    save_tiny_musicgen(local.models_dir)
    row, _ = local.services.generations.create(
        local.admin, "audio", GenerateRequest(prompt="calm piano", model=SMALL, duration=0.5)
    )
    local.queue.drain(local.services.pipeline)
    done = reread(local.services, row.id)
    assert done.status == Status.COMPLETED, done.error
    assert isinstance(done.meta["seed"], int) and 0 <= done.meta["seed"] < 2**32


def test_concurrent_requests_for_one_model_run_as_one_batch_each_its_own_asset(local: Local) -> None:
    save_tiny_musicgen(local.models_dir)
    made = [
        local.services.generations.create(
            local.admin, "audio", GenerateRequest(prompt=p, model=SMALL, duration=0.5, seed=i)
        )[0]
        for i, p in enumerate(["upbeat electronic", "calm ambient piano", "epic cinematic strings"])
    ]
    local.queue.waiting.clear()
    workers = [threading.Thread(target=local.services.pipeline.run, args=(Step.SUBMIT, r.id)) for r in made]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
    done = [reread(local.services, r.id) for r in made]
    assert [d.status for d in done] == [Status.COMPLETED] * 3, [d.error for d in done]
    assert {d.meta["batch_id"] for d in done} == {done[0].meta["batch_id"]}
    assert [d.meta["batch_size"] for d in done] == [3, 3, 3]
    assert local.engine.batches_run == 1
    assert len({d.blob_key for d in done}) == 3  # three assets, three different pieces


def test_cancel_stops_a_running_generation_between_steps(local: Local) -> None:
    save_tiny_musicgen(local.models_dir)
    row, _ = local.services.generations.create(
        local.admin, "audio", GenerateRequest(prompt="slow ambient", model=SMALL, duration=30.0, seed=1)
    )
    local.queue.waiting.clear()
    worker = threading.Thread(target=local.services.pipeline.run, args=(Step.SUBMIT, row.id))
    started = time.monotonic()
    worker.start()
    deadline = started + 60
    while time.monotonic() < deadline:
        seen = reread(local.services, row.id)
        if seen.progress_note == "generating" and (seen.progress or 0) > 0:
            break
        time.sleep(0.05)
    else:
        pytest.fail("the job never reported progress")
    shown = asset_json(seen, KINDS[Kind.AUDIO])
    assert 0 < shown["progress"] < 1 and shown["progress_note"] == "generating"
    local.services.generations.cancel(local.admin, "audio", row.id)
    worker.join(60)
    assert not worker.is_alive()
    final = reread(local.services, row.id)
    assert final.status == Status.CANCELED and final.blob_key is None
    assert (final.progress or 0) < 0.9  # it stopped, rather than ran to the end unseen


def test_a_model_without_weights_is_listed_with_the_fix_and_refused_without_a_row(local: Local) -> None:
    model = local.services.router.describe(SMALL)
    assert not model.available
    assert (
        model.unavailable_reason is not None
        and "mediagen models pull local/musicgen-small" in model.unavailable_reason
    )
    assert model.local is not None and model.local["weights"]["present"] is False
    before = rows(local)
    with pytest.raises(InvalidInput) as refused:
        local.services.generations.create(
            local.admin, "audio", GenerateRequest(prompt="upbeat", model=SMALL, duration=1.0)
        )
    assert refused.value.field == "model"
    assert "local/musicgen-small" in refused.value.message and "mediagen models pull" in refused.value.message
    assert rows(local) == before  # no row, and no offline draft stood in for it


def test_a_missing_library_makes_its_models_unavailable_with_the_install_command(
    local: Local, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `None` in sys.modules is how Python marks a module as not importable: find_spec sees nothing.
    monkeypatch.setitem(sys.modules, "transformers", None)
    save_tiny_musicgen_dir = local.models_dir / "facebook/musicgen-small"
    save_tiny_musicgen_dir.mkdir(parents=True)
    (save_tiny_musicgen_dir / "config.json").write_text("{}")
    model = local.services.router.describe(SMALL)
    assert not model.available
    assert model.unavailable_reason is not None
    assert (
        "transformers" in model.unavailable_reason
        and "pip install 'mediagen[local]'" in model.unavailable_reason
    )


def test_corrupt_weights_fail_the_asset_saying_so(local: Local) -> None:
    path = save_tiny_musicgen(local.models_dir)
    weights = path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    row, _ = local.services.generations.create(
        local.admin, "audio", GenerateRequest(prompt="upbeat", model=SMALL, duration=0.5)
    )
    local.queue.drain(local.services.pipeline)
    failed = reread(local.services, row.id)
    assert failed.status == Status.FAILED
    assert failed.error is not None and "weights" in failed.error.lower()


def test_the_base_install_never_imports_torch() -> None:
    """Neither listing models nor a worker's warm-up loads torch when no local model can run."""
    code = (
        "import sys\n"
        "import mediagen.app\n"
        "from mediagen.config import Settings\n"
        "from mediagen.catalog.registry import Catalog\n"
        "from mediagen.generations.routing import EngineRouter, build_engines\n"
        "s = Settings(data_dir=sys.argv[1])\n"
        "c = Catalog.load()\n"
        "r = EngineRouter(s, c, build_engines(s, c))\n"
        "ms = r.models()\n"
        "assert any(m.id.startswith('local/') for m in ms)\n"
        "assert r.engines['local'].warm_up() == {}\n"  # a worker's start, with no weights here
        "heavy = sorted(m for m in ('torch', 'transformers', 'diffusers') if m in sys.modules)\n"
        "print('HEAVY', heavy)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, "/tmp/mediagen-no-torch"], capture_output=True, text=True, timeout=120
    )
    assert "HEAVY []" in done.stdout, done.stdout + done.stderr[-3000:]


def test_the_api_lists_local_models_with_their_weights_and_refuses_one_without(local: Local) -> None:
    from fastapi.testclient import TestClient

    from mediagen.app import create_app

    save_tiny_musicgen(local.models_dir)
    _, token = local.services.auth.create_key(user_id=local.admin.user_id, name="t")
    headers = {"X-API-Key": token}
    with TestClient(create_app(local.services.settings, run_workers=False)) as api:
        listed = api.get("/api/models", params={"kind": "audio"}, headers=headers).json()["models"]
        by_id = {m["id"]: m for m in listed}
        small, large = by_id["local/musicgen-small"], by_id["local/musicgen-large"]
        assert small["available"] is True and small["engine"] == "local"
        assert small["local"]["weights"]["present"] and small["local"]["weights"]["size_bytes"] > 0
        assert large["available"] is False
        assert "mediagen models pull local/musicgen-large" in large["unavailable_reason"]
        assert large["local"]["repo_id"] == "facebook/musicgen-large"

        refused = api.post(
            "/api/v2/generate/audio",
            json={"model": "local/musicgen-large", "prompt": "upbeat", "duration": 2},
            headers=headers,
        )
        assert refused.status_code == 422
        body = refused.json()
        assert body["errors"][0]["field"] == "model"
        assert "mediagen models pull local/musicgen-large" in body["errors"][0]["message"]

        accepted = api.post(
            "/api/v2/generate/audio",
            json={"model": "local/musicgen-small", "prompt": "upbeat", "duration": 0.5, "seed": 3},
            headers=headers,
        )
        assert accepted.status_code == 202, accepted.text
        audio_id = accepted.json()["audio_id"]
        # The app queued it on its own (huey) device lane; run that step here on the same database.
        local.services.pipeline.run(Step.SUBMIT, audio_id)
        item = api.get(f"/api/audio/{audio_id}", headers=headers).json()
        assert item["status"] == "completed" and item["progress"] == 1.0
        assert item["metadata"]["seed"] == 3 and item["metadata"]["device"] == "cpu"


class Notes:
    """A JobControl that records what the engine reports."""

    def __init__(self) -> None:
        self.seen: list[tuple[float | None, str | None]] = []

    def progress(self, fraction: float | None, note: str | None = None) -> None:
        self.seen.append((fraction, note))

    def cancelled(self) -> bool:
        return False


def direct_job(engine: LocalEngine, tmp_path: Path, model: str, gen_id: int, control: Notes) -> Finished:
    workdir = tmp_path / f"job{gen_id}"
    workdir.mkdir()
    inputs = {
        "prompt": "calm piano",
        "duration": 0.5,
        "seed": 1,
        "guidance_scale": 3.0,
        "output_format": "wav",
    }
    return engine.submit(Job(gen_id, Kind.AUDIO, model, inputs, workdir, control=control))


def test_the_first_job_of_a_model_says_it_is_loading_and_the_budget_unloads_the_least_recent(
    tmp_path: Path,
) -> None:
    models = tmp_path / "models"
    save_tiny_musicgen(models)
    save_tiny_musicgen_melody(models)
    specs = {
        SMALL: LocalSpec(SMALL, "facebook/musicgen-small", "musicgen"),
        MELODY: LocalSpec(MELODY, "facebook/musicgen-melody", "musicgen-melody"),
    }
    # A budget that holds one tiny model (a few MB) but not two.
    engine = LocalEngine(specs, models_dir=models, device="cpu", memory_gb=0.006, batch_window_s=0.0,
                         hf_cache=tmp_path / "no-cache")  # fmt: skip
    first, again, other = Notes(), Notes(), Notes()
    direct_job(engine, tmp_path, SMALL, 1, first)
    assert first.seen[0] == (0.0, "loading model") and first.seen[-1][1] == "generating"
    direct_job(engine, tmp_path, SMALL, 2, again)
    assert all(note != "loading model" for _, note in again.seen)  # resident: no second load
    assert [r.model_id for r in engine.residency.resident()] == [SMALL]
    done = direct_job(engine, tmp_path, MELODY, 3, other)
    assert other.seen[0][1] == "loading model"
    assert [r.model_id for r in engine.residency.resident()] == [MELODY]  # the small one was unloaded
    assert done.metadata["resident_bytes"] < 0.006 * 1024**3
    engine.unload_all()

"""Storage and queue faults: each is reported as what it is, retried where that can help, and
leaves nothing half-made (no ghost rows, nothing pending forever).

The faults are real: a blob store whose scratch directory is a file (every write fails with
ENOTDIR or EEXIST, as a broken disk would) and a job queue on a Redis port nothing listens on.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from sqlalchemy import func, select

from mediagen.auth.service import Principal
from mediagen.config import Settings
from mediagen.db.migrate import upgrade
from mediagen.error_map import status_for
from mediagen.errors import Unavailable
from mediagen.generations.ports import Step
from mediagen.generations.schemas import GenerateRequest
from mediagen.generations.tables import Generation
from mediagen.jobs.memory import MemoryJobQueue
from mediagen.services import Services, build_services
from mediagen.vocabulary import Status
from tests.generations.conftest import make_seeded_services, reread


def count_rows(services: Services) -> int:
    with services.db.read() as s:
        return s.scalar(select(func.count()).select_from(Generation)) or 0


def break_store(data_dir: Path) -> Path:
    """Every blob write now fails at the OS level (its scratch directory is a plain file)."""
    scratch = data_dir / "blobs" / "tmp"
    scratch.parent.mkdir(parents=True, exist_ok=True)
    if scratch.is_dir():
        scratch.rmdir()
    scratch.write_text("not a directory")
    return scratch


@pytest.fixture
def fs_core(tmp_path: Path) -> tuple[Services, MemoryJobQueue, Principal, Path]:
    data = tmp_path / "data"
    services, queue, admin = make_seeded_services(data, storage_backend="fs")
    yield services, queue, admin, data
    services.close()


def test_an_upload_the_store_cannot_take_is_a_503_and_leaves_no_row(
    fs_core: tuple[Services, MemoryJobQueue, Principal, Path], tmp_path: Path
) -> None:
    services, _, admin, data = fs_core
    wav = tmp_path / "melody.wav"
    sf.write(wav, np.zeros(22050, dtype=np.float32), 22050)
    break_store(data)
    with pytest.raises(Unavailable) as failed:
        services.generations.create_upload(
            admin,
            "audio",
            wav,
            title="Melody",
            client_id="acme",
            campaign_id=None,
            brief_id=None,
            collection=None,
        )
    assert status_for(failed.value) == 503 and failed.value.retry_after
    assert "storage" in failed.value.message and str(data) not in failed.value.message  # no server paths
    assert count_rows(services) == 0


def test_a_generation_whose_bytes_cannot_be_stored_waits_and_completes_once_storage_is_back(
    fs_core: tuple[Services, MemoryJobQueue, Principal, Path],
) -> None:
    services, queue, admin, data = fs_core
    row, _ = services.generations.create(admin, "audio", GenerateRequest(prompt="calm piano", duration=1))
    scratch = break_store(data)
    services.pipeline.run(Step.SUBMIT, row.id)  # the worker picks it up; the write fails
    waiting = reread(services, row.id)
    assert waiting.status == Status.PENDING and "storage" in (waiting.error or "")
    assert queue.history[-1].step is Step.SUBMIT and queue.history[-1].delay > 0  # retried later

    scratch.unlink()  # the disk is back
    services.pipeline.run(Step.SUBMIT, row.id)
    done = reread(services, row.id)
    assert done.status == Status.COMPLETED and done.error is None and done.blob_key


def test_a_job_the_queue_cannot_take_is_a_503_and_no_row_stays_pending(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path / "data", queue_url="redis://127.0.0.1:1/0", generate_rate_limit_per_minute=0
    )
    settings.ensure_dirs()
    upgrade(settings.resolved_database_url)
    services = build_services(settings)  # the real huey queue, on a Redis nobody serves
    try:
        user = services.auth.create_user(
            email="a@example.com", password="correct horse battery", role="admin"
        )
        admin = services.auth.principal_for_user(user)
        with pytest.raises(Unavailable) as refused:
            services.generations.create(admin, "audio", GenerateRequest(prompt="calm piano", duration=1))
        assert status_for(refused.value) == 503
        assert count_rows(services) == 0
    finally:
        services.close()

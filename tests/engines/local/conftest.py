"""Local-engine fixtures: the real services on a tmp SQLite with MEDIAGEN_MODELS_DIR pointing at a
folder the tests fill with tiny random-weight models saved under their real repo ids."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mediagen.auth.service import Principal
from mediagen.engines.local.engine import LocalEngine
from mediagen.jobs.memory import MemoryJobQueue
from mediagen.services import Services
from tests.generations.conftest import make_seeded_services

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("diffusers")

# Tiny models are overhead-bound: a second thread per op only fights the other test process for
# the two cores (measured: ten times slower under `-n 2`).
torch.set_num_threads(1)


@dataclass
class Local:
    services: Services
    queue: MemoryJobQueue
    admin: Principal
    models_dir: Path

    @property
    def engine(self) -> LocalEngine:
        engine = self.services.router.engine("local")
        assert isinstance(engine, LocalEngine)
        return engine


@pytest.fixture
def local(tmp_path: Path) -> Iterator[Local]:
    models = tmp_path / "models"
    models.mkdir()
    services, queue, admin = make_seeded_services(
        tmp_path / "data", models_dir=models, local_batch_window_ms=400, local_device="cpu"
    )
    yield Local(services, queue, admin, models)
    local_engine = services.router.engine("local")
    if isinstance(local_engine, LocalEngine):
        local_engine.unload_all()
    services.close()

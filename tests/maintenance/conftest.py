"""The real services on a tmp SQLite, once per blob backend, with helpers that make finished assets
and break them on purpose."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select, update

from mediagen.auth.service import Principal
from mediagen.generations.schemas import GenerateRequest
from mediagen.generations.tables import Derivation, Generation
from mediagen.jobs.memory import MemoryJobQueue
from mediagen.services import Services
from mediagen.storage.fs import FsBlobStore
from mediagen.storage.tables import Blob, BlobChunk
from mediagen.vocabulary import Status
from tests.generations.conftest import blob_bytes, make_seeded_services, reread


@dataclass
class Deployment:
    services: Services
    queue: MemoryJobQueue
    admin: Principal

    @property
    def backend(self) -> str:
        return self.services.settings.storage_backend

    def make(self, kind: str = "audio", seed: int = 1) -> Generation:
        """A completed synth asset (audio 1 s or a 64×64 image or a 1 s video)."""
        fields: dict[str, Any] = {"prompt": f"{kind} {seed}", "seed": seed}
        fields |= {"width": 64, "height": 64} if kind == "image" else {"duration": 1}
        row, _ = self.services.generations.create(self.admin, kind, GenerateRequest(**fields))
        self.queue.drain(self.services.pipeline)
        done = reread(self.services, row.id)
        assert done.status == Status.COMPLETED, done.error
        return done

    def derivations(self, gen_id: int) -> dict[str, Derivation]:
        return self.services.generations.derivations(gen_id)

    def lose_bytes(self, key: str) -> None:
        """The blob's index row stays; its chunks or its file are gone."""
        store = self.services.store
        if isinstance(store, FsBlobStore):
            store.path_for(key).unlink()
        else:
            with self.services.db.write() as s:
                s.execute(delete(BlobChunk).where(BlobChunk.blob_key == key))

    def lose_blob(self, key: str) -> None:
        """Bytes and index row both gone (a hand-deleted row, a bad restore)."""
        self.lose_bytes(key)
        with self.services.db.write() as s:
            s.execute(delete(Blob).where(Blob.key == key))

    def blob_row(self, key: str) -> Blob | None:
        with self.services.db.read() as s:
            return s.scalar(select(Blob).where(Blob.key == key))

    def set_blob(self, key: str, **values: Any) -> None:
        with self.services.db.write() as s:
            s.execute(update(Blob).where(Blob.key == key).values(**values))

    def readable(self, key: str) -> bool:
        return hashlib.sha256(blob_bytes(self.services, key)).hexdigest() == key


@pytest.fixture(params=["db", "fs"])
def deployment(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Deployment]:
    services, queue, admin = make_seeded_services(
        tmp_path / "data", generate_rate_limit_per_minute=0, storage_backend=request.param
    )
    yield Deployment(services, queue, admin)
    services.close()

"""What the generation core works with: built once by the composition root and shared by the
generation service and every pipeline step, so each takes one argument instead of eight."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mediagen.catalog.registry import Catalog
from mediagen.config import Settings
from mediagen.db.session import Database
from mediagen.engines.downloads import Downloader
from mediagen.generations.leases import Rows
from mediagen.generations.ports import JobQueue, Lane
from mediagen.generations.routing import EngineRouter
from mediagen.generations.workers import WorkerRegistry
from mediagen.storage.base import BlobStore


@dataclass(frozen=True)
class CoreContext:
    settings: Settings
    db: Database
    rows: Rows
    store: BlobStore
    router: EngineRouter
    catalog: Catalog
    download: Downloader
    queue: JobQueue
    workers: WorkerRegistry  # this process as a lease holder, and who else is alive

    def lane_for(self, engine_name: str | None) -> Lane:
        """The device lane for engines that run on this machine's accelerator, else I/O."""
        engine = self.router.engine(engine_name)
        return Lane.DEVICE if engine is not None and engine.capabilities.device else Lane.IO

    @property
    def workroot(self) -> Path:
        return self.settings.data_dir / "work"

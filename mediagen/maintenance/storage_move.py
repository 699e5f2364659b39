"""`mediagen storage migrate`: copy every blob's bytes from one backend to another.

Every backend shares the `blobs` index (key = sha256, size, refcount), so moving storage means
moving bytes only: rows and references stay as they are. Each blob is streamed from the source
into the target, hashed on the way and refused unless it matches its key; blobs the target
already holds are skipped, which is what makes a killed run resumable and a second run (with
the service stopped) a quick catch-up. The source is never modified: until the setting is
switched, the service keeps reading it, and nothing can be lost half-way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import select

from mediagen.config import Settings
from mediagen.db.session import Database
from mediagen.storage import make_store
from mediagen.storage.base import BlobStoreError, is_blob_key
from mediagen.storage.index import STAGING_PREFIX, IndexedBlobStore, blobs

PAGE = 1000


@dataclass
class StorageMove:
    source: str
    target: str
    copied: int = 0
    skipped: int = 0
    bytes_copied: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed

    def render(self) -> str:
        lines = [
            f"{self.source} → {self.target}: {self.copied} blobs copied ({self.bytes_copied:,} bytes), "
            f"{self.skipped} already there, {len(self.failed)} failed"
        ]
        lines += [f"  failed {key}: {error}" for key, error in self.failed]
        if self.ok:
            lines.append(
                f"Every blob is in {self.target} and verified. Stop the service, run this once more "
                f"to copy what arrived meanwhile, then set MEDIAGEN_STORAGE_BACKEND={self.target} "
                "(and its settings) everywhere and start again. The source copy is left untouched."
            )
        return "\n".join(lines)


def move_storage(
    settings: Settings, target_backend: str, *, progress: Callable[[StorageMove], None] | None = None
) -> StorageMove:
    """Copy from `settings.storage_backend` to `target_backend` (configured by the same settings)."""
    if target_backend == settings.storage_backend:
        raise ValueError(f"storage is already {target_backend!r}; name another backend with --to")
    database = Database(settings.resolved_database_url)
    try:
        source = make_store(settings, database)
        target = make_store(settings.model_copy(update={"storage_backend": target_backend}), database)
        assert isinstance(source, IndexedBlobStore) and isinstance(target, IndexedBlobStore)
        report = StorageMove(settings.storage_backend, target_backend)
        after = ""
        while True:
            with database.read() as session:
                page = session.execute(
                    select(blobs.c.key, blobs.c.size, blobs.c.chunk_size)
                    .where(blobs.c.key > after, blobs.c.key.not_like(f"{STAGING_PREFIX}%"))
                    .order_by(blobs.c.key)
                    .limit(PAGE)
                ).all()
            if not page:
                return report
            for key, size, chunk_size in page:
                if is_blob_key(key):
                    _copy_one(source, target, key, int(size), int(chunk_size), report)
            after = page[-1][0]
            if progress is not None:
                progress(report)
    finally:
        database.dispose()


def _copy_one(
    source: IndexedBlobStore,
    target: IndexedBlobStore,
    key: str,
    size: int,
    chunk_size: int,
    report: StorageMove,
) -> None:
    if target.has_bytes(key, size):
        report.skipped += 1
        return
    try:
        target.install_bytes(key, chunk_size, source.open_range(key, 0, max(0, size - 1)))
    except (BlobStoreError, OSError) as exc:
        report.failed.append((key, str(exc)))
        return
    report.copied += 1
    report.bytes_copied += size

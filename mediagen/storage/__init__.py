"""Blob storage: the `BlobStore` contract, its backends, and `make_store` to pick one from settings.

Backends are imported inside `make_store` so that importing a table module (which imports this
package) stays cheap and free of import cycles.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mediagen.storage.base import (
    BlobCorruptError,
    BlobInfo,
    BlobInUseError,
    BlobNotFoundError,
    BlobStore,
    BlobStoreError,
    GcReport,
    is_blob_key,
)

if TYPE_CHECKING:
    from mediagen.config import Settings
    from mediagen.db.session import Database

__all__ = [
    "BlobCorruptError",
    "BlobInUseError",
    "BlobInfo",
    "BlobNotFoundError",
    "BlobStore",
    "BlobStoreError",
    "GcReport",
    "is_blob_key",
    "make_store",
]


def make_store(settings: Settings, database: Database) -> BlobStore:
    """The store named by `settings.storage_backend` (`db` by default, or `fs` under the data dir)."""
    if settings.storage_backend == "fs":
        from mediagen.storage.fs import FsBlobStore

        return FsBlobStore(database, settings.data_dir / "blobs", chunk_size=settings.storage_chunk_size)
    if settings.storage_backend == "db":
        from mediagen.storage.db import DbBlobStore

        return DbBlobStore(database, chunk_size=settings.storage_chunk_size)
    raise ValueError(f"unknown storage backend {settings.storage_backend!r}")

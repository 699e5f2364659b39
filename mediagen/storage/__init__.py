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
    """The store named by `settings.storage_backend`: `db` (default), `fs` under the data dir, or `s3`."""
    if settings.storage_backend == "fs":
        from mediagen.storage.fs import FsBlobStore

        return FsBlobStore(database, settings.data_dir / "blobs", chunk_size=settings.storage_chunk_size)
    if settings.storage_backend == "s3":
        from mediagen.storage.s3 import S3BlobStore, make_s3_client

        if not settings.s3_bucket:
            raise ValueError("MEDIAGEN_STORAGE_BACKEND=s3 needs MEDIAGEN_S3_BUCKET")
        client = make_s3_client(endpoint_url=settings.s3_endpoint_url, region=settings.s3_region)
        return S3BlobStore(
            database,
            client,
            settings.s3_bucket,
            prefix=settings.s3_prefix,
            spool_dir=settings.data_dir / "tmp" / "s3",
            chunk_size=settings.storage_chunk_size,
            presign_seconds=settings.s3_presign_seconds if settings.s3_presign else None,
        )
    if settings.storage_backend == "db":
        from mediagen.storage.db import DbBlobStore

        return DbBlobStore(database, chunk_size=settings.storage_chunk_size)
    raise ValueError(f"unknown storage backend {settings.storage_backend!r}")

"""Content-addressed objects in an S3-compatible bucket, indexed by the shared `blobs` table.

For deployments where API processes and workers run on several machines: every one of them
reaches the same bucket (AWS S3, MinIO, Cloudflare R2, Ceph: chosen by endpoint URL). The index
(refcounts, gc) stays in the database like the other backends.

The key is the sha256 of the bytes, known only after the last byte, so `put` spools the stream
to a local temporary file while hashing (memory stays at one chunk) and then uploads it under its
final key with boto3's managed transfer: multipart above 16 MiB, parts retried, and the multipart
upload aborted if it fails. The object is uploaded before its index row is claimed (a long upload
must not hold the database's write lock); after the claim, inside the transaction, the object is
checked once more and re-sent if a gc that ran meanwhile removed it. gc deletes objects inside the
transaction that deletes their locked row, exactly as the file backend unlinks, so the two can
never end with a row whose object is gone.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from hashlib import sha256
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from mediagen.db.base import utcnow
from mediagen.db.session import Database
from mediagen.storage.base import (
    DEFAULT_CHUNK_SIZE,
    BlobCorruptError,
    BlobInfo,
    BlobNotFoundError,
    BlobStoreError,
    GcReport,
    PutSource,
    clamp_range,
    is_blob_key,
    iter_chunks,
)
from mediagen.storage.index import IndexedBlobStore, blobs, claim_row, touch_row

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)

PART_SIZE = 16 * 1024 * 1024
_ORPHAN_QUERY_BATCH = 500


class S3BlobStore(IndexedBlobStore):
    """Blobs as objects `<prefix><sha256>` in one bucket."""

    def __init__(
        self,
        database: Database,
        client: S3Client,
        bucket: str,
        *,
        prefix: str = "blobs/",
        spool_dir: Path,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        create_bucket: bool = True,
        presign_seconds: int | None = None,
    ) -> None:
        super().__init__(database, chunk_size=chunk_size)
        self.client = client
        self.bucket = bucket
        self.prefix = prefix
        self.spool_dir = Path(spool_dir)
        self.presign_seconds = presign_seconds
        from boto3.s3.transfer import TransferConfig

        # Threads stay at the default (10): parallel parts are what makes large uploads fast.
        self.transfer = TransferConfig(multipart_threshold=PART_SIZE, multipart_chunksize=PART_SIZE)
        if create_bucket:
            self._ensure_bucket()

    def object_key(self, key: str) -> str:
        return f"{self.prefix}{key}"

    def _ensure_bucket(self) -> None:
        """Create the bucket when it is missing and the credentials allow; anything else is left
        for the first real request to report (read-only credentials are a valid setup)."""
        from botocore.exceptions import ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
            return
        except ClientError as exc:
            if _error_code(exc) not in {"404", "NoSuchBucket", "NotFound"}:
                log.warning("cannot check bucket %s: %s", self.bucket, exc)
                return
        region = self.client.meta.region_name
        try:
            if region and region != "us-east-1":
                self.client.create_bucket(
                    Bucket=self.bucket,
                    CreateBucketConfiguration={"LocationConstraint": region},  # type: ignore[typeddict-item]
                )
            else:
                self.client.create_bucket(Bucket=self.bucket)
            log.info("created bucket %s", self.bucket)
        except ClientError as exc:
            if _error_code(exc) not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                raise BlobStoreError(f"bucket {self.bucket} is missing and cannot be created: {exc}") from exc

    # Writing -----------------------------------------------------------------------------------

    def put(self, stream: PutSource) -> BlobInfo:
        """Spool and hash, upload under the final key, then claim (or touch) the index row."""
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self.spool_dir, prefix="put-")
        spooled = Path(name)
        try:
            digest = sha256()
            size = 0
            with os.fdopen(fd, "wb") as out:
                for part in iter_chunks(stream, self.chunk_size):
                    digest.update(part)
                    size += len(part)
                    out.write(part)
            key = digest.hexdigest()
            known = self._lookup(key) is not None
            if not (known and self._exists(key, size)):
                self._upload(spooled, key)
            with self.database.write() as session:
                if not claim_row(session, key=key, size=size, chunk_size=self.chunk_size, now=utcnow()):
                    touch_row(session, key, utcnow())
                if not self._exists(key, size):  # a gc between the upload and the claim removed it
                    log.warning("blob %s vanished before it was indexed; uploading it again", key)
                    self._upload(spooled, key)
        finally:
            spooled.unlink(missing_ok=True)
        return BlobInfo(key, size)

    def _upload(self, path: Path, key: str) -> None:
        try:
            self.client.upload_file(str(path), self.bucket, self.object_key(key), Config=self.transfer)
        except Exception as exc:  # boto3 aborts the multipart upload before re-raising anything
            raise BlobStoreError(f"upload of blob {key} to bucket {self.bucket} failed: {exc}") from exc

    def _exists(self, key: str, size: int) -> bool:
        from botocore.exceptions import ClientError

        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self.object_key(key))
        except ClientError as exc:
            if _error_code(exc) in {"404", "NoSuchKey", "NotFound"}:
                return False
            raise BlobStoreError(f"cannot read blob {key} in bucket {self.bucket}: {exc}") from exc
        return int(head["ContentLength"]) == size

    def has_bytes(self, key: str, size: int) -> bool:
        return self._exists(key, size)

    def install_bytes(self, key: str, chunk_size: int, stream: Iterable[bytes]) -> None:
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self.spool_dir, prefix="copy-")
        spooled = Path(name)
        try:
            digest = sha256()
            with os.fdopen(fd, "wb") as out:
                for part in stream:
                    digest.update(part)
                    out.write(part)
            if digest.hexdigest() != key:
                raise BlobCorruptError(f"blob {key}: the copied bytes hash to {digest.hexdigest()}")
            self._upload(spooled, key)
        finally:
            spooled.unlink(missing_ok=True)

    # Reading -----------------------------------------------------------------------------------

    def open_range(self, key: str, start: int, end_inclusive: int) -> Iterator[bytes]:
        """Stream [start, end_inclusive] with one ranged GET: only that range crosses the wire."""
        if not is_blob_key(key):
            raise BlobNotFoundError(key)
        found = self._lookup(key)
        if found is None:
            raise BlobNotFoundError(key)
        end_inclusive = clamp_range(found[0], start, end_inclusive)
        if end_inclusive < start:
            return iter(())
        return self._stream(key, start, end_inclusive)

    def _stream(self, key: str, start: int, end_inclusive: int) -> Iterator[bytes]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response = self.client.get_object(
                Bucket=self.bucket, Key=self.object_key(key), Range=f"bytes={start}-{end_inclusive}"
            )
        except ClientError as exc:
            if _error_code(exc) in {"404", "NoSuchKey", "NotFound"}:
                raise BlobCorruptError(f"blob {key} is indexed but missing from the bucket") from exc
            raise BlobStoreError(f"cannot read blob {key}: {exc}") from exc
        body = response["Body"]
        remaining = end_inclusive - start + 1
        try:
            for data in body.iter_chunks(self.chunk_size):
                remaining -= len(data)
                yield data
        except BotoCoreError as exc:
            raise BlobCorruptError(f"blob {key}: the read broke off: {exc}") from exc
        finally:
            body.close()
        if remaining != 0:
            raise BlobCorruptError(f"blob {key} is short in the bucket ({remaining} bytes missing)")

    def presigned_url(
        self, key: str, *, seconds: int, disposition: str | None = None, content_type: str | None = None
    ) -> str:
        """A short-lived GET URL for the object that answers with our Content-Disposition and type."""
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": self.object_key(key)}
        if disposition:
            params["ResponseContentDisposition"] = disposition
        if content_type:
            params["ResponseContentType"] = content_type
        return self.client.generate_presigned_url("get_object", Params=params, ExpiresIn=seconds)

    def redirect_url(self, key: str, *, disposition: str | None, content_type: str | None) -> str | None:
        """Where HTTP byte routes send clients instead of streaming (None: stream through us)."""
        if self.presign_seconds is None:
            return None
        return self.presigned_url(
            key, seconds=self.presign_seconds, disposition=disposition, content_type=content_type
        )

    # Deleting ----------------------------------------------------------------------------------

    def _drop_bytes(self, session: Session, key: str) -> Callable[[], None] | None:
        from botocore.exceptions import ClientError

        try:
            self.client.delete_object(Bucket=self.bucket, Key=self.object_key(key))
        except ClientError as exc:  # the row goes anyway; the orphan sweep retries the object
            log.warning("could not delete blob %s from the bucket: %s", key, exc)
        return None

    def _sweep_leftovers(self, cutoff: datetime, report: GcReport) -> None:
        """Abandoned multipart uploads, spool files of crashed puts, and objects without a row
        (a put that died between its upload and its claim)."""
        deadline = cutoff.timestamp()
        if self.spool_dir.is_dir():
            for entry in os.scandir(self.spool_dir):
                if entry.is_file(follow_symlinks=False) and entry.stat().st_mtime < deadline:
                    Path(entry.path).unlink(missing_ok=True)
                    report.staged_dropped += 1
        uploads = self.client.get_paginator("list_multipart_uploads")
        for upload_page in uploads.paginate(Bucket=self.bucket, Prefix=self.prefix):
            for upload in upload_page.get("Uploads", []):
                if upload["Initiated"].timestamp() < deadline:
                    self.client.abort_multipart_upload(
                        Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                    )
                    report.staged_dropped += 1
        objects = self.client.get_paginator("list_objects_v2")
        for page in objects.paginate(Bucket=self.bucket, Prefix=self.prefix):
            old = [
                obj["Key"][len(self.prefix) :]
                for obj in page.get("Contents", [])
                if obj["LastModified"].timestamp() < deadline
            ]
            names = [name for name in old if is_blob_key(name)]
            for offset in range(0, len(names), _ORPHAN_QUERY_BATCH):
                batch = names[offset : offset + _ORPHAN_QUERY_BATCH]
                with self.database.read() as session:
                    known = set(session.execute(select(blobs.c.key).where(blobs.c.key.in_(batch))).scalars())
                for key in batch:
                    if key not in known and self._remove_orphan(key):
                        report.orphans_removed += 1

    def _remove_orphan(self, key: str) -> bool:
        # Claim the key with a placeholder row first, so a put of the same content waits on it.
        with self.database.write() as session:
            if not claim_row(session, key=key, size=0, chunk_size=self.chunk_size, now=utcnow()):
                return False
            self.client.delete_object(Bucket=self.bucket, Key=self.object_key(key))
            session.execute(delete(blobs).where(blobs.c.key == key))
        return True


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def make_s3_client(*, endpoint_url: str | None, region: str | None) -> S3Client:
    """A client with standard retries; path-style addressing for a custom endpoint (MinIO and
    most self-hosted servers do not serve bucket subdomains)."""
    try:
        import boto3
        from botocore.config import Config
    except ImportError as exc:  # pragma: no cover - the s3 extra is missing
        raise BlobStoreError("the s3 storage backend needs boto3: pip install 'mediagen[s3]'") from exc
    config = Config(
        retries={"mode": "standard", "max_attempts": 5},
        s3={"addressing_style": "path"} if endpoint_url else {},
        max_pool_connections=32,
        signature_version="s3v4",
    )
    return boto3.client("s3", endpoint_url=endpoint_url, region_name=region, config=config)

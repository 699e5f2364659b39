"""Content-addressed files under `<root>/ab/cd/<sha256>`, indexed by the shared `blobs` table.

For deployments that would rather keep large media out of the database (or share a filesystem
between machines). Durability follows the classic recipe: write to a temporary name, fsync the
file, rename into place, fsync the directory. The temporary file lives in `<root>/tmp/` rather
than next to its final name because the name (the sha) is known only after the last byte; `tmp/`
is on the same filesystem, so the rename is still atomic.

The rename happens inside the write transaction that claims the index row, and gc unlinks inside
the transaction that deletes (and locks) the row. A put racing a gc of the same content is
therefore serialised on that row and can never end with an index row whose file was unlinked.
"""

from __future__ import annotations

import ctypes
import logging
import mmap
import os
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from hashlib import sha256
from pathlib import Path
from typing import BinaryIO, cast

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from mediagen.db.base import utcnow
from mediagen.db.session import Database
from mediagen.storage.base import (
    DEFAULT_CHUNK_SIZE,
    BlobCorruptError,
    BlobInfo,
    BlobNotFoundError,
    GcReport,
    PutSource,
    clamp_range,
    is_blob_key,
    iter_chunks,
)
from mediagen.storage.index import IndexedBlobStore, blobs, claim_row, touch_row

log = logging.getLogger(__name__)

_ORPHAN_QUERY_BATCH = 500


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


# Pages the event loop may send -------------------------------------------------------------------


def _load_mincore() -> Callable[..., int] | None:
    """libc's `mincore(2)` (Python has no binding of its own), or None where it is not known to
    behave as on Linux."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).mincore
    except (OSError, AttributeError):
        return None
    function.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p)
    function.restype = ctypes.c_int
    return cast("Callable[..., int]", function)


_MINCORE = _load_mincore()
_IN_RAM = bytes(value & 1 for value in range(256))  # mincore's answer: bit 0 of a page's byte


def map_cached(fd: int, offset: int, count: int) -> memoryview | None:
    """Bytes [offset, offset + count) of the file `fd` as a read-only view of its pages, if the
    page cache holds every one of them; None if any is missing, or where that cannot be told.

    For HTTP byte serving on the event loop (api/byte_path.py), which must not wait on the disk
    and gains most from not copying: the view maps the file's cached pages, so the socket write
    copies straight from the page cache instead of a read first copying them into a buffer
    (for a 1 MiB range that copy was about a quarter of the request). Whether they are cached is
    `mincore`'s answer for this very mapping; a page evicted in the instant between that answer
    and the write would be read back in by the write itself (the same chance the interpreter's
    own pages run).

    Only this range is mapped, and it is unmapped when the last holder of the view lets go (the
    server, once the bytes are written), so serving adds no lasting memory. The mapping is
    private and writable only because ctypes needs that to take its address; nothing writes it,
    and the view handed out is read-only. A file shorter than `offset + count` gives None. A
    mapping relies on what this store guarantees: a blob's file is never truncated or rewritten
    in place (a put renames a new file in), as touching a mapped page past a file's end would
    be a SIGBUS rather than an error.
    """
    if _MINCORE is None or count <= 0:
        return None
    start = offset - offset % mmap.ALLOCATIONGRANULARITY
    length = offset + count - start
    try:
        mapping = mmap.mmap(fd, length, offset=start, access=mmap.ACCESS_COPY)
    except (OSError, ValueError):
        return None
    address = ctypes.addressof(ctypes.c_char.from_buffer(mapping))
    pages = ctypes.create_string_buffer(-(-length // mmap.PAGESIZE))
    if _MINCORE(address, length, pages) != 0 or 0 in pages.raw.translate(_IN_RAM):
        return None
    return memoryview(mapping)[offset - start : offset - start + count].toreadonly()


class FsBlobStore(IndexedBlobStore):
    """Blobs as files in a two-level sharded directory tree."""

    def __init__(self, database: Database, root: Path, *, chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
        super().__init__(database, chunk_size=chunk_size)
        self.root = Path(root)
        self.tmp_dir = self.root / "tmp"

    def path_for(self, key: str) -> Path:
        """Where the bytes of `key` live (two levels of 256 directories keep listings small)."""
        return self.root / key[:2] / key[2:4] / key

    # Writing -----------------------------------------------------------------------------------

    def put(self, stream: PutSource) -> BlobInfo:
        """Store the bytes with bounded memory; create the index row with refcount 0 if new."""
        self._ensure_dir(self.tmp_dir)
        fd, tmp_name = tempfile.mkstemp(dir=self.tmp_dir, prefix="put-")
        tmp = Path(tmp_name)
        try:
            digest = sha256()
            size = 0
            try:
                for part in iter_chunks(stream, self.chunk_size):
                    digest.update(part)
                    size += len(part)
                    _write_all(fd, part)
                os.fsync(fd)
            finally:
                os.close(fd)
            key = digest.hexdigest()
            final = self.path_for(key)
            self._ensure_dir(final.parent)
            now = utcnow()
            with self.database.write() as session:
                if claim_row(session, key=key, size=size, chunk_size=self.chunk_size, now=now):
                    self._install(tmp, final)
                else:
                    touch_row(session, key, now)
                    if final.is_file() and final.stat().st_size == size:
                        tmp.unlink()
                    else:  # the index knew the content but the file was lost: heal it
                        log.warning("blob %s was missing on disk; restored from a new upload", key)
                        self._install(tmp, final)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return BlobInfo(key, size)

    @staticmethod
    def _install(tmp: Path, final: Path) -> None:
        os.replace(tmp, final)
        _fsync_dir(final.parent)

    @staticmethod
    def _ensure_dir(path: Path) -> None:
        if path.is_dir():
            return
        created = []
        current = path
        while not current.exists():
            created.append(current)
            current = current.parent
        path.mkdir(parents=True, exist_ok=True)
        # Make the new directory entries durable too, or a crash could lose a renamed file.
        for directory in created:
            _fsync_dir(directory.parent)

    # Reading -----------------------------------------------------------------------------------

    def open_file(self, key: str) -> BinaryIO:
        """The blob's file, opened unbuffered for reading; the caller closes it.

        For callers that read large windows with `os.pread` (HTTP byte serving) rather than the
        chunk-sized pieces of `open_range`. Raises BlobNotFoundError when the file is missing.
        """
        if not is_blob_key(key):
            raise BlobNotFoundError(key)
        try:
            return open(self.path_for(key), "rb", buffering=0)  # noqa: SIM115 - the caller closes it
        except FileNotFoundError as exc:
            raise BlobNotFoundError(key) from exc

    def open_range(self, key: str, start: int, end_inclusive: int) -> Iterator[bytes]:
        """Stream bytes [start, end_inclusive] with one large read per chunk.

        The file alone answers (its size from fstat): it exists exactly as long as its index row,
        and callers that need the index's word (HTTP: 404 or not) ask `stat` first anyway.
        """
        handle = self.open_file(key)
        with handle:
            end_inclusive = clamp_range(os.fstat(handle.fileno()).st_size, start, end_inclusive)
            handle.seek(start)
            remaining = end_inclusive - start + 1
            while remaining > 0:
                data = handle.read(min(self.chunk_size, remaining))
                if not data:
                    raise BlobCorruptError(f"blob {key} shrank while being read")
                remaining -= len(data)
                yield data

    # Migrating ---------------------------------------------------------------------------------

    def has_bytes(self, key: str, size: int) -> bool:
        try:
            return self.path_for(key).stat().st_size == size
        except FileNotFoundError:
            return False

    def install_bytes(self, key: str, chunk_size: int, stream: Iterable[bytes]) -> None:
        self._ensure_dir(self.tmp_dir)
        fd, tmp_name = tempfile.mkstemp(dir=self.tmp_dir, prefix="put-")
        tmp = Path(tmp_name)
        try:
            digest = sha256()
            try:
                for part in stream:
                    digest.update(part)
                    _write_all(fd, part)
                os.fsync(fd)
            finally:
                os.close(fd)
            if digest.hexdigest() != key:
                raise BlobCorruptError(f"blob {key}: the copied bytes hash to {digest.hexdigest()}")
            final = self.path_for(key)
            self._ensure_dir(final.parent)
            self._install(tmp, final)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    # Deleting ----------------------------------------------------------------------------------

    def _drop_bytes(self, session: Session, key: str) -> None:
        self.path_for(key).unlink(missing_ok=True)
        return None

    def _sweep_leftovers(self, cutoff: datetime, report: GcReport) -> None:
        deadline = cutoff.timestamp()
        if self.tmp_dir.is_dir():
            for entry in os.scandir(self.tmp_dir):
                if entry.is_file(follow_symlinks=False) and entry.stat().st_mtime < deadline:
                    Path(entry.path).unlink(missing_ok=True)
                    report.staged_dropped += 1
        for shard in self._shard_dirs():
            names = [
                entry.name
                for entry in os.scandir(shard)
                if entry.is_file(follow_symlinks=False)
                and is_blob_key(entry.name)
                and entry.stat().st_mtime < deadline
            ]
            for offset in range(0, len(names), _ORPHAN_QUERY_BATCH):
                batch = names[offset : offset + _ORPHAN_QUERY_BATCH]
                with self.database.read() as session:
                    known = set(session.execute(select(blobs.c.key).where(blobs.c.key.in_(batch))).scalars())
                for key in batch:
                    if key not in known and self._remove_orphan(key, deadline):
                        report.orphans_removed += 1

    def _shard_dirs(self) -> Iterator[Path]:
        if not self.root.is_dir():
            return
        for level1 in sorted(self.root.iterdir()):
            if len(level1.name) == 2 and level1.is_dir():
                for level2 in sorted(level1.iterdir()):
                    if len(level2.name) == 2 and level2.is_dir():
                        yield level2

    def _remove_orphan(self, key: str, deadline: float) -> bool:
        # A file without an index row: a put that crashed between rename and commit. Claim the
        # key by inserting a placeholder row first, so a concurrent put of the same content waits
        # on it, then unlink and remove the placeholder in the same transaction.
        path = self.path_for(key)
        with self.database.write() as session:
            if not claim_row(session, key=key, size=0, chunk_size=self.chunk_size, now=utcnow()):
                return False
            try:
                removed = path.stat().st_mtime < deadline
            except FileNotFoundError:
                removed = False
            if removed:
                path.unlink(missing_ok=True)
            session.execute(delete(blobs).where(blobs.c.key == key))
        return removed

"""The `BlobStore` contract shared by every backend, its value objects and errors.

Blobs are content-addressed: the key is the lowercase hex sha256 of the bytes, so a key names
exactly one content forever. That is what lets every backend deduplicate, lets tasks that run twice
store the same output harmlessly, and lets HTTP responses be cached as immutable.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO, Protocol, runtime_checkable

from sqlalchemy.orm import Session

from mediagen.errors import MediagenError

DEFAULT_CHUNK_SIZE = 1024 * 1024

_KEY_RE = re.compile(r"[0-9a-f]{64}")

# What `put` accepts: a readable binary file, any iterable of byte pieces (a generator, an HTTP body
# bridged to a thread), or one small bytes-like value for convenience (waveform JSON, thumbnails).
PutSource = BinaryIO | Iterable[bytes] | bytes | bytearray | memoryview


def is_blob_key(key: str) -> bool:
    """True for a well-formed key (64 lowercase hex digits); everything else is nobody's blob."""
    return bool(_KEY_RE.fullmatch(key))


@dataclass(frozen=True, slots=True)
class BlobInfo:
    """What the index knows about one stored content."""

    key: str
    size: int


@dataclass(slots=True)
class GcReport:
    """What one `gc` pass removed, for logs and the admin CLI."""

    blobs_deleted: int = 0
    bytes_freed: int = 0
    staged_dropped: int = 0
    orphans_removed: int = 0


class BlobStoreError(MediagenError):
    """Base class of the store's own errors."""


class BlobNotFoundError(BlobStoreError, KeyError):
    """No blob with that key (or the key is malformed)."""


class BlobInUseError(BlobStoreError):
    """The blob still has references (refcount > 0) and may not be deleted."""


class BlobCorruptError(BlobStoreError):
    """The index row exists but its bytes are missing or short: a deleted-while-reading race or damage."""


@runtime_checkable
class BlobStore(Protocol):
    """Content-addressed, streamed, reference-counted byte storage."""

    chunk_size: int

    def put(self, stream: PutSource) -> BlobInfo:
        """Store the bytes with bounded memory; create the index row with refcount 0 if new."""
        ...

    def stat(self, key: str) -> BlobInfo | None:
        """The blob's size, or None when it does not exist."""
        ...

    def open_range(self, key: str, start: int, end_inclusive: int) -> Iterator[bytes]:
        """Stream bytes [start, min(end_inclusive, size - 1)] reading only what that range needs."""
        ...

    def attach(self, session: Session, key: str) -> None:
        """Add one reference inside the caller's transaction (raises BlobNotFoundError)."""
        ...

    def release(self, session: Session, key: str) -> None:
        """Drop one reference inside the caller's transaction; at zero the gc grace clock restarts."""
        ...

    def gc(self, grace_seconds: float = 3600, *, staging_grace_seconds: float | None = None) -> GcReport:
        """Delete unreferenced blobs idle longer than the grace period, and crash leftovers."""
        ...

    def delete_now(self, key: str, *, force: bool = False) -> bool:
        """Delete at once; False if absent; BlobInUseError if referenced unless `force`."""
        ...


def clamp_range(size: int, start: int, end_inclusive: int) -> int:
    """Validate a range and return its end clamped to the blob (as HTTP does for `a-b` past EOF).

    Clamping lets callers stream a whole blob as `open_range(key, 0, max(0, size - 1))` without a
    special case for empty blobs; a start past the end is a caller bug and raises ValueError.
    """
    if start < 0 or start > size or end_inclusive < start - 1:
        raise ValueError(f"range {start}-{end_inclusive} is outside a blob of {size} bytes")
    return min(end_inclusive, size - 1)


def iter_chunks(stream: PutSource, chunk_size: int) -> Iterator[bytes]:
    """Re-cut any source into `chunk_size` pieces (the last may be shorter; none are empty).

    Memory stays at about one chunk: file objects are read chunk by chunk, and iterables are
    accumulated only until a chunk is full. Chunk boundaries must not depend on how the source
    happened to be split, because the db backend addresses bytes as seq * chunk_size + offset.
    """
    if isinstance(stream, bytes | bytearray | memoryview):
        view = memoryview(stream).cast("B")
        for offset in range(0, len(view), chunk_size):
            yield bytes(view[offset : offset + chunk_size])
        return
    read = getattr(stream, "read", None)
    if read is not None:
        yield from _iter_file(read, chunk_size)
        return
    buffer = bytearray()
    for piece in stream:
        if not piece:
            continue
        if not buffer and len(piece) == chunk_size:
            yield bytes(piece)  # the common aligned case: no copy into the buffer
            continue
        buffer += piece
        if len(buffer) >= chunk_size:
            view = memoryview(buffer)
            cut = len(buffer) - len(buffer) % chunk_size
            for offset in range(0, cut, chunk_size):
                yield bytes(view[offset : offset + chunk_size])
            view.release()
            del buffer[:cut]
    if buffer:
        yield bytes(buffer)


def _iter_file(read: object, chunk_size: int) -> Iterator[bytes]:
    # Raw files and sockets may return short reads before EOF; keep reading until a chunk is full.
    while True:
        data = read(chunk_size)  # type: ignore[operator]
        if not data:
            return
        if len(data) == chunk_size:
            yield bytes(data)
            continue
        parts = [data]
        filled = len(data)
        while filled < chunk_size:
            more = read(chunk_size - filled)  # type: ignore[operator]
            if not more:
                break
            parts.append(more)
            filled += len(more)
        yield b"".join(parts)
        if filled < chunk_size:
            return

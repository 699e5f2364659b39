"""A zip of stored blobs, written as it is sent: flat memory whatever the size.

Media is compressed already, so members are stored, not deflated (deflating an MP4 saves nothing
and costs a core). `zipfile` writes to an unseekable sink here, so each member gets a data
descriptor after its bytes and Zip64 records when needed; a member is read from the blob store in
the store's chunks and handed on in batches of a few MiB (each piece of a sync iterator costs the
server a thread-pool hop).
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from mediagen.storage.base import BlobStore

BATCH_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class ZipMember:
    name: str
    blob_key: str
    size: int
    modified: datetime


def zip_blobs(store: BlobStore, members: Iterable[ZipMember], *, batch: int = BATCH_BYTES) -> Iterator[bytes]:
    """The zip's bytes, in pieces of about `batch` bytes (never empty ones)."""
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for member in members:
            info = zipfile.ZipInfo(member.name, date_time=_stamp(member.modified))
            info.compress_type = zipfile.ZIP_STORED
            with zf.open(info, "w", force_zip64=True) as out:
                if member.size > 0:
                    for chunk in store.open_range(member.blob_key, 0, member.size - 1):
                        out.write(chunk)
                        if sink.held >= batch:
                            yield sink.take()
    tail = sink.take()
    if tail:
        yield tail


class _Sink:
    """A write-only, unseekable file for zipfile: what was written is handed on and forgotten."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._pos = 0
        self.held = 0

    def write(self, data: bytes, /) -> int:
        self._parts.append(bytes(data))
        self._pos += len(data)
        self.held += len(data)
        return len(data)

    def tell(self) -> int:
        return self._pos

    def flush(self) -> None:
        return None

    def close(self) -> None:
        return None

    def take(self) -> bytes:
        out, self._parts, self.held = b"".join(self._parts), [], 0
        return out


def _stamp(when: datetime) -> tuple[int, int, int, int, int, int]:
    """A zip's DOS time (it starts in 1980)."""
    if when.year < 1980:
        return (1980, 1, 1, 0, 0, 0)
    return (when.year, when.month, when.day, when.hour, when.minute, when.second)

"""File helpers shared by backup, restore and doctor: where a SQLite database lives, the blob
directory layout, and copying a blob file while proving its sha256."""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy.engine import make_url

from mediagen.errors import MediagenError
from mediagen.storage.base import is_blob_key

COPY_PIECE = 1024 * 1024


class MaintenanceError(MediagenError):
    """A backup, restore or check cannot go on; the message says what to do instead."""


class BlobMismatch(MaintenanceError):
    """A blob file's bytes do not hash to its name (or not to the size its index row says)."""


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite database URL; None for any other database and for in-memory SQLite."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    name = parsed.database
    if not name or name == ":memory:" or name.startswith("file:"):
        return None
    return Path(name)


def blob_relpath(key: str) -> Path:
    """`ab/cd/<key>`: the fs store's layout (`FsBlobStore.path_for`), kept in backups as is."""
    return Path(key[:2]) / key[2:4] / key


def blob_files(root: Path) -> Iterator[tuple[str, Path]]:
    """(key, path) of every blob file under a store root (skips `tmp/` and anything misnamed)."""
    if not root.is_dir():
        return
    for level1 in sorted(root.iterdir()):
        if len(level1.name) != 2 or not level1.is_dir():
            continue
        for level2 in sorted(level1.iterdir()):
            if len(level2.name) != 2 or not level2.is_dir():
                continue
            for entry in os.scandir(level2):
                if entry.is_file(follow_symlinks=False) and is_blob_key(entry.name):
                    yield entry.name, Path(entry.path)


def copy_blob(src: Path, dst: Path, key: str, size: int | None = None) -> int:
    """Copy one blob file to `dst` (through a `.part` name), hashing the bytes as they pass.

    Raises FileNotFoundError when `src` is gone and BlobMismatch when the bytes are not `key`
    (or not `size` long); nothing is left at `dst` then. Returns the bytes copied.
    """
    dst.parent.mkdir(parents=True, exist_ok=True)
    part = dst.with_name(dst.name + ".part")
    digest = hashlib.sha256()
    copied = 0
    try:
        with open(src, "rb") as reader, open(part, "wb") as writer:
            while piece := reader.read(COPY_PIECE):
                digest.update(piece)
                writer.write(piece)
                copied += len(piece)
        if digest.hexdigest() != key:
            raise BlobMismatch(f"blob {key}: the file's bytes hash to {digest.hexdigest()}")
        if size is not None and copied != size:
            raise BlobMismatch(f"blob {key}: the file has {copied} bytes, the index says {size}")
        os.replace(part, dst)
    finally:
        part.unlink(missing_ok=True)
    return copied


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while piece := fh.read(COPY_PIECE):
            digest.update(piece)
    return digest.hexdigest()


def integrity_problems(path: Path) -> list[str]:
    """What `PRAGMA integrity_check` says about a SQLite file; empty when it says "ok"."""
    con = sqlite3.connect(path)
    try:
        rows = [str(row[0]) for row in con.execute("PRAGMA integrity_check")]
    finally:
        con.close()
    return [] if rows == ["ok"] else rows


def flush_to_disk() -> None:
    """Flush what a backup or restore wrote before it says it is done (one `sync`, not one
    `fsync` per file: thousands of small blob files would otherwise cost seconds)."""
    os.sync()

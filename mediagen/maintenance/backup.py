"""`backup`: one consistent copy of a SQLite deployment, taken while the server keeps writing.

The database is copied with SQLite's online backup API in a single step, which is one read
transaction: under WAL, writers go on while it runs and the copy is the database as of one
instant. With the `fs` blob store the blob files are copied too, content-addressed, each one
hashed on the way and proven to be its name:

1. every blob file present now is copied (the long part; the server keeps writing);
2. the database snapshot is taken;
3. the blobs the snapshot indexes but step 1 did not see (written meanwhile) are copied, and
   files step 1 copied that the snapshot does not index (deleted meanwhile) are dropped.

A file the snapshot references can still vanish between 2 and 3 only if its asset was made after
step 1 began and deleted after step 2; that is reported, never hidden. Index rows of unreferenced
blobs that gc removed meanwhile are dropped from the copy, as gc would have done.

PostgreSQL is refused: `pg_dump` makes its consistent copy, and there is nothing to add to it.

Layout of a backup directory::

    manifest.json     format, version, time, counts (written last: no manifest, no backup)
    mediagen.db       the database, in rollback-journal mode (one self-contained file)
    blobs/ab/cd/<sha> the fs store's files (fs only)
    secret_key        the session-signing key, when the data dir keeps one
    catalog/          `mediagen models sync` output, when present
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mediagen import __version__
from mediagen.config import Settings
from mediagen.maintenance.files import (
    BlobMismatch,
    MaintenanceError,
    blob_files,
    blob_relpath,
    copy_blob,
    file_sha256,
    flush_to_disk,
    integrity_problems,
    sqlite_file,
)

FORMAT = 1
MANIFEST = "manifest.json"
DB_FILE = "mediagen.db"
BLOBS_DIR = "blobs"
SECRET_FILE = "secret_key"
CATALOG_DIR = "catalog"
STAGING_LIKE = "tmp-%"

# Progress steps, in order, as `progress(step, message)` reports them.
STEP_BLOBS = "blobs"  # step 1 done: the files present before the snapshot are copied
STEP_SNAPSHOT = "snapshot"  # step 2 done: the database copy exists
STEP_CATCH_UP = "catch-up"  # step 3 done
STEP_VERIFY = "verify"  # db store: every blob's chunks re-read from the copy and hashed
STEP_DONE = "done"

Progress = Callable[[str, str], None]


class BackupUnsupported(MaintenanceError):
    """This deployment's database is not one `mediagen backup` can copy."""


@dataclass
class BackupReport:
    dest: Path
    manifest: dict[str, Any]
    blobs_copied: int = 0
    bytes_copied: int = 0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def render(self) -> str:
        counts = self.manifest["counts"]
        storage = self.manifest["storage"]
        lines = [
            f"backup written to {self.dest} in {self.seconds:.1f} s",
            f"  database: {self.manifest['database']['bytes']:,} bytes, "
            f"revision {self.manifest['database']['alembic_revision']}",
            f"  generations: {counts['generations']:,} "
            + "("
            + ", ".join(f"{n:,} {status}" for status, n in sorted(counts["generations_by_status"].items()))
            + f"), derivations: {counts['derivations']:,}",
            f"  blobs ({storage['backend']} store): {storage['blobs']:,}, {storage['blob_bytes']:,} bytes"
            + (f"; {self.blobs_copied:,} files copied and verified" if storage["backend"] == "fs" else ""),
        ]
        if self.manifest["extras"]:
            lines.append("  also: " + ", ".join(self.manifest["extras"]))
        lines += [f"  PROBLEM: {p}" for p in self.problems]
        return "\n".join(lines)


def postgres_advice(settings: Settings) -> str:
    advice = (
        "mediagen backup copies SQLite databases only; this server uses "
        f"{settings.resolved_database_url.split(':', 1)[0]}. Back it up with pg_dump, e.g. "
        "`pg_dump --format=custom --file=mediagen.dump <database url>`, and restore with pg_restore"
    )
    if settings.storage_backend == "fs":
        advice += (
            f". Blobs live in files: after the dump, copy the blob directory {settings.data_dir / BLOBS_DIR} "
            "as well (e.g. `rsync -a`), then run `mediagen doctor` after a restore"
        )
    return advice + "."


def source_database(settings: Settings) -> Path:
    path = sqlite_file(settings.resolved_database_url)
    if path is None:
        if settings.resolved_database_url.startswith("sqlite"):
            raise BackupUnsupported("an in-memory or URI SQLite database cannot be backed up from outside")
        raise BackupUnsupported(postgres_advice(settings))
    return path


def backup(
    settings: Settings, dest: Path | str, *, verify: bool = True, progress: Progress | None = None
) -> BackupReport:
    """Copy the database (and, for the fs store, the blobs) into `dest`, a new or empty directory.

    Safe while the server runs. `verify` (db store) re-reads every blob from the copy and checks
    its sha256; fs blobs are always hashed as they are copied.
    """
    started = time.monotonic()
    say: Progress = progress or (lambda _step, _message: None)
    source = source_database(settings)
    if not source.is_file():
        raise MaintenanceError(f"no database at {source}")
    dest = Path(dest)
    _check_dest(settings, dest)
    dest.mkdir(parents=True, exist_ok=True)
    report = BackupReport(dest=dest, manifest={})
    fs_root = settings.data_dir / BLOBS_DIR if settings.storage_backend == "fs" else None

    before: set[str] = set()
    if fs_root is not None:
        before = _copy_present(fs_root, dest / BLOBS_DIR, report)
        say(STEP_BLOBS, f"{len(before):,} blob files copied")
    db_copy = dest / DB_FILE
    snapshot(source, db_copy)
    say(STEP_SNAPSHOT, f"database snapshot taken ({db_copy.stat().st_size:,} bytes)")
    with closing(sqlite3.connect(db_copy)) as con:
        _drop_staging(con)
        if fs_root is not None:
            _catch_up(con, fs_root, dest / BLOBS_DIR, before, report)
            say(STEP_CATCH_UP, f"{report.blobs_copied:,} blob files in the backup")
        elif verify:
            _verify_chunks(con, report)
            say(STEP_VERIFY, "every blob re-read from the copy and hashed")
        con.commit()
    report.problems += integrity_problems(db_copy)
    extras = _copy_extras(settings, dest)
    flush_to_disk()
    report.manifest = _manifest(settings, db_copy, extras, report.problems)
    part = dest / (MANIFEST + ".part")
    part.write_text(json.dumps(report.manifest, indent=2) + "\n")
    part.replace(dest / MANIFEST)
    flush_to_disk()
    report.seconds = time.monotonic() - started
    say(STEP_DONE, f"backup complete in {report.seconds:.1f} s")
    return report


def _check_dest(settings: Settings, dest: Path) -> None:
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise MaintenanceError(f"{dest} exists and is not an empty directory; choose a new one")
    data = settings.data_dir.resolve()
    target = dest.resolve()
    if target == data or data / BLOBS_DIR in (target, *target.parents):
        raise MaintenanceError(f"{dest} is the data dir or inside its blob store; choose another place")


def snapshot(source: Path, target: Path) -> None:
    """SQLite's online backup of `source` into `target`, in one step, as one self-contained file."""
    with closing(sqlite3.connect(source, timeout=60)) as src, closing(sqlite3.connect(target)) as dst:
        # pages=-1: every page in one step, i.e. one read transaction and one consistent snapshot.
        # Copying in several steps would restart whenever another connection writes in between.
        src.backup(dst, pages=-1)
        dst.execute("PRAGMA journal_mode=DELETE")


def _copy_present(root: Path, out: Path, report: BackupReport) -> set[str]:
    """Step 1: copy every blob file present now; returns the keys copied."""
    copied: set[str] = set()
    for key, path in blob_files(root):
        try:
            report.bytes_copied += copy_blob(path, out / blob_relpath(key), key)
        except FileNotFoundError:
            continue  # deleted while we walked; step 3 decides whether that matters
        except BlobMismatch as exc:
            report.problems.append(f"{exc} (a damaged file in the live store; not backed up)")
            continue
        copied.add(key)
    return copied


def _drop_staging(con: sqlite3.Connection) -> None:
    """Uploads in flight at the snapshot: their staging rows and chunks are not data."""
    staging = [row[0] for row in con.execute("SELECT key FROM blobs WHERE key LIKE ?", (STAGING_LIKE,))]
    for key in staging:
        con.execute("DELETE FROM blob_chunks WHERE blob_key = ?", (key,))
        con.execute("DELETE FROM blobs WHERE key = ?", (key,))


def _catch_up(con: sqlite3.Connection, root: Path, out: Path, before: set[str], report: BackupReport) -> None:
    """Step 3: make the copied files exactly the snapshot's index."""
    indexed = dict(con.execute("SELECT key, size FROM blobs WHERE key NOT LIKE ?", (STAGING_LIKE,)))
    for key in before - indexed.keys():
        (out / blob_relpath(key)).unlink(missing_ok=True)  # gone from the index by the snapshot
    for key, size in indexed.items():
        if key in before:
            if (out / blob_relpath(key)).stat().st_size != size:
                report.problems.append(f"blob {key}: the file's size differs from the index ({size})")
            report.blobs_copied += 1
            continue
        try:
            report.bytes_copied += copy_blob(root / blob_relpath(key), out / blob_relpath(key), key, size)
            report.blobs_copied += 1
        except BlobMismatch as exc:
            report.problems.append(f"{exc} (a damaged file in the live store; not backed up)")
        except FileNotFoundError:
            if _referenced(con, key):
                report.problems.append(
                    f"blob {key}: referenced in the snapshot but its file is not in the live store "
                    "(its asset was deleted during the backup, or the file was lost before); after a "
                    "restore, `mediagen doctor` marks that asset failed"
                )
            else:  # collected by gc meanwhile: drop the index row, as gc did
                con.execute("DELETE FROM blobs WHERE key = ?", (key,))


def _referenced(con: sqlite3.Connection, key: str) -> bool:
    row = con.execute(
        "SELECT (SELECT refcount FROM blobs WHERE key = :k) > 0"
        " OR EXISTS (SELECT 1 FROM generations WHERE blob_key = :k)"
        " OR EXISTS (SELECT 1 FROM derivations WHERE blob_key = :k)",
        {"k": key},
    ).fetchone()
    return bool(row and row[0])


def _verify_chunks(con: sqlite3.Connection, report: BackupReport) -> None:
    """db store: every blob's chunks in the copy hash to its key and add up to its size."""
    for key, size in con.execute("SELECT key, size FROM blobs").fetchall():
        digest = hashlib.sha256()
        total = 0
        for (data,) in con.execute("SELECT data FROM blob_chunks WHERE blob_key = ? ORDER BY seq", (key,)):
            digest.update(data)
            total += len(data)
        if total != size or digest.hexdigest() != key:
            report.problems.append(
                f"blob {key}: its chunks hold {total} bytes hashing to {digest.hexdigest()[:12]}…, "
                f"the index says {size} bytes (damaged in the live database too)"
            )


def _copy_extras(settings: Settings, dest: Path) -> list[str]:
    extras = []
    secret = settings.data_dir / SECRET_FILE
    if secret.is_file():
        shutil.copy2(secret, dest / SECRET_FILE)
        extras.append(SECRET_FILE)
    catalog = settings.data_dir / CATALOG_DIR
    if catalog.is_dir():
        shutil.copytree(catalog, dest / CATALOG_DIR)
        extras.append(CATALOG_DIR)
    return extras


def database_counts(con: sqlite3.Connection) -> dict[str, Any]:
    by_status = dict(con.execute("SELECT status, count(*) FROM generations GROUP BY status").fetchall())
    blobs, blob_bytes = con.execute(
        "SELECT count(*), coalesce(sum(size), 0) FROM blobs WHERE key NOT LIKE ?", (STAGING_LIKE,)
    ).fetchone()
    revision = con.execute("SELECT version_num FROM alembic_version").fetchone()
    return {
        "generations": sum(by_status.values()),
        "generations_by_status": by_status,
        "derivations": con.execute("SELECT count(*) FROM derivations").fetchone()[0],
        "blobs": blobs,
        "blob_bytes": blob_bytes,
        "alembic_revision": revision[0] if revision else None,
    }


def _manifest(settings: Settings, db_copy: Path, extras: list[str], problems: list[str]) -> dict[str, Any]:
    with closing(sqlite3.connect(db_copy)) as con:
        counts = database_counts(con)
    return {
        "format": FORMAT,
        "mediagen_version": __version__,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "source": {"data_dir": str(settings.data_dir.resolve()), "database": "sqlite"},
        "database": {
            "file": DB_FILE,
            "bytes": db_copy.stat().st_size,
            "sha256": file_sha256(db_copy),
            "alembic_revision": counts.pop("alembic_revision"),
        },
        "storage": {
            "backend": settings.storage_backend,
            "chunk_size": settings.storage_chunk_size,
            "blobs": counts.pop("blobs"),
            "blob_bytes": counts.pop("blob_bytes"),
        },
        "counts": counts,
        "extras": extras,
        "problems": problems,
    }


def read_manifest(src: Path) -> dict[str, Any]:
    """The manifest of a backup directory, checked for what restore relies on."""
    path = src / MANIFEST
    if not path.is_file():
        raise MaintenanceError(f"{src} is not a complete mediagen backup (no {MANIFEST})")
    try:
        manifest: dict[str, Any] = json.loads(path.read_text())
    except ValueError as exc:
        raise MaintenanceError(f"{path} is not valid JSON: {exc}") from exc
    if manifest.get("format") != FORMAT:
        raise MaintenanceError(
            f"{path}: backup format {manifest.get('format')!r} is not one this version reads"
        )
    if not (src / DB_FILE).is_file():
        raise MaintenanceError(f"{src} has a manifest but no {DB_FILE}")
    return manifest

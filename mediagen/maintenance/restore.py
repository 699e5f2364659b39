"""`restore`: put a `backup` directory back as this deployment's database and blobs, then prove it.

Everything that can be checked about the backup is checked before the data dir is touched (the
manifest, the database file's sha256 and `PRAGMA integrity_check`, a schema revision this version
knows). A data dir that holds anything is refused unless forced; forced, its contents are moved
aside into `<data dir>/pre-restore-<time>/`, not deleted. Stop the server first: restore replaces
the files under it.

The job queue (`queue.db`) is not restored: tasks only carry a generation id, and the reconcile
heartbeat re-dispatches every pending or processing row whose lease has run out.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import time
from collections.abc import Collection
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from mediagen.config import Settings
from mediagen.db.migrate import alembic_config
from mediagen.db.session import Database
from mediagen.generations.tables import Generation
from mediagen.maintenance.backup import (
    BLOBS_DIR,
    CATALOG_DIR,
    DB_FILE,
    SECRET_FILE,
    STAGING_LIKE,
    read_manifest,
)
from mediagen.maintenance.files import (
    BlobMismatch,
    MaintenanceError,
    blob_relpath,
    copy_blob,
    file_sha256,
    flush_to_disk,
    integrity_problems,
    sqlite_file,
)
from mediagen.storage import make_store
from mediagen.storage.tables import Blob
from mediagen.vocabulary import Status

ASIDE_PREFIX = "pre-restore-"
SIDECARS = ("-wal", "-shm", "-journal")


class RestoreRefused(MaintenanceError):
    """Restoring here would overwrite something (or cannot work with these settings)."""


@dataclass
class RestoreReport:
    data_dir: Path
    database: Path
    manifest: dict[str, Any]
    moved_aside: Path | None = None
    blobs_restored: int = 0
    blobs_verified: int = 0
    bytes_verified: int = 0
    verified: bool = False
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def render(self) -> str:
        counts = self.manifest["counts"]
        lines = [
            f"restored the backup of {self.manifest['created_at']} into {self.data_dir} "
            f"in {self.seconds:.1f} s",
            f"  database: {self.database} ({counts['generations']:,} generations, "
            f"{counts['derivations']:,} derivations)",
        ]
        if self.manifest["storage"]["backend"] == "fs":
            lines.append(f"  blob files restored: {self.blobs_restored:,}")
        if self.verified:
            lines.append(
                f"  verified: {self.blobs_verified:,} blobs ({self.bytes_verified:,} bytes) read back "
                "through the store with the right sha256"
            )
        if self.moved_aside is not None:
            lines.append(f"  the previous contents were moved to {self.moved_aside}")
        lines += [f"  PROBLEM: {p}" for p in self.problems]
        return "\n".join(lines)


def restore(
    settings: Settings, src: Path | str, *, force: bool = False, verify: bool = True
) -> RestoreReport:
    """Restore the backup in `src` into the data dir (and database file) that `settings` name."""
    started = time.monotonic()
    src = Path(src)
    manifest = read_manifest(src)
    target = sqlite_file(settings.resolved_database_url)
    if target is None:
        raise RestoreRefused(
            "mediagen restore writes SQLite databases only; for PostgreSQL use pg_restore on a pg_dump "
            "and copy the blob directory back by hand, then run `mediagen doctor`"
        )
    backend = manifest["storage"]["backend"]
    if backend != settings.storage_backend:
        raise RestoreRefused(
            f"the backup holds a {backend!r} blob store but this deployment uses "
            f"{settings.storage_backend!r}; set MEDIAGEN_STORAGE_BACKEND={backend}"
        )
    _check_backup(src, manifest)
    occupants = _occupants(settings, target)
    if occupants and not force:
        shown = ", ".join(str(p.name) for p in occupants[:6]) + (" …" if len(occupants) > 6 else "")
        raise RestoreRefused(
            f"{settings.data_dir} is not empty ({shown}); stop the server and pass --force to replace it "
            f"(what is there now is moved into {settings.data_dir}/{ASIDE_PREFIX}<time>/, not deleted)"
        )
    report = RestoreReport(data_dir=settings.data_dir, database=target, manifest=manifest)
    if occupants:
        report.moved_aside = _move_aside(settings, occupants)
    settings.ensure_dirs()
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".restoring")
    shutil.copyfile(src / DB_FILE, part)
    os.replace(part, target)
    unrestored: set[str] = set()
    if backend == "fs":
        unrestored = _restore_blobs(src / BLOBS_DIR, settings.data_dir / BLOBS_DIR, target, report)
    if (src / SECRET_FILE).is_file():
        shutil.copy2(src / SECRET_FILE, settings.data_dir / SECRET_FILE)
    if (src / CATALOG_DIR).is_dir():
        shutil.copytree(src / CATALOG_DIR, settings.data_dir / CATALOG_DIR)
    flush_to_disk()
    if verify:
        verify_deployment(settings, report, known_bad=unrestored)
    report.seconds = time.monotonic() - started
    return report


def _check_backup(src: Path, manifest: dict[str, Any]) -> None:
    """Everything about the backup that can fail, before anything in the data dir is touched."""
    database = manifest["database"]
    if file_sha256(src / DB_FILE) != database["sha256"]:
        raise MaintenanceError(f"{src / DB_FILE} does not match its manifest's sha256: the backup is damaged")
    damage = integrity_problems(src / DB_FILE)
    if damage:
        raise MaintenanceError(f"{src / DB_FILE} fails PRAGMA integrity_check: {'; '.join(damage[:5])}")
    revision = database.get("alembic_revision")
    if revision is not None:
        from alembic.script import ScriptDirectory

        scripts = ScriptDirectory.from_config(alembic_config("sqlite://"))
        try:
            known = scripts.get_revision(revision) is not None
        except Exception:
            known = False
        if not known:
            raise RestoreRefused(
                f"the backup's schema revision {revision} is unknown here: it was made by a newer "
                f"mediagen ({manifest.get('mediagen_version')}); restore it with that version"
            )


def _occupants(settings: Settings, target: Path) -> list[Path]:
    """What a restore would replace: everything in the data dir (earlier asides excepted), and
    the database file and its sidecars where the URL puts them outside the data dir."""
    found: list[Path] = []
    data = settings.data_dir.resolve()
    if data.is_dir():
        found += sorted(p for p in data.iterdir() if not p.name.startswith(ASIDE_PREFIX))
    target = target.resolve()
    for path in [target, *(target.with_name(target.name + s) for s in SIDECARS)]:
        if path.exists() and path not in found:
            found.append(path)
    return found


def _move_aside(settings: Settings, occupants: list[Path]) -> Path:
    aside = settings.data_dir / (ASIDE_PREFIX + datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f"))
    aside.mkdir(parents=True)
    for path in occupants:
        shutil.move(path, aside / path.name)  # a rename within the data dir; a copy across devices
    return aside


def _restore_blobs(src: Path, root: Path, database: Path, report: RestoreReport) -> set[str]:
    """Copy every indexed blob file back, proving each; returns the keys that could not be."""
    failed: set[str] = set()
    with closing(sqlite3.connect(database)) as con:
        indexed = con.execute("SELECT key, size FROM blobs WHERE key NOT LIKE ?", (STAGING_LIKE,)).fetchall()
    for key, size in indexed:
        rel = blob_relpath(key)
        try:
            copy_blob(src / rel, root / rel, key, size)
            report.blobs_restored += 1
        except FileNotFoundError:
            report.problems.append(f"blob {key}: indexed but not in the backup")
            failed.add(key)
        except BlobMismatch as exc:
            report.problems.append(f"{exc} (damaged in the backup)")
            failed.add(key)
    return failed


def verify_deployment(settings: Settings, report: RestoreReport, *, known_bad: Collection[str] = ()) -> None:
    """Open the restored deployment through the real store: every blob reads back as its sha256,
    and every completed generation's blob is indexed (`known_bad`: already reported)."""
    db = Database(settings.resolved_database_url)
    try:
        store = make_store(settings, db)
        with db.read() as s:
            rows = s.execute(select(Blob.key, Blob.size).where(Blob.key.not_like(STAGING_LIKE))).all()
            unindexed = s.scalar(
                select(func.count())
                .select_from(Generation)
                .outerjoin(Blob, Blob.key == Generation.blob_key)
                .where(Generation.status == Status.COMPLETED, Blob.key.is_(None))
            )
        for key, size in rows:
            if key in known_bad:
                continue
            digest = hashlib.sha256()
            read = 0
            try:
                for piece in store.open_range(key, 0, max(0, size - 1)):
                    digest.update(piece)
                    read += len(piece)
            except Exception as exc:  # the store's own errors and missing files alike
                report.problems.append(f"blob {key}: cannot be read back ({type(exc).__name__})")
                continue
            if digest.hexdigest() != key or read != size:
                report.problems.append(
                    f"blob {key}: reads back as {read} bytes hashing to {digest.hexdigest()}"
                )
                continue
            report.blobs_verified += 1
            report.bytes_verified += size
        if unindexed:
            report.problems.append(
                f"{unindexed} completed generation(s) point at blobs that are not stored; "
                "`mediagen doctor` marks them failed"
            )
        report.verified = True
    finally:
        db.dispose()

"""`doctor`: check that records and stored bytes agree, and repair what does not.

Checks (each a `Finding.check`):

- `missing-main`: a completed generation whose main blob is not stored (no index row, or the
  bytes are gone or short). Repair: mark it failed with an error that says so, and drop its
  reference. Any other generation holding such a key only loses the reference.
- `missing-derivation`: a derivation whose blob is not stored. Repair: drop the row; then, if the
  asset's main blob is intact and an ingest deriver makes that derivation, make it again.
- `broken-blob`: an index row whose bytes are gone or short. Repair: once nothing references it
  any more, remove the row, so the same content can be stored again by a later upload.
- `refcount`: an index row whose refcount differs from the rows that reference it. Repair: set
  it to the true count (restarting the gc grace clock when it drops to zero).
- `orphan-blob`: an index row nothing references; `orphan-file` (fs): a file without an index
  row. Repair: the store's own gc, with its grace period, so an upload that is about to be
  attached is never collected.
- `stuck-job`: a pending or processing generation whose lease ran out long ago (the reconcile
  heartbeat would have taken it back if it ran). Repair: run reconcile; whatever it does not
  move on is failed.

Every repair re-checks its condition in the transaction that changes the row, so doctor can run
beside a live server. `repair=False` (`--dry-run`) reports what it would do and changes nothing.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Protocol

from sqlalchemy import Subquery, and_, delete, func, or_, select, union_all, update
from sqlalchemy.orm import Session

from mediagen.config import Settings
from mediagen.db.base import utcnow
from mediagen.db.session import Database
from mediagen.generations.ingest import DERIVERS
from mediagen.generations.leases import rowcount
from mediagen.generations.pipeline import Pipeline
from mediagen.generations.reconcile import GC_GRACE_SECONDS
from mediagen.generations.tables import Derivation, Generation
from mediagen.maintenance.files import blob_files
from mediagen.maintenance.findings import (
    BROKEN_BLOB,
    MISSING_DERIVATION,
    MISSING_MAIN,
    ORPHAN_BLOB,
    ORPHAN_FILE,
    REFCOUNT,
    STUCK_JOB,
    DoctorReport,
    Finding,
    age,
)
from mediagen.storage.base import BlobInUseError, BlobStore
from mediagen.storage.db import DbBlobStore
from mediagen.storage.fs import FsBlobStore
from mediagen.storage.index import MIN_STAGING_GRACE_SECONDS, STAGING_PREFIX
from mediagen.storage.tables import Blob, BlobChunk
from mediagen.vocabulary import ACTIVE, DERIVATION_TYPES, TERMINAL, Status

_BATCH = 500
_NOT_STAGING = Blob.key.not_like(f"{STAGING_PREFIX}%")


class DoctorServices(Protocol):
    """What doctor uses of `mediagen.services.Services` (which this layer may not import)."""

    @property
    def settings(self) -> Settings: ...
    @property
    def db(self) -> Database: ...
    @property
    def store(self) -> BlobStore: ...
    @property
    def pipeline(self) -> Pipeline: ...


def doctor(
    services: DoctorServices,
    *,
    repair: bool,
    deep: bool = False,
    stuck_after_seconds: float | None = None,
    gc_grace_seconds: float = GC_GRACE_SECONDS,
) -> DoctorReport:
    """Check records against stored bytes (and hash every blob when `deep`); repair if asked.

    A job is stuck when its lease ran out more than `stuck_after_seconds` ago (default: one
    lease, `MEDIAGEN_LEASE_SECONDS`). Orphans are collected by the store's gc with
    `gc_grace_seconds`, the heartbeat's grace by default.
    """
    return _Doctor(services, repair, deep, stuck_after_seconds, gc_grace_seconds).run()


class _Doctor:
    def __init__(
        self, services: DoctorServices, repair: bool, deep: bool, stuck_after: float | None, grace: float
    ) -> None:
        self.settings, self.db, self.store = services.settings, services.db, services.store
        self.pipeline = services.pipeline
        self.repair, self.deep, self.grace = repair, deep, grace
        self.stuck_after = timedelta(seconds=stuck_after or self.settings.lease_seconds)
        self.report = DoctorReport(repair=repair)
        self.derivation_findings: dict[tuple[int, str], Finding] = {}

    def would(self, done: str, planned: str) -> str:
        return done if self.repair else f"would {planned}"

    def run(self) -> DoctorReport:
        started = time.monotonic()
        self.check_stuck()
        broken = self.scan_blobs()
        self.check_mains(broken)
        rederive = self.check_derivations(broken)
        self.drop_broken(broken)
        self.rederive(rederive)
        self.check_refcounts()
        self.check_orphans()
        self.report.seconds = time.monotonic() - started
        return self.report

    # stuck jobs ----------------------------------------------------------------------------------

    def check_stuck(self) -> None:
        now = utcnow()
        with self.db.read() as s:
            stuck = s.execute(
                select(Generation.id, Generation.status, Generation.lease_until).where(
                    Generation.status.in_(ACTIVE),
                    or_(Generation.lease_until.is_(None), Generation.lease_until < now - self.stuck_after),
                )
            ).all()
            self.report.scanned["generations"] = s.scalar(select(func.count()).select_from(Generation)) or 0
        if stuck and self.repair:
            self.pipeline.reconcile(limit=len(stuck) + 500)
        for gen_id, status, lease in stuck:
            since = "no lease" if lease is None else f"lease ran out {age(now - lease)} ago"
            finding = self.report.add(STUCK_JOB, f"generation {gen_id}", f"{status}, {since}")
            finding.action = self._unstick(gen_id, status) if self.repair else "would hand to reconcile"

    def _unstick(self, gen_id: int, status: str) -> str:
        fresh = self.pipeline.rows.get(gen_id)
        if fresh is None:
            return "gone (deleted meanwhile)"
        if fresh.status in TERMINAL:
            return f"reconcile moved it to {fresh.status}: {fresh.error}"
        if fresh.lease_until is not None and fresh.lease_until > utcnow():
            return f"reconcile handed it back to the queue ({fresh.status}, lease renewed)"
        error = f"stuck in {status} with no worker taking it back; failed by `mediagen doctor`"
        return "failed" if self.pipeline.rows.fail(gen_id, error) else f"left as {fresh.status}"

    # blob bytes ------------------------------------------------------------------------------------

    def scan_blobs(self) -> dict[str, str]:
        """key -> what is wrong with its bytes, for every index row whose bytes are not all there."""
        broken: dict[str, str] = {}
        held: dict[str, tuple[int, int]] = {}
        with self.db.read() as s:
            index = s.execute(select(Blob.key, Blob.size, Blob.chunk_size).where(_NOT_STAGING)).all()
            if isinstance(self.store, DbBlobStore):
                held = {
                    key: (int(n), int(total))
                    for key, n, total in s.execute(
                        select(BlobChunk.blob_key, func.count(), func.sum(func.length(BlobChunk.data)))
                        .where(BlobChunk.blob_key.not_like(f"{STAGING_PREFIX}%"))
                        .group_by(BlobChunk.blob_key)
                    )
                }
        self.report.scanned["blobs"] = len(index)
        for key, size, chunk_size in index:
            if isinstance(self.store, DbBlobStore):
                problem = _chunk_problem(size, chunk_size, held.get(key, (0, 0)))
            else:
                problem = self._file_problem(key, size)
            if problem is None and self.deep:
                problem = self._hash_problem(key, size)
            if problem is not None:
                broken[key] = problem
        # A read racing a gc can see a row whose bytes were just dropped: ask each one again.
        return {key: why for key, why in broken.items() if self.probe(key) is not None}

    def probe(self, key: str) -> str | None:
        """What is wrong with one blob now: None when it is fully stored (or no longer indexed)."""
        with self.db.read() as s:
            row = s.execute(select(Blob.size, Blob.chunk_size).where(Blob.key == key)).first()
            if row is None:
                return None
            if isinstance(self.store, DbBlobStore):
                held = s.execute(
                    select(func.count(), func.coalesce(func.sum(func.length(BlobChunk.data)), 0)).where(
                        BlobChunk.blob_key == key
                    )
                ).one()
                problem = _chunk_problem(row.size, row.chunk_size, (int(held[0]), int(held[1])))
            else:
                problem = self._file_problem(key, row.size)
        if problem is None and self.deep:
            problem = self._hash_problem(key, row.size)
        return problem

    def _file_problem(self, key: str, size: int) -> str | None:
        if not isinstance(self.store, FsBlobStore):
            return None  # another backend: only `deep` can tell
        try:
            found = self.store.path_for(key).stat().st_size
        except FileNotFoundError:
            return "its file is missing"
        return None if found == size else f"its file has {found} bytes, the index says {size}"

    def _hash_problem(self, key: str, size: int) -> str | None:
        digest = hashlib.sha256()
        read = 0
        try:
            for piece in self.store.open_range(key, 0, max(0, size - 1)):
                digest.update(piece)
                read += len(piece)
        except Exception as exc:  # missing or short bytes surface as the store's own errors
            return f"cannot be read: {exc}"
        if read != size or digest.hexdigest() != key:
            return f"its {read} bytes hash to {digest.hexdigest()[:12]}…"
        return None

    # references to missing blobs ------------------------------------------------------------------

    def check_mains(self, broken: dict[str, str]) -> None:
        unindexed = and_(Generation.blob_key.is_not(None), Blob.key.is_(None))
        no_key = and_(Generation.status == Status.COMPLETED, Generation.blob_key.is_(None))
        query = select(Generation.id, Generation.kind, Generation.status, Generation.blob_key).outerjoin(
            Blob, Blob.key == Generation.blob_key
        )
        with self.db.read() as s:
            rows = list(s.execute(query.where(or_(unindexed, no_key))).all())
            for keys in _batches(broken):
                rows += s.execute(query.where(Generation.blob_key.in_(keys))).all()
        for gen_id, kind, status, key in rows:
            why = "no blob recorded" if key is None else f"blob {key[:12]}…: {broken.get(key, 'not stored')}"
            finding = self.report.add(MISSING_MAIN, f"generation {gen_id} ({kind}, {status})", why)
            if status == Status.COMPLETED:
                finding.action = self.would("marked failed", "mark failed")
            else:
                finding.action = self.would("reference dropped", "drop the reference")
            if self.repair and not self._fail_missing(gen_id, key, why):
                finding.action = "left alone: it changed meanwhile"

    def _fail_missing(self, gen_id: int, key: str | None, why: str) -> bool:
        if key is not None and self.probe_missing(key) is None:
            return False  # stored again meanwhile (an fs put heals a lost file)
        with self.db.write() as s:
            row = s.get(Generation, gen_id)
            if row is None or row.blob_key != key:
                return False
            values: dict[str, object] = {"blob_key": None, "size_bytes": None}
            if row.status == Status.COMPLETED:
                values |= {
                    "status": Status.FAILED,
                    "error": f"the stored file is lost ({why}); found by `mediagen doctor`: "
                    "generate it again",
                    "meta": {**(row.meta or {}), "lost_blob_key": key},
                }
            cond = Generation.blob_key.is_(None) if key is None else Generation.blob_key == key
            done = self.pipeline.rows.cas(gen_id, (Status(row.status),), cond, session=s, **values)
            if done and key is not None and _indexed(s, key):
                self.store.release(s, key)
        return done

    def probe_missing(self, key: str) -> str | None:
        """`probe`, but an absent index row counts as missing too."""
        if self.store.stat(key) is None:
            return "not stored"
        return self.probe(key)

    def check_derivations(self, broken: dict[str, str]) -> dict[int, list[str]]:
        """Report (and drop) derivations whose blob is missing; returns what to re-derive."""
        query = select(Derivation.generation_id, Derivation.name, Derivation.blob_key).outerjoin(
            Blob, Blob.key == Derivation.blob_key
        )
        with self.db.read() as s:
            rows = list(s.execute(query.where(Blob.key.is_(None))).all())
            for keys in _batches(broken):
                rows += s.execute(query.where(Derivation.blob_key.in_(keys))).all()
            self.report.scanned["derivations"] = s.scalar(select(func.count()).select_from(Derivation)) or 0
        rederive: dict[int, list[str]] = defaultdict(list)
        for gen_id, name, key in rows:
            why = f"blob {key[:12]}…: {broken.get(key, 'not stored')}"
            finding = self.report.add(MISSING_DERIVATION, f"derivation {name} of generation {gen_id}", why)
            finding.action = self.would("dropped", "drop it")
            self.derivation_findings[(gen_id, name)] = finding
            if self.repair and not self._drop_derivation(gen_id, name, key):
                finding.action = "left alone: it changed meanwhile"
                continue
            rederive[gen_id].append(name)
        return rederive

    def _drop_derivation(self, gen_id: int, name: str, key: str) -> bool:
        if self.probe_missing(key) is None:
            return False
        with self.db.write() as s:
            gone = rowcount(
                s.execute(
                    delete(Derivation).where(
                        Derivation.generation_id == gen_id,
                        Derivation.name == name,
                        Derivation.blob_key == key,
                    )
                )
            )
            if gone and _indexed(s, key):
                self.store.release(s, key)
                row = s.get(Generation, gen_id)
                if row is not None and name in (row.meta or {}).get("derivations", []):
                    names = [n for n in row.meta["derivations"] if n != name]
                    row.meta = {**row.meta, "derivations": names}
        return bool(gone)

    def drop_broken(self, broken: dict[str, str]) -> None:
        """Index rows of lost bytes go once unreferenced, so the content can be stored anew."""
        for key, why in broken.items():
            finding = self.report.add(BROKEN_BLOB, f"blob {key}", why, self.would("removed", "remove it"))
            if not self.repair:
                continue
            self._recount([key])
            try:
                if self.probe(key) is None or not self.store.delete_now(key):
                    finding.action = "left alone: stored again meanwhile"
            except BlobInUseError:
                finding.action = "left alone: still referenced"

    def rederive(self, wanted: dict[int, list[str]]) -> None:
        """Make dropped derivations again from intact main files (in a dry run: say which)."""
        for gen_id, names in wanted.items():
            for name, said in self._rederive(gen_id, names).items():
                self.derivation_findings[(gen_id, name)].action += f"; {said}"

    def _rederive(self, gen_id: int, names: list[str]) -> dict[str, str]:
        row = self.pipeline.rows.get(gen_id)
        if row is None or row.status != Status.COMPLETED or row.blob_key is None:
            return dict.fromkeys(names, "cannot be re-derived: the asset has no main file")
        if self.probe_missing(row.blob_key) is not None:
            return dict.fromkeys(names, "cannot be re-derived: the main file is missing too")
        kind = row.kind
        derivable = {n: DERIVERS.get(f"{n}_{kind}") or DERIVERS.get(n) for n in names}
        if not self.repair:
            return {
                n: "would re-derive it from the main file"
                if fn
                else "cannot be re-derived: no deriver makes it"
                for n, fn in derivable.items()
            }
        main_key, size = row.blob_key, row.size_bytes or 0
        workdir = self.pipeline.ingestor.workdir(f"doctor{gen_id}-")
        outcome: dict[str, str] = {}
        try:
            path = workdir / "main"
            with path.open("wb") as fh:
                for piece in self.store.open_range(main_key, 0, max(0, size - 1)):
                    fh.write(piece)
            for name, fn in derivable.items():
                if fn is None:
                    outcome[name] = "cannot be re-derived: no deriver makes it (retry the generation)"
                    continue
                try:
                    info = self.store.put(iter([fn(path)]))
                except Exception as exc:
                    outcome[name] = f"not re-derived: {exc}"
                    continue
                outcome[name] = self._attach_derivation(gen_id, main_key, name, info.key, info.size)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        return outcome

    def _attach_derivation(self, gen_id: int, main_key: str, name: str, key: str, size: int) -> str:
        with self.db.write() as s:
            row = s.get(Generation, gen_id)
            if row is None or row.status != Status.COMPLETED or row.blob_key != main_key:
                return "not re-derived: the asset changed meanwhile"
            if s.get(Derivation, (gen_id, name)) is not None:
                return "re-made meanwhile"
            self.store.attach(s, key)
            ctype = DERIVATION_TYPES.get(name, "application/octet-stream")
            s.add(
                Derivation(generation_id=gen_id, name=name, blob_key=key, content_type=ctype, size_bytes=size)
            )
            names = sorted({*(row.meta or {}).get("derivations", []), name})
            row.meta = {**(row.meta or {}), "derivations": names}
        return "re-derived from the main file"

    # refcounts and orphans ---------------------------------------------------------------------

    def _references(self) -> Subquery:
        refs = union_all(
            select(Generation.blob_key.label("key")).where(Generation.blob_key.is_not(None)),
            select(Derivation.blob_key.label("key")),
        ).subquery()
        return select(refs.c.key, func.count().label("n")).group_by(refs.c.key).subquery()

    def check_refcounts(self) -> None:
        counts = self._references()
        true = func.coalesce(counts.c.n, 0)
        with self.db.read() as s:
            wrong = s.execute(
                select(Blob.key, Blob.refcount, true)
                .outerjoin(counts, counts.c.key == Blob.key)
                .where(_NOT_STAGING, Blob.refcount != true)
            ).all()
        for key, stored, actual in wrong:
            self.report.add(
                REFCOUNT,
                f"blob {key}",
                f"refcount {stored}, referenced {actual} time(s)",
                self.would(f"set to {actual}", f"set it to {actual}"),
            )
        if self.repair:
            for keys in _batches([row.key for row in wrong]):
                self._recount(keys)

    def _recount(self, keys: Sequence[str]) -> None:
        """Set each key's refcount to the rows referencing it, counted under the write lock."""
        with self.db.write() as s:
            stored = dict(
                s.execute(select(Blob.key, Blob.refcount).where(Blob.key.in_(keys)).with_for_update()).all()
            )
            actual = _reference_counts(s, keys)
            for key, refcount in stored.items():
                n = actual.get(key, 0)
                if n != refcount:
                    values: dict[str, object] = {"refcount": n}
                    if n == 0:
                        values["touched_at"] = utcnow()  # as `release` does: gc waits one more grace
                    s.execute(update(Blob).where(Blob.key == key).values(**values))

    def check_orphans(self) -> None:
        counts = self._references()
        now = utcnow()
        with self.db.read() as s:
            orphans = s.execute(
                select(Blob.key, Blob.size, Blob.touched_at)
                .outerjoin(counts, counts.c.key == Blob.key)
                .where(_NOT_STAGING, counts.c.n.is_(None))
            ).all()
            indexed = set(s.scalars(select(Blob.key)).all()) if isinstance(self.store, FsBlobStore) else set()
        stray: list[tuple[str, float]] = []
        if isinstance(self.store, FsBlobStore):
            stray = [(k, p.stat().st_mtime) for k, p in blob_files(self.store.root) if k not in indexed]
        if self.repair:
            self.report.gc = self.store.gc(grace_seconds=self.grace)
        for key, size, touched in orphans:
            due = touched + timedelta(seconds=self.grace)
            finding = self.report.add(
                ORPHAN_BLOB, f"blob {key}", f"{size:,} bytes, idle {age(now - touched)}"
            )
            if due > utcnow():
                finding.action = f"kept until {due:%Y-%m-%d %H:%M} UTC (gc grace)"
            elif not self.repair:
                finding.action = "would collect"
            else:
                finding.action = "collected" if self.store.stat(key) is None else "kept: in use again"
        files_due = utcnow().timestamp() - max(self.grace, MIN_STAGING_GRACE_SECONDS)
        for key, mtime in stray:
            finding = self.report.add(ORPHAN_FILE, f"file {key}", "no index row (an interrupted upload)")
            if mtime >= files_due:
                finding.action = "kept: younger than the gc grace (an upload may be finishing)"
            elif not self.repair:
                finding.action = "would remove"
            else:
                assert isinstance(self.store, FsBlobStore)
                gone = not self.store.path_for(key).exists()
                finding.action = "removed" if gone else "kept: indexed again meanwhile"


def _chunk_problem(size: int, chunk_size: int, held: tuple[int, int]) -> str | None:
    chunks, total = held
    expected = -(-size // chunk_size)
    if chunks == expected and total == size:
        return None
    if chunks == 0:
        return "its chunks are missing"
    return f"{chunks} of {expected} chunks, {total} of {size} bytes"


def _indexed(s: Session, key: str) -> bool:
    return s.execute(select(Blob.key).where(Blob.key == key)).first() is not None


def _reference_counts(s: Session, keys: Sequence[str]) -> dict[str, int]:
    found: dict[str, int] = defaultdict(int)
    for column in (Generation.blob_key, Derivation.blob_key):
        query = select(column, func.count()).where(column.in_(keys)).group_by(column)
        for key, n in s.execute(query):
            if key is not None:
                found[key] += n
    return found


def _batches(keys: Iterable[str]) -> Iterable[list[str]]:
    items = list(keys)
    for offset in range(0, len(items), _BATCH):
        yield items[offset : offset + _BATCH]

"""The job steps every generation goes through, whatever its kind or engine.

submit → (inline engines) ingest → completed
submit → (remote engines) provider ref → webhook or poll → apply_state → ingest → completed

Each step re-reads the row and changes it only with a compare-and-set on its status, so a task that
runs twice, late, or after a crash does no harm; bytes are content-addressed, so a repeated ingest
stores nothing twice. `reconcile` is the heartbeat that re-dispatches anything whose lease ran out.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import and_, or_, select, update

from mediagen.catalog.registry import Catalog
from mediagen.config import Settings
from mediagen.db.base import utcnow
from mediagen.db.session import Database
from mediagen.engines.base import (
    Engine,
    EngineError,
    Finished,
    InputError,
    Job,
    OutputFile,
    State,
    Submitted,
)
from mediagen.engines.downloads import DownloadError
from mediagen.generations.kinds import DERIVATION_TYPES, KINDS
from mediagen.generations.state import (
    PROVIDER_RANK,
    PROVIDER_TERMINAL,
    provider_advances,
    status_for_provider,
)
from mediagen.generations.tables import Derivation, Generation
from mediagen.media import thumbnails, waveform
from mediagen.media.probe import MediaError, probe
from mediagen.storage.base import BlobStore

log = logging.getLogger("mediagen.pipeline")

DATA_URL_INLINE_LIMIT = 256 * 1024  # Replicate's advice: data URLs only for small files
DERIVERS: dict[str, Callable[[Path], bytes]] = {
    "waveform": lambda path: json.dumps(waveform.waveform_peaks(path), separators=(",", ":")).encode(),
    "thumbnail_image": thumbnails.image_thumbnail,
    "thumbnail_video": thumbnails.video_thumbnail,
    "poster": thumbnails.video_poster,
}


class IngestError(Exception):
    """The output could not be fetched or is not usable media; `final` means retrying cannot help."""

    def __init__(self, message: str, *, final: bool = True) -> None:
        super().__init__(message)
        self.final = final


@dataclass(frozen=True)
class Dispatch:
    """How the pipeline asks the queue to run a step later (set by the job wiring)."""

    submit: Callable[[int, float], None]
    refresh: Callable[[int, float], None]
    ingest: Callable[[int, float], None]


def _noop(_gid: int, _delay: float = 0.0) -> None:
    return None


class Pipeline:
    def __init__(
        self,
        *,
        settings: Settings,
        database: Database,
        store: BlobStore,
        engines: Mapping[str, Engine],
        download: Callable[..., Any],
        webhook_url_for: Callable[[Generation], str | None],
        catalog: Catalog,
    ) -> None:
        self.catalog = catalog
        self.settings = settings
        self.db = database
        self.store = store
        self.engines = engines
        self.download = download
        self.webhook_url_for = webhook_url_for
        self.dispatch = Dispatch(_noop, _noop, _noop)
        self.workroot = settings.data_dir / "work"

    # helpers ----------------------------------------------------------------
    def _row(self, gen_id: int) -> Generation | None:
        with self.db.read() as s:
            return s.get(Generation, gen_id)

    def _lease(self, seconds: float | None = None) -> datetime:
        return utcnow() + timedelta(seconds=seconds or self.settings.lease_seconds)

    def _cas(self, gen_id: int, from_status: tuple[str, ...], **values: Any) -> bool:
        with self.db.write() as s:
            n = s.execute(
                update(Generation)
                .where(Generation.id == gen_id, Generation.status.in_(from_status))
                .values(updated_at=utcnow(), **values)
            ).rowcount
        return bool(n)

    def fail(self, gen_id: int, error: str, **values: Any) -> bool:
        ok = self._cas(
            gen_id,
            ("pending", "processing"),
            status="failed",
            error=error,
            completed_at=utcnow(),
            lease_until=None,
            next_poll_at=None,
            **values,
        )
        if ok:
            log.info("generation %s failed: %s", gen_id, error)
        return ok

    def _poll_delay(self, row: Generation) -> float:
        age = (utcnow() - row.created_at).total_seconds()
        base = 2.0 if age < 30 else 5.0 if age < 300 else 15.0
        # With webhooks on, polling is only the safety net for a lost delivery.
        return base * 5 if self.settings.public_url and row.engine == "replicate" else base

    # submit -----------------------------------------------------------------
    def submit(self, gen_id: int, *, inline: bool = False) -> None:
        """Claim and run one submission. `inline` (the API's request thread, for remote engines)
        re-raises what the caller must answer with: the provider's input errors and hard refusals."""
        now = utcnow()
        with self.db.write() as s:
            claimed = s.execute(
                update(Generation)
                .where(
                    Generation.id == gen_id,
                    Generation.provider_ref.is_(None),
                    or_(
                        Generation.status == "pending",
                        and_(Generation.status == "processing", Generation.lease_until < now),
                    ),
                )
                .values(
                    status="processing",
                    attempts=Generation.attempts + 1,
                    lease_until=self._lease(),
                    updated_at=now,
                )
            ).rowcount
            row = s.get(Generation, gen_id) if claimed else None
        if row is None:
            return  # someone else has it, or it already moved on
        if row.attempts > self.settings.max_attempts:
            self.fail(gen_id, f"gave up after {row.attempts - 1} attempts: {row.error or 'no result'}")
            return
        engine = self.engines.get(row.engine)
        if engine is None:
            self.fail(gen_id, f"engine {row.engine!r} is not configured on this server")
            return
        workdir = Path(tempfile.mkdtemp(prefix=f"gen{gen_id}-", dir=self._workroot()))
        try:
            inputs = self._materialize_media(row, engine, workdir)
            job = Job(
                generation_id=row.id,
                kind=row.kind,
                model_id=row.model_id,  # type: ignore[arg-type]
                inputs=inputs,
                workdir=workdir,
                webhook_url=self.webhook_url_for(row),
                attempt=row.attempts,
            )
            result = self._recover(engine, job, row) or engine.submit(job)
            if isinstance(result, Finished):
                files = {o.role: (o.path, o.content_type) for o in result.outputs if o.path is not None}
                self._complete(row, files, metadata=result.metadata, cost=result.cost_usd)
            else:
                # A create can answer with a finished prediction (sync mode, or one adopted after an
                # ambiguous create). Its outputs are not in a Submitted, so record it as running and
                # poll at once: apply_state then sees the terminal state with its outputs.
                finished = result.provider_status in PROVIDER_TERMINAL
                with self.db.write() as s:
                    s.execute(
                        update(Generation)
                        .where(Generation.id == gen_id, Generation.status == "processing")
                        .values(
                            provider_ref=result.ref,
                            provider_status="processing" if finished else result.provider_status,
                            provider_input=result.provider_input,
                            lease_until=self._lease(),
                            next_poll_at=utcnow() + timedelta(seconds=self._poll_delay(row)),
                            updated_at=utcnow(),
                        )
                    )
                if finished:
                    self.dispatch.refresh(gen_id, 0)
        except InputError as exc:
            if inline:
                raise
            self.fail(gen_id, f"the model rejected an input: {exc}")
        except EngineError as exc:
            if exc.retryable and row.attempts < self.settings.max_attempts:
                delay = min(60.0, 2.0**row.attempts)
                self._cas(
                    gen_id, ("processing",), status="pending", error=str(exc), lease_until=self._lease()
                )
                self.dispatch.submit(gen_id, delay)
            else:
                self.fail(gen_id, str(exc))
                if inline:
                    raise
        except IngestError as exc:
            self.fail(gen_id, str(exc), download_error=str(exc))
        except Exception as exc:  # a bug in an engine must not leave the row stuck
            log.exception("generation %s: engine %s crashed", gen_id, row.engine)
            self.fail(gen_id, f"{row.engine} engine error: {exc}")
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    @staticmethod
    def _recover(engine: Engine, job: Job, row: Generation) -> Submitted | None:
        """After a crash between a provider's create and our commit, adopt the prediction that was
        made rather than start a second one (engines that can look it up say so)."""
        find = getattr(engine, "find_existing", None)
        if row.attempts <= 1 or find is None or not job.webhook_url:
            return None
        found = find(job, since=row.created_at)
        if not found or not found.get("id"):
            return None
        log.info("generation %s: adopting existing prediction %s", row.id, found["id"])
        return Submitted(
            ref=str(found["id"]),
            provider_status=str(found.get("status") or "starting"),
            provider_input=dict(job.inputs),
        )

    def _workroot(self) -> Path:
        self.workroot.mkdir(parents=True, exist_ok=True)
        return self.workroot

    def _materialize_media(self, row: Generation, engine: Engine, workdir: Path) -> dict[str, Any]:
        """Turn asset ids in the inputs into what the engine can read: a file path for inline
        engines, a data: URL (small) or an uploaded file URL (large) for remote ones."""
        inputs = dict(row.parameters)
        entry = self.catalog.get(row.model_id)
        media_names = entry.media_inputs if entry else {}
        for name, media_kind in media_names.items():
            value = inputs.get(name)
            if isinstance(value, str) and engine.name == "synth":
                # Inline engines read files; fetch a URL through the same guarded downloader.
                cap = getattr(self.settings, f"max_download_bytes_{media_kind}")
                try:
                    res = self.download(
                        value,
                        workdir / f"{name}.input",
                        max_bytes=cap,
                        allowed=self.settings.download_allowed_hosts,
                    )
                except DownloadError as exc:
                    raise EngineError(f"{name}: could not fetch {value[:80]}: {exc}") from exc
                inputs[name] = str(res.path)
                continue
            if not isinstance(value, int) or isinstance(value, bool):
                continue
            src = self._row(value)
            if src is None or src.blob_key is None:
                raise EngineError(f"{name}: asset {value} is gone", retryable=False)
            ext = (src.content_type or "application/octet-stream").split("/")[-1].split(";")[0]
            path = workdir / f"{name}.{ext}"
            with path.open("wb") as fh:
                for chunk in self.store.open_range(src.blob_key, 0, max(0, (src.size_bytes or 1) - 1)):
                    fh.write(chunk)
            if engine.name == "synth":
                inputs[name] = str(path)
            elif hasattr(engine, "upload_file") and path.stat().st_size > DATA_URL_INLINE_LIMIT:
                inputs[name] = engine.upload_file(path, src.content_type)
            else:
                data = base64.b64encode(path.read_bytes()).decode()
                inputs[name] = f"data:{src.content_type};base64,{data}"
        return inputs

    # provider state ---------------------------------------------------------
    def refresh(self, gen_id: int) -> None:
        row = self._row(gen_id)
        if row is None or row.status != "processing" or row.provider_ref is None:
            return
        if row.provider_status == "succeeded":
            self.dispatch.ingest(gen_id, 0)
            return
        engine = self.engines.get(row.engine)
        if engine is None:
            self.fail(gen_id, f"engine {row.engine!r} is not configured on this server")
            return
        try:
            state = engine.refresh(row.provider_ref)
        except EngineError as exc:
            attempts = row.attempts + 1
            if not exc.retryable or attempts > self.settings.max_attempts:
                self.fail(gen_id, str(exc))
            else:
                self._cas(
                    gen_id,
                    ("processing",),
                    attempts=attempts,
                    error=str(exc),
                    next_poll_at=utcnow() + timedelta(seconds=min(60.0, 2.0**attempts)),
                )
            return
        self.apply_state(gen_id, state)

    def apply_state(self, gen_id: int, state: State) -> bool:
        """Apply what a provider says (webhook or poll); returns whether it was news."""
        row = self._row(gen_id)
        if row is None or row.status not in ("pending", "processing"):
            return False
        if not provider_advances(row.provider_status, state.status):
            if state.status in ("starting", "processing"):
                self._cas(
                    gen_id,
                    ("processing",),
                    lease_until=self._lease(),
                    next_poll_at=utcnow() + timedelta(seconds=self._poll_delay(row)),
                )
            return False
        if state.status == "succeeded":
            if state.data_removed or not state.outputs:
                return self.fail(
                    gen_id,
                    "the provider deleted the output before it was downloaded"
                    if state.data_removed
                    else "the model finished without an output",
                    provider_status="succeeded",
                    download_error="data_removed" if state.data_removed else None,
                )
            outputs = [self._stash_inline(o) for o in state.outputs]
            main = next((o for o in outputs if o.role == "main"), outputs[0])
            meta = dict(row.meta)
            meta["outputs"] = [
                {"role": o.role, "url": o.url, "content_type": o.content_type} for o in outputs
            ]
            if state.metrics:
                meta["provider_metrics"] = state.metrics
            with self.db.write() as s:
                n = s.execute(
                    update(Generation)
                    .where(
                        Generation.id == gen_id,
                        Generation.status.in_(("pending", "processing")),
                        or_(
                            Generation.provider_status.is_(None),
                            Generation.provider_status.notin_(tuple(PROVIDER_TERMINAL)),
                        ),
                    )
                    .values(
                        status="processing",
                        provider_status="succeeded",
                        output_url=main.url,
                        meta=meta,
                        lease_until=self._lease(),
                        next_poll_at=None,
                        updated_at=utcnow(),
                    )
                ).rowcount
            if n:
                self.dispatch.ingest(gen_id, 0)
            return bool(n)
        if state.status in ("failed", "canceled", "aborted"):
            new_status = status_for_provider(state.status)
            error = (
                state.error
                or {
                    "failed": "the model failed without an error message",
                    "canceled": "canceled at the provider",
                    "aborted": "aborted: the provider's deadline passed before the prediction started",
                }[state.status]
            )
            return self._cas_provider(
                gen_id,
                state.status,
                status=new_status,
                error=error,
                provider_status=state.status,
                completed_at=utcnow(),
                lease_until=None,
                next_poll_at=None,
            )
        return self._cas_provider(
            gen_id,
            state.status,
            status="processing",
            provider_status=state.status,
            lease_until=self._lease(),
            next_poll_at=utcnow() + timedelta(seconds=self._poll_delay(row)),
        )

    def _cas_provider(self, gen_id: int, new: str, **values: Any) -> bool:
        """Set provider state only if the row still holds an earlier one: a "start" webhook handled
        concurrently with "completed" (they arrive together) must not overwrite "succeeded"."""
        earlier = [
            name
            for name, rank in PROVIDER_RANK.items()
            if name is not None and rank < PROVIDER_RANK.get(new, -1)
        ]
        with self.db.write() as s:
            n = s.execute(
                update(Generation)
                .where(
                    Generation.id == gen_id,
                    Generation.status.in_(("pending", "processing")),
                    or_(Generation.provider_status.is_(None), Generation.provider_status.in_(earlier)),
                )
                .values(updated_at=utcnow(), **values)
            ).rowcount
        return bool(n)

    def _stash_inline(self, output: OutputFile) -> OutputFile:
        """data: URLs go into the blob store now, so rows never carry megabytes of base64."""
        if not output.url or not output.url.startswith("data:"):
            return output
        with tempfile.TemporaryDirectory(dir=self._workroot()) as tmp:
            res = self.download(
                output.url,
                Path(tmp) / "out",
                max_bytes=self.settings.max_download_bytes_video,
                allowed=self.settings.download_allowed_hosts,
            )
            with open(res.path, "rb") as fh:
                info = self.store.put(fh)
        return OutputFile(role=output.role, url=f"blob:{info.key}", content_type=res.content_type)

    # ingest -----------------------------------------------------------------
    def ingest(self, gen_id: int) -> None:
        row = self._row(gen_id)
        if row is None or row.status != "processing" or row.provider_status != "succeeded":
            return
        outputs = row.meta.get("outputs") or []
        cap = getattr(self.settings, f"max_download_bytes_{row.kind}")
        workdir = Path(tempfile.mkdtemp(prefix=f"ingest{gen_id}-", dir=self._workroot()))
        try:
            files: dict[str, tuple[Path, str | None]] = {}
            for i, out in enumerate(outputs):
                dest = workdir / f"{i}-{out['role']}"
                files[out["role"]] = (self._fetch(row, out["url"], dest, cap), out.get("content_type"))
            self._complete(row, files, metadata={}, cost=row.cost_usd)
        except IngestError as exc:
            fresh = self._row(gen_id)
            if fresh and not exc.final and fresh.download_retries < self.settings.max_attempts:
                self._cas(gen_id, ("processing",), download_error=str(exc), lease_until=self._lease())
                self.dispatch.ingest(gen_id, min(60.0, 2.0 ** (fresh.download_retries + 1)))
            else:
                self.fail(gen_id, f"could not store the output: {exc}", download_error=str(exc))
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def ingest_file(self, row: Generation, path: Path) -> None:
        """Complete `row` from a local file (uploads): same probe, derivations and storage."""
        self._complete(row, {"main": (path, None)}, metadata={}, cost=0.0)
        fresh = self._row(row.id)
        if fresh is None or fresh.status != "completed":
            raise IngestError("the file could not be stored")

    def _fetch(self, row: Generation, url: str, dest: Path, cap: int) -> Path:
        if url.startswith("blob:"):
            key = url[5:]
            info = self.store.stat(key)
            if info is None:
                raise IngestError("staged output is gone")
            with dest.open("wb") as fh:
                for chunk in self.store.open_range(key, 0, max(0, info.size - 1)):
                    fh.write(chunk)
            return dest
        self._cas(row.id, ("processing",), download_attempted=True)

        def on_retry(attempt: int, reason: str) -> None:
            self._cas(
                row.id,
                ("processing",),
                download_retries=Generation.download_retries + 1,
                download_error=reason,
            )

        try:
            res = self.download(
                url, dest, max_bytes=cap, allowed=self.settings.download_allowed_hosts, on_retry=on_retry
            )
        except DownloadError as exc:
            raise IngestError(str(exc), final=exc.expired or not exc.retryable) from exc
        return Path(res.path)

    def _complete(
        self,
        row: Generation,
        files: Mapping[str, tuple[Path | None, str | None]],
        *,
        metadata: Mapping[str, Any],
        cost: float,
    ) -> None:
        """Probe, derive, store, then flip to completed in one transaction with the blob refs."""
        if "main" not in files or files["main"][0] is None:
            raise IngestError("the model returned no main output")
        main_path = Path(files["main"][0])  # type: ignore[arg-type]
        if main_path.stat().st_size == 0:
            raise IngestError("the output file is empty")
        try:
            info = probe(main_path)
        except MediaError as exc:
            raise IngestError(f"the output is not playable media: {exc}") from exc
        if info.kind != row.kind and not (row.kind == "audio" and info.kind == "video" and info.duration):
            raise IngestError(f"expected {row.kind} but the output is {info.kind}")
        derived: dict[str, tuple[bytes, str]] = {}
        for name in KINDS[row.kind].derivations:
            fn = DERIVERS.get(f"{name}_{row.kind}") or DERIVERS[name]
            try:
                derived[name] = (fn(main_path), DERIVATION_TYPES[name])
            except Exception as exc:  # a derivation must not lose the asset itself
                log.warning("generation %s: %s derivation failed: %s", row.id, name, exc)
        extra: dict[str, tuple[Path, str]] = {}
        for role, (path, ctype) in files.items():
            if role != "main" and path is not None:
                extra[role] = (Path(path), ctype or _sniff(Path(path)))
        with main_path.open("rb") as fh:
            main_blob = self.store.put(fh)
        blobs: dict[str, tuple[str, int, str]] = {}
        for name, (data, ctype) in derived.items():
            b = self.store.put(iter([data]))
            blobs[name] = (b.key, b.size, ctype)
        for role, (path, ctype) in extra.items():
            with path.open("rb") as fh:
                b = self.store.put(fh)
            blobs[role] = (b.key, b.size, ctype)
        meta = dict(row.meta)
        meta.update(metadata)
        meta["media"] = {k: v for k, v in dataclasses.asdict(info).items() if v is not None}
        meta["derivations"] = sorted(blobs)  # lets a gallery page name them without another query
        now = utcnow()
        with self.db.write() as s:
            n = s.execute(
                update(Generation)
                .where(Generation.id == row.id, Generation.status == "processing")
                .values(
                    status="completed",
                    blob_key=main_blob.key,
                    size_bytes=main_blob.size,
                    content_type=info.content_type,
                    duration=info.duration,
                    width=info.width,
                    height=info.height,
                    meta=meta,
                    cost_usd=cost,
                    error=None,
                    download_error=None,
                    completed_at=now,
                    updated_at=now,
                    lease_until=None,
                    next_poll_at=None,
                )
            ).rowcount
            if not n:
                return  # another run finished first (or it was canceled); our blobs get collected
            self.store.attach(s, main_blob.key)
            for name, (key, size, ctype) in blobs.items():
                self.store.attach(s, key)
                s.add(
                    Derivation(
                        generation_id=row.id, name=name, blob_key=key, content_type=ctype, size_bytes=size
                    )
                )
        log.info("generation %s completed (%s, %s bytes)", row.id, info.content_type, main_blob.size)

    # heartbeat --------------------------------------------------------------
    def collect_garbage(self) -> None:
        """Bytes nobody references (a lost race, a crash between put and commit) go after a grace
        period; done here, on the heartbeat, never inline with a delete."""
        report = self.store.gc(grace_seconds=3600)
        log.debug("blob gc: %s", report)

    def reconcile(self, *, limit: int = 500) -> int:
        """Re-dispatch whatever lost its worker or is due a poll; fail what ran out of chances."""
        now = utcnow()
        count = 0
        max_age = timedelta(seconds=self.settings.max_run_seconds)
        with self.db.read() as s:
            expired = s.execute(
                select(
                    Generation.id,
                    Generation.status,
                    Generation.provider_ref,
                    Generation.provider_status,
                    Generation.attempts,
                    Generation.created_at,
                )
                .where(Generation.status.in_(("pending", "processing")), Generation.lease_until < now)
                .limit(limit)
            ).all()
            due = s.scalars(
                select(Generation.id)
                .where(Generation.status == "processing", Generation.next_poll_at <= now)
                .limit(limit)
            ).all()
        for r in expired:
            count += 1
            if now - r.created_at > max_age:
                self.fail(r.id, f"no result within {self.settings.max_run_seconds} s; giving up")
            elif r.provider_ref is None:
                if r.attempts >= self.settings.max_attempts and r.status == "processing":
                    self.fail(
                        r.id, f"gave up after {r.attempts} attempts: the worker stopped (lease expired)"
                    )
                else:
                    # Its worker is gone: back in the queue, with a fresh lease for the next claimant.
                    with self.db.write() as s:
                        n = s.execute(
                            update(Generation)
                            .where(
                                Generation.id == r.id,
                                Generation.status.in_(("pending", "processing")),
                                Generation.provider_ref.is_(None),
                                Generation.lease_until < now,
                            )
                            .values(status="pending", lease_until=self._lease(), updated_at=utcnow())
                        ).rowcount
                    if n:
                        self.dispatch.submit(r.id, 0)
            elif r.provider_status == "succeeded":
                self._cas(r.id, ("processing",), lease_until=self._lease())
                self.dispatch.ingest(r.id, 0)
            else:
                self._cas(r.id, ("processing",), lease_until=self._lease())
                self.dispatch.refresh(r.id, 0)
        for gid in due:
            if self._cas(gid, ("processing",), next_poll_at=now + timedelta(seconds=30)):
                count += 1
                self.dispatch.refresh(gid, 0)
        return count


def _sniff(path: Path) -> str:
    try:
        return probe(path).content_type
    except MediaError:
        return "application/octet-stream"

"""Ingest: fetch a finished job's outputs, probe them, make the derivations, store the bytes and
flip the row to completed in the same transaction that references them.

Bytes are content-addressed, so an ingest that runs twice stores nothing twice; a lost race
leaves unreferenced blobs that the heartbeat's garbage collection removes.

An ingest is three stages with their own bounds: fetching (network and disk, one per queue
worker), analysing (probe, derivations, loudness: CPU, at most one file per core at a time, so a
burst of webhooks neither starves the request threads nor holds more decoded audio in memory
than the cores can use), and storing (bytes, then one transaction that completes the row). An
audio file is decoded once for its waveform and its loudness.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from mediagen.db.base import utcnow
from mediagen.engines.base import OutputFile
from mediagen.engines.downloads import DownloadError
from mediagen.errors import MediagenError
from mediagen.generations.context import CoreContext
from mediagen.generations.costs import hosted_cost, inline_cost
from mediagen.generations.events import EventType, record_event
from mediagen.generations.ports import Step
from mediagen.generations.tables import Derivation, Generation
from mediagen.loudness import Measurement
from mediagen.media import thumbnails, waveform
from mediagen.media.errors import MediaError
from mediagen.media.metering import MeterTap, measure_loudness
from mediagen.media.probe import MediaInfo, probe
from mediagen.storage.base import BlobInfo, BlobStoreError
from mediagen.vocabulary import DERIVATION_TYPES, KINDS, Kind, ProviderStatus, Status

log = logging.getLogger("mediagen.pipeline")

# Derivations made once at ingest, by name (`<name>_<kind>` wins where a kind needs its own).
DERIVERS: dict[str, Callable[[Path], bytes]] = {
    "waveform": lambda path: _waveform_json(path),
    "thumbnail_image": thumbnails.image_thumbnail,
    "thumbnail_video": thumbnails.video_thumbnail,
    "poster": thumbnails.video_poster,
}


class IngestError(MediagenError):
    """The output could not be fetched or is not usable media; `final` means retrying cannot help."""

    def __init__(self, message: str, *, final: bool = True) -> None:
        super().__init__(message)
        self.final = final


class StorageFailure(IngestError):
    """The blob store could not take the bytes (disk full, read-only, unreachable): not the
    output's fault, and worth another try later."""

    def __init__(self, message: str) -> None:
        super().__init__(message, final=False)


Files = Mapping[str, tuple[Path | None, str | None]]  # role -> (local file, content type if known)


def _cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


class Ingestor:
    def __init__(self, ctx: CoreContext) -> None:
        self.ctx = ctx
        self.settings, self.db, self.rows, self.store = ctx.settings, ctx.db, ctx.rows, ctx.store
        # The analysing stage's bound: more files at once than cores only adds threads contending
        # for the same cores (and the GIL), each holding its decoded audio.
        self._analysing = threading.BoundedSemaphore(_cores())

    def workdir(self, prefix: str) -> Path:
        """A private scratch directory under the data dir (same filesystem as fs blobs)."""
        self.ctx.workroot.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=prefix, dir=self.ctx.workroot))

    def ingest(self, gen_id: int) -> None:
        """The ingest step: outputs a remote engine pointed at become the asset."""
        row = self.rows.get(gen_id)
        if row is None or row.status != Status.PROCESSING or row.provider_status != ProviderStatus.SUCCEEDED:
            return
        outputs = row.meta.get("outputs") or []
        # This worker holds it now (a webhook handler in another process leased it); the same
        # statement notes that the provider's files are about to be downloaded.
        held: dict[str, Any] = {"lease_until": self.rows.lease(), "lease_owner": self.ctx.workers.process_id}
        if any(not out["url"].startswith("blob:") for out in outputs):
            held["download_attempted"] = True
        self.rows.cas(gen_id, (Status.PROCESSING,), **held)
        cap = self.settings.max_download_bytes(row.kind)
        workdir = self.workdir(f"ingest{gen_id}-")
        try:
            files: dict[str, tuple[Path | None, str | None]] = {}
            for i, out in enumerate(outputs):
                dest = workdir / f"{i}-{out['role']}"
                files[out["role"]] = (self._fetch(row, out["url"], dest, cap), out.get("content_type"))
            self.complete(row, files, metadata={}, cost=row.cost_usd)
        except IngestError as exc:
            fresh = self.rows.get(gen_id)
            if fresh and not exc.final and fresh.download_retries < self.settings.max_attempts:
                self.rows.cas(
                    gen_id, (Status.PROCESSING,), download_error=str(exc), lease_until=self.rows.lease()
                )
                self.ctx.queue.dispatch(Step.INGEST, gen_id, min(60.0, 2.0 ** (fresh.download_retries + 1)))
            else:
                self.rows.fail(gen_id, f"could not store the output: {exc}", download_error=str(exc))
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def stash_inline(self, output: OutputFile) -> OutputFile:
        """data: URLs go into the blob store now, so rows never carry megabytes of base64."""
        if not output.url or not output.url.startswith("data:"):
            return output
        workdir = self.workdir("stash-")
        try:
            res = self.ctx.download(
                output.url,
                workdir / "out",
                max_bytes=self.settings.max_download_bytes(Kind.VIDEO),
                allowed=self.settings.download_allowed_hosts,
            )
            with open(res.path, "rb") as fh:
                info = self.store.put(fh)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        return OutputFile(role=output.role, url=f"blob:{info.key}", content_type=res.content_type)

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

        def on_retry(attempt: int, reason: str) -> None:
            self.rows.cas(
                row.id,
                (Status.PROCESSING,),
                download_retries=Generation.download_retries + 1,
                download_error=reason,
            )

        try:
            res = self.ctx.download(
                url, dest, max_bytes=cap, allowed=self.settings.download_allowed_hosts, on_retry=on_retry
            )
        except DownloadError as exc:
            raise IngestError(str(exc), final=exc.expired or not exc.retryable) from exc
        return Path(res.path)

    def _put(self, source: Any) -> BlobInfo:
        try:
            return self.store.put(source)
        except (OSError, BlobStoreError) as exc:
            # Say what failed without the server's paths; trying later may help (disk freed).
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
            raise StorageFailure(f"storage: could not write the bytes ({reason})") from exc

    def prepare(self, kind: str, files: Files, *, label: object) -> Stored:
        """Probe, derive and store a finished job's files; the row is not touched yet."""
        main_path = files["main"][0] if "main" in files else None
        if main_path is None:
            raise IngestError("the model returned no main output")
        if main_path.stat().st_size == 0:
            raise IngestError("the output file is empty")
        with self._analysing:
            info, derived, loudness = _analyse(kind, main_path, label)
        with main_path.open("rb") as fh:
            main_blob = self._put(fh)
        blobs: dict[str, tuple[str, int, str]] = {}
        for name, (data, ctype) in derived.items():
            b = self._put(iter([data]))
            blobs[name] = (b.key, b.size, ctype)
        for role, (path, given_type) in files.items():
            if role == "main" or path is None:
                continue
            with path.open("rb") as fh:
                b = self._put(fh)
            blobs[role] = (b.key, b.size, given_type or _sniff(path))
        return Stored(main_blob, info, blobs, loudness)

    def _record(self, s: Session, gen_id: int, stored: Stored) -> None:
        """Reference the stored bytes from the row, in the caller's transaction."""
        self.store.attach(s, stored.main.key)
        for name, (key, size, ctype) in stored.derivations.items():
            self.store.attach(s, key)
            s.add(
                Derivation(generation_id=gen_id, name=name, blob_key=key, content_type=ctype, size_bytes=size)
            )

    def complete(self, row: Generation, files: Files, *, metadata: Mapping[str, Any], cost: float) -> None:
        """Probe, derive, store, then flip to completed in one transaction with the blob refs.

        `cost` is what an inline engine reports its run cost (its actual cost; the estimate stays
        in `cost_usd`), and its compute time is the wall time since the claim (`row` is the row as
        claimed). A remote prediction's figures were recorded when the provider said it finished."""
        figures: dict[str, Any]
        engine = self.ctx.router.engine(row.engine)
        metrics = metadata.get("metrics")
        if engine is not None and engine.capabilities.inline:
            figures = inline_cost(row.updated_at, cost)
        elif isinstance(metrics, Mapping):  # a remote engine that answered at once (Cog's sync mode)
            figures = hosted_cost(self.ctx.catalog, row, metrics)
        else:
            figures = {}
        stored = self.prepare(row.kind, files, label=row.id)
        meta = {**row.meta, **metadata, **stored.meta()}
        with self.db.write() as s:
            completed = self.rows.finish(
                row.id,
                Status.COMPLETED,
                Generation.status == Status.PROCESSING,
                session=s,
                meta=meta,
                error=None,
                download_error=None,
                event_data=stored.event(row.kind, row.id),
                **stored.columns(),
                **figures,
            )
            if not completed:
                return  # another run finished first (or it was canceled); our blobs get collected
            self._record(s, row.id, stored)
        log.info("generation %s completed (%s, %s bytes)", row.id, stored.info.content_type, stored.main.size)

    def add_completed(self, row: Generation, path: Path) -> Generation:
        """Store a file the user brought and insert `row` (not yet saved) already completed, in the
        transaction that references its bytes: a failure at any point leaves no row behind."""
        stored = self.prepare(row.kind, {"main": (path, None)}, label="upload")
        now = utcnow()
        with self.db.write() as s:
            for name, value in stored.columns().items():
                setattr(row, name, value)
            row.status, row.completed_at, row.updated_at = Status.COMPLETED, now, now
            row.meta = {**row.meta, **stored.meta()}
            s.add(row)
            s.flush()
            self._record(s, row.id, stored)
            # The upload's only event: it is created already completed.
            record_event(s, row.id, EventType.CREATED, stored.event(row.kind, row.id))
        return row


def _analyse(
    kind: str, main_path: Path, label: object
) -> tuple[MediaInfo, dict[str, tuple[bytes, str]], Measurement | None]:
    """What the file is, its derivations and its loudness: the CPU-bound part of an ingest."""
    try:
        info = probe(main_path)
    except MediaError as exc:
        raise IngestError(f"the output is not playable media: {exc}") from exc
    # An audio model may answer with a video container that carries the sound (kept as is).
    sound_in_video = kind == Kind.AUDIO and info.kind == "video" and bool(info.duration)
    if info.kind != kind and not sound_in_video:
        raise IngestError(f"expected {kind} but the output is {info.kind}")
    measured = kind in (Kind.AUDIO, Kind.VIDEO)
    tap = MeterTap() if measured else None
    metered = False  # the waveform's decode pass fed the meter to the end
    derived: dict[str, tuple[bytes, str]] = {}
    for name in KINDS[Kind(kind)].derivations:
        rides_along = name == "waveform" and tap is not None  # one decode for both
        fn = (
            functools.partial(_waveform_json, tap=tap)
            if rides_along
            else DERIVERS.get(f"{name}_{kind}") or DERIVERS[name]
        )
        try:
            derived[name] = (fn(main_path), DERIVATION_TYPES[name])
            metered = metered or rides_along
        except Exception as exc:  # a derivation must not lose the asset itself
            log.warning("generation %s: %s derivation failed: %s", label, name, exc)
    loudness = None
    if measured:
        try:
            loudness = tap.result() if tap is not None and metered else measure_loudness(main_path)
        except Exception as exc:  # a meter failure must not lose the asset itself
            log.warning("generation %s: loudness could not be measured: %s", label, exc)
    return info, derived, loudness


def _waveform_json(path: Path, *, tap: MeterTap | None = None) -> bytes:
    return json.dumps(waveform.waveform_peaks(path, tap=tap), separators=(",", ":")).encode()


@dataclass(frozen=True)
class Stored:
    """A job's files in the blob store, not yet referenced by any row."""

    main: BlobInfo
    info: MediaInfo
    derivations: dict[str, tuple[str, int, str]]  # name -> (blob key, size, content type)
    loudness: Measurement | None = None  # audio and video with sound

    def columns(self) -> dict[str, Any]:
        """The row's columns that describe the asset's bytes."""
        info, loud = self.info, self.loudness
        return {
            "blob_key": self.main.key,
            "size_bytes": self.main.size,
            "content_type": info.content_type,
            "duration": info.duration,
            "width": info.width,
            "height": info.height,
            "loudness_lufs": loud.integrated_lufs if loud else None,
            "true_peak_dbtp": loud.true_peak_dbtp if loud else None,
            "loudness_range": loud.lra if loud else None,
        }

    def event(self, kind: str, gen_id: int) -> dict[str, Any]:
        """What a live page or the CLI needs of a finished asset without another request."""
        base = f"/api/{KINDS[Kind(kind)].path}/{gen_id}"
        columns = self.columns()
        return {
            **{k: columns[k] for k in ("duration", "width", "height", "content_type", "size_bytes")},
            "data_url": f"{base}/data",
            "thumbnail_url": f"{base}/thumbnail" if "thumbnail" in self.derivations else None,
            "waveform_url": f"{base}/waveform" if "waveform" in self.derivations else None,
            "progress_note": None,
        }

    def meta(self) -> dict[str, Any]:
        media = {k: v for k, v in dataclasses.asdict(self.info).items() if v is not None}
        # `derivations` lets a gallery page name them without another query.
        return {"media": media, "derivations": sorted(self.derivations)}


def _sniff(path: Path) -> str:
    try:
        return probe(path).content_type
    except MediaError:
        return "application/octet-stream"

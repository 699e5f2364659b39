"""The huey queue: built from settings, tasks bound to a Pipeline, and the worker host.

The queue only dispatches; the generations row decides what happens (see generations/pipeline.py).
Tasks carry nothing but a generation id, so a duplicate or stale task is harmless.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlparse

from huey import Huey, PostgresHuey, RedisHuey, SqliteHuey
from huey.consumer import Consumer

from mediagen.config import Settings
from mediagen.generations.pipeline import Dispatch, Pipeline

log = logging.getLogger("mediagen.jobs")
GC_INTERVAL_SECONDS = 600


def make_huey(settings: Settings) -> Huey:
    url = settings.queue_url
    if not url:
        settings.ensure_dirs()
        return SqliteHuey("mediagen", filename=str(settings.data_dir / "queue.db"), results=False, timeout=60)
    scheme = urlparse(url).scheme
    if scheme in ("redis", "rediss"):
        return RedisHuey("mediagen", url=url, results=False)
    if scheme.startswith("postgres"):
        dsn = url.replace("postgresql+psycopg://", "postgresql://")
        return PostgresHuey("mediagen", dsn=dsn, results=False)
    if scheme == "sqlite":
        return SqliteHuey("mediagen", filename=url.split("///", 1)[-1], results=False, timeout=60)
    raise ValueError(f"MEDIAGEN_QUEUE_URL: unsupported scheme {scheme!r} (use sqlite, redis or postgresql)")


@dataclass
class Queue:
    huey: Huey
    submit: Callable[[int, float], None]
    refresh: Callable[[int, float], None]
    ingest: Callable[[int, float], None]


def bind_tasks(huey: Huey, pipeline: Pipeline) -> Queue:
    """Register the three tasks on `huey` and point the pipeline's dispatch at them."""

    @huey.task(name="mediagen.submit")
    def submit_task(gen_id: int) -> None:
        pipeline.submit(gen_id)

    @huey.task(name="mediagen.refresh")
    def refresh_task(gen_id: int) -> None:
        pipeline.refresh(gen_id)

    @huey.task(name="mediagen.ingest")
    def ingest_task(gen_id: int) -> None:
        pipeline.ingest(gen_id)

    def later(task: Callable[..., object]) -> Callable[[int, float], None]:
        def call(gen_id: int, delay: float = 0.0) -> None:
            if delay > 0:
                task.schedule((gen_id,), delay=delay)  # type: ignore[attr-defined]
            else:
                task(gen_id)

        return call

    queue = Queue(huey, later(submit_task), later(refresh_task), later(ingest_task))
    pipeline.dispatch = Dispatch(queue.submit, queue.refresh, queue.ingest)
    return queue


class _EmbeddedConsumer(Consumer):
    """huey's consumer minus its signal handlers: the host process (uvicorn, our CLI) owns those."""

    def _set_signal_handlers(self) -> None:
        return None


class WorkerHost:
    """Runs huey workers plus the reconcile heartbeat, inside `serve` or as `mediagen worker`."""

    def __init__(self, huey: Huey, pipeline: Pipeline, *, workers: int, interval: float) -> None:
        self.consumer = _EmbeddedConsumer(
            huey,
            workers=workers,
            worker_type="thread",
            periodic=False,
            initial_delay=0.05,
            max_delay=0.5,
            backoff=1.5,
            scheduler_interval=1,
            check_worker_health=True,
        )
        self.pipeline = pipeline
        self.interval = interval
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick, name="mediagen-reconcile", daemon=True)

    def start(self) -> None:
        # At start-up, before workers take anything: whatever a crash left half-done is re-dispatched.
        self._safe_reconcile()
        self.consumer.start()
        self._ticker.start()

    def _safe_reconcile(self) -> None:
        try:
            self.pipeline.reconcile()
        except Exception:
            log.exception("reconcile failed; will try again")

    def _tick(self) -> None:
        last_gc = time.monotonic()
        while not self._stop.wait(self.interval):
            self._safe_reconcile()
            if time.monotonic() - last_gc > GC_INTERVAL_SECONDS:
                last_gc = time.monotonic()
                try:
                    self.pipeline.collect_garbage()
                except Exception:
                    log.exception("blob gc failed; will try again")

    def stop(self) -> None:
        self._stop.set()
        self.consumer.stop(graceful=True)

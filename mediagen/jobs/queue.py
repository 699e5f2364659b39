"""The huey job queue: built from settings, one task per pipeline step.

The queue only dispatches; the generations row decides what happens (see generations/pipeline.py).
Tasks carry nothing but a generation id, so a duplicate or stale task is harmless. Producers
(API processes) only enqueue; the process that consumes (`WorkerHost`) binds the step runner
when it starts, so a task can only ever run where a runner exists.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from urllib.parse import urlparse

from huey import Huey, PostgresHuey, RedisHuey, SqliteHuey

from mediagen.config import Settings
from mediagen.generations.ports import Step, StepRunner


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


class HueyJobQueue:
    """`JobQueue` on huey: task names `mediagen.submit`, `mediagen.refresh`, `mediagen.ingest`."""

    def __init__(self, huey: Huey) -> None:
        self.huey = huey
        self._runner: StepRunner | None = None
        self._lock = threading.Lock()
        self._tasks = {step: self._register(step) for step in Step}

    def _register(self, step: Step) -> Callable[..., object]:
        def task(gen_id: int) -> None:
            self.runner().run(step, gen_id)

        task.__name__ = f"mediagen_{step}"
        return self.huey.task(name=f"mediagen.{step}")(task)

    def dispatch(self, step: Step, gen_id: int, delay: float = 0.0) -> None:
        task = self._tasks[step]
        if delay > 0:
            task.schedule((gen_id,), delay=delay)  # type: ignore[attr-defined]
        else:
            task(gen_id)

    def pending(self) -> int:
        return int(self.huey.pending_count())

    def consume_with(self, runner: StepRunner) -> None:
        """Bind the runner tasks execute on (once, by the consuming process)."""
        with self._lock:
            if self._runner is not None and self._runner is not runner:
                raise RuntimeError("this queue is already consumed by another runner")
            self._runner = runner

    def runner(self) -> StepRunner:
        if self._runner is None:
            raise RuntimeError("a task ran in a process that does not consume the queue")
        return self._runner

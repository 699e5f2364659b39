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
from mediagen.generations.ports import Lane, Step, StepRunner

# Queue names in the backend: the device lane is a second huey queue on the same backend.
QUEUE_NAMES = {Lane.IO: "mediagen", Lane.DEVICE: "mediagen-local"}


def make_huey(settings: Settings, lane: Lane = Lane.IO) -> Huey:
    url = settings.queue_url
    name = QUEUE_NAMES[lane]
    if not url:
        settings.ensure_dirs()
        return SqliteHuey(name, filename=str(settings.data_dir / "queue.db"), results=False, timeout=60)
    scheme = urlparse(url).scheme
    if scheme in ("redis", "rediss"):
        return RedisHuey(name, url=url, results=False)
    if scheme.startswith("postgres"):
        dsn = url.replace("postgresql+psycopg://", "postgresql://")
        return PostgresHuey(name, dsn=dsn, results=False)
    if scheme == "sqlite":
        return SqliteHuey(name, filename=url.split("///", 1)[-1], results=False, timeout=60)
    raise ValueError(f"MEDIAGEN_QUEUE_URL: unsupported scheme {scheme!r} (use sqlite, redis or postgresql)")


class HueyJobQueue:
    """`JobQueue` on huey: task names `mediagen.submit`, `mediagen.refresh`, `mediagen.ingest`, in
    one huey queue per lane (`device` holds submits of jobs that run on this machine's
    accelerator; without one, every lane is the I/O queue)."""

    def __init__(self, huey: Huey, device: Huey | None = None) -> None:
        self.huey = huey
        self.hueys: dict[Lane, Huey] = {Lane.IO: huey, Lane.DEVICE: device if device is not None else huey}
        self._runner: StepRunner | None = None
        self._lock = threading.Lock()
        self._tasks = {
            (lane, step): self._register(h, step)
            for lane, h in self.hueys.items()
            for step in Step
            if lane is Lane.IO or h is not huey
        }

    def _register(self, huey: Huey, step: Step) -> Callable[..., object]:
        def task(gen_id: int) -> None:
            self.runner().run(step, gen_id)

        task.__name__ = f"mediagen_{step}"
        return huey.task(name=f"mediagen.{step}")(task)

    def dispatch(self, step: Step, gen_id: int, delay: float = 0.0, *, lane: Lane = Lane.IO) -> None:
        task = self._tasks.get((lane, step)) or self._tasks[(Lane.IO, step)]
        if delay > 0:
            task.schedule((gen_id,), delay=delay)  # type: ignore[attr-defined]
        else:
            task(gen_id)

    def pending(self) -> int:
        return sum(int(h.pending_count()) for h in {id(h): h for h in self.hueys.values()}.values())

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

"""The two JobQueue implementations: huey (on a real SqliteHuey file) and the in-memory one."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from huey import Huey, signals

from mediagen.config import Settings
from mediagen.generations.ports import Lane, Step
from mediagen.generations.schemas import GenerateRequest
from mediagen.jobs.memory import Dispatched, MemoryJobQueue
from mediagen.jobs.queue import HueyJobQueue, make_huey
from mediagen.services import build_services
from mediagen.vocabulary import Status
from tests.generations.conftest import ADMIN, migrate, reread


class Recorder:
    """A StepRunner (the port a worker runs tasks on) that records what it was asked to run, and
    then does `then(step, gen_id)` if given (to dispatch more, as pipeline steps do)."""

    def __init__(self, then: Callable[[Step, int], None] | None = None) -> None:
        self.ran: list[tuple[Step, int]] = []
        self.then = then

    def run(self, step: Step, gen_id: int) -> None:
        self.ran.append((step, gen_id))
        if self.then is not None:
            self.then(step, gen_id)


@pytest.fixture
def huey(tmp_path: Path) -> Iterator[Huey]:
    instance = make_huey(Settings(data_dir=tmp_path / "data"))
    yield instance
    instance.storage.close()


def naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)  # huey keeps UTC times without a zone


# -- huey ------------------------------------------------------------------------------------------


def test_make_huey_keeps_the_queue_in_the_data_dir(tmp_path: Path, huey: Huey) -> None:
    assert huey.name == "mediagen"
    assert huey.storage.filename == str(tmp_path / "data" / "queue.db")
    assert not huey.immediate  # tasks are queued, never run by the producer


@pytest.mark.parametrize("step", list(Step))
def test_dispatch_enqueues_a_named_task_that_runs_the_bound_runner(huey: Huey, step: Step) -> None:
    queue = HueyJobQueue(huey)
    queue.dispatch(step, 7)
    assert huey.pending_count() == 1 and queue.pending() == 1 and huey.scheduled_count() == 0

    task = huey.dequeue()
    assert task.name == f"mediagen.{step}" and task.args == (7,) and task.eta is None
    runner = Recorder()
    queue.consume_with(runner)
    huey.execute(task)
    assert runner.ran == [(step, 7)]
    assert huey.pending_count() == 0


def test_tasks_carry_nothing_but_the_id_and_keep_their_order(huey: Huey) -> None:
    queue = HueyJobQueue(huey)
    for step, gen_id in [(Step.SUBMIT, 1), (Step.REFRESH, 2), (Step.INGEST, 3), (Step.SUBMIT, 1)]:
        queue.dispatch(step, gen_id)
    runner = Recorder()
    queue.consume_with(runner)
    while (task := huey.dequeue()) is not None:
        assert task.args in [(1,), (2,), (3,)] and task.kwargs == {}
        huey.execute(task)
    assert runner.ran == [(Step.SUBMIT, 1), (Step.REFRESH, 2), (Step.INGEST, 3), (Step.SUBMIT, 1)]


def test_a_task_run_where_no_runner_is_bound_fails_loudly(huey: Huey) -> None:
    queue = HueyJobQueue(huey)
    queue.dispatch(Step.SUBMIT, 7)
    task = huey.dequeue()
    with pytest.raises(RuntimeError, match="does not consume the queue"):
        task.execute()

    # Run by huey itself, the error is reported through huey's error signal, not swallowed silently.
    errors: list[Exception] = []

    @huey.signal(signals.SIGNAL_ERROR)
    def _record(signal: str, task: object, exc: Exception | None = None) -> None:
        assert exc is not None
        errors.append(exc)

    huey.execute(task)
    assert len(errors) == 1 and isinstance(errors[0], RuntimeError)


def test_a_queue_is_consumed_by_one_runner_only(huey: Huey) -> None:
    queue = HueyJobQueue(huey)
    first = Recorder()
    queue.consume_with(first)
    queue.consume_with(first)  # binding the same runner again is harmless
    with pytest.raises(RuntimeError, match="already consumed by another runner"):
        queue.consume_with(Recorder())
    assert queue.runner() is first


def test_a_delayed_dispatch_waits_in_the_schedule_until_it_is_due(huey: Huey) -> None:
    queue = HueyJobQueue(huey)
    runner = Recorder()
    queue.consume_with(runner)
    before = datetime.now(UTC)
    queue.dispatch(Step.SUBMIT, 9, 30.0)

    # huey puts a delayed task on the queue with its eta; the consumer that takes it too early moves
    # it to the schedule without running it.
    task = huey.dequeue()
    assert task.name == "mediagen.submit" and task.args == (9,)
    assert (
        naive_utc(before + timedelta(seconds=29))
        <= task.eta
        <= naive_utc(datetime.now(UTC) + timedelta(seconds=31))
    )
    huey.execute(task)
    assert runner.ran == [] and huey.scheduled_count() == 1 and huey.pending_count() == 0

    assert huey.read_schedule(naive_utc(datetime.now(UTC))) == []  # not due yet
    (due,) = huey.read_schedule(naive_utc(datetime.now(UTC) + timedelta(seconds=31)))
    huey.execute(due, timestamp=naive_utc(datetime.now(UTC) + timedelta(seconds=31)))
    assert runner.ran == [(Step.SUBMIT, 9)] and huey.scheduled_count() == 0


def test_the_pipeline_runs_a_generation_from_the_huey_queue(tmp_path: Path) -> None:
    # build_services without a queue: the huey queue the server uses, in the same data dir.
    settings = Settings(data_dir=tmp_path / "data", generate_rate_limit_per_minute=0)
    settings.ensure_dirs()
    migrate(settings.resolved_database_url)
    services = build_services(settings)
    try:
        assert isinstance(services.queue, HueyJobQueue)
        queue = services.queue
        huey = queue.huey
        row, _ = services.generations.create(ADMIN, "audio", GenerateRequest(prompt="x", duration=1))
        assert huey.pending_count() == 1
        queue.consume_with(services.pipeline)
        huey.execute(huey.dequeue())
        assert reread(services, row.id).status == Status.COMPLETED
        assert huey.pending_count() == 0
    finally:
        services.close()


# -- in memory -------------------------------------------------------------------------------------


def test_memory_queue_runs_everything_in_dispatch_order() -> None:
    queue = MemoryJobQueue()
    queue.dispatch(Step.SUBMIT, 1)
    queue.dispatch(Step.REFRESH, 2, 5.0)
    assert queue.pending() == 2

    def ingest_next(step: Step, gen_id: int) -> None:
        if gen_id < 100:
            queue.dispatch(Step.INGEST, gen_id + 100)

    runner = Recorder(ingest_next)  # what a step dispatches runs too, after what was already waiting
    assert queue.drain(runner) == 4
    assert runner.ran == [(Step.SUBMIT, 1), (Step.REFRESH, 2), (Step.INGEST, 101), (Step.INGEST, 102)]
    assert queue.pending() == 0 and list(queue.waiting) == []
    assert queue.history == [
        Dispatched(Step.SUBMIT, 1, 0.0),
        Dispatched(Step.REFRESH, 2, 5.0),  # the delay is recorded, not waited out
        Dispatched(Step.INGEST, 101, 0.0),
        Dispatched(Step.INGEST, 102, 0.0),
    ]
    assert queue.drain(runner) == 0  # nothing left


def test_memory_queue_stops_a_dispatch_loop() -> None:
    queue = MemoryJobQueue()
    queue.dispatch(Step.REFRESH, 1)
    looping = Recorder(lambda step, gen_id: queue.dispatch(step, gen_id))  # every run queues itself again
    with pytest.raises(RuntimeError, match="more than 5 steps: a dispatch loop"):
        queue.drain(looping, max_steps=5)
    assert looping.ran == [(Step.REFRESH, 1)] * 5 and queue.pending() == 1


def test_device_jobs_wait_on_their_own_lane_in_the_same_backend(tmp_path: Path) -> None:
    """A local model's submit goes to `mediagen-local`, so a long generation never sits in front
    of downloads and ingest (and an `io`-only worker never picks it up)."""
    settings = Settings(data_dir=tmp_path / "data")
    io, device = make_huey(settings), make_huey(settings, Lane.DEVICE)
    try:
        assert (io.name, device.name) == ("mediagen", "mediagen-local")
        assert device.storage.filename == io.storage.filename
        queue = HueyJobQueue(io, device)
        queue.dispatch(Step.SUBMIT, 1, lane=Lane.DEVICE)
        queue.dispatch(Step.INGEST, 2)
        assert (io.pending_count(), device.pending_count(), queue.pending()) == (1, 1, 2)
        runner = Recorder()
        queue.consume_with(runner)
        device.execute(device.dequeue())
        assert runner.ran == [(Step.SUBMIT, 1)]
        io.execute(io.dequeue())
        assert runner.ran == [(Step.SUBMIT, 1), (Step.INGEST, 2)]
        # Without a device queue (tests, tools) every lane is the one queue.
        single = HueyJobQueue(make_huey(Settings(data_dir=tmp_path / "other")))
        single.dispatch(Step.SUBMIT, 3, lane=Lane.DEVICE)
        assert single.huey.pending_count() == 1
    finally:
        io.storage.close()
        device.storage.close()

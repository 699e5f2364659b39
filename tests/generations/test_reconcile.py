"""The reconcile heartbeat: whatever lost its worker or is due a poll is dispatched again, and what
ran out of time or chances fails. Rows are set by hand to look like a crash left them."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from mediagen.auth.service import Principal
from mediagen.db.base import utcnow
from mediagen.generations.ports import Step
from mediagen.generations.schemas import GenerateRequest
from mediagen.generations.tables import Generation, Worker
from mediagen.generations.workers import HOST
from mediagen.jobs.memory import Dispatched, MemoryJobQueue
from mediagen.services import Services
from mediagen.vocabulary import ProviderStatus, Status
from tests.generations.conftest import RUN_FOR, Hosted, reread, set_row

MUSICGEN = "meta/musicgen"


@pytest.fixture
def gen_id(services: Services, queue: MemoryJobQueue, admin: Principal) -> int:
    """A fresh synth row whose SUBMIT task was lost (the queue forgot it)."""
    row, _ = services.generations.create(admin, "audio", GenerateRequest(prompt="x", duration=1))
    queue.waiting.clear()
    queue.history.clear()
    return row.id


def make_audio(services: Services, admin: Principal) -> Generation:
    row, _ = services.generations.create(admin, "audio", GenerateRequest(prompt="x", duration=1))
    return row


def ago(seconds: float) -> datetime:
    return utcnow() - timedelta(seconds=seconds)


def test_nothing_to_do_while_leases_hold(services: Services, queue: MemoryJobQueue, gen_id: int) -> None:
    assert services.pipeline.reconcile() == 0
    set_row(services, gen_id, status=Status.PROCESSING, attempts=1)  # a worker holds it
    assert services.pipeline.reconcile() == 0
    assert queue.history == []


@pytest.mark.parametrize("status", [Status.PENDING, Status.PROCESSING])
def test_an_expired_lease_without_a_prediction_is_queued_again(
    services: Services, queue: MemoryJobQueue, gen_id: int, status: Status
) -> None:
    set_row(
        services, gen_id, status=status, attempts=0 if status == Status.PENDING else 1, lease_until=ago(1)
    )
    assert services.pipeline.reconcile() == 1
    assert queue.history == [Dispatched(Step.SUBMIT, gen_id, 0.0)]
    requeued = reread(services, gen_id)
    assert requeued.status == Status.PENDING
    assert requeued.lease_until is not None and requeued.lease_until > utcnow()  # the next claimant's
    assert services.pipeline.reconcile() == 0  # the fresh lease holds it until then

    queue.drain(services.pipeline)
    assert reread(services, gen_id).status == Status.COMPLETED


def test_a_job_older_than_max_run_seconds_fails(
    services: Services, queue: MemoryJobQueue, gen_id: int
) -> None:
    limit = services.settings.max_run_seconds
    set_row(services, gen_id, created_at=ago(limit + 60), lease_until=ago(1))
    assert services.pipeline.reconcile() == 1
    failed = reread(services, gen_id)
    assert failed.status == Status.FAILED
    assert failed.error == f"no result within {limit} s; giving up"
    assert queue.history == []


def test_a_processing_job_out_of_attempts_fails(
    services: Services, queue: MemoryJobQueue, gen_id: int
) -> None:
    attempts = services.settings.max_attempts
    set_row(services, gen_id, status=Status.PROCESSING, attempts=attempts, lease_until=ago(1))
    assert services.pipeline.reconcile() == 1
    failed = reread(services, gen_id)
    assert failed.status == Status.FAILED
    assert failed.error == f"gave up after {attempts} attempts: the worker stopped (lease expired)"
    assert queue.history == []


def test_a_pending_job_out_of_attempts_gives_up_when_claimed(
    services: Services, queue: MemoryJobQueue, gen_id: int
) -> None:
    attempts = services.settings.max_attempts
    set_row(services, gen_id, status=Status.PENDING, attempts=attempts, lease_until=ago(1))
    assert services.pipeline.reconcile() == 1
    assert queue.history == [Dispatched(Step.SUBMIT, gen_id, 0.0)]
    queue.drain(services.pipeline)
    failed = reread(services, gen_id)
    assert failed.status == Status.FAILED and (failed.error or "").startswith(f"gave up after {attempts}")


def test_a_succeeded_prediction_whose_ingest_was_lost_is_ingested_again(
    services: Services, queue: MemoryJobQueue, gen_id: int
) -> None:
    set_row(
        services,
        gen_id,
        status=Status.PROCESSING,
        attempts=1,
        provider_ref="p-1",
        provider_status=ProviderStatus.SUCCEEDED,
        lease_until=ago(1),
    )
    assert services.pipeline.reconcile() == 1
    assert queue.history == [Dispatched(Step.INGEST, gen_id, 0.0)]
    row = reread(services, gen_id)
    assert row.status == Status.PROCESSING and row.lease_until is not None and row.lease_until > utcnow()


def test_a_running_prediction_whose_worker_is_gone_is_polled(
    services: Services, queue: MemoryJobQueue, gen_id: int
) -> None:
    set_row(
        services,
        gen_id,
        status=Status.PROCESSING,
        attempts=1,
        provider_ref="p-1",
        provider_status=ProviderStatus.PROCESSING,
        lease_until=ago(1),
    )
    assert services.pipeline.reconcile() == 1
    assert queue.history == [Dispatched(Step.REFRESH, gen_id, 0.0)]


def test_a_due_poll_is_dispatched_once(services: Services, queue: MemoryJobQueue, gen_id: int) -> None:
    set_row(
        services,
        gen_id,
        status=Status.PROCESSING,
        attempts=1,
        provider_ref="p-1",
        provider_status=ProviderStatus.STARTING,
        next_poll_at=ago(1),
    )
    before = utcnow()
    assert services.pipeline.reconcile() == 1
    assert queue.history == [Dispatched(Step.REFRESH, gen_id, 0.0)]
    pushed = reread(services, gen_id).next_poll_at
    assert pushed is not None and pushed >= before + timedelta(seconds=29)
    assert services.pipeline.reconcile() == 0  # not due again yet
    assert queue.history == [Dispatched(Step.REFRESH, gen_id, 0.0)]


def test_finished_rows_are_left_alone(services: Services, queue: MemoryJobQueue, gen_id: int) -> None:
    for status in (Status.COMPLETED, Status.FAILED, Status.CANCELED):
        set_row(services, gen_id, status=status, lease_until=ago(1), next_poll_at=ago(1), provider_ref="p")
        assert services.pipeline.reconcile() == 0
    assert queue.history == []


# -- with the fake Replicate: the heartbeat finishes what the queue lost ----------------------------------


@pytest.mark.timeout(60)
def test_a_due_poll_finishes_a_hosted_job(hosted: Hosted) -> None:
    services, queue, fake = hosted.services, hosted.queue, hosted.fake
    row, _ = services.generations.create(hosted.admin, "audio", GenerateRequest(prompt="x", model=MUSICGEN))
    fake.advance(RUN_FOR + 1)  # done at the provider; nobody has asked yet
    assert services.pipeline.reconcile() == 0  # the next poll is not due yet
    set_row(services, row.id, next_poll_at=ago(1))
    assert services.pipeline.reconcile() == 1
    assert queue.history == [Dispatched(Step.REFRESH, row.id, 0.0)]
    assert queue.drain(services.pipeline) == 2  # refresh, then the ingest it dispatched
    assert [d.step for d in queue.history] == [Step.REFRESH, Step.INGEST]
    done = reread(services, row.id)
    assert done.status == Status.COMPLETED, done.error
    assert len(fake.requests_to("GET", f"/v1/predictions/{row.provider_ref}")) == 1


@pytest.mark.timeout(60)
def test_a_lost_ingest_of_a_hosted_job_is_redone_after_its_lease(hosted: Hosted) -> None:
    services, queue, fake = hosted.services, hosted.queue, hosted.fake
    row, _ = services.generations.create(hosted.admin, "audio", GenerateRequest(prompt="x", model=MUSICGEN))
    fake.advance(RUN_FOR + 1)
    services.pipeline.refresh(row.id)
    assert queue.history == [Dispatched(Step.INGEST, row.id, 0.0)]
    queue.waiting.clear()  # the worker died with the task
    set_row(services, row.id, lease_until=ago(1))
    assert services.pipeline.reconcile() == 1
    assert list(queue.waiting) == [Dispatched(Step.INGEST, row.id, 0.0)]
    queue.drain(services.pipeline)
    done = reread(services, row.id)
    assert done.status == Status.COMPLETED, done.error
    assert len(fake.create_requests) == 1  # finished from what the provider already made


def test_a_row_both_expired_and_due_is_polled_once(
    services: Services, queue: MemoryJobQueue, gen_id: int
) -> None:
    set_row(
        services,
        gen_id,
        status=Status.PROCESSING,
        attempts=1,
        provider_ref="p-1",
        provider_status=ProviderStatus.PROCESSING,
        lease_until=ago(1),
        next_poll_at=ago(1),
    )
    services.pipeline.reconcile()
    assert queue.history == [Dispatched(Step.REFRESH, gen_id, 0.0)]


# -- dead lease holders --------------------------------------------------------------------------


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def held_by(services: Services, gen_id: int, owner: str) -> None:
    """The row is being worked on by `owner`, with most of its lease still to run."""
    set_row(
        services,
        gen_id,
        status=Status.PROCESSING,
        attempts=1,
        lease_owner=owner,
        lease_until=utcnow() + timedelta(seconds=100),
    )


def register(services: Services, worker_id: str, *, host: str, pid: int, seen_ago: float) -> None:
    seen = utcnow() - timedelta(seconds=seen_ago)
    with services.db.write() as s:
        s.add(Worker(id=worker_id, host=host, pid=pid, started_at=seen, seen_at=seen))


def test_a_job_held_by_a_killed_worker_on_this_host_is_taken_back_at_once(
    services: Services, queue: MemoryJobQueue, admin: Principal
) -> None:
    row = make_audio(services, admin)
    register(services, "crashed", host=HOST, pid=dead_pid(), seen_ago=1)  # beat a second ago
    held_by(services, row.id, "crashed")
    queue.history.clear()
    services.pipeline.reconcile()
    fresh = reread(services, row.id)
    assert fresh.status == Status.PENDING and queue.history == [Dispatched(Step.SUBMIT, row.id, 0.0)]


def test_a_job_held_by_a_silent_worker_elsewhere_is_taken_back_after_its_heartbeats_stop(
    services: Services, queue: MemoryJobQueue, admin: Principal
) -> None:
    quiet, busy = make_audio(services, admin), make_audio(services, admin)
    register(services, "lost-machine", host="elsewhere", pid=1, seen_ago=3600)
    register(services, "busy-machine", host="elsewhere", pid=1, seen_ago=1)
    held_by(services, quiet.id, "lost-machine")
    held_by(services, busy.id, "busy-machine")
    queue.history.clear()
    services.pipeline.reconcile()
    assert reread(services, quiet.id).status == Status.PENDING
    assert reread(services, busy.id).status == Status.PROCESSING  # alive: its lease stands
    assert queue.history == [Dispatched(Step.SUBMIT, quiet.id, 0.0)]


def test_a_worker_registers_claims_under_its_name_and_leaves(
    services: Services, queue: MemoryJobQueue, admin: Principal
) -> None:
    services.pipeline.worker_started()
    me = services.pipeline.ctx.workers.process_id
    with services.db.read() as s:
        assert s.get(Worker, me) is not None
    row = make_audio(services, admin)
    services.pipeline.reconcile()  # this process is alive: nothing of its own is taken back
    services.pipeline.run(Step.SUBMIT, row.id)
    assert reread(services, row.id).lease_owner == me
    services.pipeline.worker_stopped()
    with services.db.read() as s:
        assert s.get(Worker, me) is None

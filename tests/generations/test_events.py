"""The event log: one event per status move (with a gap-free per-generation `seq`), throttled
progress, tenant filters in SQL, pruning, and a reader that never passes an event committed out
of order (PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from mediagen.auth.service import Principal
from mediagen.db.base import utcnow
from mediagen.errors import Conflict
from mediagen.generations import running
from mediagen.generations.event_stream import SCAN_IDS, EventFilter, EventStream, GapWatch
from mediagen.generations.events import EventType, record_event
from mediagen.generations.ports import Step
from mediagen.generations.running import RowControl
from mediagen.generations.schemas import GenerateRequest
from mediagen.generations.tables import Event, Generation
from mediagen.jobs.memory import MemoryJobQueue
from mediagen.services import Services
from mediagen.vocabulary import Status
from tests.generations.conftest import make_seeded_services, set_row

ALL = EventFilter(clients=None)


def events_of(services: Services, gen_id: int) -> list[Event]:
    with services.db.read() as s:
        return list(s.scalars(select(Event).where(Event.generation_id == gen_id).order_by(Event.id)))


def types_of(services: Services, gen_id: int) -> list[str]:
    return [e.type for e in events_of(services, gen_id)]


def assert_seq_is_gap_free(services: Services, gen_id: int) -> None:
    found = events_of(services, gen_id)
    assert [e.seq for e in found] == list(range(1, len(found) + 1))
    assert [e.data["seq"] for e in found] == [e.seq for e in found]
    with services.db.read() as s:
        assert s.get(Generation, gen_id).event_seq == len(found)  # type: ignore[union-attr]


def new_audio(services: Services, admin: Principal, **fields: Any) -> int:
    row, _ = services.generations.create(
        admin, "audio", GenerateRequest(prompt="calm piano", duration=1, **fields)
    )
    return row.id


# -- status moves ------------------------------------------------------------------------------


def test_a_generation_that_completes_raises_created_processing_completed(
    services: Services, queue: MemoryJobQueue, admin: Principal
) -> None:
    gen_id = new_audio(services, admin, client_id="acme")
    assert queue.drain(services.pipeline) == 1
    assert types_of(services, gen_id) == [EventType.CREATED, EventType.PROCESSING, EventType.COMPLETED]
    assert_seq_is_gap_free(services, gen_id)
    done = events_of(services, gen_id)[-1]
    assert (done.client_id, done.kind) == ("acme", "audio")
    assert done.data["status"] == "completed" and done.data["progress"] == 1.0
    assert done.data["data_url"] == f"/api/audio/{gen_id}/data"
    assert done.data["waveform_url"] == f"/api/audio/{gen_id}/waveform"
    assert done.data["duration"] == pytest.approx(1.0, abs=0.05)
    assert done.data["content_type"] == "audio/mpeg" and done.data["size_bytes"] > 0
    # A duplicate task changes nothing and raises nothing.
    services.pipeline.run(Step.SUBMIT, gen_id)
    assert len(events_of(services, gen_id)) == 3


def test_cancel_and_failure_raise_one_event_each_with_the_error(services: Services, admin: Principal) -> None:
    canceled = new_audio(services, admin)
    services.generations.cancel(admin, "audio", canceled)
    with pytest.raises(Conflict):  # already canceled: refused, and no event
        services.generations.cancel(admin, "audio", canceled)
    assert types_of(services, canceled) == [EventType.CREATED, EventType.CANCELED]
    assert events_of(services, canceled)[-1].data["error"] == "canceled by user"

    failed = new_audio(services, admin)
    assert services.pipeline.rows.fail(failed, "the model fell over")
    assert not services.pipeline.rows.fail(failed, "again")  # terminal: no move, no event
    assert types_of(services, failed) == [EventType.CREATED, EventType.FAILED]
    assert events_of(services, failed)[-1].data["error"] == "the model fell over"
    assert_seq_is_gap_free(services, failed)


def test_only_a_real_status_change_raises_an_event(services: Services, admin: Principal) -> None:
    gen_id = new_audio(services, admin)
    rows = services.pipeline.rows
    with services.db.write() as s:
        assert rows.claim(gen_id, "worker-1", session=s)
    # processing -> processing (a provider update) moves the row but not its status.
    assert rows.cas_provider(gen_id, "processing", status=Status.PROCESSING, provider_status="processing")
    assert rows.cas(gen_id, (Status.PROCESSING,), error="slow")
    # A dead worker's lease taken again: an attempt more, still processing, no second event.
    set_row(services, gen_id, lease_until=utcnow() - timedelta(seconds=1))
    with services.db.write() as s:
        assert rows.claim(gen_id, "worker-2", session=s)
    assert types_of(services, gen_id) == [EventType.CREATED, EventType.PROCESSING]
    # Back to the queue (a retry) is a move too; then done.
    assert rows.cas(gen_id, (Status.PROCESSING,), status=Status.PENDING)
    assert rows.finish(gen_id, Status.COMPLETED)
    assert types_of(services, gen_id) == [
        EventType.CREATED,
        EventType.PROCESSING,
        EventType.PENDING,
        EventType.COMPLETED,
    ]
    assert_seq_is_gap_free(services, gen_id)


def test_reconcile_requeues_a_dead_workers_job_with_an_event(
    services: Services, queue: MemoryJobQueue, admin: Principal
) -> None:
    gen_id = new_audio(services, admin)
    with services.db.write() as s:
        services.pipeline.rows.claim(gen_id, "gone", session=s)
    set_row(services, gen_id, lease_until=utcnow() - timedelta(seconds=5))
    services.pipeline.reconcile()
    assert types_of(services, gen_id)[-1] == EventType.PENDING
    queue.drain(services.pipeline)
    assert types_of(services, gen_id)[-2:] == [EventType.PROCESSING, EventType.COMPLETED]
    assert_seq_is_gap_free(services, gen_id)


# -- progress ----------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_progress_events_are_throttled_to_a_few_a_second(
    services: Services, admin: Principal, monkeypatch: pytest.MonkeyPatch
) -> None:
    gen_id = new_audio(services, admin)
    with services.db.write() as s:
        services.pipeline.rows.claim(gen_id, "w", session=s)
    clock = Clock()
    monkeypatch.setattr(running.time, "monotonic", clock)
    control = RowControl(services.pipeline.rows, gen_id)
    # 200 steps over 2 s, the note changing every 5 steps: at most 4 writes a second get through.
    for step in range(200):
        clock.now = 1000.0 + step * 0.01
        control.progress(step / 200, f"step {step // 5}")
    progress = [e for e in events_of(services, gen_id) if e.type == EventType.PROGRESS]
    assert 4 <= len(progress) <= 9
    fractions = [e.data["progress"] for e in progress]
    assert fractions == sorted(fractions) and fractions[0] == 0.0
    assert all(e.data["progress_note"].startswith("step ") for e in progress)
    # Nothing new: no write, no event, however long it has been.
    clock.now += 10
    control.progress(fractions[-1], progress[-1].data["progress_note"])
    assert len([t for t in types_of(services, gen_id) if t == EventType.PROGRESS]) == len(progress)
    # Not running any more: no progress event.
    services.pipeline.rows.finish(gen_id, Status.COMPLETED)
    clock.now += 10
    control.progress(0.99, "late")
    assert types_of(services, gen_id)[-1] == EventType.COMPLETED
    assert_seq_is_gap_free(services, gen_id)


# -- the reader --------------------------------------------------------------------------------


def test_reader_filters_by_client_scope_kind_ids_and_take_group(
    services: Services, queue: MemoryJobQueue, admin: Principal
) -> None:
    acme = new_audio(services, admin, client_id="acme")
    globex = new_audio(services, admin, client_id="globex")
    nobody = new_audio(services, admin)
    image, _ = services.generations.create(admin, "image", GenerateRequest(prompt="red", client_id="acme"))
    set_row(services, acme, take_group="tg_test")
    with services.db.write() as s:
        record_event(s, acme, EventType.UPDATED, {"title": "hero"})
    reader = services.events

    def seen(flt: EventFilter) -> set[int]:
        return {e.data["id"] for e in reader.events_after(0, flt).events}

    assert seen(ALL) == {acme, globex, nobody, image.id}
    assert seen(EventFilter(clients=frozenset({"acme"}))) == {acme, image.id}
    assert seen(EventFilter(clients=frozenset({"acme", "globex"}))) == {acme, globex, image.id}
    assert seen(EventFilter(clients=frozenset())) == set()
    assert seen(EventFilter(clients=None, kinds=frozenset({"image"}))) == {image.id}
    assert seen(EventFilter(clients=frozenset({"globex"}), ids=frozenset({acme, globex}))) == {globex}
    assert seen(EventFilter(clients=None, take_group="tg_test")) == {acme}
    # The cursor passes what the filter hides, so another tenant's traffic never holds a stream.
    batch = reader.events_after(0, EventFilter(clients=frozenset({"globex"})))
    assert batch.cursor == reader.latest_id() and not batch.more


def test_reader_pages_through_a_long_log_in_order(services: Services, admin: Principal) -> None:
    gen_id = new_audio(services, admin)
    with services.db.write() as s:
        for i in range(SCAN_IDS + 20):
            record_event(s, gen_id, EventType.UPDATED, {"n": i})
    reader, cursor, got = services.events, 0, []
    for _ in range(20):
        batch = reader.events_after(cursor, ALL, limit=150)
        got += [e.data["seq"] for e in batch.events]
        cursor = batch.cursor
        if not batch.more:
            break
    assert got == list(range(1, SCAN_IDS + 22))  # created, then every update, each once


def test_start_cursor_repeats_only_the_last_moments(services: Services, admin: Principal) -> None:
    first = new_audio(services, admin)
    with services.db.write() as s:
        s.execute(update(Event).values(created_at=utcnow() - timedelta(minutes=1)))
    second = new_audio(services, admin)
    start = services.events.start_cursor()
    assert [e.data["id"] for e in services.events.events_after(start, ALL).events] == [second]
    assert first < second


def test_pruning_drops_old_events_and_readers_step_over_the_hole(
    services: Services, admin: Principal
) -> None:
    old = new_audio(services, admin)
    with services.db.write() as s:
        record_event(s, old, EventType.UPDATED)
        s.execute(update(Event).values(created_at=utcnow() - timedelta(days=30)))
    kept = new_audio(services, admin)
    reconciler = services.pipeline.reconciler
    assert reconciler.prune_events(force=True) == 2
    assert reconciler.prune_events() == 0  # not again until PRUNE_EVENTS_EVERY_S has passed
    assert events_of(services, old) == []
    # A stream resuming from before the pruned ids is not held up by their hole.
    with services.db.write() as s:
        s.execute(update(Event).values(created_at=utcnow() - timedelta(seconds=10)))
    batch = services.events.events_after(0, ALL)
    assert [e.data["id"] for e in batch.events] == [kept]


# -- out-of-order commits (PostgreSQL) ---------------------------------------------------------


@pytest.fixture
def pg_core(tmp_path: Path, pg_url: str) -> Iterator[tuple[Services, Principal]]:
    services, _, admin = make_seeded_services(tmp_path / "pg", database_url=pg_url)
    yield services, admin
    services.close()


def test_an_event_that_commits_after_a_later_one_is_not_skipped(pg_core: tuple[Services, Principal]) -> None:
    services, admin = pg_core
    a, b = new_audio(services, admin), new_audio(services, admin)
    reader = services.events
    cursor = reader.events_after(0, ALL).cursor
    gaps = GapWatch()
    early, late = services.db._write(), services.db._write()
    try:
        early.begin()
        first = record_event(early, a, EventType.UPDATED, {"n": "early"})
        late.begin()
        second = record_event(late, b, EventType.UPDATED, {"n": "late"})
        assert first is not None and second is not None and first.id < second.id
        late.commit()  # the later id is visible first
        held = reader.events_after(cursor, ALL, gaps=gaps)
        assert held.events == [] and held.cursor == cursor  # waits at the hole
        early.commit()
        batch = reader.events_after(cursor, ALL, gaps=gaps)
        assert [e.data["n"] for e in batch.events] == ["early", "late"]
        assert batch.cursor == second.id
    finally:
        early.close()
        late.close()


def test_a_rolled_back_id_is_stepped_over_after_the_grace(pg_core: tuple[Services, Principal]) -> None:
    services, admin = pg_core
    a, b = new_audio(services, admin), new_audio(services, admin)
    reader = EventStream(services.db, grace_seconds=1.0)
    cursor = reader.events_after(0, ALL).cursor
    lost = services.db._write()
    try:
        lost.begin()
        record_event(lost, a, EventType.UPDATED, {"n": "lost"})
        with services.db.write() as s:
            record_event(s, b, EventType.UPDATED, {"n": "kept"})
        lost.rollback()
    finally:
        lost.close()
    clock = Clock()
    gaps = GapWatch(clock=clock)
    assert reader.events_after(cursor, ALL, gaps=gaps).events == []  # might still be committing
    clock.now += 1.5
    assert [e.data["n"] for e in reader.events_after(cursor, ALL, gaps=gaps).events] == ["kept"]

"""Chores one process of a deployment does at a time (reconcile, blob gc)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import update

from mediagen.db.base import utcnow
from mediagen.db.migrate import upgrade
from mediagen.db.session import Database
from mediagen.generations.tables import Duty
from mediagen.generations.workers import WorkerRegistry


def registries(url: str, count: int) -> list[WorkerRegistry]:
    upgrade(url)
    return [
        WorkerRegistry(Database(url), f"proc-{i}", dead_after=timedelta(seconds=30)) for i in range(count)
    ]


def test_one_holder_at_a_time_and_a_lapsed_duty_is_taken_over(tmp_path: Path) -> None:
    first, second = registries(f"sqlite:///{tmp_path / 'd.db'}", 2)
    assert first.claim_duty("blob-gc", 60)
    assert not second.claim_duty("blob-gc", 60)
    assert first.claim_duty("blob-gc", 60)  # the holder renews
    assert second.claim_duty("reconcile", 60)  # duties are independent
    with first.db.write() as s:  # the holder died: its hold runs out
        s.execute(update(Duty).where(Duty.name == "blob-gc").values(until=utcnow() - timedelta(seconds=1)))
    assert second.claim_duty("blob-gc", 60)
    assert not first.claim_duty("blob-gc", 60)


def test_processes_racing_for_a_new_duty_get_exactly_one_holder(pg_url: str) -> None:
    import threading

    procs = registries(pg_url, 6)
    won: list[str] = []
    barrier = threading.Barrier(len(procs))

    def race(registry: WorkerRegistry) -> None:
        barrier.wait()
        if registry.claim_duty("reconcile", 60):
            won.append(registry.process_id)

    threads = [threading.Thread(target=race, args=(r,)) for r in procs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1
    for registry in procs:
        registry.db.dispose()

"""The batcher: concurrent requests of one key run as one call, one call at a time."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import pytest

from mediagen.engines.local.batching import Batcher


class Recorder:
    def __init__(self, hold: float = 0.0) -> None:
        self.batches: list[list[str]] = []
        self.running = 0
        self.most_at_once = 0
        self.hold = hold
        self._lock = threading.Lock()

    def __call__(self, items: Sequence[str]) -> list[str]:
        with self._lock:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
            self.batches.append(list(items))
        time.sleep(self.hold)
        with self._lock:
            self.running -= 1
        return [item.upper() for item in items]


def run_together(batcher: Batcher[str, str], jobs: list[tuple[str, str]], run: Recorder) -> dict[str, str]:
    results: dict[str, str] = {}
    start = threading.Barrier(len(jobs))

    def one(key: str, item: str) -> None:
        start.wait()
        results[item] = batcher.run(key, item, run)

    threads = [threading.Thread(target=one, args=job) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    return results


def test_concurrent_requests_of_one_key_run_as_one_batch_each_with_its_own_result() -> None:
    run = Recorder()
    results = run_together(Batcher(window_s=0.3, max_batch=8), [("m", "a"), ("m", "b"), ("m", "c")], run)
    assert results == {"a": "A", "b": "B", "c": "C"}
    assert len(run.batches) == 1 and sorted(run.batches[0]) == ["a", "b", "c"]


def test_different_keys_never_share_a_batch_and_batches_never_overlap_on_the_device() -> None:
    run = Recorder(hold=0.05)
    jobs = [("m1", "a"), ("m2", "b"), ("m1", "c"), ("m2", "d")]
    results = run_together(Batcher(window_s=0.2, max_batch=8), jobs, run)
    assert results == {"a": "A", "b": "B", "c": "C", "d": "D"}
    assert sorted(sorted(b) for b in run.batches) == [["a", "c"], ["b", "d"]]
    assert run.most_at_once == 1


def test_a_full_batch_starts_without_waiting_out_the_window_and_the_next_opens_a_new_one() -> None:
    run = Recorder()
    started = time.monotonic()
    results = run_together(Batcher(window_s=5.0, max_batch=2), [("m", "a"), ("m", "b")], run)
    assert results == {"a": "A", "b": "B"}
    assert time.monotonic() - started < 2.0
    assert run_together(Batcher(window_s=0.0, max_batch=1), [("m", "x")], run) == {"x": "X"}


def test_every_member_gets_the_batchs_exception() -> None:
    def broken(items: Sequence[str]) -> list[str]:
        raise ValueError("weights are corrupt")

    batcher: Batcher[str, str] = Batcher(window_s=0.2, max_batch=4)
    errors: list[str] = []
    barrier = threading.Barrier(2)

    def one(item: str) -> None:
        barrier.wait()
        with pytest.raises(ValueError) as caught:
            batcher.run("m", item, broken)
        errors.append(str(caught.value))

    threads = [threading.Thread(target=one, args=(i,)) for i in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert errors == ["weights are corrupt", "weights are corrupt"]


def test_a_batch_that_returns_the_wrong_number_of_results_fails_loudly() -> None:
    batcher: Batcher[str, str] = Batcher(window_s=0.0, max_batch=4)
    with pytest.raises(RuntimeError, match="returned 0 results"):
        batcher.run("m", "a", lambda items: [])

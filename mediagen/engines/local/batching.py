"""Dynamic batching: concurrent requests for the same model and compatible settings run as one
library call, one batch at a time on the device.

The first request of a key opens a batch and waits a short window (`MEDIAGEN_LOCAL_BATCH_WINDOW_MS`)
for others, then for the device; requests arriving meanwhile join until it is full. Others wait on
their own slot and receive their own result (or the batch's exception). On a GPU a batch of 8
costs little more than one, which is where the throughput comes from.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class _Slot(Generic[T, R]):
    item: T
    done: threading.Event = field(default_factory=threading.Event)
    result: R | None = None
    error: BaseException | None = None


@dataclass
class _Batch(Generic[T, R]):
    slots: list[_Slot[T, R]] = field(default_factory=list)
    full: threading.Event = field(default_factory=threading.Event)


class Batcher(Generic[T, R]):
    def __init__(self, *, window_s: float, max_batch: int) -> None:
        self.window_s = window_s
        self.max_batch = max_batch
        self.device_lock = threading.Lock()  # one batch at a time on the device
        self._lock = threading.Lock()
        self._open: dict[Hashable, _Batch[T, R]] = {}

    def run(self, key: Hashable, item: T, run_batch: Callable[[Sequence[T]], Sequence[R]]) -> R:
        """Run `item` inside a batch of its key; `run_batch` gets the items and returns one
        result per item, in order."""
        slot: _Slot[T, R] = _Slot(item)
        with self._lock:
            batch = self._open.get(key)
            leader = batch is None
            if batch is None:
                batch = self._open[key] = _Batch()
            batch.slots.append(slot)
            if len(batch.slots) >= self.max_batch:
                batch.full.set()
                self._open.pop(key, None)  # closed: the next request opens a new one
        if leader:
            self._lead(key, batch, run_batch)
        slot.done.wait()
        if slot.error is not None:
            raise slot.error
        return slot.result  # type: ignore[return-value]

    def _lead(
        self, key: Hashable, batch: _Batch[T, R], run_batch: Callable[[Sequence[T]], Sequence[R]]
    ) -> None:
        deadline = time.monotonic() + self.window_s
        batch.full.wait(max(0.0, deadline - time.monotonic()))
        with self.device_lock:
            with self._lock:
                if self._open.get(key) is batch:
                    del self._open[key]
                slots = list(batch.slots)
            try:
                results = run_batch([s.item for s in slots])
                if len(results) != len(slots):
                    raise RuntimeError(f"a batch of {len(slots)} returned {len(results)} results")
                for s, r in zip(slots, results, strict=True):
                    s.result = r
            except BaseException as exc:  # every member learns what happened to its batch
                for s in slots:
                    s.error = exc
            finally:
                for s in slots:
                    s.done.set()

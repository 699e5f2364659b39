"""What a running inline job sees of its row: progress written to it, cancel read from it, and a
lease kept fresh while it runs.

An inline engine can run for minutes (a local model loading, then decoding); without a renewed
lease, reconcile would take the job for dead and queue it again. Progress writes are throttled
because a decoding step can take milliseconds and every write is a database transaction; each
write also records a `progress` event for live pages, so the throttle is what keeps a stream to
a few events a second per generation.
"""

from __future__ import annotations

import threading
import time
from types import TracebackType
from typing import Any

from mediagen.generations.events import EventType, record_event
from mediagen.generations.leases import Rows
from mediagen.vocabulary import Status

PROGRESS_EVERY_S = 0.5  # the same note, a new fraction
NOTE_EVERY_S = 0.25  # a new note (a stage change shows sooner); never more than 4 writes a second
CANCEL_CHECK_EVERY_S = 0.5


class RowControl:
    """`engines.base.JobControl` on a generation row."""

    def __init__(self, rows: Rows, gen_id: int) -> None:
        self.rows, self.gen_id = rows, gen_id
        self._written = float("-inf")
        self._fraction: float | None = None
        self._note: str | None = None
        self._checked = 0.0
        self._cancelled = False

    def progress(self, fraction: float | None, note: str | None = None) -> None:
        now = time.monotonic()
        value = None if fraction is None else round(min(1.0, max(0.0, fraction)), 4)
        if value == self._fraction and note == self._note and self._written > float("-inf"):
            return  # nothing new to show
        if now - self._written < (PROGRESS_EVERY_S if note == self._note else NOTE_EVERY_S):
            return
        self._written, self._fraction, self._note = now, value, note
        values: dict[str, Any] = {"progress": value}
        event: dict[str, Any] = {}
        if note is not None:
            values["progress_note"] = event["progress_note"] = note[:200]
        with self.rows.db.write() as s:
            if self.rows.cas(self.gen_id, (Status.PROCESSING,), session=s, **values):
                record_event(s, self.gen_id, EventType.PROGRESS, event)

    def cancelled(self) -> bool:
        now = time.monotonic()
        if self._cancelled or now - self._checked < CANCEL_CHECK_EVERY_S:
            return self._cancelled
        self._checked = now
        row = self.rows.get(self.gen_id)
        self._cancelled = row is None or row.status != Status.PROCESSING
        return self._cancelled


class LeaseKeeper:
    """Renews a claimed row's lease every third of a lease while the block runs."""

    def __init__(self, rows: Rows, gen_id: int, lease_seconds: float) -> None:
        self.rows, self.gen_id = rows, gen_id
        self.every = max(0.05, lease_seconds / 3)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, name=f"lease-{gen_id}", daemon=True)

    def _renew(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.rows.cas(self.gen_id, (Status.PROCESSING,), lease_until=self.rows.lease())
            except Exception:  # a failed renewal is retried next time; reconcile is the backstop
                continue

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

"""Reading the event log back for live streams: in id order, without a gap, across processes.

Event ids come from one sequence (PostgreSQL) or AUTOINCREMENT (SQLite), so they are unique and
increase in the order they are *taken*, not in the order their transactions commit: on
PostgreSQL, a transaction that took id 41 can commit after the one that took 42. A reader that
went on from "the highest id seen" would then pass 41 before it became visible and never send it.

So a reader only moves its cursor across ids it has seen, in order: it delivers up to the first
hole in the ids and waits there. A hole is either an event still being committed (it fills in a
moment) or an id that will never exist (its transaction rolled back, or the event was pruned).
It is taken for permanent once it has lasted `grace_seconds`: either this reader has watched it
that long (`GapWatch`), or the event after it was written longer ago than that (a reader that
starts after the fact does not wait at every old hole). Writers commit an event within
milliseconds of taking its id (every writer records it as the last thing in a short
transaction), so a hole that outlives the grace is a rollback; the grace is the price of never
skipping one that is only late. On SQLite writes are serialised and a rollback gives its id back,
so holes only come from pruning; the same code holds there.

The cursor passes events the principal may not see as well: tenant filters apply to the events
in the safe range, not to the hole finding, so another client's traffic never stalls a stream.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, delete, func, select

from mediagen.db.base import utcnow
from mediagen.db.session import Database
from mediagen.generations.leases import rowcount
from mediagen.generations.tables import Event

GAP_GRACE_SECONDS = 2.0
SCAN_IDS = 500  # ids looked at per read, whoever they belong to
PRUNE_BATCH = 10_000  # rows one prune deletes at most (SQLite holds its write lock meanwhile)


@dataclass(frozen=True)
class EventFilter:
    """What one stream may and wants to see. `clients` is the principal's scope (None: every
    client, and assets filed under no client); the rest narrow it."""

    clients: frozenset[str] | None
    kinds: frozenset[str] | None = None
    ids: frozenset[int] | None = None
    take_group: str | None = None

    def where(self) -> list[ColumnElement[bool]]:
        """The filter in SQL. It is `Principal.can_see_client`: a scoped principal sees only its
        clients' events (an event with no client is nobody's in particular, so only an unscoped
        principal sees it; `NULL IN (...)` is never true)."""
        out: list[ColumnElement[bool]] = []
        if self.clients is not None:
            out.append(Event.client_id.in_(sorted(self.clients)))
        if self.kinds is not None:
            out.append(Event.kind.in_(sorted(self.kinds)))
        if self.ids is not None:
            out.append(Event.generation_id.in_(sorted(self.ids)))
        if self.take_group is not None:
            # From the event's own body, not the row: a take's `deleted` event outlives it. Read
            # only within one poll's id range, so no index is needed.
            out.append(Event.data["take_group"].as_string() == self.take_group)
        return out


@dataclass(frozen=True)
class StreamedEvent:
    id: int
    type: str
    data: dict[str, Any]


@dataclass(frozen=True)
class Batch:
    """`events` in id order; `cursor` is where the next read starts (every id up to it has been
    read, visible to this filter or not); `more` means read again at once (a full batch)."""

    events: list[StreamedEvent]
    cursor: int
    more: bool


@dataclass
class GapWatch:
    """When one stream first saw each hole (by its first missing id), on its own clock."""

    clock: Callable[[], float] = time.monotonic
    first_seen: dict[int, float] = field(default_factory=dict)

    def age(self, missing: int) -> float:
        now = self.clock()
        return now - self.first_seen.setdefault(missing, now)

    def forget_through(self, cursor: int) -> None:
        for missing in [m for m in self.first_seen if m <= cursor]:
            del self.first_seen[missing]


class EventStream:
    def __init__(self, database: Database, *, grace_seconds: float = GAP_GRACE_SECONDS) -> None:
        self.db = database
        self.grace = grace_seconds

    def start_cursor(self) -> int:
        """Where a stream that asks for "from now on" starts: after the last event older than the
        grace. The few newer ones are sent again (harmless: each carries the state it left) so
        that an event still committing when the stream opened is not passed over."""
        cutoff = utcnow() - timedelta(seconds=self.grace)
        with self.db.read() as s:
            found = s.scalar(select(func.max(Event.id)).where(Event.created_at < cutoff))
        return int(found or 0)

    def events_after(
        self, last_id: int, flt: EventFilter, *, limit: int = 200, gaps: GapWatch | None = None
    ) -> Batch:
        """The events after `last_id` that `flt` lets through, up to the first hole that may
        still fill (see the module's docstring). Pass the stream's own `gaps` between reads."""
        watch = gaps if gaps is not None else GapWatch()
        with self.db.read() as s:
            seen = s.execute(
                select(Event.id, Event.created_at)
                .where(Event.id > last_id)
                .order_by(Event.id)
                .limit(SCAN_IDS)
            ).all()
            safe, stalled = self._safe_through(last_id, seen, watch)
            rows: Collection[Event] = []
            if safe > last_id:
                rows = s.scalars(
                    select(Event)
                    .where(Event.id > last_id, Event.id <= safe, *flt.where())
                    .order_by(Event.id)
                    .limit(limit)
                ).all()
        events = [StreamedEvent(e.id, e.type, dict(e.data)) for e in rows]
        if len(events) == limit:
            cursor, more = events[-1].id, True
        else:
            cursor, more = safe, len(seen) == SCAN_IDS and not stalled
        watch.forget_through(cursor)
        return Batch(events, cursor, more)

    def _safe_through(self, last_id: int, seen: Collection[Any], watch: GapWatch) -> tuple[int, bool]:
        """The highest id up to which every id is either present or a hole that is over; and
        whether a hole that may still fill stopped the walk."""
        now = utcnow()
        safe = last_id
        for event_id, created_at in seen:
            if event_id != safe + 1 and not self._hole_is_over(safe + 1, created_at, now, watch):
                return safe, True
            safe = event_id
        return safe, False

    def _hole_is_over(self, missing: int, next_created: datetime, now: datetime, watch: GapWatch) -> bool:
        written_ago = (now - next_created).total_seconds()
        return written_ago > self.grace or watch.age(missing) > self.grace

    def latest_id(self) -> int:
        with self.db.read() as s:
            return int(s.scalar(select(func.max(Event.id))) or 0)

    def prune(self, keep_days: int) -> int:
        """Delete events older than `keep_days` (a bounded batch); how many went. A stream
        resuming from before them goes on from the oldest kept."""
        cutoff = utcnow() - timedelta(days=keep_days)
        old = select(Event.id).where(Event.created_at < cutoff).order_by(Event.id).limit(PRUNE_BATCH)
        with self.db.write() as s:
            return rowcount(s.execute(delete(Event).where(Event.id.in_(old.scalar_subquery()))))

"""Reading and moving generation rows: every change is a compare-and-set on the status.

A step re-reads its row and changes it only if the row still holds the state the step started
from, so a task that runs twice, late, or after a crash does no harm. The lease (`lease_until`)
is how long a worker may hold a row before reconcile takes it back.

A move that changes the status records its event (`events.STATUS_EVENTS`) in the same
transaction, so every status change is in the event log exactly once, whichever process made it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, CursorResult, or_, update
from sqlalchemy.orm import Session

from mediagen.config import Settings
from mediagen.db.base import utcnow
from mediagen.db.session import Database
from mediagen.generations.events import STATUS_EVENTS, record_event
from mediagen.generations.state import PROVIDER_RANK
from mediagen.generations.tables import Generation
from mediagen.vocabulary import ACTIVE, Status

log = logging.getLogger("mediagen.pipeline")


def rowcount(result: Any) -> int:
    """Rows an UPDATE/DELETE touched (`Session.execute` is typed as returning a plain Result)."""
    return int(result.rowcount) if isinstance(result, CursorResult) else 0


class Rows:
    def __init__(self, settings: Settings, database: Database) -> None:
        self.settings = settings
        self.db = database

    def get(self, gen_id: int) -> Generation | None:
        with self.db.read() as s:
            return s.get(Generation, gen_id)

    def lease(self, seconds: float | None = None) -> datetime:
        return utcnow() + timedelta(seconds=seconds or self.settings.lease_seconds)

    def cas(
        self,
        gen_id: int,
        from_status: Iterable[Status],
        *conditions: ColumnElement[bool],
        session: Session | None = None,
        **values: Any,
    ) -> bool:
        """Set `values` if the row's status is one of `from_status` and every extra condition
        holds; whether it did. In the caller's `session` when given (to commit with more).
        A move to a status the row did not hold records that status's event."""
        return self._move(gen_id, tuple(from_status), conditions, values, session=session, event_data=None)

    def _move(
        self,
        gen_id: int,
        from_status: Iterable[Status],
        conditions: tuple[ColumnElement[bool], ...],
        values: dict[str, Any],
        *,
        session: Session | None,
        event_data: Mapping[str, Any] | None,
    ) -> bool:
        """`cas`, with `event_data` added to the body of the status event. A move that may keep
        the status (processing -> processing) runs as two statements, the changing one first, so
        the event is raised only by the statement that really changed it (no read-then-write
        race between processes)."""
        if session is None:
            with self.db.write() as s:
                return self._move(gen_id, from_status, conditions, values, session=s, event_data=event_data)
        sources = tuple(Status(f) for f in from_status)
        stmt = (
            update(Generation)
            .where(Generation.id == gen_id, *conditions)
            .values(updated_at=utcnow(), **values)
        )
        if "status" not in values:
            return bool(rowcount(session.execute(stmt.where(Generation.status.in_(sources)))))
        new = Status(values["status"])
        moving = tuple(f for f in sources if f != new)
        if moving and rowcount(session.execute(stmt.where(Generation.status.in_(moving)))):
            record_event(session, gen_id, STATUS_EVENTS[new], dict(event_data or {}))
            return True
        return new in sources and bool(rowcount(session.execute(stmt.where(Generation.status == new))))

    def claim(self, gen_id: int, owner: str, *, session: Session) -> bool:
        """Take a pending row, or a processing one whose lease ran out (its worker died), for
        `owner`; counts an attempt. Only taking a pending row is a status move (and an event)."""
        now = utcnow()
        return self.cas(
            gen_id,
            (Status.PENDING, Status.PROCESSING),
            Generation.provider_ref.is_(None),
            or_(Generation.status == Status.PENDING, Generation.lease_until < now),
            session=session,
            status=Status.PROCESSING,
            attempts=Generation.attempts + 1,
            lease_until=self.lease(),
            lease_owner=owner,
        )

    def finish(
        self,
        gen_id: int,
        status: Status,
        *conditions: ColumnElement[bool],
        session: Session | None = None,
        event_data: Mapping[str, Any] | None = None,
        **values: Any,
    ) -> bool:
        """Move an active row to a terminal `status`: nothing outstanding (lease, poll) stays.
        The event carries `event_data`, and the error of a failed or canceled row."""
        done: dict[str, Any] = {
            "completed_at": utcnow(),
            "lease_until": None,
            "next_poll_at": None,
            "progress_note": None,
        }
        if values.get("error") is not None:
            event_data = {**(event_data or {}), "error": values["error"]}
        return self._move(
            gen_id,
            ACTIVE,
            conditions,
            {"status": status, **done, **values},
            session=session,
            event_data=event_data,
        )

    def fail(self, gen_id: int, error: str, **values: Any) -> bool:
        ok = self.finish(gen_id, Status.FAILED, error=error, **values)
        if ok:
            log.info("generation %s failed: %s", gen_id, error)
        return ok

    @staticmethod
    def provider_earlier_than(new: str) -> ColumnElement[bool]:
        """The row's provider state is still before `new`: a "start" webhook handled concurrently
        with "completed" (they arrive together) must not overwrite "succeeded"."""
        earlier = [
            name
            for name, rank in PROVIDER_RANK.items()
            if name is not None and rank < PROVIDER_RANK.get(new, -1)
        ]
        return or_(Generation.provider_status.is_(None), Generation.provider_status.in_(earlier))

    def cas_provider(self, gen_id: int, new: str, **values: Any) -> bool:
        """Set provider state only if the row still holds an earlier one."""
        return self.cas(gen_id, ACTIVE, self.provider_earlier_than(new), **values)

"""Reading and moving generation rows: every change is a compare-and-set on the status.

A step re-reads its row and changes it only if the row still holds the state the step started
from, so a task that runs twice, late, or after a crash does no harm. The lease (`lease_until`)
is how long a worker may hold a row before reconcile takes it back.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, CursorResult, or_, update
from sqlalchemy.orm import Session

from mediagen.config import Settings
from mediagen.db.base import utcnow
from mediagen.db.session import Database
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
        holds; whether it did. In the caller's `session` when given (to commit with more)."""
        stmt = (
            update(Generation)
            .where(Generation.id == gen_id, Generation.status.in_(tuple(from_status)), *conditions)
            .values(updated_at=utcnow(), **values)
        )
        if session is not None:
            return bool(rowcount(session.execute(stmt)))
        with self.db.write() as s:
            return bool(rowcount(s.execute(stmt)))

    def finish(
        self,
        gen_id: int,
        status: Status,
        *conditions: ColumnElement[bool],
        session: Session | None = None,
        **values: Any,
    ) -> bool:
        """Move an active row to a terminal `status`: nothing outstanding (lease, poll) stays."""
        done: dict[str, Any] = {
            "completed_at": utcnow(),
            "lease_until": None,
            "next_poll_at": None,
            "progress_note": None,
        }
        return self.cas(gen_id, ACTIVE, *conditions, session=session, status=status, **done, **values)

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

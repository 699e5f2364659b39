"""The event log: every change of a generation, written in the transaction that makes it.

Writing the event beside the change (an outbox) is what lets a stream in another process see
exactly what happened, in order, and resume from `Last-Event-ID` without a gap or a duplicate:
there is no moment where the change is committed and its event is not. `event_stream.py` reads
the log back.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from mediagen.db.base import utcnow
from mediagen.generations.tables import Event, Generation
from mediagen.vocabulary import Status


class EventType(StrEnum):
    CREATED = "generation.created"
    PENDING = "generation.pending"  # back in the queue (a retry after an engine or worker failure)
    PROCESSING = "generation.processing"  # a worker claimed it
    PROGRESS = "generation.progress"  # at most a few a second, from the running engine
    COMPLETED = "generation.completed"
    FAILED = "generation.failed"
    CANCELED = "generation.canceled"
    UPDATED = "generation.updated"  # title, notes, tags, star, rating, filing
    REVIEW = "generation.review"  # review status moved
    COMMENTED = "generation.commented"
    DELETED = "generation.deleted"


# The event a move *into* each status raises (`leases.Rows.cas` emits it when the status changed).
STATUS_EVENTS: dict[Status, EventType] = {
    Status.PENDING: EventType.PENDING,
    Status.PROCESSING: EventType.PROCESSING,
    Status.COMPLETED: EventType.COMPLETED,
    Status.FAILED: EventType.FAILED,
    Status.CANCELED: EventType.CANCELED,
}


def record_event(
    s: Session, gen_id: int, type_: EventType, data: dict[str, Any] | None = None
) -> Event | None:
    """Append one event for `gen_id` inside the caller's transaction; None if the row is gone.

    Call it after the change in the same transaction: the body is read from the row as changed.
    The per-generation `seq` comes from bumping `generations.event_seq` with UPDATE … RETURNING:
    the row lock orders concurrent writers of one generation, in any process. `updated_at` is
    left as it was (an event is not an edit). A `deleted` event must be recorded before the
    row's DELETE (it reads the row).
    """
    bumped = s.execute(
        update(Generation)
        .where(Generation.id == gen_id)
        .values(event_seq=Generation.event_seq + 1, updated_at=Generation.updated_at)
        .returning(
            Generation.event_seq,
            Generation.kind,
            Generation.client_id,
            Generation.campaign_id,
            Generation.take_group,
            Generation.status,
            Generation.progress,
            Generation.review_status,
        )
        .execution_options(synchronize_session=False)
    ).first()
    if bumped is None:
        return None
    seq, kind, client_id, campaign_id, take_group, status, progress, review_status = bumped
    body = {
        "status": status,
        "progress": 1.0 if status == Status.COMPLETED else progress,
        "review_status": review_status,
        "client_id": client_id,
        "campaign_id": campaign_id,
        "take_group": take_group,
        **(data or {}),
        "kind": kind,
        "id": gen_id,
        "seq": seq,
    }
    event = Event(
        generation_id=gen_id,
        kind=kind,
        client_id=client_id,
        seq=seq,
        type=str(type_),
        data=body,
        created_at=utcnow(),
    )
    s.add(event)
    s.flush()
    return event

"""Live progress: the event log as Server-Sent Events (`GET /api/events`).

One stream per browser tab or CLI wait. It reads the database (the log is the source of truth,
so an event raised in a worker process reaches a stream served by any API process) every
`events_poll_seconds`, on the thread pool so the event loop never waits on a query. The
principal is looked up again every few polls: a revoked key or ended session stops the stream,
and a narrowed key sees less from then on.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from mediagen.api.deps import PrincipalDep, ServicesDep
from mediagen.api.errors import ERROR_RESPONSES
from mediagen.auth.service import Principal
from mediagen.errors import MediagenError, invalid
from mediagen.generations.event_stream import EventFilter, GapWatch, StreamedEvent
from mediagen.services import Services
from mediagen.vocabulary import MAX_ID, Kind

router = APIRouter(responses=ERROR_RESPONSES, tags=["events"])

HEARTBEAT_SECONDS = 15.0
RECONNECT_MS = 3000  # what EventSource waits before it reconnects (`retry:`)
MAX_IDS = 100
EVENT_ID = r"^[0-9]{1,19}$"

STREAM_DOC = (
    "`text/event-stream`. Each event is `id: <event id>`, `event: <type>` "
    "(`generation.created`, `.pending`, `.processing`, `.progress`, `.completed`, `.failed`, "
    "`.canceled`, `.updated`, `.review`, `.commented`, `.deleted`) and `data: <JSON>` with at least "
    "`kind`, `id`, `status`, `progress`, `review_status`, `client_id`, `campaign_id`, `take_group` "
    "and `seq` (per generation, from 1, +1 per event). A comment line every 15 s keeps proxies from "
    "closing an idle stream. A stream that must stop (revoked key, ended session) sends "
    "`event: stream.closed` first."
)


# One event of the stream, as SSE clients parse it (`data` is a JSON document as text).
SSE_EVENT = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "pattern": EVENT_ID},
        "event": {"type": "string"},
        "data": {"type": "string", "contentMediaType": "application/json"},
        "retry": {"type": "integer"},
    },
}


def _ids(raw: str | None) -> frozenset[int] | None:
    if raw is None:
        return None
    parts = [p.strip() for p in raw.split(",") if p.strip()]
    if not parts or len(parts) > MAX_IDS:
        raise invalid("ids", f"give 1 to {MAX_IDS} comma-separated asset ids")
    if not all(p.isdigit() and 1 <= int(p) <= MAX_ID for p in parts):
        raise invalid("ids", "asset ids are positive whole numbers, comma-separated")
    return frozenset(int(p) for p in parts)


def _frame(event: StreamedEvent) -> str:
    data = json.dumps(event.data, separators=(",", ":"), default=str)
    return f"id: {event.id}\nevent: {event.type}\ndata: {data}\n\n"


def _principal_again(services: Services, api_key: str | None, session_token: object) -> Principal | None:
    """The caller as the database says now (cached for about a second, like every request)."""
    try:
        if api_key:
            return services.auth.authenticate_key(api_key)
        if session_token:
            return services.auth.principal_for_session_token(session_token)
    except MediagenError:  # an expired key says why; for a stream it is simply over
        return None
    return None


@router.get(
    "/api/events",
    response_class=StreamingResponse,
    summary="Follow changes of generations live (Server-Sent Events)",
    responses={200: {"content": {"text/event-stream": {"schema": SSE_EVENT}}, "description": STREAM_DOC}},
)
async def stream_events(
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
    resume: Annotated[
        str | None,
        Header(
            alias="Last-Event-ID",
            pattern=EVENT_ID,
            description="The id of the last event received: the stream goes on right after it "
            "(EventSource sends it by itself when it reconnects)",
        ),
    ] = None,
    last_event_id: Annotated[
        int | None, Query(ge=0, le=MAX_ID, description="`Last-Event-ID` for clients that cannot set headers")
    ] = None,
    since: Annotated[
        int | None,
        Query(ge=0, le=MAX_ID, description="Start after this event id; 0 replays every event still kept"),
    ] = None,
    kind: Annotated[Kind | None, Query(description="Only assets of this kind")] = None,
    ids: Annotated[
        str | None,
        Query(max_length=2000, description=f"Only these assets: up to {MAX_IDS} comma-separated ids"),
    ] = None,
    take_group: Annotated[
        str | None, Query(min_length=1, max_length=32, description="Only the takes of this group")
    ] = None,
    max_seconds: Annotated[
        float | None,
        Query(
            gt=0, le=86400, description="End the stream after this long (scripts and tests); default never"
        ),
    ] = None,
) -> StreamingResponse:
    """Changes of every asset this key or session may see, as they happen, in order and each
    once. Without `Last-Event-ID`, `last_event_id` or `since` the stream starts now (events of
    the last two seconds may come again, so none committing at that moment is missed: after
    connecting, read the assets you follow once and then apply events). Resuming after an event
    id gives every later event still kept (`events_keep_days`), without a gap or a duplicate."""
    flt = EventFilter(
        clients=principal.clients,
        kinds=frozenset({str(kind)}) if kind is not None else None,
        ids=_ids(ids),
        take_group=take_group,
    )
    start = int(resume) if resume is not None else last_event_id if last_event_id is not None else since
    if start is not None and start > MAX_ID:
        raise invalid("Last-Event-ID", f"an event id is at most {MAX_ID}")
    events = services.events
    if start is None:
        cursor = await run_in_threadpool(events.start_cursor)
    else:
        # A database restored from a backup has lower ids than a browser last saw: go on from
        # its newest event rather than wait for the ids to catch up.
        cursor = min(start, await run_in_threadpool(events.latest_id))
    session = request.scope.get("session") or {}
    credentials = (request.headers.get("x-api-key"), session.get("sid"))
    return StreamingResponse(
        _stream(request, services, flt, cursor, credentials, max_seconds),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _stream(
    request: Request,
    services: Services,
    flt: EventFilter,
    cursor: int,
    credentials: tuple[str | None, object],
    max_seconds: float | None,
) -> AsyncIterator[str]:
    """Polls the log and yields SSE frames until the client goes, the deadline passes or the
    caller loses access. A send to a closed connection would notice the client is gone only at
    the next event or heartbeat, so each poll asks the server first."""
    poll = services.settings.events_poll_seconds
    recheck_every = max(1.0, 2 * poll)
    gaps = GapWatch()
    started = last_sent = last_check = time.monotonic()
    yield f"retry: {RECONNECT_MS}\n: connected\n\n"
    while not await request.is_disconnected():
        batch = await run_in_threadpool(services.events.events_after, cursor, flt, gaps=gaps)
        cursor = batch.cursor
        if batch.events:
            yield "".join(_frame(e) for e in batch.events)
            last_sent = time.monotonic()
        now = time.monotonic()
        if max_seconds is not None and now - started >= max_seconds:
            return
        if now - last_check >= recheck_every:
            last_check = now
            principal = await run_in_threadpool(_principal_again, services, *credentials)
            if principal is None:
                yield 'event: stream.closed\ndata: {"reason":"unauthenticated"}\n\n'
                return
            flt = replace(flt, clients=principal.clients)
        if now - last_sent >= HEARTBEAT_SECONDS:
            yield ": keep-alive\n\n"
            last_sent = now
        if not batch.more:
            await asyncio.sleep(
                poll if max_seconds is None else min(poll, max(0.0, started + max_seconds - now))
            )

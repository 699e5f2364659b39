"""A lean path for the busiest byte route: `GET`/`HEAD /api/{audio,images,videos}/{id}/data` with
an API key.

A player seeking through a track asks for many small ranges; through the router and FastAPI's
dependency solving each one cost about 1.5 ms before its first byte, five times what a static file
server takes. This middleware answers that one request shape itself, with the same authorization
(the key as `get_principal` reads it, the row as `GenerationService.get` scopes it) and the same
response (`media.blob_response`: Range, ETag, 304, 416, a presigned redirect). Anything else, and
every answer that is not the bytes (no key, a bad key, not found, not completed, a query string
such as `?download=true`), goes on through the full application, so errors keep one shape and
one place. A completed asset's facts are kept for at most a second, as keys are. It sits inside
the session, security-header and request-limit middleware, so its responses carry the same
headers.
"""

from __future__ import annotations

import re
import time
from typing import NamedTuple

from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from mediagen.api.media import blob_response
from mediagen.auth.service import Principal
from mediagen.errors import MediagenError
from mediagen.generations.tables import Generation
from mediagen.services import Services
from mediagen.vocabulary import KINDS, MAX_ID, Status

_KIND_OF_PATH = {info.path: str(kind) for kind, info in KINDS.items()}
_DATA = re.compile(r"/api/(" + "|".join(map(re.escape, _KIND_OF_PATH)) + r")/([1-9][0-9]{0,9})/data")
_ROW = select(
    Generation.kind, Generation.client_id, Generation.status, Generation.blob_key, Generation.content_type
)


# Like API keys and sessions (auth/service.py), what a completed asset's check reads is kept for
# at most a second: a re-filed or deleted asset is seen by this path within that second.
ROW_CACHE_SECONDS = 1.0
ROW_CACHE_SIZE = 4096


class _Facts(NamedTuple):
    kind: str
    client_id: str | None
    blob_key: str
    content_type: str


class ByteRoutes:
    def __init__(self, app: ASGIApp, *, services: Services) -> None:
        self.app = app
        self.services = services
        self._rows: dict[int, tuple[float, _Facts]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD") and not scope.get("query_string"):
            match = _DATA.fullmatch(scope["path"])
            key = _api_key(scope) if match else None
            if match and key:
                principal = self.services.auth.cached_principal(key)
                if principal is None:
                    principal = await run_in_threadpool(self.services.auth.authenticate_key, key)
                gen_id = int(match[2])
                if principal is not None and gen_id <= MAX_ID:
                    response = await run_in_threadpool(
                        self._bytes, scope, _KIND_OF_PATH[match[1]], gen_id, principal
                    )
                    if response is not None:
                        await response(scope, receive, send)
                        return
        await self.app(scope, receive, send)

    def _row(self, gen_id: int) -> _Facts | None:
        """What the check needs of a completed asset: from a cache of at most a second (a player
        seeking asks for the same asset many times a second), else one lean query."""
        now = time.monotonic()
        cached = self._rows.get(gen_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        with self.services.db.read_engine.connect() as conn:
            row = conn.execute(_ROW.where(Generation.id == gen_id)).first()
        if row is None or row.status != Status.COMPLETED or not row.blob_key:
            return None  # not cached: what is not yet complete changes
        facts = _Facts(row.kind, row.client_id, row.blob_key, row.content_type or "application/octet-stream")
        if len(self._rows) >= ROW_CACHE_SIZE:
            self._rows.clear()
        self._rows[gen_id] = (now + ROW_CACHE_SECONDS, facts)
        return facts

    def _bytes(self, scope: Scope, kind: str, gen_id: int, principal: Principal) -> Response | None:
        """The bytes' response, or None for anything the full route should answer."""
        row = self._row(gen_id)
        if row is None or row.kind != kind or not principal.can_see_client(row.client_id):
            return None
        try:
            return blob_response(
                Request(scope), self.services.store, row.blob_key, content_type=row.content_type
            )
        except MediagenError:
            return None  # bytes missing or unreadable: the full route says so, in one shape


def _api_key(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"x-api-key":
            return value.decode("latin-1") or None
    return None

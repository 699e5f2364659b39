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

The answer is made in the thread pool (the row lookup, the index's `stat` and the read block),
except when nothing it needs can wait: the key and the asset's facts are cached, the store is
`fs` and this path holds the blob's file open (opened by an earlier answer in the thread pool,
kept for at most a second like the facts), and the page cache holds every byte asked for
(`media.cached_blob_response`). Then it is answered on the event loop, the bytes sent straight
from the cached pages: for a 1 MiB seek the thread hop and the read's copy were a third of the
request's time (bench/stream.py). A cold disk, a large body, an uncached key or another store
still goes through the thread pool, so the loop does not wait on the disk or the database.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from typing import BinaryIO, NamedTuple

from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from mediagen.api.media import blob_response, cached_blob_response
from mediagen.auth.service import Principal
from mediagen.errors import MediagenError
from mediagen.generations.tables import Generation
from mediagen.services import Services
from mediagen.storage.base import BlobInfo
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
# Files held open for answers on the event loop: the blobs being played right now.
FILE_CACHE_SIZE = 64


class _Facts(NamedTuple):
    kind: str
    client_id: str | None
    blob_key: str
    content_type: str


class _OpenBlob:
    """An `fs` blob's file held open, with the index's word on the blob, until `expires`.

    Closed when the last reference goes, not by whoever drops it from the cache: an answer on
    the loop still mapping it keeps it open, so a file is never closed under a read (nor its
    number reused for another file), whichever thread replaces or clears the entry. The bytes
    behind a key never change; holding the file for a second after its blob was deleted serves
    what the row cache would serve too (the asset as it was within that second).
    """

    __slots__ = ("_handle", "expires", "fd", "info")

    def __init__(self, handle: BinaryIO, info: BlobInfo, expires: float) -> None:
        self._handle = handle
        self.fd = handle.fileno()
        self.info = info
        self.expires = expires

    def __del__(self) -> None:
        self._handle.close()


class ByteRoutes:
    def __init__(self, app: ASGIApp, *, services: Services) -> None:
        self.app = app
        self.services = services
        self._rows: dict[int, tuple[float, _Facts]] = {}
        self._files: dict[str, _OpenBlob] = {}
        self._open_file: Callable[[str], BinaryIO] | None = getattr(services.store, "open_file", None)

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
                    kind = _KIND_OF_PATH[match[1]]
                    response = self._bytes_now(scope, kind, gen_id, principal)
                    if response is None:
                        response = await run_in_threadpool(self._bytes, scope, kind, gen_id, principal)
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

    def _bytes_now(self, scope: Scope, kind: str, gen_id: int, principal: Principal) -> Response | None:
        """The bytes' response made on the event loop from what is cached and the page cache, or
        None where any of it could wait (then `_bytes` answers, in the thread pool)."""
        now = time.monotonic()
        cached = self._rows.get(gen_id)
        if cached is None or cached[0] <= now:
            return None
        row = cached[1]
        if row.kind != kind or not principal.can_see_client(row.client_id):
            return None  # `_bytes` sees the same and hands the request on to the full route
        held = self._files.get(row.blob_key)
        if held is None or held.expires <= now:
            return None
        return cached_blob_response(Request(scope), held.info, held.fd, content_type=row.content_type)

    def _bytes(self, scope: Scope, kind: str, gen_id: int, principal: Principal) -> Response | None:
        """The bytes' response, or None for anything the full route should answer."""
        row = self._row(gen_id)
        if row is None or row.kind != kind or not principal.can_see_client(row.client_id):
            return None
        try:
            response = blob_response(
                Request(scope), self.services.store, row.blob_key, content_type=row.content_type
            )
        except MediagenError:
            self._files.pop(row.blob_key, None)
            return None  # bytes missing or unreadable: the full route says so, in one shape
        self._hold(row.blob_key)
        return response

    def _hold(self, key: str) -> None:
        """Keep the blob's file open for `_bytes_now` (a thread-pool call: it asks the index and
        opens the file), unless it is held already or the store has no files."""
        now = time.monotonic()
        held = self._files.get(key)
        if self._open_file is None or (held is not None and held.expires > now):
            return
        self._files.pop(key, None)
        info = self.services.store.stat(key)
        if info is None:
            return
        try:
            handle = self._open_file(key)
        except (MediagenError, OSError):
            return
        if os.fstat(handle.fileno()).st_size != info.size:
            handle.close()  # damaged on disk: the thread pool's read reports it, every time
            return
        if len(self._files) >= FILE_CACHE_SIZE:
            self._files.clear()
        self._files[key] = _OpenBlob(handle, info, now + ROW_CACHE_SECONDS)


def _api_key(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"x-api-key":
            return value.decode("latin-1") or None
    return None

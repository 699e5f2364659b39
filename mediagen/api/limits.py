"""Limits on what a request may bring: the body-size guard, the early key check, and the bounded
path and query parameters every router declares.

`RequestLimits` is a pure ASGI middleware. It answers 413 as soon as a body is known to be over its
cap: at once from `Content-Length`, or at the first chunk past the cap when the body streams in
without one, so an oversized body is never read whole. The cap depends on the route: the file
uploads, `PUT /api/blobs` and the provider webhooks keep their own larger caps, everything else
(JSON and form bodies) gets `Settings.max_request_body_bytes`.

It also checks the caller before a body sent to `/api/` is read at all. FastAPI reads and parses a
route's body before it resolves the route's dependencies, so without this an unauthenticated
client could make the server read and parse a body for every request it sends only to be told 401
afterwards. The check is `deps.get_principal` itself (the same key cache, session and CSRF rules,
and the same 401/403 bodies), so it cannot drift from what the routes enforce. Only requests that
carry a body pay for it (a cache hit for a known key); the provider webhooks are exempt (they
prove themselves with a signature or a token, which the route checks).
"""

from __future__ import annotations

from typing import Annotated, Final

from fastapi import Path, Query
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mediagen.api.deps import get_principal
from mediagen.api.errors import error_response
from mediagen.config import Settings
from mediagen.errors import MediagenError
from mediagen.services import Services
from mediagen.vocabulary import KINDS, MAX_ID, Kind

# The largest offset or count a database can take (a signed 64-bit BIGINT); handing a larger
# number to the driver raises OverflowError deep down. Ids have their own, lower bound (MAX_ID).
MAX_INT64: Final = 2**63 - 1
MAX_ID_LENGTH: Final = 64  # client, campaign and brief ids (`campaigns.schemas.ID_PATTERN`)
MAX_FILTER_LENGTH: Final = 200

GenId = Annotated[int, Path(ge=1, le=MAX_ID, description="The item's id")]
Limit = Annotated[int, Query(ge=1, le=100, description="Page size (1–100)")]
Offset = Annotated[int, Query(ge=0, le=MAX_INT64, description="Rows to skip")]
RecordId = Annotated[str, Path(min_length=1, max_length=MAX_ID_LENGTH, description="The record's id")]
# List filters: an empty value means "any", as it always has.
IdFilter = Annotated[str | None, Query(max_length=MAX_ID_LENGTH, description="Only items filed here")]
# Where a new asset is filed: an id, never empty (an empty id names no record).
FilingRef = Annotated[
    str | None, Query(min_length=1, max_length=MAX_ID_LENGTH, description="File the asset here")
]

MAX_WEBHOOK_BYTES: Final = 16 * 1024 * 1024  # a prediction event may carry its outputs inline
UPLOAD_PATHS: Final = frozenset(f"/api/{info.path}/upload" for info in KINDS.values())
WEBHOOK_PREFIX: Final = "/api/webhooks/"


def blob_upload_limit(settings: Settings) -> int:
    """The largest blob an operator may upload (`PUT /api/blobs`): the largest any asset may be."""
    return max(settings.max_upload_bytes, *(settings.max_download_bytes(kind) for kind in Kind))


def body_limit(settings: Settings, method: str, path: str) -> int:
    """The most bytes a request to `method path` may send."""
    if method == "POST" and path in UPLOAD_PATHS:
        return settings.max_upload_bytes
    if method == "PUT" and path.rstrip("/") == "/api/blobs":
        return blob_upload_limit(settings)
    if path.startswith(WEBHOOK_PREFIX):
        return MAX_WEBHOOK_BYTES
    return settings.max_request_body_bytes


def _size(limit: int) -> str:
    if limit >= 2**20 and limit % 2**20 == 0:
        return f"{limit // 2**20} MiB"
    if limit >= 1024 and limit % 1024 == 0:
        return f"{limit // 1024} KiB"
    return f"{limit} bytes"


def too_large(limit: int) -> JSONResponse:
    # `Connection: close`: the rest of the body was not read, so this connection cannot carry more.
    return JSONResponse(
        {"detail": f"Request body too large: at most {_size(limit)} here"},
        status_code=413,
        headers={"Connection": "close"},
    )


# HTTP/1.x, where a request with neither Content-Length nor Transfer-Encoding (or a zero length)
# has no body at all (RFC 9112 §6.3); an HTTP/2 or /3 request may stream one without a length.
_FRAMED_VERSIONS: Final = frozenset({"1.0", "1.1"})


class _BodyTooLarge(Exception):
    """Raised from `receive` at the first chunk past the cap; the middleware answers 413."""


class RequestLimits:
    def __init__(self, app: ASGIApp, *, services: Services) -> None:
        self.app = app
        self.services = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method: str = scope["method"]
        path: str = scope["path"]
        limit = body_limit(self.services.settings, method, path)
        declared, chunked = _framing(scope)
        if declared is not None and (len(declared) > 18 or int(declared) > limit):
            await too_large(limit)(scope, receive, send)
            return
        has_body = chunked or (declared is not None and declared.strip("0") != "")
        if has_body and path.startswith("/api/") and not path.startswith(WEBHOOK_PREFIX):
            refused = await self._unauthenticated(scope)
            if refused is not None:
                await refused(scope, receive, send)
                return
        if not has_body and scope.get("http_version") in _FRAMED_VERSIONS:
            # No body to count (most requests: every GET of bytes): skip the guard's wrappers.
            await self.app(scope, receive, send)
            return
        await self._guarded(scope, receive, send, limit)

    async def _unauthenticated(self, scope: Scope) -> JSONResponse | None:
        """The 401/403 the route would answer, before its body is read; None for a valid caller."""
        request = Request(scope)
        try:
            await get_principal(request, self.services, request.headers.get("x-api-key"))
        except MediagenError as exc:
            return error_response(exc)
        return None

    async def _guarded(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        received = 0
        over = False  # the body passed the cap: whatever the app answers becomes the 413
        started = False
        replaced = False

        async def limited_receive() -> Message:
            nonlocal received, over
            if over:
                raise _BodyTooLarge  # and never read on
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    over = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started, replaced
            if message["type"] == "http.response.start":
                if over:
                    replaced = True
                    await too_large(limit)(scope, receive, send)
                    return
                started = True
            elif replaced:
                return
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            # The route (or the framework reading the body for it) gave up on the raised error.
            if not over or started:
                raise
            if not replaced:
                await too_large(limit)(scope, receive, send)


def _framing(scope: Scope) -> tuple[str | None, bool]:
    """The request's Content-Length as sent (ASCII digits, or None) and whether it is chunked."""
    length: str | None = None
    chunked = False
    for key, value in scope.get("headers", ()):
        name = key.lower()
        if name == b"content-length":
            length = value.decode("latin-1").strip()
            if not (length.isascii() and length.isdigit()):
                length = None
        elif name == b"transfer-encoding":
            chunked = True
    return length, chunked


__all__ = [
    "MAX_FILTER_LENGTH",
    "MAX_ID_LENGTH",
    "MAX_INT64",
    "MAX_WEBHOOK_BYTES",
    "FilingRef",
    "GenId",
    "IdFilter",
    "Limit",
    "Offset",
    "RecordId",
    "RequestLimits",
    "WEBHOOK_PREFIX",
    "blob_upload_limit",
    "body_limit",
]

"""HTTP for blobs: the one response helper every media route uses (uploads: api/uploads.py).

`blob_response` does one index lookup, then reads the body a window (`WINDOW_BYTES`) at a time:
the first window right away, in the route's own thread, so a body that fits (thumbnails, peaks,
a player's seek, a 1 MiB range) is answered with no further thread hop; a larger one streams one
thread hop per window, each window sent as the pieces it was read in (never joined). The `fs`
store hands over its file, read with one `os.pread` per window; the other stores stream their
`open_range` pieces. No database or file read runs on the event loop, provided the helper itself
is called from a plain `def` route (FastAPI runs those in the thread pool), as its lookup and
first read block. Two exceptions, neither of which waits, both sending a window straight from
the file's pages only if the page cache holds all of them (`storage.fs.map_cached`), else
reading it in the thread pool as above: `cached_blob_response` answers on the loop for a caller
that already holds the index facts and the open file (api/byte_path.py), and a large body's
later windows on the fs store are sent that way without a thread hop.

Why not zero-copy (`sendfile`): uvicorn implements neither the ASGI zero-copy nor the path-send
extension, and reaching its socket from a route would mean going around every middleware and
the server's own framing (Content-Length accounting, keep-alive). `os.pread` into the bytes
that are sent costs one copy more than `sendfile`, and measured 0.9-1.1x of nginx's
throughput on the fs store (bench/stream.py). The answer from the loop sends a view of the
mapped pages instead, which spares that copy: the socket write reads the page cache itself.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO, Final, Protocol
from urllib.parse import quote

import anyio.lowlevel
import anyio.to_thread
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from mediagen.errors import not_found
from mediagen.storage.base import BlobCorruptError, BlobInfo, BlobStore
from mediagen.storage.fs import map_cached

IMMUTABLE: Final = "private, max-age=31536000, immutable"

_RANGE_SPEC = re.compile(r"(\d{0,19})-(\d{0,19})")
_TRUE = {"1", "true", "yes", "on"}


class Unsatisfiable(Exception):
    """The Range header asks only for bytes the representation does not have (→ 416)."""


@dataclass(frozen=True, slots=True)
class ByteRange:
    start: int
    end: int  # inclusive

    @property
    def length(self) -> int:
        return self.end - self.start + 1


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The single range to serve, or None to serve the whole body; raises Unsatisfiable (416).

    Serving the whole body is what RFC 9110 §14.2 allows for anything we choose not to honour:
    * several ranges (`bytes=0-1,5-9`): browsers' media elements and download managers send one
      range; multipart/byteranges would cost a second framing layer, a precomputed length and an
      amplification risk (many overlapping ranges of one large blob) for no client we serve;
    * another unit, bad syntax, or a reversed range (`5-1`), which the RFC says to ignore;
    * any Range on an empty blob, whose ranges cannot be expressed as `bytes a-b/0`.
    """
    if not header or size == 0:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes":
        return None
    specs = [part.strip() for part in spec.split(",") if part.strip()]
    if len(specs) != 1:
        return None
    match = _RANGE_SPEC.fullmatch(specs[0])
    if match is None:
        return None
    first, last = match.groups()
    if not first:
        if not last:
            return None
        suffix = int(last)
        if suffix == 0:
            raise Unsatisfiable
        return ByteRange(max(size - suffix, 0), size - 1)
    start = int(first)
    if last and int(last) < start:
        return None
    if start >= size:
        raise Unsatisfiable
    return ByteRange(start, min(int(last), size - 1) if last else size - 1)


def _etag_matches(header: str, etag: str) -> bool:
    """Weak comparison for If-None-Match (RFC 9110 §13.1.2): `W/` is ignored, `*` matches."""
    if header.strip() == "*":
        return True
    target = etag.removeprefix("W/")
    return any(candidate.strip().removeprefix("W/") == target for candidate in header.split(","))


def _content_disposition(filename: str | None, *, attachment: bool) -> str | None:
    if filename is None:
        return "attachment" if attachment else None
    kind = "attachment" if attachment else "inline"
    # An ASCII fallback for old clients plus the exact UTF-8 name (RFC 6266 / RFC 8187);
    # quotes, backslashes and control characters could otherwise break out of the header value.
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in filename) or "download"
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


WINDOW_BYTES: Final = 4 * 1024 * 1024


class _Source(Protocol):
    """A body read one window at a time, in a worker thread (blocking)."""

    done: bool

    def read(self) -> list[bytes]:
        """The next pieces, together about `WINDOW_BYTES` (the last may hold fewer)."""
        ...

    def read_cached(self) -> list[memoryview] | None:
        """The next window as `read` gives it, but only if that cannot wait (every page of it
        cached), so the event loop may take it; else None, and nothing moves."""
        ...

    def close(self) -> None: ...


class _FileSource:
    """A byte range of an open file, one `os.pread` per window: no seek, no buffering layer,
    and no joining (a window is read straight into the bytes object that is sent)."""

    def __init__(self, handle: BinaryIO, key: str, start: int, end: int) -> None:
        self._handle = handle
        self._fd = handle.fileno()
        self._key = key
        self._position = start
        self._end = end
        self.done = start > end

    def read_cached(self) -> list[memoryview] | None:
        # A view of the file's cached pages: no thread hop and no copy into a buffer first (the
        # socket write reads the page cache), which is what a whole download spends most on.
        count = min(WINDOW_BYTES, self._end - self._position + 1)
        view = map_cached(self._fd, self._position, count)
        if view is None:
            return None
        self._advance(count)
        return [view]

    def _advance(self, count: int) -> None:
        self._position += count
        self.done = self._position > self._end

    def read(self) -> list[bytes]:
        count = min(WINDOW_BYTES, self._end - self._position + 1)
        data = os.pread(self._fd, count, self._position)
        if len(data) < count:  # short reads only happen at the end of the file
            pieces = [data]
            got = len(data)
            while got < count:
                more = os.pread(self._fd, count - got, self._position + got)
                if not more:
                    raise BlobCorruptError(f"blob {self._key} is shorter on disk than in the index")
                pieces.append(more)
                got += len(more)
            data = b"".join(pieces)
        self._advance(count)
        return [data]

    def close(self) -> None:
        self._handle.close()


class _PiecesSource:
    """A store's `open_range` pieces, grouped into windows of at least `WINDOW_BYTES`.

    The pieces are handed on as they are: joining them would allocate and copy every byte once
    more, which bounded full downloads (bench/stream.py).
    """

    def __init__(self, pieces: Iterator[bytes]) -> None:
        self._pieces = pieces
        self.done = False

    def read(self) -> list[bytes]:
        window: list[bytes] = []
        held = 0
        for piece in self._pieces:
            window.append(piece)
            held += len(piece)
            if held >= WINDOW_BYTES:
                return window
        self.done = True
        return window

    def read_cached(self) -> None:
        return None  # a store's stream may always wait (a database, a bucket)

    def close(self) -> None:
        close = getattr(self._pieces, "close", None)  # a generator: run its clean-up now
        if close is not None:
            close()


class _PiecesResponse(Response):
    """A body already in memory as a few pieces, sent one after the other.

    Joining them first would allocate and copy the whole body once more; for a 1 MiB range that
    fresh allocation (page faults included) costs as much as reading the bytes. A piece may be
    a read-only `memoryview` of a file's cached pages (`map_cached`): servers write any bytes-like
    body, and making `bytes` of it would be the copy it exists to spare.
    """

    def __init__(
        self,
        pieces: Sequence[bytes | memoryview],
        *,
        status_code: int,
        headers: dict[str, str],
        media_type: str,
    ) -> None:
        self._pieces = pieces
        super().__init__(b"", status_code=status_code, headers=headers, media_type=media_type)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        pieces, self._pieces = self._pieces, ()
        piece: bytes | memoryview = b""
        try:
            await send(
                {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
            )
            last = len(pieces) - 1
            for index, piece in enumerate(pieces):
                await send({"type": "http.response.body", "body": piece, "more_body": index < last})
            if last < 0:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            pieces, piece = (), b""  # a mapped view goes now, not with a cancelled frame (below)


class _WindowedResponse(StreamingResponse):
    """A large body: its first window (read by the route, already in a worker thread), then one
    thread hop per window of a few MiB, each piece sent as read; a window whose pages are all
    cached (`read_cached`, the fs store) is sent from the loop instead, with no hop and no copy.

    Starlette's `StreamingResponse.__call__` stays in charge of the rest: on ASGI servers older
    than spec 2.4 (uvicorn) it listens for the client's disconnect and cancels the stream, so a
    client that goes away stops the reads. A read in flight always finishes before the source
    is closed (thread calls are not abandoned on cancellation).
    """

    def __init__(
        self,
        source: _Source,
        first: Sequence[bytes | memoryview],
        *,
        status_code: int,
        headers: dict[str, str],
        media_type: str,
    ) -> None:
        # Not StreamingResponse.__init__: there is no content iterator to wrap.
        self._source = source
        self._first = first
        self.status_code = status_code
        self.media_type = media_type
        self.background = None
        self.init_headers(headers)

    async def stream_response(self, send: Send) -> None:
        source = self._source
        pieces: Sequence[bytes | memoryview] = self._first
        piece: bytes | memoryview = b""
        self._first = []
        try:
            await send(
                {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
            )
            while True:
                for piece in pieces:
                    await send({"type": "http.response.body", "body": piece, "more_body": True})
                if source.done:
                    break
                pieces = []  # the sent window goes while the next one is read
                cached = source.read_cached()
                if cached is None:
                    pieces = await anyio.to_thread.run_sync(source.read)
                else:
                    pieces, cached = cached, None
                    # A fast client may take every window without the sends ever waiting: yield
                    # once per window so one download cannot hold the loop for all of its body.
                    await anyio.lowlevel.checkpoint()
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            # A view of mapped pages keeps its mapping open, and the mapping a duplicate of the
            # file's descriptor: let go of them now, not whenever a cancelled frame is collected.
            pieces, piece = (), b""
            source.close()


def _open_source(store: BlobStore, key: str, start: int, end: int) -> _Source:
    """How to read [start, end] of a blob: its file where the store has one (fs), else the
    store's own stream."""
    open_file: Callable[[str], BinaryIO] | None = getattr(store, "open_file", None)
    if open_file is None:
        return _PiecesSource(store.open_range(key, start, end))
    return _FileSource(open_file(key), key, start, end)


@dataclass(frozen=True, slots=True)
class _Body:
    """What a blob's answer sends after deciding: the status, its headers and the bytes [start, end]."""

    status: int
    headers: dict[str, str]
    start: int
    end: int


def _decide(
    request: Request,
    info: BlobInfo,
    *,
    content_type: str,
    filename: str | None,
    etag: str | None,
    cache_control: str,
    redirect: Callable[..., str | None] | None,
) -> Response | _Body:
    """Everything `blob_response` decides before it reads a byte: the finished answer (304, 307,
    416, HEAD, an empty body) or the body to read. It reads and waits on nothing, so the answer
    from a file already open (`cached_blob_response`) is decided by the very same code."""
    tag = etag if etag is not None else f'"{info.key}"'
    headers = {"ETag": tag, "Cache-Control": cache_control}

    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None and _etag_matches(if_none_match, tag):
        return Response(status_code=304, headers=headers)

    headers["Accept-Ranges"] = "bytes"
    headers["X-Content-Type-Options"] = "nosniff"
    # Without a query string there is no `download` (and parsing an empty one costs 7 µs).
    attachment = bool(request.scope.get("query_string")) and (
        request.query_params.get("download", "").lower() in _TRUE
    )
    disposition = _content_disposition(filename, attachment=attachment)
    if disposition is not None:
        headers["Content-Disposition"] = disposition

    if redirect is not None:
        # A store that serves its own bytes (S3 with MEDIAGEN_S3_PRESIGN): after the same
        # authorization, the client fetches from the bucket (Range and all) on a short-lived URL.
        url = redirect(info.key, disposition=disposition, content_type=content_type)
        if url is not None:
            return Response(status_code=307, headers={"Location": url, "Cache-Control": "private, no-store"})

    if_range = request.headers.get("if-range")
    range_header = request.headers.get("range")
    if if_range is not None and if_range.strip() != tag:
        # If-Range with another validator (or a date: we send no Last-Modified) means the
        # client's partial copy is stale; the whole current representation is the answer.
        range_header = None
    try:
        byte_range = parse_range(range_header, info.size)
    except Unsatisfiable:
        headers["Content-Range"] = f"bytes */{info.size}"
        return Response(status_code=416, headers=headers)

    status = 200
    start, end = 0, info.size - 1
    if byte_range is not None:
        status = 206
        start, end = byte_range.start, byte_range.end
        headers["Content-Range"] = f"bytes {start}-{end}/{info.size}"
    headers["Content-Length"] = str(end - start + 1)

    if request.method == "HEAD" or start > end:
        return Response(status_code=status, headers=headers, media_type=content_type)
    return _Body(status, headers, start, end)


def blob_response(
    request: Request,
    store: BlobStore,
    key: str,
    *,
    content_type: str,
    filename: str | None = None,
    etag: str | None = None,
    cache_control: str = IMMUTABLE,
) -> Response:
    """Serve a blob with Range (206/416), ETag/If-None-Match (304), HEAD and Content-Length.

    Raises NotFound when the blob does not exist. `etag` defaults to the quoted sha256
    key; the default Cache-Control is safe because the bytes behind a key never change.
    `?download=1` turns the Content-Disposition into `attachment`.
    """
    info = store.stat(key)
    if info is None:
        raise not_found("blob", key)
    body = _decide(
        request,
        info,
        content_type=content_type,
        filename=filename,
        etag=etag,
        cache_control=cache_control,
        redirect=getattr(store, "redirect_url", None),
    )
    if isinstance(body, Response):
        return body
    # The first window is read right here, already in the thread pool: a body that fits in it
    # (thumbnails, peaks, a player's seek) then costs no further thread hop, and a store that
    # cannot read fails before the status line is sent.
    source = _open_source(store, info.key, body.start, body.end)
    try:
        first = source.read()
    except BaseException:
        source.close()
        raise
    if not source.done:
        return _WindowedResponse(
            source, first, status_code=body.status, headers=body.headers, media_type=content_type
        )
    source.close()
    return _PiecesResponse(first, status_code=body.status, headers=body.headers, media_type=content_type)


# Answers from the event loop -------------------------------------------------------------------


def cached_blob_response(request: Request, info: BlobInfo, fd: int, *, content_type: str) -> Response | None:
    """`blob_response` with its defaults, for a blob whose index facts (`info`) the caller holds
    and whose file it holds open (`fd`, the `fs` store's file of `info.key`, `info.size` long):
    the same answer, decided by the same code, without blocking, so it may run on the event loop.

    None when that answer would need a wait: a body larger than one window (those stream from
    the thread pool), or any of it not in the page cache (`map_cached`). The caller then asks
    `blob_response` in the thread pool, which reads it as ever: the loop does not wait on a cold disk.
    """
    body = _decide(
        request,
        info,
        content_type=content_type,
        filename=None,
        etag=None,
        cache_control=IMMUTABLE,
        redirect=None,  # only the fs store hands out files, and it never redirects
    )
    if isinstance(body, Response):
        return body
    count = body.end - body.start + 1
    data = map_cached(fd, body.start, count) if count <= WINDOW_BYTES else None
    if data is None:
        return None
    return _PiecesResponse([data], status_code=body.status, headers=body.headers, media_type=content_type)

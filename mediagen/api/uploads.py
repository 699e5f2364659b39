"""Uploads: a request body streamed into a blob store without buffering it (the bridge from the
event loop, which reads the body, to `store.put`, which blocks in a worker thread)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

from starlette.requests import Request

from mediagen.errors import PayloadTooLarge
from mediagen.storage.base import BlobInfo, BlobStore


class UploadTooLarge(PayloadTooLarge):
    """The request body exceeded the caller's size cap."""


_QUEUE_DEPTH = 4
_COALESCE_BYTES = 1024 * 1024
_DONE = object()


class _QueueReader:
    """The sync side of the bridge: an iterable of byte pieces fed from the event loop.

    It runs in a worker thread (inside `store.put`) and blocks on a bounded asyncio queue, so at
    most `_QUEUE_DEPTH` coalesced pieces (about 4 MiB) are in flight per upload.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[object]) -> None:
        self._loop = loop
        self._queue = queue

    def __iter__(self) -> Iterator[bytes]:
        while True:
            item = asyncio.run_coroutine_threadsafe(self._queue.get(), self._loop).result()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            assert isinstance(item, bytes)
            yield item


async def put_request_body(request: Request, store: BlobStore, *, max_bytes: int) -> BlobInfo:
    """Stream a request body into `store.put` without buffering it (raises UploadTooLarge).

    The event loop reads the body and hands coalesced ~1 MiB pieces through a bounded queue to
    `put` running in a worker thread; backpressure reaches the client through the queue, so a
    fast client cannot make the server hold more than a few MiB. If the client disconnects or
    the cap is crossed, the error is passed to the thread, `put` aborts and drops what it staged.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise UploadTooLarge(f"body of {declared} bytes exceeds the limit of {max_bytes}")

    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[object] = asyncio.Queue(maxsize=_QUEUE_DEPTH)
    worker = asyncio.ensure_future(asyncio.to_thread(store.put, _QueueReader(loop, queue)))

    async def send(item: object) -> None:
        # Either the queue takes the item, or the worker has already finished (usually with an
        # error): never wait on a queue nobody will drain again.
        putter = asyncio.ensure_future(queue.put(item))
        await asyncio.wait({putter, worker}, return_when=asyncio.FIRST_COMPLETED)
        if not putter.done():
            putter.cancel()

    received = 0
    pending = bytearray()
    try:
        async for piece in request.stream():
            received += len(piece)
            if received > max_bytes:
                raise UploadTooLarge(f"body exceeds the limit of {max_bytes} bytes")
            pending += piece
            if len(pending) >= _COALESCE_BYTES:
                await send(bytes(pending))
                pending.clear()
                if worker.done():
                    break
        if pending and not worker.done():
            await send(bytes(pending))
        await send(_DONE)
    except BaseException as exc:
        await send(exc if isinstance(exc, Exception) else RuntimeError("upload cancelled"))
        try:
            await worker
        except Exception:
            pass  # the caller's error is the one that matters
        raise
    return await worker

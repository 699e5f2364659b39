"""The byte path of `blob_response` over real uvicorn, on the fs and db stores: bodies of many
windows streamed window by window, ranges across window edges, the file given back after every
response (also when the client goes away mid-body), and a store that cannot read failing before
the status line rather than with a short body."""

from __future__ import annotations

import hashlib
import os
import random
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response

from mediagen.api import media
from mediagen.api.errors import install_error_handlers
from mediagen.api.media import blob_response
from mediagen.db.base import Base
from mediagen.db.session import Database
from mediagen.storage.db import DbBlobStore
from mediagen.storage.fs import FsBlobStore
from mediagen.storage.index import IndexedBlobStore
from mediagen.storage.tables import Blob, BlobChunk
from tests.api.test_media import ThreadServer

KiB = 1024
MiB = 1024 * KiB
WINDOW = 256 * KiB  # small windows: many of them in a body of a few MiB
SIZE = 5 * MiB + 12345
DATA = random.Random(21).randbytes(SIZE)
KEY = hashlib.sha256(DATA).hexdigest()
BACKENDS = ["fs", "db"]


def _database(path: Path) -> Database:
    database = Database(f"sqlite:///{path / 'blobs.db'}")
    Base.metadata.create_all(database.write_engine, tables=[Blob.__table__, BlobChunk.__table__])
    return database


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, IndexedBlobStore]]:
    fs_dir, db_dir = tmp_path_factory.mktemp("fs"), tmp_path_factory.mktemp("db")
    found: dict[str, IndexedBlobStore] = {
        "fs": FsBlobStore(_database(fs_dir), fs_dir / "blobs"),
        "db": DbBlobStore(_database(db_dir)),
    }
    for store in found.values():
        assert store.put(DATA).key == KEY
    yield found
    for store in found.values():
        store.database.dispose()


@pytest.fixture(scope="module")
def server(stores: dict[str, IndexedBlobStore]) -> Iterator[ThreadServer]:
    app = FastAPI()
    install_error_handlers(app)

    @app.api_route("/{backend}/{key}", methods=["GET", "HEAD"])
    def blob(backend: str, key: str, request: Request) -> Response:
        return blob_response(request, stores[backend], key, content_type="video/mp4")

    with pytest.MonkeyPatch.context() as patch, ThreadServer(app) as running:
        patch.setattr(media, "WINDOW_BYTES", WINDOW)
        yield running


@pytest.fixture
def client(server: ThreadServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as http:
        yield http


def _open_fds_on(path: Path) -> int:
    """How many of this process's file descriptors point at `path` (the server runs in-process)."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == str(path):
                count += 1
        except OSError:
            pass  # closed while we looked
    return count


def _eventually(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_body_of_many_windows_arrives_whole(client: httpx.Client, backend: str) -> None:
    response = client.get(f"/{backend}/{KEY}")
    assert response.status_code == 200
    assert response.headers["content-length"] == str(SIZE)
    assert response.content == DATA


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    ("start", "end"),
    [
        (0, WINDOW - 1),  # exactly one window: answered from the route's thread
        (WINDOW - 1, WINDOW),  # two bytes across the first window's edge
        (WINDOW, 3 * WINDOW + 4),  # a window and a byte past the next two
        (MiB - 3, 4 * MiB + 2),  # across the db store's chunks and batches
        (100, SIZE - 1),  # to the end, not window-aligned
        (SIZE - 10, SIZE - 1),
    ],
)
def test_ranges_across_window_edges(client: httpx.Client, backend: str, start: int, end: int) -> None:
    response = client.get(f"/{backend}/{KEY}", headers={"Range": f"bytes={start}-{end}"})
    assert response.status_code == 206
    assert response.headers["content-range"] == f"bytes {start}-{end}/{SIZE}"
    assert response.content == DATA[start : end + 1]


def test_the_default_window_serves_large_bodies_too(
    client: httpx.Client, stores: dict[str, IndexedBlobStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(media, "WINDOW_BYTES", 4 * MiB)  # the real size: two windows here
    for backend in BACKENDS:
        assert client.get(f"/{backend}/{KEY}").content == DATA
        ranged = client.get(f"/{backend}/{KEY}", headers={"Range": "bytes=1000-"})
        assert ranged.status_code == 206 and ranged.content == DATA[1000:]


def test_the_file_is_closed_after_every_response(
    client: httpx.Client, stores: dict[str, IndexedBlobStore]
) -> None:
    store = stores["fs"]
    assert isinstance(store, FsBlobStore)
    path = store.path_for(KEY)
    assert client.get(f"/fs/{KEY}").content == DATA  # streamed
    assert client.get(f"/fs/{KEY}", headers={"Range": "bytes=0-99"}).content == DATA[:100]  # one window
    assert client.head(f"/fs/{KEY}").status_code == 200
    assert client.get(f"/fs/{KEY}", headers={"If-None-Match": f'"{KEY}"'}).status_code == 304
    assert _eventually(lambda: _open_fds_on(path) == 0)


def test_head_and_304_never_open_the_file(
    client: httpx.Client, stores: dict[str, IndexedBlobStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = stores["fs"]
    opened: list[str] = []
    original = store.open_file  # type: ignore[attr-defined]

    def counting(key: str) -> Any:
        opened.append(key)
        return original(key)

    monkeypatch.setattr(store, "open_file", counting)
    assert client.head(f"/fs/{KEY}", headers={"Range": "bytes=0-9"}).status_code == 206
    assert client.get(f"/fs/{KEY}", headers={"If-None-Match": "*"}).status_code == 304
    assert client.get(f"/fs/{KEY}", headers={"Range": f"bytes={SIZE}-"}).status_code == 416
    assert opened == []
    assert client.get(f"/fs/{KEY}", headers={"Range": "bytes=0-9"}).content == DATA[:10]
    assert opened == [KEY]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_client_gone_mid_body_stops_the_reads(
    server: ThreadServer, stores: dict[str, IndexedBlobStore], backend: str
) -> None:
    big = random.Random(5).randbytes(48 * MiB)
    store = stores[backend]
    key = store.put(big).key
    reads: list[int] = []
    sources = (media._FileSource, media._PiecesSource)
    originals = {cls: cls.read for cls in sources}

    def counted(cls: Any) -> Callable[..., list[bytes]]:
        def read(self: Any) -> list[bytes]:
            reads.append(1)
            return originals[cls](self)

        return read

    def counted_cached(self: Any) -> list[memoryview] | None:
        pieces = original_cached(self)
        if pieces is not None:
            reads.append(1)
        return pieces

    original_cached = media._FileSource.read_cached
    with pytest.MonkeyPatch.context() as patch:
        for cls in sources:
            patch.setattr(cls, "read", counted(cls))
        patch.setattr(media._FileSource, "read_cached", counted_cached)  # windows sent from the loop
        with socket.create_connection(("127.0.0.1", server.port)) as sock:
            sock.sendall(f"GET /{backend}/{key} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            received = 0
            while received < 2 * MiB:
                piece = sock.recv(256 * KiB)
                assert piece, "the server ended the body early"
                received += len(piece)
        deadline = time.monotonic() + 10
        while not _quiet(reads) and time.monotonic() < deadline:
            pass
    # One read per window (fs), or per 1 MiB chunk (db, whose chunks are larger than WINDOW).
    # Socket buffers hold a few MiB at most: most of the blob must never have been read.
    total = len(big) // (WINDOW if backend == "fs" else MiB)
    assert len(reads) < total // 2, f"{len(reads)} of {total} reads happened after the client left"
    if isinstance(store, FsBlobStore):
        assert _eventually(lambda: _open_fds_on(store.path_for(key)) == 0)
    with httpx.Client(base_url=server.url, timeout=30) as http:  # and the server carries on
        assert http.get(f"/{backend}/{key}", headers={"Range": "bytes=5-9"}).content == big[5:10]


def _count_reads(patch: pytest.MonkeyPatch, cached_every: int | None = None) -> dict[str, int]:
    """Count the fs source's windows by where they were read: "thread" (`read`, in the thread
    pool) or "loop" (`read_cached`). With `cached_every`, only every n-th cached read is allowed
    to find its pages (as if the others had been evicted)."""
    counts = {"thread": 0, "loop": 0, "asked": 0}
    read, read_cached = media._FileSource.read, media._FileSource.read_cached

    def in_thread(self: Any) -> list[bytes]:
        counts["thread"] += 1
        return read(self)

    def on_loop(self: Any) -> list[memoryview] | None:
        counts["asked"] += 1
        if cached_every is not None and counts["asked"] % cached_every:
            return None
        pieces = read_cached(self)
        counts["loop"] += pieces is not None
        return pieces

    patch.setattr(media._FileSource, "read", in_thread)
    patch.setattr(media._FileSource, "read_cached", on_loop)
    return counts


def test_cached_windows_of_a_large_body_are_sent_from_the_loop(
    client: httpx.Client, stores: dict[str, IndexedBlobStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = stores["fs"]
    assert isinstance(store, FsBlobStore)
    store.path_for(KEY).read_bytes()  # every page cached
    counts = _count_reads(monkeypatch)
    assert client.get(f"/fs/{KEY}").content == DATA
    windows = -(-SIZE // WINDOW)
    # The route reads the first window in its own thread; every later one is a view of the pages.
    assert counts == {"thread": 1, "loop": windows - 1, "asked": windows - 1}
    start = WINDOW + 7
    ranged = client.get(f"/fs/{KEY}", headers={"Range": f"bytes={start}-"})
    assert ranged.status_code == 206 and ranged.content == DATA[start:]


def test_windows_not_cached_are_read_in_the_thread_pool_between_cached_ones(
    client: httpx.Client, stores: dict[str, IndexedBlobStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    counts = _count_reads(monkeypatch, cached_every=3)
    start = 3 * WINDOW - 5  # not window-aligned: every view starts mid-page
    response = client.get(f"/fs/{KEY}", headers={"Range": f"bytes={start}-"})
    assert response.content == DATA[start:]
    later = -(-(SIZE - start) // WINDOW) - 1  # the windows after the route's first
    assert counts["asked"] == later
    assert counts["loop"] == later // 3 and counts["thread"] == 1 + later - later // 3


def _quiet(reads: list[int]) -> bool:
    """True when no read happened in the last 0.5 s."""
    before = len(reads)
    time.sleep(0.5)
    return len(reads) == before


def test_a_missing_file_fails_before_the_status_line(
    client: httpx.Client, stores: dict[str, IndexedBlobStore]
) -> None:
    store = stores["fs"]
    assert isinstance(store, FsBlobStore)
    lost = random.Random(8).randbytes(3 * WINDOW)
    key = store.put(lost).key
    store.path_for(key).unlink()  # the index still has the row: damage, not absence
    assert client.head(f"/fs/{key}").status_code == 200  # HEAD reads no bytes
    response = client.get(f"/fs/{key}")
    assert response.status_code == 500  # an error body, never a 200 that breaks off
    assert response.headers["content-type"].startswith("application/json")


def test_a_file_shorter_than_its_index_row_is_an_error(
    client: httpx.Client, stores: dict[str, IndexedBlobStore]
) -> None:
    store = stores["fs"]
    assert isinstance(store, FsBlobStore)
    data = random.Random(9).randbytes(3 * WINDOW)
    key = store.put(data).key
    os.truncate(store.path_for(key), 2 * WINDOW)
    # Short inside the first window (read before the status line): an error response.
    assert client.get(f"/fs/{key}", headers={"Range": f"bytes={2 * WINDOW - 10}-"}).status_code == 500
    # Short in a later window: the body breaks off, and the client can tell.
    with pytest.raises(httpx.RemoteProtocolError):
        client.get(f"/fs/{key}")


@pytest.mark.parametrize("backend", BACKENDS)
def test_stat_on_the_lean_lookup(stores: dict[str, IndexedBlobStore], backend: str) -> None:
    store = stores[backend]
    info = store.stat(KEY)
    assert info is not None and (info.key, info.size) == (KEY, SIZE)
    assert store.stat("0" * 64) is None
    assert store.stat("not-a-key") is None

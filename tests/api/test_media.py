"""HTTP semantics of `blob_response`, the upload bridge and the admin blob router, over real uvicorn."""

from __future__ import annotations

import hashlib
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, get_args

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request, Response

from mediagen.api.errors import install_error_handlers
from mediagen.api.media import (
    ByteRange,
    Unsatisfiable,
    blob_response,
    parse_range,
)
from mediagen.api.uploads import put_request_body
from mediagen.config import Settings
from mediagen.db.base import Base
from mediagen.db.session import Database
from mediagen.storage.db import DbBlobStore
from mediagen.storage.tables import Blob, BlobChunk

MiB = 1024 * 1024
SIZE = 3 * MiB + 4321
DATA = random.Random(7).randbytes(SIZE)
KEY = hashlib.sha256(DATA).hexdigest()


# parse_range --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-0", ByteRange(0, 0)),
        ("bytes=10-19", ByteRange(10, 19)),
        ("bytes=10-", ByteRange(10, 99)),
        ("bytes=-10", ByteRange(90, 99)),
        ("bytes=-1000", ByteRange(0, 99)),
        ("bytes=90-1000", ByteRange(90, 99)),
        ("BYTES = 5-6", ByteRange(5, 6)),  # tolerant of case and stray whitespace
        ("Bytes=5-6", ByteRange(5, 6)),
        ("bytes=0-1,5-9", None),  # several ranges: the whole body
        ("bytes=5-1", None),  # reversed: invalid, ignored
        ("bytes=a-b", None),
        ("bytes=-", None),
        ("items=0-1", None),
        ("", None),
    ],
)
def test_parse_range(header: str, expected: ByteRange | None) -> None:
    assert parse_range(header, 100) == expected


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=100-200", "bytes=-0"])
def test_parse_range_unsatisfiable(header: str) -> None:
    with pytest.raises(Unsatisfiable):
        parse_range(header, 100)


def test_parse_range_on_an_empty_blob_serves_it_whole() -> None:
    assert parse_range("bytes=0-", 0) is None


# A live server ------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ThreadServer:
    """uvicorn on 127.0.0.1 in a background thread, for tests that need real HTTP framing."""

    def __init__(self, app: FastAPI) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ThreadServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def _blob_router_app(store: DbBlobStore, settings: Settings) -> FastAPI:
    """The admin router with its dependencies replaced: the app's own wiring is not under test."""
    from mediagen.api import deps
    from mediagen.api.routes import blobs

    app = FastAPI()
    install_error_handlers(app)
    app.include_router(blobs.router)

    def provide(value: object) -> Callable[[], object]:
        return lambda: value

    for alias, value in ((deps.StoreDep, store), (deps.SettingsDep, settings), (deps.AdminDep, "admin")):
        app.dependency_overrides[get_args(alias)[1].dependency] = provide(value)
    return app


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DbBlobStore]:
    database = Database(f"sqlite:///{tmp_path_factory.mktemp('http') / 'blobs.db'}")
    Base.metadata.create_all(database.write_engine, tables=[Blob.__table__, BlobChunk.__table__])
    store = DbBlobStore(database)
    assert store.put(DATA).key == KEY
    yield store
    database.dispose()


@pytest.fixture(scope="module")
def server(store: DbBlobStore) -> Iterator[ThreadServer]:
    app = FastAPI()
    install_error_handlers(app)

    @app.api_route("/media/{key}", methods=["GET", "HEAD"])
    def media(key: str, request: Request, name: str | None = None) -> Response:
        return blob_response(request, store, key, content_type="audio/mpeg", filename=name)

    @app.put("/media")
    async def upload(request: Request) -> dict[str, Any]:
        info = await put_request_body(request, store, max_bytes=20 * MiB)
        return {"key": info.key, "size": info.size}

    limits = {"max_upload_bytes": 4 * MiB, "max_download_bytes_audio": 4 * MiB}
    limits |= {"max_download_bytes_image": 4 * MiB, "max_download_bytes_video": 6 * MiB}
    app.mount("/admin", _blob_router_app(store, Settings(**limits)))  # type: ignore[arg-type]
    with ThreadServer(app) as running:
        yield running


@pytest.fixture
def client(server: ThreadServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as http:
        yield http


# blob_response -----------------------------------------------------------------------------------


def test_full_body(client: httpx.Client) -> None:
    response = client.get(f"/media/{KEY}")
    assert response.status_code == 200
    assert response.content == DATA
    assert response.headers["content-type"] == "audio/mpeg"
    assert response.headers["content-length"] == str(SIZE)
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["etag"] == f'"{KEY}"'
    assert "immutable" in response.headers["cache-control"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "content-disposition" not in response.headers


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-0", 0, 0),
        (f"bytes={MiB - 1}-{MiB}", MiB - 1, MiB),  # across a chunk boundary
        (f"bytes={MiB}-{2 * MiB - 1}", MiB, 2 * MiB - 1),  # exactly one chunk
        ("bytes=1000-", 1000, SIZE - 1),
        ("bytes=-500", SIZE - 500, SIZE - 1),
        (f"bytes=10-{SIZE + 99}", 10, SIZE - 1),  # end past EOF is clamped
    ],
)
def test_single_ranges(client: httpx.Client, header: str, start: int, end: int) -> None:
    response = client.get(f"/media/{KEY}", headers={"Range": header})
    assert response.status_code == 206
    assert response.content == DATA[start : end + 1]
    assert response.headers["content-range"] == f"bytes {start}-{end}/{SIZE}"
    assert response.headers["content-length"] == str(end - start + 1)


@pytest.mark.parametrize("header", [f"bytes={SIZE}-", f"bytes={SIZE + 5}-{SIZE + 10}", "bytes=-0"])
def test_unsatisfiable_range(client: httpx.Client, header: str) -> None:
    response = client.get(f"/media/{KEY}", headers={"Range": header})
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{SIZE}"


def test_multiple_ranges_get_the_whole_body(client: httpx.Client) -> None:
    response = client.get(f"/media/{KEY}", headers={"Range": "bytes=0-1,10-20"})
    assert response.status_code == 200
    assert response.content == DATA


def test_if_none_match(client: httpx.Client) -> None:
    for header in (f'"{KEY}"', f'"other", W/"{KEY}"', "*"):
        response = client.get(f"/media/{KEY}", headers={"If-None-Match": header})
        assert response.status_code == 304, header
        assert response.content == b""
        assert response.headers["etag"] == f'"{KEY}"'
    assert client.get(f"/media/{KEY}", headers={"If-None-Match": '"other"'}).status_code == 200


def test_if_range(client: httpx.Client) -> None:
    fresh = client.get(f"/media/{KEY}", headers={"Range": "bytes=0-9", "If-Range": f'"{KEY}"'})
    assert fresh.status_code == 206 and fresh.content == DATA[:10]
    stale = client.get(f"/media/{KEY}", headers={"Range": "bytes=0-9", "If-Range": '"old"'})
    assert stale.status_code == 200 and len(stale.content) == SIZE


def test_head(client: httpx.Client) -> None:
    response = client.head(f"/media/{KEY}")
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-length"] == str(SIZE)
    assert response.headers["accept-ranges"] == "bytes"
    ranged = client.head(f"/media/{KEY}", headers={"Range": "bytes=5-9"})
    assert ranged.status_code == 206
    assert ranged.headers["content-length"] == "5"
    assert ranged.headers["content-range"] == f"bytes 5-9/{SIZE}"


def test_content_disposition(client: httpx.Client) -> None:
    inline = client.head(f"/media/{KEY}", params={"name": 'tëst "x".mp3'})
    assert inline.headers["content-disposition"] == (
        "inline; filename=\"t_st _x_.mp3\"; filename*=UTF-8''t%C3%ABst%20%22x%22.mp3"
    )
    attached = client.head(f"/media/{KEY}", params={"name": "a.mp3", "download": "1"})
    assert attached.headers["content-disposition"].startswith('attachment; filename="a.mp3"')


def test_missing_blob_is_404(client: httpx.Client) -> None:
    assert client.get(f"/media/{'0' * 64}").status_code == 404
    assert client.get("/media/not-a-key").status_code == 404


def test_empty_blob(store: DbBlobStore, client: httpx.Client) -> None:
    key = store.put(b"").key
    response = client.get(f"/media/{key}", headers={"Range": "bytes=0-"})
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-length"] == "0"


# Upload bridge ----------------------------------------------------------------------------------


def _slices(data: bytes, step: int) -> Iterator[bytes]:
    for offset in range(0, len(data), step):
        yield data[offset : offset + step]


def test_upload_streams_the_body_into_the_store(client: httpx.Client, store: DbBlobStore) -> None:
    payload = random.Random(11).randbytes(9 * MiB + 3)
    response = client.put("/media", content=_slices(payload, 100_000))  # chunked, no Content-Length
    assert response.status_code == 200
    assert response.json() == {"key": hashlib.sha256(payload).hexdigest(), "size": len(payload)}
    assert b"".join(store.open_range(response.json()["key"], 0, len(payload) - 1)) == payload


# The admin router --------------------------------------------------------------------------------


def test_router_put_get_head_delete(client: httpx.Client, store: DbBlobStore) -> None:
    payload = random.Random(3).randbytes(5 * MiB + 1)
    key = hashlib.sha256(payload).hexdigest()
    created = client.put("/admin/api/blobs", content=_slices(payload, 65536))
    assert created.status_code == 201
    assert created.json() == {"key": key, "size": len(payload)}
    again = client.put("/admin/api/blobs", content=payload)
    assert again.status_code == 201 and again.json()["key"] == key

    got = client.get(f"/admin/api/blobs/{key}", headers={"Range": "bytes=-3"})
    assert got.status_code == 206 and got.content == payload[-3:]
    assert got.headers["content-type"] == "application/octet-stream"
    head = client.head(f"/admin/api/blobs/{key}")
    assert head.status_code == 200 and head.headers["content-length"] == str(len(payload))

    with store.database.write() as session:
        store.attach(session, key)
    assert client.delete(f"/admin/api/blobs/{key}").status_code == 409
    with store.database.write() as session:
        store.release(session, key)
    assert client.delete(f"/admin/api/blobs/{key}").status_code == 204
    assert client.get(f"/admin/api/blobs/{key}").status_code == 404
    assert client.delete(f"/admin/api/blobs/{key}").status_code == 404


def test_router_rejects_malformed_keys(client: httpx.Client) -> None:
    for key in ("abc", "A" * 64, "g" * 64):
        assert client.get(f"/admin/api/blobs/{key}").status_code == 404
        assert client.delete(f"/admin/api/blobs/{key}").status_code == 404


def test_router_caps_upload_size(client: httpx.Client, store: DbBlobStore) -> None:
    before = store.stat(hashlib.sha256(b"x" * (7 * MiB)).hexdigest())
    declared = client.put("/admin/api/blobs", content=b"x" * (7 * MiB))
    assert declared.status_code == 413
    streamed = client.put("/admin/api/blobs", content=_slices(b"x" * (7 * MiB), MiB))
    assert streamed.status_code == 413
    assert before is None and store.stat(hashlib.sha256(b"x" * (7 * MiB)).hexdigest()) is None
    with store.database.read() as session:
        staging = session.query(Blob).filter(Blob.key.like("tmp-%")).count()
    assert staging == 0

"""The lean byte path (api/byte_path.py): an asset's bytes asked for with an API key are answered
without the router, with the same authorization and the same response as the full route; every
other answer (401, 404, 409, a query string) still comes from the full route. On the fs store, a
cached asset whose bytes are in the page cache is answered on the event loop, without the thread
pool, and anything else falls back to it."""

from __future__ import annotations

import ctypes
import io
import mmap
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient

from mediagen.api import byte_path
from mediagen.api.byte_path import ByteRoutes
from mediagen.app import create_app
from mediagen.campaigns import schemas as sc
from mediagen.config import Settings
from mediagen.db.migrate import upgrade
from mediagen.generations.service import GenerationService
from mediagen.services import Services
from mediagen.storage import fs
from mediagen.storage.fs import FsBlobStore

COMPARED = ("content-type", "content-length", "content-range", "etag", "accept-ranges", "cache-control")
SECURITY = ("x-content-type-options", "x-frame-options", "referrer-policy")


def wav_bytes() -> bytes:
    t = np.arange(44100) / 44100
    buf = io.BytesIO()
    sf.write(buf, 0.3 * np.sin(2 * np.pi * 440 * t), 44100, format="WAV")
    return buf.getvalue()


class World:
    def __init__(self, app: Any, services: Services, keys: dict[str, str], ids: dict[str, int]) -> None:
        self.app, self.services, self.keys, self.ids = app, services, keys, ids

    def client(self, who: str | None) -> TestClient:
        headers = {"X-API-Key": self.keys[who]} if who else {}
        return TestClient(self.app, headers=headers, raise_server_exceptions=False)


def build_world(tmp_path: Path, backend: Literal["db", "fs"]) -> World:
    settings = Settings(
        data_dir=tmp_path, secret_key="t", generate_rate_limit_per_minute=0, storage_backend=backend
    )
    upgrade(settings.resolved_database_url)
    app = create_app(settings, run_workers=False)
    services: Services = app.state.services
    admin_user = services.auth.create_user(
        email="admin@example.com", password="correct horse 1", role="admin"
    )
    admin = services.auth.principal_for_user(admin_user)
    for client_id in ("acme", "globex"):
        services.campaigns.create_client(admin, sc.ClientCreate(id=client_id, name=client_id))
    member = services.auth.create_user(email="m@example.com", password="correct horse 2", role="member")
    keys = {
        "admin": services.auth.create_key(user_id=admin_user.id, name="a")[1],
        "globex": services.auth.create_key(user_id=member.id, name="g", clients=["globex"])[1],
    }
    world = World(app, services, keys, {})
    with world.client("admin") as api:
        r = api.post("/api/audio/upload", params={"title": "tone", "client_id": "acme"}, content=wav_bytes())
        assert r.status_code == 201, r.text
        world.ids["acme"] = r.json()["audio_id"]
        r = api.post("/api/v2/generate/audio", json={"prompt": "held back", "client_id": "acme"})
        world.ids["pending"] = r.json()["audio_id"]  # workers are off: it stays pending
    return world


@pytest.fixture(scope="module", params=["db", "fs"])
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    built = build_world(Path(tmp_path_factory.mktemp(f"bytes-{request.param}")), request.param)
    yield built
    built.services.close()


@pytest.fixture(scope="module")
def fs_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    built = build_world(Path(tmp_path_factory.mktemp("bytes-loop")), "fs")
    assert isinstance(built.services.store, FsBlobStore)
    yield built
    built.services.close()


def test_the_lean_path_answers_as_the_full_route_does(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"/api/audio/{world.ids['acme']}/data"
    cases: list[dict[str, str]] = [{}, {"Range": "bytes=100-4195"}, {"Range": "bytes=-10"}]
    with world.client("admin") as c:
        full = [c.get(url + "?download=false", headers=h) for h in cases]  # a query: the full route
        head_full = c.head(url + "?download=false")
        etag = full[0].headers["etag"]
        # The router's own lookup is never asked: the bytes still come.
        monkeypatch.setattr(GenerationService, "get", lambda *a, **k: pytest.fail("went through the router"))
        lean = [c.get(url, headers=h) for h in cases]
        head_lean = c.head(url)
        unmodified = c.get(url, headers={"If-None-Match": etag})
        too_far = c.get(url, headers={"Range": "bytes=99999999-"})
    for a, b in [*zip(full, lean, strict=True), (head_full, head_lean)]:
        assert (a.status_code, a.content) == (b.status_code, b.content)
        for name in (*COMPARED, *SECURITY):
            assert a.headers.get(name) == b.headers.get(name), name
    assert [r.status_code for r in lean] == [200, 206, 206]
    assert lean[1].content == full[0].content[100:4196] and len(lean[2].content) == 10
    assert unmodified.status_code == 304 and too_far.status_code == 416
    assert too_far.headers["content-range"] == f"bytes */{len(full[0].content)}"


def test_every_other_answer_comes_from_the_full_route(world: World) -> None:
    acme, pending = world.ids["acme"], world.ids["pending"]
    with world.client("globex") as c:
        r = c.get(f"/api/audio/{acme}/data")  # another client's asset: as if there were none
        none = c.get("/api/audio/2000000001/data").json()["detail"]
        assert r.status_code == 404 and r.json()["detail"] == none.replace("2000000001", str(acme))
    with world.client(None) as c:
        assert c.get(f"/api/audio/{acme}/data").status_code == 401
        assert c.get(f"/api/audio/{acme}/data", headers={"X-API-Key": "mg_wrong"}).status_code == 401
    with world.client("admin") as c:
        assert c.get(f"/api/images/{acme}/data").status_code == 404  # the wrong kind
        r = c.get(f"/api/audio/{pending}/data")
        assert r.status_code == 409 and "pending" in r.json()["detail"]
        assert c.get("/api/audio/99999999999/data").status_code == 422  # past any id
        r = c.get(f"/api/audio/{acme}/data", params={"download": "true"})
        assert r.status_code == 200 and r.headers["content-disposition"].startswith("attachment")


# Answers on the event loop (fs store, bytes in the page cache) ----------------------------------

# Every kind of answer the byte path gives: the whole body, ranges, HEAD, 304, 416, a stale
# If-Range (the whole body again).
LOOP_CASES: list[tuple[str, dict[str, str]]] = [
    ("GET", {}),
    ("GET", {"Range": "bytes=100-4195"}),
    ("GET", {"Range": "bytes=-10"}),
    ("GET", {"Range": "bytes=4000-"}),
    ("GET", {"Range": "bytes=99999999-"}),
    ("GET", {"Range": "bytes=0-9", "If-Range": '"stale"'}),
    ("HEAD", {"Range": "bytes=5-9"}),
]


def byte_routes(app: Any) -> ByteRoutes:
    layer = app.middleware_stack
    while not isinstance(layer, ByteRoutes):
        layer = layer.app
    return layer


class ThreadPoolSpy:
    """Counts the byte path's thread-pool answers (`ByteRoutes._bytes`), which it still makes."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        original = ByteRoutes._bytes

        def counted(routes: ByteRoutes, *args: Any) -> Any:
            self.calls += 1
            return original(routes, *args)

        monkeypatch.setattr(ByteRoutes, "_bytes", counted)


def ask(c: TestClient, url: str, cases: list[tuple[str, dict[str, str]]]) -> list[Any]:
    return [c.request(method, url, headers=headers) for method, headers in cases]


def assert_same(full: list[Any], lean: list[Any]) -> None:
    for a, b in zip(full, lean, strict=True):
        assert (a.status_code, a.content) == (b.status_code, b.content)
        for name in (*COMPARED, *SECURITY, "content-disposition", "location"):
            assert a.headers.get(name) == b.headers.get(name), name


@pytest.fixture
def long_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """Facts and files kept for a minute, so a slow test run cannot see them expire mid-test."""
    monkeypatch.setattr(byte_path, "ROW_CACHE_SECONDS", 60.0)


def warm(world: World, c: TestClient, url: str) -> ByteRoutes:
    """One answer through the thread pool, which caches the asset's facts and holds its file."""
    routes = byte_routes(world.app)
    routes._rows.clear()
    routes._files.clear()
    assert c.get(url).status_code == 200
    assert routes._files, "the thread pool's answer holds the blob's file for the loop"
    return routes


@pytest.mark.usefixtures("long_cache")
def test_cached_bytes_are_answered_on_the_loop_as_the_full_route_does(
    fs_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"/api/audio/{fs_world.ids['acme']}/data"
    with fs_world.client("admin") as c:
        full = ask(c, url + "?download=false", LOOP_CASES)  # a query: the full route
        etag = full[0].headers["etag"]
        cases = [
            *LOOP_CASES,
            ("GET", {"If-None-Match": etag}),
            ("GET", {"Range": "bytes=0-9", "If-Range": etag}),
        ]
        full += ask(c, url + "?download=false", cases[len(LOOP_CASES) :])
        warm(fs_world, c, url)
        pool = ThreadPoolSpy(monkeypatch)
        lean = ask(c, url, cases)
    assert pool.calls == 0, "every answer was made on the event loop"
    assert_same(full, lean)
    assert [r.status_code for r in lean] == [200, 206, 206, 206, 416, 200, 206, 304, 206]
    assert lean[1].content == full[0].content[100:4196]
    assert lean[-1].content == full[0].content[:10]


@pytest.mark.usefixtures("long_cache")
def test_bytes_not_in_the_page_cache_go_through_the_thread_pool(
    fs_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"/api/audio/{fs_world.ids['acme']}/data"

    def first_page_missing(address: int, length: int, vector: Any) -> int:
        ctypes.memset(vector, 1, len(vector))
        ctypes.memset(vector, 0, 1)  # as mincore says of a page the kernel would read from disk
        return 0

    with fs_world.client("admin") as c:
        full = ask(c, url + "?download=false", LOOP_CASES)
        warm(fs_world, c, url)
        monkeypatch.setattr(fs, "_MINCORE", first_page_missing)
        pool = ThreadPoolSpy(monkeypatch)
        lean = ask(c, url, LOOP_CASES)
        # Five answers read bytes; the 416 and the HEAD read none, so the loop still gives them.
        assert pool.calls == 5
        monkeypatch.setattr(fs, "_MINCORE", None)  # no way to tell (not Linux): the thread pool reads
        assert_same(full[:2], ask(c, url, LOOP_CASES[:2]))
        assert pool.calls == 7
    assert_same(full, lean)


def first_page_cached(fd: int) -> bool:
    """mincore's own answer for the file's first page. (Not a RWF_NOWAIT read: on a miss that
    starts the readahead which brings the page back.)"""
    if fs._MINCORE is None:
        pytest.skip("mincore is Linux's")
    mapping = mmap.mmap(fd, mmap.PAGESIZE, access=mmap.ACCESS_COPY)
    vector = ctypes.create_string_buffer(1)
    assert fs._MINCORE(ctypes.addressof(ctypes.c_char.from_buffer(mapping)), mmap.PAGESIZE, vector) == 0
    return bool(vector.raw[0] & 1)


@pytest.mark.usefixtures("long_cache")
def test_evicted_pages_are_read_in_the_thread_pool_and_then_served_from_the_loop(
    fs_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"/api/audio/{fs_world.ids['acme']}/data"
    with fs_world.client("admin") as c:
        routes = warm(fs_world, c, url)
        (held,) = routes._files.values()
        os.fsync(held.fd)  # clean pages can be dropped
        os.posix_fadvise(held.fd, 0, 0, os.POSIX_FADV_DONTNEED)
        if first_page_cached(held.fd):
            pytest.skip("this filesystem keeps its pages in memory (tmpfs)")
        pool = ThreadPoolSpy(monkeypatch)
        first = c.get(url, headers={"Range": "bytes=0-999"})
        assert pool.calls == 1  # the pages were not there: read in the thread pool, not the loop
        again = c.get(url, headers={"Range": "bytes=0-999"})
        assert pool.calls == 1  # that read brought them back: the loop answers
    assert (first.status_code, first.content) == (again.status_code, again.content)
    assert first.status_code == 206 and len(first.content) == 1000


@pytest.mark.usefixtures("long_cache")
def test_a_held_file_expires_with_the_facts_and_is_checked_again(
    fs_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"/api/audio/{fs_world.ids['acme']}/data"
    with fs_world.client("admin") as c:
        routes = warm(fs_world, c, url)
        (key,) = routes._files
        before = routes._files[key]
        before.expires = 0.0  # as a second later
        pool = ThreadPoolSpy(monkeypatch)
        assert c.get(url).status_code == 200
        assert pool.calls == 1 and routes._files[key] is not before  # the index asked, the file reopened
        assert c.get(url).status_code == 200
        assert pool.calls == 1
        # A file gone from disk (a gc after the asset was deleted) is seen once the hold expires.
        store = fs_world.services.store
        assert isinstance(store, FsBlobStore)
        path = store.path_for(key)
        saved = path.read_bytes()
        routes._files[key].expires = 0.0
        path.unlink()
        try:
            assert c.get(url).status_code != 200
            assert pool.calls == 2 and key not in routes._files
        finally:
            path.write_bytes(saved)

"""Blob storage through a live `mediagen serve`: sizes from 1 byte to 300 MB, ranges, ETags, and the
server's memory staying flat while it streams."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import psutil
import pytest

from tests.conftest import LiveServer

MB = 1024 * 1024


def pattern(size: int, seed: int = 0) -> Iterator[bytes]:
    """Deterministic, incompressible-enough bytes without holding them all."""
    block = hashlib.sha256(f"{seed}".encode()).digest() * (MB // 32)
    sent = 0
    i = 0
    while sent < size:
        piece = (block[i % 7 :] + block[: i % 7])[: min(MB, size - sent)]
        yield piece
        sent += len(piece)
        i += 1


def digest(size: int, seed: int = 0) -> str:
    h = hashlib.sha256()
    for piece in pattern(size, seed):
        h.update(piece)
    return h.hexdigest()


@pytest.mark.parametrize("size", [1, MB - 1, MB, MB + 1, 5 * MB + 3])
def test_put_get_roundtrip(live_server_any_db: LiveServer, size: int) -> None:
    with live_server_any_db.client() as c:
        r = c.put("/api/blobs", content=pattern(size, size))
        assert r.status_code == 201, r.text
        key = r.json()["key"]
        assert key == digest(size, size) and r.json()["size"] == size
        full = c.get(f"/api/blobs/{key}")
        assert full.status_code == 200 and hashlib.sha256(full.content).hexdigest() == key
        assert full.headers["content-length"] == str(size) and full.headers["etag"] == f'"{key}"'
        assert c.get(f"/api/blobs/{key}", headers={"If-None-Match": f'"{key}"'}).status_code == 304
        last = c.get(f"/api/blobs/{key}", headers={"Range": "bytes=-1"})
        assert last.status_code == 206 and last.content == full.content[-1:]
        r416 = c.get(f"/api/blobs/{key}", headers={"Range": f"bytes={size}-"})
        assert r416.status_code == 416 and r416.headers["content-range"] == f"bytes */{size}"
        if size > 10:
            mid = c.get(f"/api/blobs/{key}", headers={"Range": f"bytes=3-{size - 4}"})
            assert mid.status_code == 206 and mid.content == full.content[3 : size - 3]
        again = c.put("/api/blobs", content=pattern(size, size))
        assert again.json()["key"] == key  # content-addressed: stored once
        assert c.delete(f"/api/blobs/{key}").status_code == 204
        assert c.get(f"/api/blobs/{key}").status_code == 404


def test_members_cannot_reach_raw_blobs(live_server: LiveServer) -> None:
    with live_server.client() as admin:
        admin.post("/api/clients", json={"id": "blobco", "name": "Blob Co"})
        token = admin.post("/api/keys", json={"name": "limited", "clients": ["blobco"]}).json()["key"]
    import subprocess
    import sys

    env = live_server.env()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "mediagen.cli",
            "users",
            "create",
            "--email",
            "member@example.com",
            "--password",
            "violet-harbor-lantern",
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "mediagen.cli",
            "keys",
            "create",
            "--name",
            "m",
            "--user",
            "member@example.com",
        ],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    member = out.stdout.strip().splitlines()[-1]
    for who, key in (("member", member), ("limited admin key", token)):
        with live_server.client(key) as c:
            assert c.put("/api/blobs", content=b"x").status_code == 403, who
            assert c.get("/api/blobs/" + "0" * 64).status_code == 403


def test_300_mb_streams_with_flat_server_memory(live_server: LiveServer) -> None:
    size = 300 * MB
    proc = psutil.Process(live_server.proc.pid)  # type: ignore[union-attr]
    with live_server.client(timeout=300) as c:
        # Warm the same paths with 4 MB first, so one-time costs (worker threads, compiled
        # statements) are not counted as growth from streaming.
        warm = c.put("/api/blobs", content=pattern(4 * MB, 4))
        assert c.get(f"/api/blobs/{warm.json()['key']}").status_code == 200
        c.delete(f"/api/blobs/{warm.json()['key']}")
    before = proc.memory_info().rss
    peak = before
    with live_server.client(timeout=300) as c:
        r = c.put("/api/blobs", content=pattern(size, 300))
        assert r.status_code == 201, r.text
        key = r.json()["key"]
        peak = max(peak, proc.memory_info().rss)
        h = hashlib.sha256()
        with c.stream("GET", f"/api/blobs/{key}") as resp:
            assert resp.status_code == 200 and resp.headers["content-length"] == str(size)
            for i, chunk in enumerate(resp.iter_bytes(MB)):
                h.update(chunk)
                if i % 32 == 0:
                    peak = max(peak, proc.memory_info().rss)
        assert h.hexdigest() == key == digest(size, 300)
        part = c.get(f"/api/blobs/{key}", headers={"Range": f"bytes={200 * MB}-{200 * MB + 9}"})
        assert part.status_code == 206 and len(part.content) == 10
        c.delete(f"/api/blobs/{key}")
    growth_mb = (peak - before) / MB
    assert growth_mb < 50, f"server RSS grew {growth_mb:.0f} MB while streaming 300 MB"


def test_concurrent_writes_never_lock(live_server: LiveServer) -> None:
    """Many simultaneous writers on SQLite: every request succeeds (no 'database is locked')."""
    from concurrent.futures import ThreadPoolExecutor

    with live_server.client() as c:
        c.post("/api/clients", json={"id": "busy", "name": "Busy"})

    def create(i: int) -> int:
        with live_server.client() as c:
            r = c.post("/api/campaigns", json={"client_id": "busy", "name": f"C{i}"})
            c.patch(f"/api/campaigns/{r.json()['id']}", json={"status": "active"})
            return r.status_code

    with ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(create, range(120)))
    assert codes == [201] * 120
    with live_server.client() as c:
        assert c.get("/api/campaigns", params={"client_id": "busy"}).json()["total"] == 120

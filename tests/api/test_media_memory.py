"""Memory stays flat: a 300 MB blob goes up and comes back through a uvicorn subprocess."""

from __future__ import annotations

import hashlib
import random
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

MiB = 1024 * 1024
SIZE = 300 * MiB
RSS_BUDGET = 50 * MiB

SERVER = """
import sys
from pathlib import Path

import uvicorn
from fastapi import FastAPI, Request, Response

from mediagen.db.base import Base
from mediagen.db.session import Database
from mediagen.storage.db import DbBlobStore
from mediagen.storage.fs import FsBlobStore
from mediagen.api.errors import install_error_handlers
from mediagen.api.media import blob_response
from mediagen.api.uploads import put_request_body
from mediagen.storage.tables import Blob, BlobChunk

backend, data_dir, port = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
database = Database(f"sqlite:///{data_dir / 'mediagen.db'}")
Base.metadata.create_all(database.write_engine, tables=[Blob.__table__, BlobChunk.__table__])
store = DbBlobStore(database) if backend == "db" else FsBlobStore(database, data_dir / "blobs")
app = FastAPI()
install_error_handlers(app)


@app.put("/blobs")
async def upload(request: Request) -> dict[str, object]:
    info = await put_request_body(request, store, max_bytes=1 << 40)
    return {"key": info.key, "size": info.size}


@app.api_route("/blobs/{key}", methods=["GET", "HEAD"])
def download(key: str, request: Request) -> Response:
    return blob_response(request, store, key, content_type="video/mp4")


uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
"""


def pattern(size: int, seed: int = 0) -> Iterator[bytes]:
    """Deterministic, fast, never all in memory: a random block stamped with its index."""
    block = random.Random(seed).randbytes(MiB + 7)
    index = sent = 0
    while sent < size:
        data = (index.to_bytes(8, "big") + block[8:])[: size - sent]
        sent += len(data)
        index += 1
        yield data


class PeakRss:
    """Samples a process's RSS in the background and keeps the maximum."""

    def __init__(self, process: psutil.Process) -> None:
        self.process = process
        self.peak = process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.01)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.timeout(120)
@pytest.mark.parametrize("backend", ["db", "fs"])
def test_300_mb_round_trip_keeps_server_memory_flat(backend: str, tmp_path: Path) -> None:
    port = _free_port()
    script = tmp_path / "server.py"
    script.write_text(SERVER)
    proc = subprocess.Popen(
        [sys.executable, str(script), backend, str(tmp_path), str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=url, timeout=120) as client:
            deadline = time.monotonic() + 30
            while True:
                try:
                    client.head(f"/blobs/{'0' * 64}")
                    break
                except httpx.TransportError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
            # Warm up every code path once, so imports and pools are not counted as growth.
            small = client.put("/blobs", content=pattern(6 * MiB, seed=1)).json()["key"]
            assert len(client.get(f"/blobs/{small}").content) == 6 * MiB
            server = psutil.Process(proc.pid)
            baseline = server.memory_info().rss

            expected = hashlib.sha256()

            def upload() -> Iterator[bytes]:
                for piece in pattern(SIZE):
                    expected.update(piece)
                    yield piece

            with PeakRss(server) as rss:
                started = time.monotonic()
                created = client.put("/blobs", content=upload())
                uploaded = time.monotonic()
                assert created.status_code == 200, created.text
                key = created.json()["key"]
                assert key == expected.hexdigest()
                received = hashlib.sha256()
                count = 0
                with client.stream("GET", f"/blobs/{key}") as response:
                    assert response.status_code == 200
                    assert response.headers["content-length"] == str(SIZE)
                    for piece in response.iter_raw(MiB):
                        received.update(piece)
                        count += len(piece)
                downloaded = time.monotonic()
            assert count == SIZE and received.hexdigest() == key
            growth = rss.peak - baseline
            print(
                f"\n{backend}: upload {SIZE / MiB / (uploaded - started):.0f} MiB/s, "
                f"download {SIZE / MiB / (downloaded - uploaded):.0f} MiB/s, "
                f"server RSS growth {growth / MiB:.1f} MiB"
            )
            assert growth < RSS_BUDGET, f"server RSS grew by {growth / MiB:.1f} MiB"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()

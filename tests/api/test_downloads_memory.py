"""A zip of 2 GiB of assets streams out of a real `mediagen serve` with its memory flat.

The assets are four 512 MiB blobs written straight into the server's file-system store (random
bytes: an ingest of media that size would take minutes and is not what is measured here), each
filed as a completed audio asset. The zip comes back through `POST /api/downloads` while the
server's RSS is sampled; every member is then checked against its blob's content address.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

import mediagen.tables  # noqa: F401  (every table, so the foreign keys resolve)
from mediagen.config import Settings
from mediagen.db.base import utcnow
from mediagen.db.session import Database
from mediagen.generations.tables import Generation
from mediagen.storage import make_store
from tests.api.test_media_memory import PeakRss
from tests.conftest import LiveServer

MiB = 1024 * 1024
ASSET = 512 * MiB
ASSETS = 4
RSS_BUDGET = 64 * MiB


def random_bytes(size: int) -> Iterator[bytes]:
    sent = 0
    while sent < size:
        piece = os.urandom(min(4 * MiB, size - sent))
        sent += len(piece)
        yield piece


def file_assets(data_dir: Path, sizes: list[int]) -> list[tuple[int, str]]:
    """Completed audio assets of these sizes in the server's database and store: (id, blob key)."""
    settings = Settings(data_dir=data_dir, storage_backend="fs")
    db = Database(settings.resolved_database_url)
    store = make_store(settings, db)
    made = []
    try:
        for n, size in enumerate(sizes):
            info = store.put(random_bytes(size))
            now = utcnow()
            with db.write() as s:
                row = Generation(
                    kind="audio",
                    prompt=f"long take {n}",
                    model_id="upload",
                    engine="upload",
                    parameters={},
                    status="completed",
                    blob_key=info.key,
                    size_bytes=info.size,
                    content_type="audio/wav",
                    created_at=now,
                    completed_at=now,
                )
                s.add(row)
                s.flush()
                store.attach(s, info.key)
                made.append((row.id, info.key))
    finally:
        db.dispose()
    return made


@pytest.mark.timeout(180)
def test_a_2_gib_zip_streams_with_the_server_memory_flat(tmp_path: Path) -> None:
    server = LiveServer(tmp_path / "data", {"MEDIAGEN_STORAGE_BACKEND": "fs"})
    server.data_dir.mkdir()
    server.start()
    try:
        warm, *assets = file_assets(server.data_dir, [6 * MiB] + [ASSET] * ASSETS)
        assert server.proc is not None
        process = psutil.Process(server.proc.pid)
        with server.client(timeout=120) as api:
            # Warm every code path once, so imports and pools are not counted as growth.
            first = api.post("/api/downloads", json={"items": [{"kind": "audio", "id": warm[0]}]})
            assert first.status_code == 200, first.text
            baseline = process.memory_info().rss
            body = {"items": [{"kind": "audio", "id": gen_id} for gen_id, _ in assets]}
            out = tmp_path / "takes.zip"
            received = 0
            with PeakRss(process) as rss, api.stream("POST", "/api/downloads", json=body) as r:
                assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
                assert "content-length" not in r.headers  # streamed as it is written
                with out.open("wb") as fh:
                    for piece in r.iter_raw(4 * MiB):
                        received += len(piece)
                        fh.write(piece)
        growth = rss.peak - baseline
        print(f"\nzip of {received / MiB:.0f} MiB: server RSS growth {growth / MiB:.1f} MiB")
        assert received > ASSETS * ASSET
        assert growth < RSS_BUDGET, f"server RSS grew by {growth / MiB:.1f} MiB"
        with zipfile.ZipFile(out) as zf:
            members = zf.infolist()
            assert [m.filename for m in members] == [
                f"long-take-{n}-{i}.wav" for n, (i, _) in enumerate(assets, 1)
            ]
            for member, (_, key) in zip(members, assets, strict=True):
                assert member.file_size == ASSET and member.compress_type == zipfile.ZIP_STORED
                digest = hashlib.sha256()
                with zf.open(member) as fh:  # also checks the member's CRC
                    while chunk := fh.read(8 * MiB):
                        digest.update(chunk)
                assert digest.hexdigest() == key
    finally:
        server.stop()

"""The same pipeline on the scaled-out parts: PostgreSQL rows, a Redis or PostgreSQL queue, fs blobs,
and a separate `mediagen worker` process doing the work while `serve` only answers requests."""

from __future__ import annotations

import secrets
import subprocess
import sys

import pytest

from tests.conftest import LiveServer, PostgresDatabase, make_server, postgres_available


def redis_available() -> bool:
    try:
        import redis

        return bool(redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=2).ping())
    except Exception:
        return False


def _roundtrip(srv: LiveServer) -> None:
    with srv.client() as c:
        c.post("/api/clients", json={"id": "scale", "name": "Scale"})
        ids = [
            c.post(
                "/api/v2/generate/audio",
                json={"prompt": f"acoustic folk {i}", "duration": 1, "client_id": "scale"},
            ).json()["audio_id"]
            for i in range(3)
        ]
        img = c.post("/api/v2/generate/image", json={"prompt": "green", "width": 96, "height": 64}).json()
    for i in ids:
        item = srv.wait_for("audio", i, timeout=90)
        assert item["status"] == "completed", item
        assert abs(item["duration"] - 1.0) < 0.1
    assert srv.wait_for("images", img["image_id"], timeout=90)["status"] == "completed"
    with srv.client() as c:
        data = c.get(f"/api/audio/{ids[0]}/data")
        assert data.status_code == 200 and data.content
        assert c.get("/api/clients/scale/stats").json()["by_kind"]["audio"]["total"] == 3


@pytest.mark.skipif(not (postgres_available() and redis_available()), reason="needs PostgreSQL and Redis")
def test_postgres_rows_redis_queue_fs_blobs_separate_worker(tmp_path) -> None:
    pg = PostgresDatabase()
    env = {
        "MEDIAGEN_DATABASE_URL": pg.url,
        "MEDIAGEN_QUEUE_URL": f"redis://127.0.0.1:6379/{secrets.randbelow(8) + 8}",
        "MEDIAGEN_STORAGE_BACKEND": "fs",
        "MEDIAGEN_RUN_CONSUMER": "false",
    }
    srv = make_server(tmp_path, **env).start()
    worker = subprocess.Popen(
        [sys.executable, "-m", "mediagen.cli", "worker"],
        env=srv.env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _roundtrip(srv)
        assert any((srv.data_dir / "blobs").rglob("*")), "fs backend stores files under the data dir"
    finally:
        worker.terminate()
        worker.wait(20)
        srv.stop()
        import redis

        redis.Redis.from_url(env["MEDIAGEN_QUEUE_URL"]).flushdb()
        pg.drop()


@pytest.mark.skipif(not postgres_available(), reason="needs PostgreSQL")
def test_postgres_rows_and_postgres_queue(tmp_path) -> None:
    pg = PostgresDatabase()
    queue = pg.url.replace("postgresql+psycopg://", "postgresql://")
    srv = make_server(tmp_path, MEDIAGEN_DATABASE_URL=pg.url, MEDIAGEN_QUEUE_URL=queue).start()
    try:
        _roundtrip(srv)
    finally:
        srv.stop()
        pg.drop()

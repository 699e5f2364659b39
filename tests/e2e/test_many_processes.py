"""Scale-out as deployed: 2 API processes and 2 workers, as real processes, on PostgreSQL, a Redis
queue and an S3 server. 500 generations go in through both APIs while one worker is killed with
SIGKILL mid-run. Afterwards every generation completed exactly once, every output's bytes are in
the bucket once, nothing in the bucket is orphaned, and the one rate limit held across both APIs."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from mediagen.config import Settings
from mediagen.db.session import Database
from mediagen.storage import make_store
from mediagen.storage.s3 import S3BlobStore
from tests.conftest import LiveServer, PostgresDatabase, make_server, postgres_available
from tests.e2e.test_scale_out import redis_available
from tests.utils.s3 import CREDENTIALS, S3Server, s3_server

REQUESTS = 250
TAKES = 2  # 250 requests × 2 takes = 500 generations
EXTRA = 6  # requests past the limit, which both APIs must refuse

pytestmark = pytest.mark.skipif(
    not (postgres_available() and redis_available()), reason="needs PostgreSQL and Redis"
)


@pytest.fixture
def s3() -> Iterator[S3Server]:
    pytest.importorskip("moto")
    with s3_server() as server:
        yield server


def start_worker(env: dict[str, str], data_dir: Path) -> subprocess.Popen[bytes]:
    data_dir.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [sys.executable, "-m", "mediagen.cli", "worker", "--queue", "io"],
        env={**env, "MEDIAGEN_DATA_DIR": str(data_dir)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def completed(api: LiveServer, key: str) -> int:
    with api.client(key) as c:
        answer = c.get("/api/images", params={"status": "completed", "limit": 1})
        assert answer.status_code == 200, answer.text
        return int(answer.json()["total"])


def test_two_apis_two_workers_one_killed(tmp_path: Path, s3: S3Server) -> None:
    pg = PostgresDatabase()
    queue = f"redis://127.0.0.1:6379/{secrets.randbelow(8) + 8}"
    env = {
        "MEDIAGEN_DATABASE_URL": pg.url,
        "MEDIAGEN_QUEUE_URL": queue,
        "MEDIAGEN_STORAGE_BACKEND": "s3",
        "MEDIAGEN_S3_BUCKET": f"scale-{secrets.token_hex(4)}",
        "MEDIAGEN_S3_ENDPOINT_URL": s3.endpoint_url,
        "MEDIAGEN_S3_REGION": "us-east-1",
        "MEDIAGEN_RUN_CONSUMER": "false",
        "MEDIAGEN_GENERATE_RATE_LIMIT_PER_MINUTE": str(REQUESTS),
        "MEDIAGEN_SECRET_KEY": secrets.token_hex(32),
        "MEDIAGEN_WORKERS": "3",
        **CREDENTIALS,
    }
    first = make_server(tmp_path / "api1", **env).start()
    second = make_server(tmp_path / "api2", **env).start()  # after the first: it migrated already
    workers = [start_worker({**first.env(), **env}, tmp_path / f"w{i}") for i in range(2)]
    try:
        key = first.admin_key
        assert key
        bodies = [
            {"prompt": f"product shot {i}", "width": 64, "height": 64, "n": TAKES}
            for i in range(REQUESTS + EXTRA)
        ]

        def send(index: int) -> int:
            api = (first, second)[index % 2]
            with httpx.Client(base_url=api.url, headers={"X-API-Key": key}, timeout=60) as c:
                return c.post("/api/v2/generate/image", json=bodies[index]).status_code

        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(send, range(REQUESTS + EXTRA)))
        assert statuses.count(202) == REQUESTS and statuses.count(429) == EXTRA, statuses

        deadline = time.monotonic() + 300
        while completed(first, key) < 50:
            assert time.monotonic() < deadline, "no progress"
            time.sleep(0.2)
        workers[0].send_signal(signal.SIGKILL)  # mid-run: it holds leases and half-done uploads
        workers[0].wait(10)
        total = REQUESTS * TAKES
        while (done := completed(second, key)) < total:
            assert time.monotonic() < deadline, f"only {done} of {total} completed"
            time.sleep(0.5)
        check_exactly_once(pg.url, env, tmp_path, total)
        check_revocation_reaches_every_api(first, second, key)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.terminate()
                worker.wait(20)
        first.stop()
        second.stop()
        import redis

        redis.Redis.from_url(queue).flushdb()
        pg.drop()


def check_revocation_reaches_every_api(first: LiveServer, second: LiveServer, admin: str) -> None:
    """A key revoked through one API process stops working on the other within ~1 s (its cache)."""
    with first.client(admin) as c:
        made = c.post("/api/keys", json={"name": "short-lived"}).json()
    with second.client(made["key"]) as c:
        assert c.get("/api/audio", params={"limit": 1}).status_code == 200  # now cached there too
    with first.client(admin) as c:
        assert c.delete(f"/api/keys/{made['id']}").status_code == 204
    time.sleep(1.5)
    with second.client(made["key"]) as c:
        assert c.get("/api/audio", params={"limit": 1}).status_code == 401


def check_exactly_once(url: str, env: dict[str, str], tmp_path: Path, total: int) -> None:
    import psycopg

    plain = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain) as conn:
        statuses = dict(conn.execute("SELECT status, count(*) FROM generations GROUP BY status").fetchall())
        assert statuses == {"completed": total}
        twice = conn.execute(
            "SELECT generation_id FROM events WHERE type = 'generation.completed' "
            "GROUP BY generation_id HAVING count(*) <> 1"
        ).fetchall()
        assert twice == []
        assert conn.execute(
            "SELECT count(DISTINCT generation_id) FROM events WHERE type = 'generation.completed'"
        ).fetchone() == (total,)
        referenced = {
            row[0]
            for row in conn.execute(
                "SELECT blob_key FROM generations WHERE blob_key IS NOT NULL "
                "UNION SELECT blob_key FROM derivations"
            )
        }
        counts = dict(conn.execute("SELECT key, refcount FROM blobs").fetchall())
        uses = dict(
            conn.execute(
                "SELECT k, count(*) FROM (SELECT blob_key AS k FROM generations WHERE blob_key IS NOT NULL "
                "UNION ALL SELECT blob_key FROM derivations) r GROUP BY k"
            ).fetchall()
        )
    assert {k: v for k, v in counts.items() if v} == uses  # refcounts are exact
    os.environ.update(CREDENTIALS)
    settings = Settings(
        data_dir=tmp_path / "check",
        database_url=url,
        storage_backend="s3",
        s3_bucket=env["MEDIAGEN_S3_BUCKET"],
        s3_endpoint_url=env["MEDIAGEN_S3_ENDPOINT_URL"],
        s3_region="us-east-1",
    )
    database = Database(url)
    store = make_store(settings, database)
    assert isinstance(store, S3BlobStore)
    store.gc(grace_seconds=0, staging_grace_seconds=0)  # what a killed worker left unreferenced
    objects = []
    for page in store.client.get_paginator("list_objects_v2").paginate(Bucket=store.bucket):
        objects += [o["Key"].removeprefix(store.prefix) for o in page.get("Contents", [])]
    assert len(objects) == len(set(objects)) == len(referenced)
    assert set(objects) == referenced  # every output once, nothing orphaned
    database.dispose()

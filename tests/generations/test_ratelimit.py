"""The generation limit holds across processes: in the database (SQLite and PostgreSQL) and in
Redis, many concurrent checkers with their own connections admit exactly the limit."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from mediagen.config import Settings
from mediagen.db.migrate import upgrade
from mediagen.db.session import Database
from mediagen.errors import RateLimited
from mediagen.generations import ratelimit
from mediagen.generations.ratelimit import (
    DbRateLimiter,
    Limiter,
    RateLimiter,
    RedisRateLimiter,
    make_rate_limiter,
)


def admitted(make: Callable[[], Limiter], attempts: int, who: str = "key-1") -> tuple[int, list[int]]:
    """`attempts` checks at once, each through its own limiter (as separate processes would)."""
    limiters = [make() for _ in range(attempts)]
    results: list[bool] = []
    retries: list[int] = []
    barrier = threading.Barrier(attempts)

    def attempt(limiter: Limiter) -> None:
        barrier.wait()
        try:
            limiter.check(who)
            results.append(True)
        except RateLimited as exc:
            retries.append(exc.retry_after or 0)

    threads = [threading.Thread(target=attempt, args=(lim,)) for lim in limiters]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(results), retries


def test_memory_limiter_counts_per_key() -> None:
    limiter = RateLimiter(2)
    limiter.check("a")
    limiter.check("a")
    limiter.check("b")
    with pytest.raises(RateLimited) as refused:
        limiter.check("a")
    assert 1 <= (refused.value.retry_after or 0) <= 60


@pytest.mark.parametrize("dialect", ["sqlite", "postgres"])
def test_database_limiter_admits_exactly_the_limit_across_connections(
    dialect: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = f"sqlite:///{tmp_path / 'rate.db'}" if dialect == "sqlite" else request.getfixturevalue("pg_url")
    upgrade(url)
    databases: list[Database] = []

    def make() -> Limiter:
        databases.append(Database(url))
        return DbRateLimiter(databases[-1], 5)

    count, retries = admitted(make, 12)
    assert count == 5 and len(retries) == 7 and all(1 <= r <= 60 for r in retries)
    # Another key has its own budget; the window's old hits are dropped as the key is checked.
    DbRateLimiter(databases[0], 5).check("key-2")
    for database in databases:
        database.dispose()


def test_database_limiter_forgets_hits_outside_the_window(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'rate.db'}"
    upgrade(url)
    limiter = DbRateLimiter(Database(url), 1)
    now = [1_000_000.0]
    monkeypatch.setattr(ratelimit.time, "time", lambda: now[0])
    limiter.check("k")
    with pytest.raises(RateLimited):
        limiter.check("k")
    now[0] += 61
    limiter.check("k")


@pytest.fixture
def redis_client() -> object:
    redis = pytest.importorskip("redis")
    client = redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=2)
    try:
        client.ping()
    except Exception:
        pytest.skip("Redis not reachable at 127.0.0.1:6379")
    return client


def test_redis_limiter_admits_exactly_the_limit_across_clients(redis_client: object) -> None:
    import redis

    prefix = f"mediagen-test:{secrets.token_hex(4)}:"
    count, retries = admitted(
        lambda: RedisRateLimiter(redis.Redis(host="127.0.0.1", port=6379), 5, prefix=prefix), 12
    )
    assert count == 5 and len(retries) == 7 and all(1 <= r <= 60 for r in retries)


def test_the_shared_limiter_follows_the_queue(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'x.db'}")
    assert isinstance(make_rate_limiter(Settings(data_dir=tmp_path), database), DbRateLimiter)
    on_redis = Settings(data_dir=tmp_path, queue_url="redis://127.0.0.1:6379/9")
    assert isinstance(make_rate_limiter(on_redis, database), RedisRateLimiter)

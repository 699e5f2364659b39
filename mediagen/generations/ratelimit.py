"""Per-key sliding-window limits on generation requests (the seed's 10/min).

Three implementations of one `Limiter`: in process memory (share-link reviewer posts, tests), in
the database, and in Redis. `make_rate_limiter` picks the shared one, so the limit holds across
any number of API processes: Redis when the job queue is on Redis, else the database. The
database limiter counts inside the caller's transaction (on SQLite a second transaction would
wait on the write lock the caller holds), and on PostgreSQL serialises one key's checks with a
transaction-scoped advisory lock so two processes cannot both take the last slot.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from typing import Any, Protocol

from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.orm import Session

from mediagen.config import Settings
from mediagen.db.session import Database
from mediagen.errors import RateLimited
from mediagen.generations.tables import RateHit

WINDOW_SECONDS = 60.0

# KEYS[1] the key's sorted set; ARGV: now, window, limit, member. Returns 0 when admitted, else
# the seconds until the oldest hit leaves the window. Atomic: Redis runs a script alone.
_REDIS_SCRIPT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1] - ARGV[2])
local count = redis.call('ZCARD', KEYS[1])
if count >= tonumber(ARGV[3]) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return tostring(ARGV[2] - (ARGV[1] - oldest[2]))
end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4])
redis.call('EXPIRE', KEYS[1], math.ceil(ARGV[2]))
return 0
"""


class Limiter(Protocol):
    per_minute: int

    def check(self, who: str, session: Session | None = None) -> None:
        """Count one request for `who`, or raise RateLimited (429 with Retry-After)."""
        ...


def _refuse(per_minute: int, retry: float) -> RateLimited:
    seconds = min(math.ceil(WINDOW_SECONDS), max(1, math.ceil(retry)))
    return RateLimited(
        f"Rate limit: {per_minute} generation requests per minute per key; retry in {seconds} s",
        retry_after=seconds,
    )


class RateLimiter:
    """In this process's memory: exact and free, but each process counts on its own."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self.window = WINDOW_SECONDS
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, who: str, session: Session | None = None) -> None:
        if self.per_minute <= 0:
            return
        now = time.monotonic()
        with self._lock:
            hits = self._hits.setdefault(who, deque())
            while hits and now - hits[0] >= self.window:
                hits.popleft()
            if len(hits) >= self.per_minute:
                raise _refuse(self.per_minute, self.window - (now - hits[0]))
            hits.append(now)


class DbRateLimiter:
    """Hits as rows of `rate_hits` (wall-clock seconds, shared by every process on the database)."""

    def __init__(self, database: Database, per_minute: int) -> None:
        self.database = database
        self.per_minute = per_minute

    def check(self, who: str, session: Session | None = None) -> None:
        if self.per_minute <= 0:
            return
        if session is not None:
            self._check(session, who)
            return
        with self.database.write() as own:
            self._check(own, who)

    def _check(self, s: Session, who: str) -> None:
        if s.get_bind().dialect.name == "postgresql":
            s.execute(text("SELECT pg_advisory_xact_lock(hashtext(:who))"), {"who": f"rate:{who}"})
        # The DELETE is the first write, so on SQLite the lock is held from here: read the clock
        # after it, or a checker that waited could stamp a time earlier than hits it now counts.
        s.execute(delete(RateHit).where(RateHit.who == who, RateHit.at <= time.time() - WINDOW_SECONDS))
        now = time.time()
        count, oldest = s.execute(select(func.count(), func.min(RateHit.at)).where(RateHit.who == who)).one()
        if count >= self.per_minute:
            raise _refuse(self.per_minute, WINDOW_SECONDS - (now - float(oldest)))
        s.execute(insert(RateHit).values(who=who, at=now))


class RedisRateLimiter:
    """A sorted set per key in Redis, checked and updated by one atomic script."""

    def __init__(self, client: Any, per_minute: int, *, prefix: str = "mediagen:rate:") -> None:
        self.client = client
        self.per_minute = per_minute
        self.prefix = prefix
        self._script = client.register_script(_REDIS_SCRIPT)
        self._serial = 0
        self._lock = threading.Lock()

    def check(self, who: str, session: Session | None = None) -> None:
        if self.per_minute <= 0:
            return
        with self._lock:
            self._serial += 1
            member = f"{time.time_ns()}-{id(self)}-{self._serial}"
        retry = float(
            self._script(
                keys=[self.prefix + who], args=[time.time(), WINDOW_SECONDS, self.per_minute, member]
            )
        )
        if retry > 0:
            raise _refuse(self.per_minute, retry)


def make_rate_limiter(settings: Settings, database: Database) -> Limiter:
    """The generation limit, shared across processes: the queue's Redis if any, else the database."""
    url = settings.queue_url or ""
    if url.startswith(("redis://", "rediss://")):
        import redis

        return RedisRateLimiter(redis.Redis.from_url(url), settings.generate_rate_limit_per_minute)
    return DbRateLimiter(database, settings.generate_rate_limit_per_minute)

"""A per-key sliding-window limit for generation requests (the seed's 10/min).

Kept in process memory: with several API processes the effective limit is per process, which is
documented; a shared limiter belongs with the Redis scale-out.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque

from mediagen.errors import RateLimited


class RateLimiter:
    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self.window = 60.0
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, who: str) -> None:
        """Count one request for `who`, or raise 429 with Retry-After if over the limit."""
        if self.per_minute <= 0:
            return
        now = time.monotonic()
        with self._lock:
            hits = self._hits.setdefault(who, deque())
            while hits and now - hits[0] >= self.window:
                hits.popleft()
            if len(hits) >= self.per_minute:
                retry = max(1, math.ceil(self.window - (now - hits[0])))
                raise RateLimited(
                    f"Rate limit: {self.per_minute} generation requests per minute per key; "
                    f"retry in {retry} s",
                    retry_after=retry,
                )
            hits.append(now)

"""Sign-in throttling: failed password checks counted per email and per client address.

After `EMAIL_LIMIT` failures for one email, or `ADDRESS_LIMIT` from one address, within `WINDOW`,
further attempts are refused (`RateLimited`, so 429 with Retry-After) without checking the password,
for `FIRST_LOCK`; each later lock-out lasts twice as long as the one before, up to `MAX_LOCK`. A
successful sign-in clears its email's count (not its address's: signing in to one's own account must
not reset a count run up guessing at others). After `MEMORY` with no failure, a count is forgotten.

The counts live in the database (one small row per email or address, keyed by a sha256), so every
API process and replica shares them. Unknown emails are counted exactly like known ones, so a lock
says nothing about whether an account exists. IPv6 addresses count per /64, the block one host
usually has to itself.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mediagen.auth.tables import SignInCounter
from mediagen.db.base import utcnow
from mediagen.db.session import Database
from mediagen.errors import RateLimited

EMAIL_LIMIT = 5
ADDRESS_LIMIT = 20
WINDOW = timedelta(minutes=15)
FIRST_LOCK = timedelta(minutes=5)
MAX_LOCK = timedelta(hours=4)
MEMORY = timedelta(days=1)


@dataclass(frozen=True)
class _Counter:
    scope: str
    key: str
    limit: int


def normalise_email(email: str) -> str:
    return email.strip().lower()


def address_bucket(address: str | None) -> str | None:
    """What an address is counted as: itself, or for IPv6 its /64 network."""
    if not address:
        return None
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:100]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{ip}/64", strict=False))
    return str(ip)


def counter_key(scope: str, value: str) -> str:
    return hashlib.sha256(f"{scope}\0{value}".encode()).hexdigest()


def lock_for(lockouts: int) -> timedelta:
    """How long the `lockouts`-th lock-out in a row lasts: 5 min, 10, 20 … up to 4 h."""
    return min(FIRST_LOCK * (1 << min(max(lockouts - 1, 0), 16)), MAX_LOCK)


class SignInThrottle:
    def __init__(self, database: Database) -> None:
        self.db = database

    def _counters(self, email: str | None, address: str | None) -> list[_Counter]:
        counters = []
        if email:
            counters.append(_Counter("email", counter_key("email", normalise_email(email)), EMAIL_LIMIT))
        bucket = address_bucket(address)
        if bucket:
            counters.append(_Counter("address", counter_key("address", bucket), ADDRESS_LIMIT))
        return counters

    def check(self, *, email: str | None, address: str | None) -> None:
        """Raises `RateLimited` while the email or the address is locked out."""
        counters = self._counters(email, address)
        if not counters:
            return
        with self.db.read() as s:
            locks = s.scalars(
                select(SignInCounter.locked_until).where(
                    SignInCounter.key.in_([c.key for c in counters]),
                    SignInCounter.locked_until.is_not(None),
                )
            ).all()
        now = utcnow()
        until = max((t for t in locks if t is not None), default=None)
        if until is not None and until > now:
            wait = max(1, math.ceil((until - now).total_seconds()))
            raise RateLimited(f"Too many failed sign-ins; try again in {_spoken(wait)}", retry_after=wait)

    def failed(self, *, email: str | None, address: str | None) -> None:
        """Counts one failure against the email and the address, locking either that reaches its
        limit."""
        counters = self._counters(email, address)
        for attempt in range(3):
            try:
                with self.db.write() as s:
                    now = utcnow()
                    for counter in counters:
                        _count(s.get(SignInCounter, counter.key, with_for_update=True), s, counter, now)
                    # Forget counts nobody has added to for a while (cheap: by the index).
                    s.execute(
                        delete(SignInCounter).where(
                            SignInCounter.last_failure_at < now - MEMORY,
                            or_(SignInCounter.locked_until.is_(None), SignInCounter.locked_until < now),
                        )
                    )
                return
            except IntegrityError:
                # Another process inserted the same counter first (PostgreSQL); count again.
                if attempt == 2:
                    raise

    def succeeded(self, *, email: str) -> None:
        """A correct password clears the email's count and lock-outs."""
        key = counter_key("email", normalise_email(email))
        with self.db.read() as s:
            if s.get(SignInCounter, key) is None:
                return
        with self.db.write() as s:
            s.execute(delete(SignInCounter).where(SignInCounter.key == key))


def _count(row: SignInCounter | None, s: Session, counter: _Counter, now: datetime) -> None:
    if row is None:
        row = SignInCounter(
            key=counter.key,
            scope=counter.scope,
            failures=0,
            window_start=now,
            lockouts=0,
            last_failure_at=now,
        )
        s.add(row)
    if row.locked_until is not None and row.locked_until > now:
        return  # raced past `check` while a lock was being set: the lock stands as it is
    if now - row.last_failure_at > MEMORY:
        row.lockouts = 0
    if now - row.window_start >= WINDOW:
        row.failures, row.window_start = 0, now
    row.failures += 1
    row.last_failure_at = now
    if row.failures >= counter.limit:
        row.lockouts += 1
        row.locked_until = now + lock_for(row.lockouts)
        row.failures, row.window_start = 0, now


def _spoken(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} seconds"
    minutes = math.ceil(seconds / 60)
    return f"{minutes} minutes" if minutes < 90 else f"{math.ceil(minutes / 60)} hours"

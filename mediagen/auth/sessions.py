"""Server-side sessions for the web UI.

The session cookie (signed by Starlette's SessionMiddleware, and readable by whoever holds it)
carries only a random token, 32 bytes from `secrets`. The `sessions` table keeps its sha256, like an
API key's, so a lookup is one primary-key read and a stolen database gives no usable cookie. Ending
the row ends the session at once, wherever the cookie was copied to: on sign-out, on sign-in (the
session before it is dropped), when the password changes (every other session of the user), and by
time (`LIFETIME` after sign-in, or `IDLE_TIMEOUT` after the last request).

Lookups are cached for `cache_seconds` (a second, like API keys): the API and the pages look the
session up on every request. Ending a session through this process drops its entry at once; an
ending made by another process (the CLI, another replica) takes effect within the second.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import CursorResult, delete, or_, select, update
from sqlalchemy.orm import Session

from mediagen.auth.tables import User, WebSession
from mediagen.db.base import utcnow
from mediagen.db.session import Database

LIFETIME = timedelta(days=14)
IDLE_TIMEOUT = timedelta(days=2)
# last_seen_at only has to be good enough for the idle timeout; a write per request would
# serialise SQLite's readers.
SEEN_RESOLUTION = timedelta(minutes=1)
TOKEN_BYTES = 32
MAX_TOKEN_LENGTH = 100


def session_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _token(value: object) -> str | None:
    """The token a cookie carries, if it looks like one of ours."""
    if isinstance(value, str) and 0 < len(value) <= MAX_TOKEN_LENGTH:
        return value
    return None


def _rowcount(result: object) -> int:
    return int(result.rowcount) if isinstance(result, CursorResult) else 0


@dataclass(frozen=True)
class SessionUser:
    """Who a live session belongs to (the service turns it into a Principal)."""

    digest: str
    user_id: str
    email: str
    role: str
    clients: list[str] | None
    expires_at: datetime


class SessionStore:
    def __init__(
        self,
        database: Database,
        *,
        cache_seconds: float = 1.0,
        lifetime: timedelta = LIFETIME,
        idle_timeout: timedelta = IDLE_TIMEOUT,
    ) -> None:
        self.db = database
        self.cache_seconds = cache_seconds
        self.lifetime = lifetime
        self.idle_timeout = idle_timeout
        self._cache: dict[str, tuple[float, SessionUser]] = {}  # digest -> (valid until, user)

    def create(
        self,
        user_id: str,
        *,
        replace: object = None,
        address: str | None = None,
        user_agent: str | None = None,
    ) -> str:
        """A new session for the user; returns the token for the cookie. `replace` (the token the
        browser had before) is ended in the same transaction, so signing in always rotates."""
        token = secrets.token_urlsafe(TOKEN_BYTES)
        now = utcnow()
        old = _token(replace)
        with self.db.write() as s:
            if old is not None:
                s.execute(delete(WebSession).where(WebSession.id == session_digest(old)))
            # Sweep sessions that can no longer be used (sign-in is rare; the table stays small).
            s.execute(
                delete(WebSession).where(
                    or_(WebSession.expires_at <= now, WebSession.last_seen_at <= now - self.idle_timeout)
                )
            )
            s.add(
                WebSession(
                    id=session_digest(token),
                    user_id=user_id,
                    created_at=now,
                    last_seen_at=now,
                    expires_at=now + self.lifetime,
                    user_agent=(user_agent or None) and user_agent[:200],
                    address=(address or None) and address[:64],
                )
            )
        if old is not None:
            self._cache.pop(session_digest(old), None)
        return token

    def cached(self, token: object) -> SessionUser | None:
        """The user of a session looked up in the last `cache_seconds`, without any I/O."""
        value = _token(token)
        hit = self._cache.get(session_digest(value)) if value is not None else None
        return hit[1] if hit is not None and hit[0] > time.monotonic() else None

    def lookup(self, token: object) -> SessionUser | None:
        """The user of a live session; None for an unknown, ended, expired or idle one."""
        value = _token(token)
        if value is None:
            return None
        hit = self.cached(value)
        if hit is not None:
            return hit
        digest = session_digest(value)
        with self.db.read() as s:
            row = s.execute(
                select(
                    WebSession.id,
                    WebSession.expires_at,
                    WebSession.last_seen_at,
                    User.id.label("user_id"),
                    User.email,
                    User.role,
                    User.clients,
                )
                .join(User, User.id == WebSession.user_id)
                .where(WebSession.id == digest)
            ).first()
        if row is None or not hmac.compare_digest(row.id, digest):
            return None
        now = utcnow()
        if row.expires_at <= now or row.last_seen_at <= now - self.idle_timeout:
            return None
        if now - row.last_seen_at > SEEN_RESOLUTION:
            with self.db.write() as s:
                s.execute(update(WebSession).where(WebSession.id == digest).values(last_seen_at=now))
        found = SessionUser(
            digest=digest,
            user_id=row.user_id,
            email=row.email,
            role=row.role,
            clients=row.clients,
            expires_at=row.expires_at,
        )
        ttl = min(self.cache_seconds, (row.expires_at - now).total_seconds())
        if ttl > 0:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[digest] = (time.monotonic() + ttl, found)
        return found

    def end(self, token: object) -> bool:
        """Ends one session (sign-out); False when there was none."""
        value = _token(token)
        if value is None:
            return False
        self._cache.pop(session_digest(value), None)
        with self.db.write() as s:
            return bool(
                _rowcount(s.execute(delete(WebSession).where(WebSession.id == session_digest(value))))
            )

    @staticmethod
    def end_all_for(s: Session, user_id: str, *, keep: object = None) -> int:
        """Ends every session of a user but `keep` (a token), inside the caller's transaction; call
        `forget_user` once it commits."""
        q = delete(WebSession).where(WebSession.user_id == user_id)
        kept = _token(keep)
        if kept is not None:
            q = q.where(WebSession.id != session_digest(kept))
        return _rowcount(s.execute(q))

    def end_others(self, user_id: str, *, keep: object) -> int:
        """Signs the user out everywhere but the session `keep`; returns how many ended."""
        with self.db.write() as s:
            ended = self.end_all_for(s, user_id, keep=keep)
        self.forget_user(user_id)
        return ended

    def forget_user(self, user_id: str) -> None:
        """Drops the user's sessions from this process's cache (after they were ended)."""
        for digest, (_, cached) in list(self._cache.items()):
            if cached.user_id == user_id:
                self._cache.pop(digest, None)

    def count_for(self, user_id: str) -> int:
        """The user's sessions that can still be used."""
        now = utcnow()
        with self.db.read() as s:
            return len(
                s.scalars(
                    select(WebSession.id).where(
                        WebSession.user_id == user_id,
                        WebSession.expires_at > now,
                        WebSession.last_seen_at > now - self.idle_timeout,
                    )
                ).all()
            )

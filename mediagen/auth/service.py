"""Users, API keys and the principal a request acts as.

API keys are `mg_<random>`: 32 bytes from `secrets`, so a sha256 of the token is a safe lookup key
(the token's entropy makes brute-forcing the hash pointless) and lets us find a key in O(1) through a
unique index. The stored hash is then compared in constant time to close the timing side channel.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from mediagen.auth.passwords import (
    generate_password,
    hash_password,
    password_problem,
    verify_for_nobody,
    verify_password,
)
from mediagen.auth.sessions import SessionStore, SessionUser
from mediagen.auth.tables import ApiKey, User
from mediagen.auth.throttle import SignInThrottle
from mediagen.db.base import utcnow
from mediagen.db.session import Database
from mediagen.errors import InvalidInput, MediagenError, Unauthenticated, invalid, not_found

KEY_PREFIX = "mg_"
ROLES = ("admin", "member")
# last_used_at is a hint for humans; writing it on every request would serialise reads on SQLite.
LAST_USED_RESOLUTION = timedelta(minutes=1)
# The longest a key can be given to live (ten years): beyond it, leave the expiry out.
MAX_EXPIRES_DAYS = 3650


class AuthError(MediagenError):
    pass


class WeakPassword(InvalidInput, AuthError):
    """A password the policy refuses; `message` says why (`passwords.password_problem`). An
    `InvalidInput` for the API and pages (422 beside the field), an `AuthError` for the CLI."""


def _session_principal(found: SessionUser | None) -> Principal | None:
    if found is None:
        return None
    clients = _narrow(found.clients, None)
    return Principal(user_id=found.user_id, email=found.email, role=found.role, clients=clients)


def check_password_strength(password: str, *, email: str, field: str = "password") -> None:
    """The password policy, for every place a password is set (see `mediagen.auth.passwords`)."""
    problem = password_problem(password, email=email)
    if problem is not None:
        raise WeakPassword(field, problem)


@dataclass(frozen=True)
class Principal:
    """Who a request acts for. `clients` None means unrestricted."""

    user_id: str
    email: str
    role: str
    clients: frozenset[str] | None
    key_id: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def can_see_client(self, client_id: str | None) -> bool:
        if self.clients is None:
            return True
        return client_id is not None and client_id in self.clients


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_id() -> str:
    return secrets.token_hex(8)


def _client_list(clients: Sequence[str] | None) -> list[str] | None:
    """None reaches every client; an empty list would read as None too, so it is refused."""
    if clients is None:
        return None
    if not clients:
        raise AuthError("give at least one client id, or none to reach every client")
    return list(clients)


def _narrow(user_clients: Sequence[str] | None, key_clients: Sequence[str] | None) -> frozenset[str] | None:
    """A key can only narrow its user's reach, never widen it."""
    if user_clients is None and key_clients is None:
        return None
    if user_clients is None:
        return frozenset(key_clients or ())
    if key_clients is None:
        return frozenset(user_clients)
    return frozenset(user_clients) & frozenset(key_clients)


def can_manage_key(principal: Principal, *, owner_id: str, reach: frozenset[str] | None) -> bool:
    """Whether `principal` may see and revoke a key of user `owner_id` whose effective reach is
    `reach` (the key's clients narrowed by its user's, as `_narrow` computes; None is every client).

    An admin without a client limit manages every key. A caller limited to some clients (admin or
    member) manages only keys that reach some client and nothing beyond the caller's clients: never
    an unrestricted key, never a key that reaches another tenant. A member manages only their own
    keys, and a limited member only those of them inside their reach.
    """
    if principal.clients is None:
        return principal.is_admin or owner_id == principal.user_id
    if not principal.is_admin and owner_id != principal.user_id:
        return False
    return reach is not None and bool(reach) and reach <= principal.clients


def expiry_after(days: int | None) -> datetime | None:
    """The moment a key made now with `expires_days=days` stops working (None: never)."""
    if days is None:
        return None
    if isinstance(days, bool) or not 1 <= days <= MAX_EXPIRES_DAYS:
        raise invalid("expires_days", f"give a whole number of days from 1 to {MAX_EXPIRES_DAYS}")
    return utcnow() + timedelta(days=days)


def expired_message(expires_at: datetime) -> str:
    return (
        f"The API key in X-API-Key expired at {expires_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC; "
        "create a new one"
    )


class AuthService:
    def __init__(self, database: Database, *, key_cache_seconds: float = 1.0) -> None:
        self.db = database
        # token digest -> (valid until, principal). Every API request authenticates; a second of
        # caching takes a query and a thread hop off each one. Revoking through this process clears
        # the entry at once; a revocation made by another process (the CLI, another API replica)
        # takes effect within `key_cache_seconds`.
        self.key_cache_seconds = key_cache_seconds
        self._key_cache: dict[str, tuple[float, Principal]] = {}
        # Web sign-in: server-side sessions (cached like keys) and the failed-sign-in throttle.
        self.sessions = SessionStore(database, cache_seconds=key_cache_seconds)
        self.throttle = SignInThrottle(database)

    # users -----------------------------------------------------------------
    def create_user(
        self,
        *,
        email: str,
        password: str,
        role: str = "member",
        clients: Sequence[str] | None = None,
        check_strength: bool = True,
    ) -> User:
        """A new user; the password must pass the policy (`WeakPassword` says why not).
        `check_strength=False` is only for a password this package generated itself."""
        if role not in ROLES:
            raise AuthError(f"role must be one of {', '.join(ROLES)}")
        email = email.strip().lower()
        if "@" not in email:
            raise AuthError("email must be an email address")
        if check_strength:
            check_password_strength(password, email=email)
        with self.db.write() as s:
            if s.scalar(select(User).where(User.email == email)) is not None:
                raise AuthError(f"a user with email {email} already exists")
            user = User(
                id=new_id(),
                email=email,
                password_hash=hash_password(password),
                role=role,
                clients=_client_list(clients),
            )
            s.add(user)
        return user

    def count_users(self) -> int:
        with self.db.read() as s:
            return len(s.scalars(select(User.id).limit(1)).all())

    def get_user_by_email(self, email: str) -> User | None:
        with self.db.read() as s:
            return s.scalar(select(User).where(User.email == email.strip().lower()))

    def first_admin(self) -> User | None:
        """The oldest admin: who owns keys made from the command line without `--user`."""
        with self.db.read() as s:
            return s.scalar(select(User).where(User.role == "admin").order_by(User.created_at).limit(1))

    def get_user(self, user_id: str) -> User | None:
        with self.db.read() as s:
            return s.get(User, user_id)

    def authenticate_password(self, email: str, password: str) -> Principal | None:
        user = self.get_user_by_email(email)
        if user is None:
            # Spend the same time as a real check so response timing does not reveal emails.
            verify_for_nobody(password)
            return None
        if not verify_password(user.password_hash, password):
            return None
        return self.principal_for_user(user)

    @staticmethod
    def principal_for_user(user: User) -> Principal:
        return Principal(
            user_id=user.id,
            email=user.email,
            role=user.role,
            clients=_narrow(user.clients, None),
        )

    def principal_for_session(self, user_id: object) -> Principal | None:
        """The principal of a user id, if the user still exists. Web sessions are looked up by their
        token instead (`principal_for_session_token`): a user id alone signs nobody in."""
        user = self.get_user(user_id) if isinstance(user_id, str) else None
        return self.principal_for_user(user) if user is not None else None

    # sign-in, sessions and password changes ----------------------------------
    def sign_in(
        self,
        email: str,
        password: str,
        *,
        address: str | None = None,
        user_agent: str | None = None,
        replace: object = None,
    ) -> tuple[Principal, str]:
        """A password sign-in (the web form), throttled per email and address (`RateLimited` while
        locked out, before any check). `Unauthenticated` for a wrong email or password alike. Returns
        the principal and the token of a new session; `replace`, the browser's old token, ends."""
        self.throttle.check(email=email, address=address)
        principal = self.authenticate_password(email, password)
        if principal is None:
            self.throttle.failed(email=email, address=address)
            raise Unauthenticated("Wrong email or password")
        self.throttle.succeeded(email=email)
        token = self.sessions.create(
            principal.user_id, replace=replace, address=address, user_agent=user_agent
        )
        return principal, token

    def cached_session_principal(self, token: object) -> Principal | None:
        """The principal of a session seen in the last `key_cache_seconds`, without any I/O."""
        return _session_principal(self.sessions.cached(token))

    def principal_for_session_token(self, token: object) -> Principal | None:
        """The user of a live session (None: unknown, ended, expired or idle)."""
        return _session_principal(self.sessions.lookup(token))

    def end_session(self, token: object) -> bool:
        """Sign-out: the session ends at once, so a copy of its cookie stops working too."""
        return self.sessions.end(token)

    def end_other_sessions(self, principal: Principal, *, keep_session: object) -> int:
        return self.sessions.end_others(principal.user_id, keep=keep_session)

    def change_password(
        self,
        principal: Principal,
        *,
        current: str,
        new: str,
        address: str | None = None,
        keep_session: object = None,
    ) -> int:
        """The caller's own change. A wrong current password counts as a failed sign-in (and is
        refused while locked out); the new one must pass the policy. Every session of the user but
        `keep_session` ends; returns how many. API keys are left as they are."""
        user = self.get_user(principal.user_id)
        if user is None:
            raise Unauthenticated("This account no longer exists")
        self.throttle.check(email=user.email, address=address)
        if not current or not verify_password(user.password_hash, current):
            self.throttle.failed(email=user.email, address=address)
            raise InvalidInput("current_password", "is not your current password")
        check_password_strength(new, email=user.email, field="new_password")
        if new == current:
            raise WeakPassword("new_password", "must differ from your current password")
        self.throttle.succeeded(email=user.email)
        return self._set_password(user.id, new, keep_session=keep_session)

    def reset_password(self, *, email: str, password: str | None = None) -> tuple[str, int]:
        """An administrator's reset: `password` (held to the policy) or a random one; ends every
        session of the user and lifts a sign-in lock-out. Returns the password and sessions ended."""
        user = self.get_user_by_email(email)
        if user is None:
            raise AuthError(f"no user with email {email.strip().lower()}")
        if password is None:
            password = generate_password()
        else:
            check_password_strength(password, email=user.email)
        self.throttle.succeeded(email=user.email)
        return password, self._set_password(user.id, password)

    def _set_password(self, user_id: str, password: str, *, keep_session: object = None) -> int:
        password_hash = hash_password(password)
        with self.db.write() as s:
            s.execute(update(User).where(User.id == user_id).values(password_hash=password_hash))
            ended = SessionStore.end_all_for(s, user_id, keep=keep_session)
        self.sessions.forget_user(user_id)
        return ended

    # keys ------------------------------------------------------------------
    def create_key_for(
        self,
        principal: Principal,
        *,
        name: str,
        clients: Sequence[str] | None,
        expires_days: int | None = None,
    ) -> tuple[ApiKey, str]:
        """A key for the caller; a limited caller can only make keys as limited or narrower."""
        if principal.clients is not None:
            if clients is None:
                clients = sorted(principal.clients)
            elif not set(clients) <= principal.clients:
                raise invalid("clients", "a key cannot reach clients its creator cannot see")
        if clients is not None and not clients:
            raise invalid("clients", "give at least one client id, or omit the field for all clients")
        return self.create_key(
            user_id=principal.user_id, name=name, clients=clients, expires_days=expires_days
        )

    def keys_visible_to(self, principal: Principal) -> list[ApiKey]:
        """The keys the caller may see and revoke (`can_manage_key`), newest first."""
        with self.db.read() as s:
            q = (
                select(ApiKey, User.clients)
                .join(User, User.id == ApiKey.user_id)
                .order_by(ApiKey.created_at.desc(), ApiKey.id.desc())
            )
            if not principal.is_admin:
                q = q.where(ApiKey.user_id == principal.user_id)
            rows = s.execute(q).all()
        return [
            key
            for key, user_clients in rows
            if can_manage_key(principal, owner_id=key.user_id, reach=_narrow(user_clients, key.clients))
        ]

    def revoke_key_for(self, principal: Principal, key_id: str) -> None:
        """Revoke a key the caller may manage; any other key is not found, never forbidden."""
        with self.db.write() as s:
            row = s.execute(
                select(ApiKey, User.clients).join(User, User.id == ApiKey.user_id).where(ApiKey.id == key_id)
            ).first()
            if row is None:
                raise not_found("key", key_id)
            key, user_clients = row
            if not can_manage_key(principal, owner_id=key.user_id, reach=_narrow(user_clients, key.clients)):
                raise not_found("key", key_id)
            if key.revoked_at is None:
                key.revoked_at = utcnow()
        self._forget_key(key_id)

    def _forget_key(self, key_id: str) -> None:
        """Drop a key from this process's cache, so a revocation takes effect at once."""
        for digest, (_, cached) in list(self._key_cache.items()):
            if cached.key_id == key_id:
                self._key_cache.pop(digest, None)

    def create_key(
        self,
        *,
        user_id: str,
        name: str,
        clients: Sequence[str] | None = None,
        expires_days: int | None = None,
    ) -> tuple[ApiKey, str]:
        """Returns the row and the token; the token is never stored and cannot be shown again.

        `expires_days`: the key stops working that many days from now (None: never)."""
        expires_at = expiry_after(expires_days)
        token = KEY_PREFIX + secrets.token_urlsafe(32)
        with self.db.write() as s:
            if s.get(User, user_id) is None:
                raise AuthError("unknown user")
            key = ApiKey(
                id=new_id(),
                user_id=user_id,
                name=name,
                key_hash=hash_token(token),
                prefix=token[:10],
                clients=_client_list(clients),
                expires_at=expires_at,
            )
            s.add(key)
        return key, token

    def list_keys(self, *, user_id: str | None) -> list[ApiKey]:
        with self.db.read() as s:
            q = select(ApiKey).order_by(ApiKey.created_at.desc(), ApiKey.id.desc())
            if user_id is not None:
                q = q.where(ApiKey.user_id == user_id)
            return list(s.scalars(q))

    def revoke_key(self, key_id: str, *, user_id: str | None = None) -> bool:
        """Revoke by id, with no caller's scope (the command line); see `revoke_key_for`."""
        with self.db.write() as s:
            key = s.get(ApiKey, key_id)
            if key is None or (user_id is not None and key.user_id != user_id):
                return False
            if key.revoked_at is None:
                key.revoked_at = utcnow()
        self._forget_key(key_id)
        return True

    def cached_principal(self, token: str) -> Principal | None:
        """The principal for a key seen in the last `key_cache_seconds`, without any I/O."""
        hit = self._key_cache.get(hash_token(token))
        return hit[1] if hit is not None and hit[0] > time.monotonic() else None

    def authenticate_key(self, token: str) -> Principal | None:
        """The principal a key acts as; None for an unknown or revoked key.

        Raises `Unauthenticated` for an expired key, so the caller is told why it stopped working.
        """
        digest = hash_token(token)
        hit = self._key_cache.get(digest)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        found = self._authenticate_key(digest)
        if found is None:
            return None
        principal, expires_at = found
        ttl = self.key_cache_seconds
        if expires_at is not None:
            # Never cache a key past its expiry: the cache must not keep it working.
            ttl = min(ttl, (expires_at - datetime.now(UTC)).total_seconds())
        if ttl > 0:
            if len(self._key_cache) > 10_000:
                self._key_cache.clear()
            self._key_cache[digest] = (time.monotonic() + ttl, principal)
        return principal

    def _authenticate_key(self, digest: str) -> tuple[Principal, datetime | None] | None:
        with self.db.read() as s:
            # Columns, not entities: this runs on every API request.
            row = s.execute(
                select(
                    ApiKey.id,
                    ApiKey.key_hash,
                    ApiKey.clients,
                    ApiKey.revoked_at,
                    ApiKey.last_used_at,
                    ApiKey.expires_at,
                    User.id.label("user_id"),
                    User.email,
                    User.role,
                    User.clients.label("user_clients"),
                )
                .join(User, User.id == ApiKey.user_id)
                .where(ApiKey.key_hash == digest)
            ).first()
        if row is None or not hmac.compare_digest(row.key_hash, digest) or row.revoked_at is not None:
            return None
        now = datetime.now(UTC)
        expires_at = row.expires_at
        if expires_at is not None and expires_at.tzinfo is None:
            expires_at = expires_at.replace(tzinfo=UTC)
        if expires_at is not None and expires_at <= now:
            raise Unauthenticated(expired_message(expires_at))
        last = row.last_used_at
        if last is not None and last.tzinfo is None:
            last = last.replace(tzinfo=UTC)
        if last is None or now - last > LAST_USED_RESOLUTION:
            with self.db.write() as s:
                s.execute(update(ApiKey).where(ApiKey.id == row.id).values(last_used_at=now))
        principal = Principal(
            user_id=row.user_id,
            email=row.email,
            role=row.role,
            clients=_narrow(row.user_clients, row.clients),
            key_id=row.id,
        )
        return principal, expires_at

    def bootstrap_admin(self) -> tuple[str, str, str] | None:
        """On first start with no users, create an admin and a key; returns (email, password, key)."""
        if self.count_users() > 0:
            return None
        password = generate_password()
        email = "admin@localhost"
        user = self.create_user(email=email, password=password, role="admin", check_strength=False)
        _, token = self.create_key(user_id=user.id, name="bootstrap admin key")
        return email, password, token

"""Users, API keys and the principal a request acts as.

API keys are `mg_<random>`: 32 bytes from `secrets`, so a sha256 of the token is a safe lookup key
(the token's entropy makes brute-forcing the hash pointless) and lets us find a key in O(1) through a
unique index. The stored hash is then compared in constant time to close the timing side channel.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select, update

from mediagen.auth.tables import ApiKey, User
from mediagen.db.base import utcnow
from mediagen.db.session import Database
from mediagen.errors import MediagenError, invalid, not_found

KEY_PREFIX = "mg_"
ROLES = ("admin", "member")
# last_used_at is a hint for humans; writing it on every request would serialise reads on SQLite.
LAST_USED_RESOLUTION = timedelta(minutes=1)

_hasher = PasswordHasher()


class AuthError(MediagenError):
    pass


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


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


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


class AuthService:
    def __init__(self, database: Database, *, key_cache_seconds: float = 1.0) -> None:
        self.db = database
        # token digest -> (valid until, principal). Every API request authenticates; a second of
        # caching takes a query and a thread hop off each one. Revoking through this process clears
        # the entry at once; a revocation made by another process (the CLI, another API replica)
        # takes effect within `key_cache_seconds`.
        self.key_cache_seconds = key_cache_seconds
        self._key_cache: dict[str, tuple[float, Principal]] = {}

    # users -----------------------------------------------------------------
    def create_user(
        self, *, email: str, password: str, role: str = "member", clients: Sequence[str] | None = None
    ) -> User:
        if role not in ROLES:
            raise AuthError(f"role must be one of {', '.join(ROLES)}")
        email = email.strip().lower()
        if "@" not in email:
            raise AuthError("email must be an email address")
        if len(password) < 8:
            raise AuthError("password must be at least 8 characters")
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
            verify_password(_dummy_hash(), password)
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
        """The signed-in web user whose id a session cookie carries, if they still exist."""
        user = self.get_user(user_id) if isinstance(user_id, str) else None
        return self.principal_for_user(user) if user is not None else None

    # keys ------------------------------------------------------------------
    def create_key_for(
        self, principal: Principal, *, name: str, clients: Sequence[str] | None
    ) -> tuple[ApiKey, str]:
        """A key for the caller; a limited caller can only make keys as limited or narrower."""
        if principal.clients is not None:
            if clients is None:
                clients = sorted(principal.clients)
            elif not set(clients) <= principal.clients:
                raise invalid("clients", "a key cannot reach clients its creator cannot see")
        if clients is not None and not clients:
            raise invalid("clients", "give at least one client id, or omit the field for all clients")
        return self.create_key(user_id=principal.user_id, name=name, clients=clients)

    def keys_visible_to(self, principal: Principal) -> list[ApiKey]:
        """The caller's own keys (admins see every user's keys)."""
        return self.list_keys(user_id=None if principal.is_admin else principal.user_id)

    def revoke_key_for(self, principal: Principal, key_id: str) -> None:
        if not self.revoke_key(key_id, user_id=None if principal.is_admin else principal.user_id):
            raise not_found("key", key_id)

    def create_key(
        self, *, user_id: str, name: str, clients: Sequence[str] | None = None
    ) -> tuple[ApiKey, str]:
        """Returns the row and the token; the token is never stored and cannot be shown again."""
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
        for digest, (_, cached) in list(self._key_cache.items()):
            if cached.key_id == key_id:
                self._key_cache.pop(digest, None)
        with self.db.write() as s:
            key = s.get(ApiKey, key_id)
            if key is None or (user_id is not None and key.user_id != user_id):
                return False
            if key.revoked_at is None:
                key.revoked_at = utcnow()
            return True

    def cached_principal(self, token: str) -> Principal | None:
        """The principal for a key seen in the last `key_cache_seconds`, without any I/O."""
        hit = self._key_cache.get(hash_token(token))
        return hit[1] if hit is not None and hit[0] > time.monotonic() else None

    def authenticate_key(self, token: str) -> Principal | None:
        digest = hash_token(token)
        hit = self._key_cache.get(digest)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        principal = self._authenticate_key(digest)
        if principal is not None and self.key_cache_seconds > 0:
            if len(self._key_cache) > 10_000:
                self._key_cache.clear()
            self._key_cache[digest] = (time.monotonic() + self.key_cache_seconds, principal)
        return principal

    def _authenticate_key(self, digest: str) -> Principal | None:
        with self.db.read() as s:
            # Columns, not entities: this runs on every API request.
            row = s.execute(
                select(
                    ApiKey.id,
                    ApiKey.key_hash,
                    ApiKey.clients,
                    ApiKey.revoked_at,
                    ApiKey.last_used_at,
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
        last = row.last_used_at
        if last is not None and last.tzinfo is None:
            last = last.replace(tzinfo=UTC)
        if last is None or now - last > LAST_USED_RESOLUTION:
            with self.db.write() as s:
                s.execute(update(ApiKey).where(ApiKey.id == row.id).values(last_used_at=now))
        return Principal(
            user_id=row.user_id,
            email=row.email,
            role=row.role,
            clients=_narrow(row.user_clients, row.clients),
            key_id=row.id,
        )

    def bootstrap_admin(self) -> tuple[str, str, str] | None:
        """On first start with no users, create an admin and a key; returns (email, password, key)."""
        if self.count_users() > 0:
            return None
        password = secrets.token_urlsafe(12)
        email = "admin@localhost"
        user = self.create_user(email=email, password=password, role="admin")
        _, token = self.create_key(user_id=user.id, name="bootstrap admin key")
        return email, password, token


@functools.cache
def _dummy_hash() -> str:
    """A hash to verify against for unknown emails; made on first use, not at import."""
    return _hasher.hash(secrets.token_hex(8))

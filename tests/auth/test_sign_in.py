"""Sign-in hardening in AuthService, on a real SQLite database made by the real migrations: the
throttle (per email, per address), the password policy, server-side sessions, password change and
the administrator's reset."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from mediagen.auth.passwords import MIN_LENGTH, hash_password, password_problem
from mediagen.auth.service import AuthError, AuthService, WeakPassword, new_id
from mediagen.auth.sessions import session_digest
from mediagen.auth.tables import SignInCounter, User, WebSession
from mediagen.auth.throttle import ADDRESS_LIMIT, EMAIL_LIMIT, FIRST_LOCK, address_bucket, lock_for
from mediagen.db.migrate import upgrade
from mediagen.db.session import Database
from mediagen.errors import InvalidInput, RateLimited, Unauthenticated

PASSWORD = "correct horse battery"
NEW_PASSWORD = "violet harbor lantern"


@pytest.fixture(scope="module")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sign-in-template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture
def db(migrated_template: Path, tmp_path: Path) -> Iterator[Database]:
    path = tmp_path / "auth.db"
    with sqlite3.connect(migrated_template) as src, sqlite3.connect(path) as dst:
        src.backup(dst)
    database = Database(f"sqlite:///{path}")
    yield database
    database.dispose()


@pytest.fixture
def auth(db: Database) -> AuthService:
    # No session cache, so a change made in the database is seen by the very next lookup.
    return AuthService(db, key_cache_seconds=0)


@pytest.fixture
def alice(auth: AuthService) -> User:
    return auth.create_user(email="alice@example.com", password=PASSWORD)


def fail(auth: AuthService, email: str, address: str | None = "198.51.100.7", times: int = 1) -> None:
    for _ in range(times):
        with pytest.raises(Unauthenticated, match="Wrong email or password"):
            auth.sign_in(email, "not the password", address=address)


def counters(db: Database) -> list[SignInCounter]:
    with db.read() as s:
        return list(s.scalars(select(SignInCounter)))


def unlock_all(db: Database) -> None:
    """The lock-out has run its time (as if the clock moved on)."""
    with db.write() as s:
        s.execute(update(SignInCounter).values(locked_until=datetime.now(UTC) - timedelta(seconds=1)))


# throttle ---------------------------------------------------------------------------------------


def test_a_wrong_password_and_an_unknown_email_are_the_same_failure(auth: AuthService, alice: User) -> None:
    with pytest.raises(Unauthenticated) as wrong:
        auth.sign_in("alice@example.com", "not the password", address="198.51.100.7")
    with pytest.raises(Unauthenticated) as unknown:
        auth.sign_in("nobody@example.com", PASSWORD, address="198.51.100.7")
    assert wrong.value.message == unknown.value.message == "Wrong email or password"


def test_an_email_is_locked_after_five_failures_for_a_growing_time(auth: AuthService, alice: User) -> None:
    fail(auth, "alice@example.com", times=EMAIL_LIMIT - 1)
    fail(auth, " ALICE@example.com", address="203.0.113.9")  # the same account, however spelled
    # Locked: even the right password is refused, before it is checked, from any address.
    for address in ("198.51.100.7", "192.0.2.1", None):
        with pytest.raises(RateLimited) as info:
            auth.sign_in("alice@example.com", PASSWORD, address=address)
        assert FIRST_LOCK.total_seconds() - 5 <= info.value.retry_after <= FIRST_LOCK.total_seconds()
    assert "Too many failed sign-ins" in info.value.message
    # Other accounts are not affected.
    auth.create_user(email="bob@example.com", password=PASSWORD)
    assert auth.sign_in("bob@example.com", PASSWORD, address="192.0.2.1")[0].email == "bob@example.com"

    # When the lock has run out, five more failures lock it again, for twice as long.
    unlock_all(auth.db)
    fail(auth, "alice@example.com", times=EMAIL_LIMIT)
    with pytest.raises(RateLimited) as info:
        auth.sign_in("alice@example.com", PASSWORD, address="192.0.2.1")
    assert info.value.retry_after > FIRST_LOCK.total_seconds() + 5
    assert lock_for(1) == FIRST_LOCK and lock_for(2) == 2 * FIRST_LOCK and lock_for(50) == lock_for(60)


def test_a_success_resets_the_accounts_count(auth: AuthService, alice: User) -> None:
    fail(auth, "alice@example.com", times=EMAIL_LIMIT - 1)
    auth.sign_in("alice@example.com", PASSWORD, address="198.51.100.7")
    fail(auth, "alice@example.com", times=EMAIL_LIMIT - 1)
    principal, _ = auth.sign_in("alice@example.com", PASSWORD, address="198.51.100.7")
    assert principal.user_id == alice.id


def test_unknown_emails_are_counted_like_known_ones(auth: AuthService) -> None:
    """A lock-out must not tell an attacker that an account exists."""
    fail(auth, "ghost@example.com", times=EMAIL_LIMIT)
    with pytest.raises(RateLimited):
        auth.sign_in("ghost@example.com", "anything at all", address="192.0.2.55")


def test_an_address_is_locked_after_twenty_failures(auth: AuthService, alice: User) -> None:
    for i in range(ADDRESS_LIMIT):
        fail(auth, f"guess{i}@example.com", address="198.51.100.7")
    with pytest.raises(RateLimited):
        auth.sign_in("alice@example.com", PASSWORD, address="198.51.100.7")
    # The account itself is fine from elsewhere, and signing in there does not unlock the address.
    auth.sign_in("alice@example.com", PASSWORD, address="192.0.2.1")
    with pytest.raises(RateLimited):
        auth.sign_in("alice@example.com", PASSWORD, address="198.51.100.7")
    # Neither emails nor addresses are stored in the clear.
    stored = " ".join(f"{c.key} {c.scope}" for c in counters(auth.db))
    assert "198.51.100.7" not in stored and "example.com" not in stored


def test_ipv6_addresses_are_counted_per_64_block() -> None:
    assert (
        address_bucket("2001:db8:1:2:aaaa::1")
        == address_bucket("2001:db8:1:2:bbbb::2")
        == "2001:db8:1:2::/64"
    )
    assert address_bucket("2001:db8:1:3::1") != address_bucket("2001:db8:1:2::1")
    assert address_bucket("::ffff:192.0.2.1") == "192.0.2.1"
    assert address_bucket("192.0.2.1") == "192.0.2.1" and address_bucket(None) is None
    assert address_bucket("testclient") == "testclient"


def test_a_stale_count_is_forgotten(auth: AuthService, alice: User) -> None:
    fail(auth, "alice@example.com", times=EMAIL_LIMIT - 1)
    with auth.db.write() as s:  # the window began 16 minutes ago
        s.execute(update(SignInCounter).values(window_start=datetime.now(UTC) - timedelta(minutes=16)))
    fail(auth, "alice@example.com", times=EMAIL_LIMIT - 1)
    auth.sign_in("alice@example.com", PASSWORD, address="198.51.100.7")


# password policy --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("password", f"must be at least {MIN_LENGTH} characters"),
        ("12345678", f"must be at least {MIN_LENGTH} characters"),
        ("1234567890", "is one of the most common passwords"),
        ("qwertyuiop", "is one of the most common passwords"),
        ("Password123", "is one of the most common passwords"),
        ("dana.smith-2024-xyz", "must not contain your email address's name"),
        ("correct-SMITH-horse", "must not contain your email address's name"),
        ("Summer2024!", "is too easy to guess"),
        ("aaaaaaaaaaaaaaaa", "is too easy to guess"),
        (" " * 12, "must not be only spaces"),
    ],
)
def test_weak_passwords_are_refused_with_the_reason(auth: AuthService, password: str, reason: str) -> None:
    with pytest.raises(WeakPassword) as info:
        auth.create_user(email="dana.smith@example.com", password=password)
    err = info.value
    # An InvalidInput on `password` for the API and pages (422), an AuthError for the command line.
    assert isinstance(err, InvalidInput) and isinstance(err, AuthError)
    assert err.field == "password" and err.message.startswith(reason), err.message
    assert err.detail.startswith("password: ")
    assert auth.count_users() == 0


def test_the_email_itself_is_refused_and_a_strong_password_accepted() -> None:
    assert password_problem("dana@example.com", email="dana@example.com") is not None
    assert password_problem("x" * 2000, email="dana@example.com") is not None
    assert password_problem(NEW_PASSWORD, email="dana@example.com") is None
    assert password_problem("Tr0ub4dor&3-staple" + "q" * 70, email="dana@example.com") is None  # > 72


def test_a_user_with_an_older_short_password_can_still_sign_in(auth: AuthService, db: Database) -> None:
    with db.write() as s:
        s.add(
            User(id=new_id(), email="old@example.com", password_hash=hash_password("shorty"), role="member")
        )
    principal, token = auth.sign_in("old@example.com", "shorty", address="192.0.2.1")
    assert auth.principal_for_session_token(token) == principal


def test_the_first_admins_generated_password_passes_the_policy(auth: AuthService) -> None:
    created = auth.bootstrap_admin()
    assert created is not None
    email, password, _ = created
    assert password_problem(password, email=email) is None


# sessions ---------------------------------------------------------------------------------------


def test_sign_in_makes_a_server_side_session_and_stores_only_its_hash(auth: AuthService, alice: User) -> None:
    principal, token = auth.sign_in(
        "alice@example.com", PASSWORD, address="192.0.2.1", user_agent="Firefox/140"
    )
    assert auth.principal_for_session_token(token) == principal and principal.user_id == alice.id
    with auth.db.read() as s:
        rows = list(s.scalars(select(WebSession)))
    assert len(rows) == 1
    row = rows[0]
    assert row.id == session_digest(token) != token and row.user_id == alice.id
    assert (row.user_agent, row.address) == ("Firefox/140", "192.0.2.1")
    assert timedelta(days=13, hours=23) < row.expires_at - row.created_at <= timedelta(days=14)
    for bad in (None, 42, "", "x" * 500, row.id):  # the stored hash is not a credential either
        assert auth.principal_for_session_token(bad) is None


def test_sign_in_rotates_and_sign_out_ends_the_session(auth: AuthService, alice: User) -> None:
    _, first = auth.sign_in("alice@example.com", PASSWORD, address="192.0.2.1")
    _, second = auth.sign_in("alice@example.com", PASSWORD, address="192.0.2.1", replace=first)
    assert second != first
    assert auth.principal_for_session_token(first) is None
    assert auth.principal_for_session_token(second) is not None
    assert auth.end_session(second) is True
    assert auth.principal_for_session_token(second) is None
    assert auth.end_session(second) is False


def test_sign_out_is_seen_at_once_despite_the_cache(db: Database, alice: User) -> None:
    auth = AuthService(db)  # the default one-second cache, as the app runs
    _, token = auth.sign_in("alice@example.com", PASSWORD, address="192.0.2.1")
    assert auth.principal_for_session_token(token) is not None
    assert auth.cached_session_principal(token) is not None
    auth.end_session(token)
    assert auth.cached_session_principal(token) is None
    assert auth.principal_for_session_token(token) is None


def test_expired_and_idle_sessions_are_refused(auth: AuthService, alice: User) -> None:
    _, expired = auth.sign_in("alice@example.com", PASSWORD, address="192.0.2.1")
    _, idle = auth.sign_in("alice@example.com", PASSWORD, address="192.0.2.1")
    _, active = auth.sign_in("alice@example.com", PASSWORD, address="192.0.2.1")
    now = datetime.now(UTC)
    with auth.db.write() as s:
        s.execute(update(WebSession).where(WebSession.id == session_digest(expired)).values(expires_at=now))
        s.execute(
            update(WebSession)
            .where(WebSession.id == session_digest(idle))
            .values(last_seen_at=now - timedelta(days=2, minutes=1))
        )
        s.execute(
            update(WebSession)
            .where(WebSession.id == session_digest(active))
            .values(last_seen_at=now - timedelta(days=1))
        )
    assert auth.principal_for_session_token(expired) is None
    assert auth.principal_for_session_token(idle) is None
    assert auth.principal_for_session_token(active) is not None
    with auth.db.read() as s:  # a use moves last_seen_at on, so the idle clock restarts
        seen = s.get(WebSession, session_digest(active))
    assert seen is not None and seen.last_seen_at > now - timedelta(minutes=1)
    # Dead sessions are swept at the next sign-in.
    auth.sign_in("alice@example.com", PASSWORD, address="192.0.2.1")
    with auth.db.read() as s:
        ids = set(s.scalars(select(WebSession.id)))
    assert session_digest(expired) not in ids and session_digest(idle) not in ids
    assert session_digest(active) in ids


def test_deleting_a_user_ends_their_sessions(auth: AuthService, alice: User) -> None:
    _, token = auth.sign_in("alice@example.com", PASSWORD, address="192.0.2.1")
    with auth.db.write() as s:
        s.delete(s.get(User, alice.id))
    assert auth.principal_for_session_token(token) is None


# password change and reset ----------------------------------------------------------------------


def test_change_password_needs_the_current_one_and_ends_other_sessions(
    auth: AuthService, alice: User
) -> None:
    me, here = auth.sign_in("alice@example.com", PASSWORD, address="192.0.2.1")
    _, elsewhere = auth.sign_in("alice@example.com", PASSWORD, address="192.0.2.2")

    with pytest.raises(InvalidInput) as info:
        auth.change_password(me, current="wrong password!", new=NEW_PASSWORD, keep_session=here)
    assert (info.value.field, info.value.message) == ("current_password", "is not your current password")
    with pytest.raises(WeakPassword) as weak:
        auth.change_password(me, current=PASSWORD, new="password123", keep_session=here)
    assert weak.value.field == "new_password"
    with pytest.raises(WeakPassword, match="must differ"):
        auth.change_password(me, current=PASSWORD, new=PASSWORD, keep_session=here)
    assert auth.principal_for_session_token(elsewhere) is not None  # nothing changed yet

    assert auth.change_password(me, current=PASSWORD, new=NEW_PASSWORD, keep_session=here) == 1
    assert auth.principal_for_session_token(here) == me
    assert auth.principal_for_session_token(elsewhere) is None
    assert auth.authenticate_password("alice@example.com", PASSWORD) is None
    assert auth.authenticate_password("alice@example.com", NEW_PASSWORD) == me


def test_guessing_the_current_password_is_throttled(auth: AuthService, alice: User) -> None:
    me = auth.principal_for_user(alice)
    for _ in range(EMAIL_LIMIT):
        with pytest.raises(InvalidInput):
            auth.change_password(me, current="guess guess", new=NEW_PASSWORD, address="192.0.2.1")
    with pytest.raises(RateLimited):
        auth.change_password(me, current=PASSWORD, new=NEW_PASSWORD, address="192.0.2.1")
    with pytest.raises(RateLimited):  # the same count guards the sign-in form
        auth.sign_in("alice@example.com", PASSWORD, address="192.0.2.9")


def test_an_admin_reset_sets_a_new_password_and_ends_every_session(auth: AuthService, alice: User) -> None:
    _, token = auth.sign_in("alice@example.com", PASSWORD, address="192.0.2.1")
    fail(auth, "alice@example.com", times=EMAIL_LIMIT)  # and she has locked herself out

    password, ended = auth.reset_password(email=" Alice@Example.com")
    assert ended == 1 and auth.principal_for_session_token(token) is None
    assert password_problem(password, email="alice@example.com") is None and password != PASSWORD
    # The reset lifts the lock-out, so the new password works at once.
    principal, _ = auth.sign_in("alice@example.com", password, address="192.0.2.1")
    assert principal.user_id == alice.id

    chosen, _ = auth.reset_password(email="alice@example.com", password=NEW_PASSWORD)
    assert chosen == NEW_PASSWORD
    assert auth.authenticate_password("alice@example.com", NEW_PASSWORD) is not None
    with pytest.raises(WeakPassword, match="at least 10"):
        auth.reset_password(email="alice@example.com", password="short")
    with pytest.raises(AuthError, match="no user with email nobody@example.com"):
        auth.reset_password(email="nobody@example.com")


def test_signing_out_everywhere_else(auth: AuthService, alice: User) -> None:
    me, here = auth.sign_in("alice@example.com", PASSWORD, address="192.0.2.1")
    others = [auth.sign_in("alice@example.com", PASSWORD, address="192.0.2.1")[1] for _ in range(2)]
    assert auth.sessions.count_for(me.user_id) == 3
    assert auth.end_other_sessions(me, keep_session=here) == 2
    assert auth.sessions.count_for(me.user_id) == 1 and auth.principal_for_session_token(here) == me
    assert all(auth.principal_for_session_token(t) is None for t in others)

"""AuthService in-process, on a real SQLite database made by the real Alembic migration."""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select, update

from mediagen.auth.service import KEY_PREFIX, AuthError, AuthService, Principal
from mediagen.auth.tables import ApiKey, User
from mediagen.db.migrate import upgrade
from mediagen.db.session import Database
from mediagen.errors import InvalidInput, MediagenError, NotFound

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One database upgraded to head per module; each test gets its own copy."""
    path = tmp_path_factory.mktemp("auth-template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture
def db_path(migrated_template: Path, tmp_path: Path) -> Path:
    path = tmp_path / "auth.db"
    with sqlite3.connect(migrated_template) as src, sqlite3.connect(path) as dst:
        src.backup(dst)
    return path


@pytest.fixture
def db(db_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{db_path}")
    yield database
    database.dispose()


@pytest.fixture
def auth(db: Database) -> AuthService:
    return AuthService(db)


def user_row(db: Database, user_id: str) -> User:
    with db.read() as s:
        row = s.get(User, user_id)
    assert row is not None
    return row


def key_row(db: Database, key_id: str) -> ApiKey:
    with db.read() as s:
        row = s.get(ApiKey, key_id)
    assert row is not None
    return row


# users ------------------------------------------------------------------------------------------


def test_create_user_stores_an_argon2_hash_and_checks_the_password(auth: AuthService, db: Database) -> None:
    user = auth.create_user(email="  Alice@Example.COM ", password=PASSWORD)
    stored = user_row(db, user.id)
    assert stored.email == "alice@example.com"  # normalised: trimmed, lower case
    assert stored.role == "member" and stored.clients is None
    assert stored.password_hash.startswith("$argon2id$") and PASSWORD not in stored.password_hash
    assert PasswordHasher().verify(stored.password_hash, PASSWORD)
    assert stored.created_at.tzinfo is not None

    principal = auth.authenticate_password("ALICE@example.com ", PASSWORD)
    assert principal == Principal(user_id=user.id, email="alice@example.com", role="member", clients=None)
    assert principal.key_id is None
    assert auth.authenticate_password("alice@example.com", PASSWORD + "!") is None
    assert auth.authenticate_password("alice@example.com", "") is None
    assert auth.authenticate_password("bob@example.com", PASSWORD) is None
    assert auth.get_user_by_email("ALICE@EXAMPLE.COM") is not None
    assert auth.get_user(user.id) is not None and auth.get_user("nope") is None


def test_duplicate_email_is_refused_whatever_its_case(auth: AuthService, db: Database) -> None:
    first = auth.create_user(email="carol@example.com", password=PASSWORD)
    with pytest.raises(AuthError, match="a user with email carol@example.com already exists"):
        auth.create_user(email=" CAROL@example.com", password="another password")
    with db.read() as s:
        assert s.scalars(select(User.id)).all() == [first.id]
    # The original password still works, so nothing was overwritten.
    assert auth.authenticate_password("carol@example.com", PASSWORD) is not None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"email": "dave@example.com", "password": PASSWORD, "role": "owner"},
            "role must be one of admin, member",
        ),
        ({"email": "dave.example.com", "password": PASSWORD}, "email must be an email address"),
        ({"email": "dave@example.com", "password": "1234567"}, "must be at least 10 characters"),
    ],
)
def test_create_user_validates_its_inputs(
    auth: AuthService, db: Database, kwargs: dict[str, str], message: str
) -> None:
    with pytest.raises(AuthError) as info:
        auth.create_user(**kwargs)
    assert isinstance(info.value, MediagenError) and info.value.message == message
    assert auth.count_users() == 0


def test_bootstrap_admin_runs_once(auth: AuthService) -> None:
    assert auth.count_users() == 0
    created = auth.bootstrap_admin()
    assert created is not None
    email, password, token = created
    assert email == "admin@localhost" and len(password) >= 8 and token.startswith(KEY_PREFIX)
    by_key = auth.authenticate_key(token)
    assert by_key is not None and by_key.is_admin and by_key.clients is None
    by_password = auth.authenticate_password(email, password)
    assert by_password is not None and by_password.user_id == by_key.user_id
    assert auth.count_users() == 1
    assert auth.bootstrap_admin() is None


# keys -------------------------------------------------------------------------------------------


def test_a_key_is_shown_once_and_only_its_sha256_is_stored(
    auth: AuthService, db: Database, db_path: Path
) -> None:
    user = auth.create_user(email="erin@example.com", password=PASSWORD)
    row, token = auth.create_key(user_id=user.id, name="ci")
    assert token.startswith(KEY_PREFIX) and len(token) >= len(KEY_PREFIX) + 40
    stored = key_row(db, row.id)
    assert stored.key_hash == hashlib.sha256(token.encode()).hexdigest()
    assert stored.prefix == token[:10] and stored.name == "ci" and stored.user_id == user.id
    assert stored.revoked_at is None and stored.last_used_at is None
    # The token itself is nowhere in the database files (main file and write-ahead log).
    db.dispose()
    raw = b"".join(p.read_bytes() for p in db_path.parent.glob(db_path.name + "*"))
    assert stored.key_hash.encode() in raw
    assert token.encode() not in raw and token[10:].encode() not in raw
    # Every key gets its own token.
    second, other = auth.create_key(user_id=user.id, name="ci")
    assert other != token
    # Listing keys cannot show a token again: the rows do not have one.
    assert {k.id for k in auth.list_keys(user_id=user.id)} == {row.id, second.id}
    assert not any(token in str(v) for k in auth.list_keys(user_id=None) for v in vars(k).values())


def test_create_key_for_an_unknown_user_is_refused(auth: AuthService, db: Database) -> None:
    with pytest.raises(AuthError, match="unknown user"):
        auth.create_key(user_id="missing", name="x")
    with db.read() as s:
        assert s.scalars(select(ApiKey.id)).all() == []


def test_authenticate_key(auth: AuthService) -> None:
    user = auth.create_user(email="frank@example.com", password=PASSWORD, role="admin")
    row, token = auth.create_key(user_id=user.id, name="k")
    principal = auth.authenticate_key(token)
    assert principal == Principal(
        user_id=user.id, email="frank@example.com", role="admin", clients=None, key_id=row.id
    )
    assert auth.authenticate_key(token + "x") is None
    assert auth.authenticate_key(token[:-1]) is None
    assert auth.authenticate_key("") is None
    assert auth.authenticate_key(row.key_hash) is None  # the stored hash is not a credential


def test_list_keys_newest_first_and_per_user(auth: AuthService) -> None:
    a = auth.create_user(email="gina@example.com", password=PASSWORD)
    b = auth.create_user(email="hank@example.com", password=PASSWORD)
    first, _ = auth.create_key(user_id=a.id, name="first")
    time.sleep(0.01)
    second, _ = auth.create_key(user_id=a.id, name="second")
    other, _ = auth.create_key(user_id=b.id, name="other")
    assert [k.id for k in auth.list_keys(user_id=a.id)] == [second.id, first.id]
    assert [k.id for k in auth.list_keys(user_id=None)] == [other.id, second.id, first.id]


# revocation -------------------------------------------------------------------------------------


def test_a_revoked_key_stops_at_once_in_the_revoking_process(auth: AuthService, db: Database) -> None:
    user = auth.create_user(email="ivan@example.com", password=PASSWORD)
    row, token = auth.create_key(user_id=user.id, name="k")
    _, kept = auth.create_key(user_id=user.id, name="kept")
    assert auth.authenticate_key(token) is not None
    assert auth.authenticate_key(kept) is not None
    # Both are now cached: the API's fast path answers without any I/O.
    assert auth.cached_principal(token) is not None and auth.cached_principal(kept) is not None

    assert auth.revoke_key(row.id) is True
    assert auth.cached_principal(token) is None
    assert auth.authenticate_key(token) is None
    assert auth.cached_principal(kept) is not None and auth.authenticate_key(kept) is not None
    revoked_at = key_row(db, row.id).revoked_at
    assert revoked_at is not None and abs(datetime.now(UTC) - revoked_at) < timedelta(minutes=1)
    # Revoking again is a no-op that keeps the first time.
    assert auth.revoke_key(row.id) is True
    assert key_row(db, row.id).revoked_at == revoked_at
    assert auth.revoke_key("no-such-key") is False


def test_a_revocation_elsewhere_takes_effect_within_the_cache_window(db: Database) -> None:
    api = AuthService(db)  # one API process, with the default one-second cache
    cli = AuthService(db)  # `mediagen keys revoke`, another process
    user = cli.create_user(email="judy@example.com", password=PASSWORD)
    row, token = cli.create_key(user_id=user.id, name="k")
    assert api.authenticate_key(token) is not None
    assert cli.revoke_key(row.id) is True
    # Still cached in the API process for at most key_cache_seconds ...
    assert api.cached_principal(token) is not None
    time.sleep(api.key_cache_seconds + 0.05)
    # ... then the next lookup reaches the database and sees the revocation.
    assert api.cached_principal(token) is None
    assert api.authenticate_key(token) is None


def test_a_member_cannot_revoke_someone_elses_key(auth: AuthService, db: Database) -> None:
    owner = auth.create_user(email="kim@example.com", password=PASSWORD)
    other = auth.create_user(email="leo@example.com", password=PASSWORD)
    row, token = auth.create_key(user_id=owner.id, name="k")
    assert auth.authenticate_key(token) is not None
    assert auth.revoke_key(row.id, user_id=other.id) is False
    assert key_row(db, row.id).revoked_at is None
    assert auth.authenticate_key(token) is not None
    assert auth.revoke_key(row.id, user_id=owner.id) is True
    assert auth.authenticate_key(token) is None


def test_without_a_cache_every_lookup_reads_the_database(db: Database) -> None:
    auth = AuthService(db, key_cache_seconds=0)
    user = auth.create_user(email="mia@example.com", password=PASSWORD)
    row, token = auth.create_key(user_id=user.id, name="k")
    assert auth.authenticate_key(token) is not None
    assert auth.cached_principal(token) is None
    with db.write() as s:  # revoked behind the service's back
        s.execute(update(ApiKey).where(ApiKey.id == row.id).values(revoked_at=datetime.now(UTC)))
    assert auth.authenticate_key(token) is None


# last_used_at -----------------------------------------------------------------------------------


def set_last_used(db: Database, key_id: str, when: datetime | None) -> None:
    with db.write() as s:
        s.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=when))


def test_last_used_at_is_written_at_most_once_a_minute(db: Database) -> None:
    auth = AuthService(db, key_cache_seconds=0)  # so every call reaches the database
    user = auth.create_user(email="nina@example.com", password=PASSWORD)
    row, token = auth.create_key(user_id=user.id, name="k")

    before = datetime.now(UTC)
    assert auth.authenticate_key(token) is not None
    first = key_row(db, row.id).last_used_at
    assert first is not None and first.tzinfo is not None
    assert before - timedelta(seconds=1) <= first <= datetime.now(UTC) + timedelta(seconds=1)

    # Used again within the minute: not rewritten.
    assert auth.authenticate_key(token) is not None
    assert key_row(db, row.id).last_used_at == first

    # 50 s ago is still within the resolution ...
    recent = datetime.now(UTC) - timedelta(seconds=50)
    set_last_used(db, row.id, recent)
    assert auth.authenticate_key(token) is not None
    assert key_row(db, row.id).last_used_at == recent

    # ... 70 s ago is not: the use is recorded as now.
    set_last_used(db, row.id, datetime.now(UTC) - timedelta(seconds=70))
    before = datetime.now(UTC)
    assert auth.authenticate_key(token) is not None
    latest = key_row(db, row.id).last_used_at
    assert latest is not None and latest >= before - timedelta(seconds=1)


# principals and client scoping ------------------------------------------------------------------


def test_principal_client_scoping() -> None:
    admin = Principal(user_id="a", email="a@x", role="admin", clients=None)
    assert admin.is_admin
    assert admin.can_see_client("acme") and admin.can_see_client(None)

    limited = Principal(user_id="m", email="m@x", role="member", clients=frozenset({"acme", "globex"}))
    assert not limited.is_admin
    assert limited.can_see_client("acme") and limited.can_see_client("globex")
    assert not limited.can_see_client("initech")
    # Assets filed under no client are visible only to unrestricted principals.
    assert not limited.can_see_client(None)

    # Reach comes from `clients`, not the role: an unrestricted member sees every client, a limited
    # admin only its own.
    member = Principal(user_id="u", email="u@x", role="member", clients=None)
    assert member.can_see_client("initech") and member.can_see_client(None) and not member.is_admin
    limited_admin = Principal(user_id="b", email="b@x", role="admin", clients=frozenset({"acme"}))
    assert limited_admin.is_admin and not limited_admin.can_see_client("globex")

    nothing = Principal(user_id="n", email="n@x", role="member", clients=frozenset())
    assert not nothing.can_see_client("acme") and not nothing.can_see_client(None)


def test_principal_for_user(auth: AuthService) -> None:
    admin = auth.create_user(email="olga@example.com", password=PASSWORD, role="admin")
    member = auth.create_user(email="paul@example.com", password=PASSWORD, clients=["acme", "globex"])
    p = auth.principal_for_user(admin)
    assert (p.user_id, p.email, p.role, p.clients, p.key_id) == (
        admin.id,
        "olga@example.com",
        "admin",
        None,
        None,
    )
    p = AuthService.principal_for_user(member)
    assert p.role == "member" and p.clients == frozenset({"acme", "globex"})
    assert p.can_see_client("acme") and not p.can_see_client("initech")
    # The same principal as a password sign-in gives (the web UI's session path).
    assert auth.authenticate_password("paul@example.com", PASSWORD) == p
    assert user_row(auth.db, member.id).clients == ["acme", "globex"]


def test_a_key_can_narrow_its_users_reach_but_never_widen_it(auth: AuthService) -> None:
    free = auth.create_user(email="quinn@example.com", password=PASSWORD)
    limited = auth.create_user(email="rose@example.com", password=PASSWORD, clients=["acme", "globex"])

    def reach(user: User, clients: list[str] | None) -> frozenset[str] | None:
        row, token = auth.create_key(user_id=user.id, name="k", clients=clients)
        principal = auth.authenticate_key(token)
        assert principal is not None and principal.key_id == row.id and principal.user_id == user.id
        return principal.clients

    assert reach(free, None) is None
    assert reach(free, ["acme"]) == frozenset({"acme"})
    assert reach(limited, None) == frozenset({"acme", "globex"})
    assert reach(limited, ["globex"]) == frozenset({"globex"})
    # A client the user cannot see is dropped, not granted.
    assert reach(limited, ["globex", "initech"]) == frozenset({"globex"})
    assert reach(limited, ["initech"]) == frozenset()


def test_keys_made_for_a_caller_stay_within_its_reach(auth: AuthService) -> None:
    admin = auth.principal_for_user(
        auth.create_user(email="sam@example.com", password=PASSWORD, role="admin")
    )
    limited = auth.principal_for_user(
        auth.create_user(email="tia@example.com", password=PASSWORD, clients=["acme", "globex"])
    )
    row, _ = auth.create_key_for(admin, name="all", clients=None)
    assert row.clients is None
    # A limited caller's key without a list gets the caller's clients, written down on the key.
    row, token = auth.create_key_for(limited, name="inherit", clients=None)
    assert sorted(row.clients or []) == ["acme", "globex"]
    principal = auth.authenticate_key(token)
    assert principal is not None and principal.clients == frozenset({"acme", "globex"})
    row, _ = auth.create_key_for(limited, name="narrow", clients=["acme"])
    assert row.clients == ["acme"]
    with pytest.raises(InvalidInput) as info:
        auth.create_key_for(limited, name="wide", clients=["acme", "initech"])
    assert (info.value.field, info.value.message) == (
        "clients",
        "a key cannot reach clients its creator cannot see",
    )
    # An empty list would read as "every client" once stored; it is refused instead.
    for caller in (admin, limited):
        with pytest.raises(InvalidInput) as info:
            auth.create_key_for(caller, name="none", clients=[])
        assert info.value.field == "clients"
    assert {k.name for k in auth.keys_visible_to(limited)} == {"inherit", "narrow"}
    assert {k.name for k in auth.keys_visible_to(admin)} == {"all", "inherit", "narrow"}


def test_revoke_key_for_hides_other_users_keys(auth: AuthService) -> None:
    owner = auth.principal_for_user(auth.create_user(email="uma@example.com", password=PASSWORD))
    other = auth.principal_for_user(auth.create_user(email="vic@example.com", password=PASSWORD))
    admin = auth.principal_for_user(
        auth.create_user(email="wes@example.com", password=PASSWORD, role="admin")
    )
    row, token = auth.create_key_for(owner, name="k", clients=None)
    with pytest.raises(NotFound):
        auth.revoke_key_for(other, row.id)
    assert auth.authenticate_key(token) is not None
    with pytest.raises(NotFound):
        auth.revoke_key_for(owner, "no-such-key")
    auth.revoke_key_for(admin, row.id)  # an admin may revoke anyone's key
    assert auth.authenticate_key(token) is None


def test_principal_for_session(auth: AuthService) -> None:
    user = auth.create_user(email="xena@example.com", password=PASSWORD, clients=["acme"])
    principal = auth.principal_for_session(user.id)
    assert principal == auth.principal_for_user(user) and principal.clients == frozenset({"acme"})
    assert auth.principal_for_session("deleted-user") is None
    assert auth.principal_for_session(None) is None
    assert auth.principal_for_session(123) is None  # a tampered cookie value

"""Who may see and revoke which API key, and keys that expire.

The rule (`AuthService.keys_visible_to` / `revoke_key_for`, used by the API, the web keys page and
the CLI): an admin without a client limit manages every key; a caller limited to some clients (admin
or member) manages only keys whose effective reach (the key's clients narrowed by its user's) is
non-empty and inside the caller's clients; a member manages only their own keys. Anything else is a
404, exactly like a key that does not exist.

Everything runs in-process on the real services and a temporary SQLite: the service itself, the JSON
API through FastAPI's TestClient on `create_app`, and the web keys page signed in through its form.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from mediagen.app import create_app
from mediagen.auth.service import MAX_EXPIRES_DAYS, AuthService, Principal
from mediagen.auth.tables import ApiKey
from mediagen.config import Settings
from mediagen.errors import InvalidInput, NotFound, Unauthenticated
from mediagen.jobs.memory import MemoryJobQueue
from mediagen.services import Services, build_services
from tests.generations.conftest import ADMIN, make_seeded_services, migrate

PASSWORD = "correct horse battery"

# Users besides the seeded unrestricted admin ("root"): (email, role, clients).
USERS: dict[str, tuple[str, str, list[str] | None]] = {
    "acme_admin": ("acme-admin@example.com", "admin", ["acme"]),
    "member": ("member@example.com", "member", None),
    "acme_member": ("acme-member@example.com", "member", ["acme"]),
    "globex_member": ("globex-member@example.com", "member", ["globex"]),
}

# Keys: name -> (owner, the key's own client list).
KEYS: dict[str, tuple[str, list[str] | None]] = {
    "root_all": ("root", None),  # unrestricted admin key
    "root_acme": ("root", ["acme"]),  # what `mediagen keys create --client acme` makes
    "root_globex": ("root", ["globex"]),  # the other tenant's
    "root_both": ("root", ["acme", "globex"]),  # reaches acme and another client
    "acme_admin_own": ("acme_admin", None),  # reach: acme, from its user
    "member_all": ("member", None),  # an unrestricted member's key
    "member_acme": ("member", ["acme"]),
    "acme_member_own": ("acme_member", None),  # reach: acme
    "acme_member_dead": ("acme_member", ["globex"]),  # reach: acme ∩ globex, nothing
    "globex_member_own": ("globex_member", None),  # reach: globex
}

ALL = frozenset(KEYS)
ACME_SCOPED = frozenset({"root_acme", "acme_admin_own", "member_acme", "acme_member_own"})

# Caller -> the keys it sees. "user:" callers act as the signed-in user (the web's principal);
# "key:" callers act through that API key (the key's reach, as the API sees it).
EXPECTED: dict[str, frozenset[str]] = {
    "user:root": ALL,
    "key:root_all": ALL,
    # A limited admin: only keys that stay inside acme, whoever owns them.
    "user:acme_admin": ACME_SCOPED,
    "key:root_acme": ACME_SCOPED,
    "key:acme_admin_own": ACME_SCOPED,
    "key:root_both": ACME_SCOPED | {"root_globex", "root_both", "globex_member_own"},
    # Members: their own keys only; limited, only those inside their clients.
    "user:member": frozenset({"member_all", "member_acme"}),
    "key:member_all": frozenset({"member_all", "member_acme"}),
    "key:member_acme": frozenset({"member_acme"}),
    "user:acme_member": frozenset({"acme_member_own"}),
    "key:acme_member_own": frozenset({"acme_member_own"}),
    "user:globex_member": frozenset({"globex_member_own"}),
}


@dataclass(frozen=True)
class People:
    """The users and keys above, made once per module in a template database."""

    database: Path
    users: dict[str, Principal]  # as each signs in
    keys: dict[str, str]  # key name -> id
    tokens: dict[str, str]  # key name -> token


@dataclass
class World:
    services: Services
    users: dict[str, Principal]
    keys: dict[str, str]
    tokens: dict[str, str]

    def caller(self, name: str) -> Principal:
        kind, who = name.split(":")
        if kind == "user":
            return self.users[who]
        principal = self.services.auth.authenticate_key(self.tokens[who])
        assert principal is not None
        return principal

    def names(self, rows: list[ApiKey]) -> set[str]:
        by_id = {key_id: name for name, key_id in self.keys.items()}
        return {by_id[row.id] for row in rows}

    def revoked(self, name: str) -> bool:
        with self.services.db.read() as s:
            row = s.get(ApiKey, self.keys[name])
        assert row is not None
        return row.revoked_at is not None


@pytest.fixture(scope="module")
def people(tmp_path_factory: pytest.TempPathFactory) -> People:
    """Seeded (the admin, acme, globex), plus USERS and KEYS; each test works on its own copy
    (hashing the passwords with argon2 was most of each test's set-up time)."""
    folder = tmp_path_factory.mktemp("key-scoping")
    services, _, _ = make_seeded_services(folder / "data")
    try:
        auth = services.auth
        root = auth.get_user_by_email(ADMIN.email)
        assert root is not None
        rows = {"root": root}
        for name, (email, role, clients) in USERS.items():
            rows[name] = auth.create_user(email=email, password=PASSWORD, role=role, clients=clients)
        keys: dict[str, str] = {}
        tokens: dict[str, str] = {}
        for name, (owner, clients) in KEYS.items():
            row, tokens[name] = auth.create_key(user_id=rows[owner].id, name=name, clients=clients)
            keys[name] = row.id
        users = {name: auth.principal_for_user(row) for name, row in rows.items()}
    finally:
        services.close()
    return People(folder / "data" / "mediagen.db", users, keys, tokens)


def settings_copy(people: People, data_dir: Path) -> Settings:
    """Settings on a fresh copy of the people's database."""
    settings = Settings(data_dir=data_dir, secret_key="test-secret", generate_rate_limit_per_minute=0)
    settings.ensure_dirs()
    assert migrate(settings.resolved_database_url, template=people.database)
    return settings


@pytest.fixture
def world(people: People, tmp_path: Path) -> Iterator[World]:
    services = build_services(settings_copy(people, tmp_path / "data"), queue=MemoryJobQueue())
    yield World(services, people.users, people.keys, people.tokens)
    services.close()


def set_expiry(services: Services, key_id: str, when: datetime | None) -> None:
    with services.db.write() as s:
        s.execute(update(ApiKey).where(ApiKey.id == key_id).values(expires_at=when))


# -- the service ----------------------------------------------------------------------------------


def test_the_table_covers_every_kind_of_caller() -> None:
    # Unrestricted admin, limited admin (as a user and through keys), unrestricted member, limited
    # member (as a user and through a key), and a caller whose key reaches two clients.
    callers = {name.split(":")[1] for name in EXPECTED}
    assert {"root", "acme_admin", "member", "acme_member", "root_acme", "member_acme"} <= callers


@pytest.mark.parametrize("caller", sorted(EXPECTED))
def test_service_lists_and_revokes_only_what_the_caller_may_manage(world: World, caller: str) -> None:
    auth = world.services.auth
    principal = world.caller(caller)
    expected = EXPECTED[caller]
    assert world.names(auth.keys_visible_to(principal)) == expected
    for name in sorted(ALL - expected):
        with pytest.raises(NotFound) as hidden:
            auth.revoke_key_for(principal, world.keys[name])
        # The same answer as for a key that does not exist: nothing tells the two apart.
        with pytest.raises(NotFound) as missing:
            auth.revoke_key_for(principal, "0" * len(world.keys[name]))
        assert str(hidden.value).replace(world.keys[name], "ID") == str(missing.value).replace(
            "0" * len(world.keys[name]), "ID"
        )
        assert not world.revoked(name)
        assert auth.authenticate_key(world.tokens[name]) is not None, name
    for name in sorted(expected):
        auth.revoke_key_for(principal, world.keys[name])
        assert world.revoked(name)
        assert auth.authenticate_key(world.tokens[name]) is None, name
    # Revoking twice is fine, and revoked keys stay listed (marked revoked).
    first = sorted(expected)[0]
    auth.revoke_key_for(principal, world.keys[first])
    if caller.startswith("user:"):
        assert world.names(auth.keys_visible_to(principal)) == expected


def test_reach_follows_the_users_clients_as_they_are_now(world: World) -> None:
    """A key's reach is computed from its user's clients as they are now: once the member is
    limited to acme, their keys stay inside acme, and acme's admin sees them."""
    from mediagen.auth.tables import User

    acme_admin = world.users["acme_admin"]
    assert "member_all" not in world.names(world.services.auth.keys_visible_to(acme_admin))
    with world.services.db.write() as s:
        s.execute(update(User).where(User.email == "member@example.com").values(clients=["acme"]))
    visible = world.names(world.services.auth.keys_visible_to(acme_admin))
    assert {"member_all", "member_acme"} <= visible


# -- expiry in the service ------------------------------------------------------------------------


def test_a_key_made_with_an_expiry_stops_working_then(world: World) -> None:
    auth = world.services.auth
    root = world.users["root"]
    row, token = auth.create_key_for(root, name="temp", clients=None, expires_days=7)
    assert row.expires_at is not None
    assert abs(row.expires_at - (datetime.now(UTC) + timedelta(days=7))) < timedelta(minutes=1)
    assert auth.authenticate_key(token) is not None
    never, _ = auth.create_key_for(root, name="forever", clients=None)
    assert never.expires_at is None
    listed = {k.name: k for k in auth.keys_visible_to(root)}
    assert listed["temp"].expires_at == row.expires_at and listed["forever"].expires_at is None

    fresh = AuthService(world.services.db)  # no cache
    set_expiry(world.services, row.id, datetime.now(UTC) - timedelta(seconds=1))
    with pytest.raises(Unauthenticated) as info:
        fresh.authenticate_key(token)
    assert "expired" in str(info.value)
    assert fresh.cached_principal(token) is None


def test_the_key_cache_never_outlives_the_expiry(world: World) -> None:
    """Even with a long cache, a key cached just before it expires is refused right after."""
    auth = AuthService(world.services.db, key_cache_seconds=60)
    row, token = auth.create_key(user_id=world.users["root"].user_id, name="soon", expires_days=1)
    set_expiry(world.services, row.id, datetime.now(UTC) + timedelta(seconds=0.6))
    assert auth.authenticate_key(token) is not None
    assert auth.cached_principal(token) is not None
    time.sleep(0.8)
    assert auth.cached_principal(token) is None
    with pytest.raises(Unauthenticated, match="expired"):
        auth.authenticate_key(token)
    # A key without an expiry keeps the whole cache time.
    _, other = auth.create_key(user_id=world.users["root"].user_id, name="long")
    assert auth.authenticate_key(other) is not None and auth.cached_principal(other) is not None


@pytest.mark.parametrize("days", [0, -1, MAX_EXPIRES_DAYS + 1])
def test_expires_days_out_of_range_is_refused(world: World, days: int) -> None:
    with pytest.raises(InvalidInput) as info:
        world.services.auth.create_key_for(world.users["root"], name="x", clients=None, expires_days=days)
    assert info.value.field == "expires_days"


# -- the JSON API ---------------------------------------------------------------------------------


@dataclass
class App:
    client: TestClient
    world: World


@pytest.fixture
def api(people: People, tmp_path: Path) -> Iterator[App]:
    app = create_app(settings_copy(people, tmp_path / "data"), run_workers=False)
    services: Services = app.state.services
    world = World(services, people.users, people.keys, people.tokens)
    with TestClient(app, base_url="http://testserver") as client:
        yield App(client, world)
    services.close()


def key_headers(world: World, name: str) -> dict[str, str]:
    return {"X-API-Key": world.tokens[name]}


API_CALLERS = sorted(c for c in EXPECTED if c.startswith("key:"))


@pytest.mark.parametrize("caller", API_CALLERS)
def test_api_lists_and_revokes_only_what_the_caller_may_manage(api: App, caller: str) -> None:
    world, c = api.world, api.client
    me = caller.split(":")[1]
    headers = key_headers(world, me)
    expected = EXPECTED[caller]
    r = c.get("/api/keys", headers=headers)
    assert r.status_code == 200, r.text
    body = r.json()
    by_id = {key_id: name for name, key_id in world.keys.items()}
    assert {by_id[k["id"]] for k in body["keys"]} == expected
    assert body["count"] == body["total"] == len(expected)
    for name in sorted(ALL - expected):
        r = c.delete(f"/api/keys/{world.keys[name]}", headers=headers)
        assert r.status_code == 404, (name, r.status_code, r.text)
        assert "forbidden" not in r.text.lower()
        # Still working: the other key can still call the API.
        assert c.get("/api/keys", headers=key_headers(world, name)).status_code == 200, name
    assert c.delete("/api/keys/no-such-key", headers=headers).status_code == 404
    # Revoke everything visible, the caller's own key last (it stops working at once).
    for name in sorted(expected - {me}) + sorted(expected & {me}):
        assert c.delete(f"/api/keys/{world.keys[name]}", headers=headers).status_code == 204, name
        r = c.get("/api/keys", headers=key_headers(world, name))
        assert r.status_code == 401 and "revoked" in r.json()["detail"], name


def test_api_key_expiry_is_set_listed_and_enforced(api: App) -> None:
    world, c = api.world, api.client
    root = key_headers(world, "root_all")
    r = c.post("/api/keys", json={"name": "short", "expires_days": 30}, headers=root)
    assert r.status_code == 201, r.text
    made = r.json()
    expires = datetime.fromisoformat(made["expires_at"])
    assert abs(expires - (datetime.now(UTC) + timedelta(days=30))) < timedelta(minutes=1)
    listed = {k["id"]: k for k in c.get("/api/keys", headers=root).json()["keys"]}
    assert listed[made["id"]]["expires_at"] is not None
    assert listed[world.keys["root_acme"]]["expires_at"] is None
    assert c.post("/api/keys", json={"name": "never"}, headers=root).json()["expires_at"] is None

    token = {"X-API-Key": made["key"]}
    set_expiry(world.services, made["id"], datetime.now(UTC) - timedelta(minutes=1))
    r = c.get("/api/clients", headers=token)
    assert r.status_code == 401
    assert "expired" in r.json()["detail"]
    assert r.headers["www-authenticate"] == "APIKey"
    # Listed still, so it can be seen and cleaned up.
    assert made["id"] in {k["id"] for k in c.get("/api/keys", headers=root).json()["keys"]}

    for bad in (0, -3, MAX_EXPIRES_DAYS + 1, "soon"):
        r = c.post("/api/keys", json={"name": "bad", "expires_days": bad}, headers=root)
        assert r.status_code == 422 and "expires_days" in r.json()["detail"], bad


# -- the web keys page ----------------------------------------------------------------------------


def csrf_of(html: str) -> str:
    m = re.search(r'<meta name="csrf-token" content="([^"]+)"', html)
    assert m, "page has no csrf meta tag"
    return m.group(1)


def sign_in(client: TestClient, email: str, password: str) -> str:
    token = csrf_of(client.get("/login").text)
    r = client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": token, "next": "/keys"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    return csrf_of(client.get("/keys").text)


def listed_on_page(world: World, html: str) -> set[str]:
    by_id = {key_id: name for name, key_id in world.keys.items()}
    return {by_id[i] for i in re.findall(r'action="/keys/([^"/]+)/revoke"', html)}


@pytest.mark.parametrize(
    ("who", "email", "password"),
    [
        ("root", ADMIN.email, "correct horse"),
        ("acme_admin", USERS["acme_admin"][0], PASSWORD),
        ("member", USERS["member"][0], PASSWORD),
        ("acme_member", USERS["acme_member"][0], PASSWORD),
    ],
)
def test_web_keys_page_shows_and_revokes_only_what_the_user_may_manage(
    api: App, who: str, email: str, password: str
) -> None:
    world, c = api.world, api.client
    csrf = sign_in(c, email, password)
    expected = EXPECTED[f"user:{who}"]
    page = c.get("/keys")
    assert page.status_code == 200
    assert listed_on_page(world, page.text) == expected
    for name in sorted(ALL - expected):
        assert f"<td>{name}</td>" not in page.text
        r = c.post(f"/keys/{world.keys[name]}/revoke", data={"csrf_token": csrf}, follow_redirects=False)
        assert r.status_code == 404, (name, r.status_code)
        assert not world.revoked(name)
    for name in sorted(expected):
        r = c.post(f"/keys/{world.keys[name]}/revoke", data={"csrf_token": csrf}, follow_redirects=False)
        assert r.status_code == 303, (name, r.status_code)
        assert world.revoked(name)
    assert listed_on_page(world, c.get("/keys").text) == set()  # revoked keys have no revoke button


def test_web_keys_page_makes_expiring_keys_and_shows_expiry(api: App) -> None:
    world, c = api.world, api.client
    csrf = sign_in(c, ADMIN.email, "correct horse")
    r = c.post("/keys", data={"csrf_token": csrf, "name": "web-temp", "expires_days": "abc"})
    assert r.status_code == 422
    assert 'id="expires_days-error"' in r.text or "expires_days" in r.text
    r = c.post("/keys", data={"csrf_token": csrf, "name": "web-temp", "expires_days": "0"})
    assert r.status_code == 422
    r = c.post("/keys", data={"csrf_token": csrf, "name": "web-temp", "expires_days": "30"})
    assert r.status_code == 200 and r.history[0].status_code == 303, r.text  # Post/Redirect/Get
    made = next(k for k in world.services.auth.keys_visible_to(world.users["root"]) if k.name == "web-temp")
    assert made.expires_at is not None
    assert abs(made.expires_at - (datetime.now(UTC) + timedelta(days=30))) < timedelta(minutes=1)
    set_expiry(world.services, world.keys["root_globex"], datetime.now(UTC) - timedelta(days=1))
    page = c.get("/keys").text
    rows = row_texts(page)
    assert "Expired" in rows["root_globex"] and "Active" not in rows["root_globex"]
    assert "Active" in rows["web-temp"] and "Active" in rows["root_acme"]
    # Neither used yet ("Never" last used); only root_acme never expires.
    assert rows["web-temp"].count("Never") == 1 and rows["root_acme"].count("Never") == 2


def row_texts(html: str) -> dict[str, Any]:
    """Each key row's HTML by the key's name (the first cell)."""
    rows: dict[str, Any] = {}
    for row in re.findall(r"<tr[^>]*>(.*?)</tr>", html, flags=re.S):
        m = re.search(r"<td>([^<]+)</td>", row)
        if m:
            rows[m.group(1)] = row
    return rows

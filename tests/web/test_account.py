"""Sign-in, sessions and the account page through the real app (TestClient on `create_app`, SQLite
made by the real migrations): 401 and 429 on the form, cookies that stop working at sign-out, session
rotation and expiry, and password changes on the page and through `POST /api/me/password`."""

from __future__ import annotations

import base64
import itertools
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from mediagen.app import create_app
from mediagen.auth.sessions import session_digest
from mediagen.auth.tables import WebSession
from mediagen.auth.throttle import ADDRESS_LIMIT, EMAIL_LIMIT
from mediagen.config import Settings
from mediagen.db.migrate import upgrade
from mediagen.services import Services

PASSWORD = "correct horse battery"
NEW_PASSWORD = "violet harbor lantern"
COOKIE = "mediagen_session"
_numbers = itertools.count(1)


@pytest.fixture(scope="module")
def app_and_services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Services]]:
    data = tmp_path_factory.mktemp("web-account")
    settings = Settings(data_dir=Path(data), secret_key="test-secret", generate_rate_limit_per_minute=0)
    upgrade(settings.resolved_database_url)
    app = create_app(settings, run_workers=False)
    yield app, app.state.services
    app.state.services.db.dispose()


@pytest.fixture
def services(app_and_services: tuple[Any, Services]) -> Services:
    return app_and_services[1]


@pytest.fixture
def new_client(app_and_services: tuple[Any, Services]) -> Iterator[Any]:
    """Browsers, each from its own address unless told (counts are per address)."""
    app, _ = app_and_services
    made: list[TestClient] = []

    def make(address: str | None = None, cookie: str | None = None) -> TestClient:
        address = address or f"198.51.100.{next(_numbers) % 250 + 1}"
        c = TestClient(app, base_url="http://testserver", client=(address, 50000))
        if cookie is not None:
            c.cookies.set(COOKIE, cookie)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


@pytest.fixture
def user(services: Services) -> str:
    """A user of this test's own (counts are per email too); returns the email."""
    email = f"user{next(_numbers)}@example.com"
    services.auth.create_user(email=email, password=PASSWORD)
    return email


def csrf_of(html: str) -> str:
    m = re.search(r'<meta name="csrf-token" content="([^"]+)"', html)
    assert m, "page has no csrf meta tag"
    return m.group(1)


def login(client: TestClient, email: str, password: str = PASSWORD) -> httpx.Response:
    token = csrf_of(client.get("/login").text)
    return client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": token, "next": "/account"},
        follow_redirects=False,
    )


def signed_in(client: TestClient, email: str) -> str:
    """Signs in; returns the page's CSRF token."""
    r = login(client, email)
    assert r.status_code == 303 and r.headers["location"] == "/account", r.text
    return csrf_of(client.get("/account").text)


def cookie_data(client: TestClient) -> dict[str, Any]:
    """What the signed cookie says: readable by whoever holds it (the signature stops changes only)."""
    raw = client.cookies[COOKIE].split(".", 1)[0]
    data: dict[str, Any] = json.loads(base64.b64decode(raw + "=" * (-len(raw) % 4)))
    return data


def is_signed_in(client: TestClient) -> bool:
    page = client.get("/music", follow_redirects=False).status_code
    api = client.get("/api/me").status_code
    assert (page, api) in ((200, 200), (303, 401)), (page, api)
    return page == 200


# the sign-in form -------------------------------------------------------------------------------


def test_a_wrong_password_is_401_on_the_form_page(new_client: Any, user: str) -> None:
    r = login(new_client(), user, "not the password")
    assert r.status_code == 401
    assert r.headers["content-type"].startswith("text/html")
    assert "Wrong email or password." in r.text and 'aria-invalid="true"' in r.text
    assert f'value="{user}"' in r.text  # the form comes back as sent, less the password
    assert "not the password" not in r.text
    r = login(new_client(), "nobody-here@example.com", "not the password")
    assert r.status_code == 401 and "Wrong email or password." in r.text
    r = login(new_client(), user, "")
    assert r.status_code == 422 and "Enter your email and password." in r.text


def test_the_form_locks_an_email_after_five_failures(new_client: Any, user: str) -> None:
    for _ in range(EMAIL_LIMIT):
        assert login(new_client(), user, "not the password").status_code == 401
    # From any address, even with the right password: 429 with Retry-After and a clear message.
    r = login(new_client(), user)
    assert r.status_code == 429
    assert 240 < int(r.headers["retry-after"]) <= 300
    assert "Too many failed sign-ins" in r.text and "try again in 5 minutes" in r.text
    assert 'aria-invalid="true"' not in r.text  # nothing wrong with what was typed


def test_a_success_resets_the_count_on_the_form(new_client: Any, user: str) -> None:
    browser = new_client()
    for _ in range(2):
        for _ in range(EMAIL_LIMIT - 1):
            assert login(browser, user, "not the password").status_code == 401
        assert login(browser, user).status_code == 303
        browser.post("/logout", data={"csrf_token": csrf_of(browser.get("/account").text)})


def test_the_form_locks_an_address_after_twenty_failures(new_client: Any, user: str) -> None:
    browser = new_client("203.0.113.77")
    for i in range(ADDRESS_LIMIT):
        assert login(browser, f"guess{i}-{user}", "not the password").status_code == 401
    r = login(browser, user)
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    assert login(new_client("203.0.113.78"), user).status_code == 303


# sessions ---------------------------------------------------------------------------------------


def test_the_cookie_carries_only_a_session_token(new_client: Any, user: str, services: Services) -> None:
    browser = new_client()
    signed_in(browser, user)
    data = cookie_data(browser)
    assert set(data) <= {"sid", "csrf", "flash"} and "uid" not in data
    assert services.auth.sessions.lookup(data["sid"]) is not None


def test_sign_out_ends_a_copied_cookie_at_once(new_client: Any, user: str) -> None:
    browser = new_client()
    token = signed_in(browser, user)
    thief = new_client(cookie=browser.cookies[COOKIE])
    assert is_signed_in(thief)
    r = browser.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert not is_signed_in(browser)
    assert not is_signed_in(thief)  # the same cookie as before sign-out, now worthless


def test_signing_in_again_rotates_the_session(new_client: Any, user: str) -> None:
    browser = new_client()
    signed_in(browser, user)
    before = cookie_data(browser)
    copy = new_client(cookie=browser.cookies[COOKIE])
    assert is_signed_in(copy)
    signed_in(browser, user)
    after = cookie_data(browser)
    assert after["sid"] != before["sid"] and after["csrf"] != before["csrf"]
    assert is_signed_in(browser) and not is_signed_in(copy)


def test_a_session_fixed_before_sign_in_is_not_kept(new_client: Any, user: str) -> None:
    """A cookie planted before sign-in (session fixation) is not the one that gets signed in."""
    planted = new_client()
    planted.get("/login")
    victim = new_client(cookie=planted.cookies[COOKIE])
    assert login(victim, user).status_code == 303
    assert is_signed_in(victim) and not is_signed_in(planted)


def test_expired_and_idle_sessions_are_refused(new_client: Any, user: str, services: Services) -> None:
    for column in ("expires_at", "last_seen_at"):
        browser = new_client()
        assert login(browser, user).status_code == 303  # no page seen yet: nothing cached
        sid = cookie_data(browser)["sid"]
        with services.db.write() as s:
            s.execute(
                update(WebSession)
                .where(WebSession.id == session_digest(sid))
                .values({column: datetime(2020, 1, 1, tzinfo=UTC)})
            )
        r = browser.get("/account", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/login?next=%2Faccount", column
        assert browser.get("/api/me").status_code == 401


# password change --------------------------------------------------------------------------------


def test_the_account_page_needs_sign_in(new_client: Any) -> None:
    r = new_client().get("/account", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=%2Faccount"


def test_changing_the_password_on_the_account_page(new_client: Any, user: str) -> None:
    browser, other = new_client(), new_client()
    token = signed_in(browser, user)
    signed_in(other, user)
    page = browser.get("/account").text
    assert 'href="/account" aria-current="page"' in page and "signed in on 2 browsers" in page

    def post(**fields: str) -> httpx.Response:
        return browser.post("/account/password", data={"csrf_token": token, **fields}, follow_redirects=False)

    r = post(current_password="wrong password", new_password=NEW_PASSWORD, confirm_password=NEW_PASSWORD)
    assert r.status_code == 422 and "That is not your current password" in r.text
    r = post(current_password=PASSWORD, new_password=NEW_PASSWORD, confirm_password="something else")
    assert r.status_code == 422 and "The two new passwords differ" in r.text
    r = post(current_password=PASSWORD, new_password="password12", confirm_password="password12")
    assert r.status_code == 422 and "This password is one of the most common passwords" in r.text
    r = post(current_password=PASSWORD, new_password="tiny", confirm_password="tiny")
    assert r.status_code == 422 and "This password must be at least 10 characters" in r.text
    assert PASSWORD not in r.text and "tiny" not in r.text.split("<main", 1)[1]  # never echoed
    r = browser.post(
        "/account/password",
        data={"csrf_token": "forged", "current_password": PASSWORD, "new_password": NEW_PASSWORD},
    )
    assert r.status_code == 403
    assert is_signed_in(other)  # nothing changed yet

    r = post(current_password=PASSWORD, new_password=NEW_PASSWORD, confirm_password=NEW_PASSWORD)
    assert r.status_code == 303 and r.headers["location"] == "/account"
    assert "Password changed. 1 other session signed out." in browser.get("/account").text
    assert is_signed_in(browser) and not is_signed_in(other)
    assert login(new_client(), user, PASSWORD).status_code == 401
    assert login(new_client(), user, NEW_PASSWORD).status_code == 303


def test_changing_the_password_through_the_api(new_client: Any, user: str, services: Services) -> None:
    browser, other = new_client(), new_client()
    token = signed_in(browser, user)
    signed_in(other, user)
    url = "/api/me/password"
    good = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}

    # A cookie-authenticated call needs the CSRF header, like every unsafe API call.
    assert browser.post(url, json=good).status_code == 403
    headers = {"X-CSRF-Token": token}
    r = browser.post(url, json={**good, "current_password": "wrong password"}, headers=headers)
    assert r.status_code == 422
    assert r.json()["errors"] == [{"field": "current_password", "message": "is not your current password"}]
    r = browser.post(url, json={**good, "new_password": "12345678"}, headers=headers)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "new_password"
    assert r.json()["detail"] == "new_password: must be at least 10 characters"
    assert browser.post(url, json={"new_password": NEW_PASSWORD}, headers=headers).status_code == 422

    r = browser.post(url, json=good, headers=headers)
    assert r.status_code == 200 and r.json() == {"sessions_ended": 1}
    assert is_signed_in(browser) and not is_signed_in(other)

    # With an API key, every browser session ends, and the key itself keeps working.
    assert login(other, user, NEW_PASSWORD).status_code == 303
    owner = services.auth.get_user_by_email(user)
    assert owner is not None
    _, key = services.auth.create_key(user_id=owner.id, name="script")
    api = new_client()
    api.headers["X-API-Key"] = key
    r = api.post(url, json={"current_password": NEW_PASSWORD, "new_password": "amber quarry wicket"})
    assert r.status_code == 200 and r.json() == {"sessions_ended": 2}
    assert not is_signed_in(browser) and not is_signed_in(other)
    me = api.get("/api/me").json()
    assert me["email"] == user and me["key_id"] is not None


def test_guessing_the_current_password_through_the_api_is_throttled(new_client: Any, user: str) -> None:
    browser = new_client()
    headers = {"X-CSRF-Token": signed_in(browser, user)}
    body = {"current_password": "a guess", "new_password": NEW_PASSWORD}
    for _ in range(EMAIL_LIMIT):
        assert browser.post("/api/me/password", json=body, headers=headers).status_code == 422
    r = browser.post("/api/me/password", json={**body, "current_password": PASSWORD}, headers=headers)
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    assert "Too many failed sign-ins" in r.json()["detail"]


def test_the_api_documents_the_password_change(new_client: Any) -> None:
    spec = new_client().get("/openapi.json").json()
    op = spec["paths"]["/api/me/password"]["post"]
    assert {"200", "401", "422", "429"} <= set(op["responses"])
    assert "current password" in op["description"]
    schema = spec["components"]["schemas"]["PasswordChange"]
    assert set(schema["required"]) == {"current_password", "new_password"}
    assert "/api/me" in spec["paths"]

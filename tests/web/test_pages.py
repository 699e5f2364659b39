"""Web pages in-process (no browser): sign-in, CSRF, redirects, client scoping and form errors.

These run everywhere (no Chromium needed) and pin the server-side rules the browser tests rely on.
Workers are off, so generations stay `pending`, which is all scoping and listing need.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from mediagen.auth.service import Principal
from mediagen.campaigns import schemas as sc
from mediagen.generations.schemas import GenerateRequest
from mediagen.generations.tables import Generation
from mediagen.services import Services
from mediagen.web.galleries import PAGE_SIZE
from mediagen.web.session import safe_next
from tests.web.page_kit import PASSWORD, page_world


@pytest.fixture(scope="module")
def app_and_services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Services]]:
    world = page_world(tmp_path_factory, "web-pages")
    yield world.app, world.services
    world.services.db.dispose()


@pytest.fixture(scope="module")
def admin(app_and_services: tuple[Any, Services]) -> Principal:
    _, services = app_and_services
    user = services.auth.get_user_by_email("admin@example.com")
    assert user is not None
    return services.auth.principal_for_user(user)


def csrf_of(html: str) -> str:
    m = re.search(r'<meta name="csrf-token" content="([^"]+)"', html)
    assert m, "page has no csrf meta tag"
    return m.group(1)


def sign_in(client: TestClient, email: str) -> str:
    """Signs in through the form; returns the session's CSRF token."""
    page = client.get("/login")
    token = csrf_of(page.text)
    r = client.post(
        "/login",
        data={"email": email, "password": PASSWORD, "csrf_token": token, "next": "/images"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/images"
    return csrf_of(client.get("/images").text)


@pytest.fixture
def client(app_and_services: tuple[Any, Services]) -> Iterator[TestClient]:
    app, _ = app_and_services
    with TestClient(app, base_url="http://testserver") as c:
        yield c


def test_pages_redirect_to_login_with_a_local_next(client: TestClient) -> None:
    r = client.get("/music?campaign_id=spring", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/login?next=%2Fmusic%3Fcampaign_id%3Dspring"
    assert client.get("/", follow_redirects=False).headers["location"] == "/music"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("/campaigns/x?y=1", "/campaigns/x?y=1"),
        ("//evil.example/x", "/music"),
        ("/\\evil.example", "/music"),
        ("https://evil.example/", "/music"),
        ("javascript:alert(1)", "/music"),
        ("/ok\r\nSet-Cookie: x", "/music"),
        ("", "/music"),
        (None, "/music"),
    ],
)
def test_next_only_allows_local_paths(raw: str | None, expected: str) -> None:
    assert safe_next(raw) == expected


def test_login_needs_the_forms_csrf_token_and_the_right_password(client: TestClient) -> None:
    token = csrf_of(client.get("/login").text)
    r = client.post(
        "/login", data={"email": "admin@example.com", "password": PASSWORD, "csrf_token": "forged"}
    )
    assert r.status_code == 403
    r = client.post(
        "/login", data={"email": "admin@example.com", "password": "nope-nope", "csrf_token": token}
    )
    assert r.status_code == 401
    assert "Wrong email or password" in r.text
    assert 'aria-invalid="true"' in r.text


def test_session_cookie_is_httponly_lax_and_rotates_csrf_on_sign_in(client: TestClient) -> None:
    before = csrf_of(client.get("/login").text)
    r = client.post(
        "/login",
        data={"email": "admin@example.com", "password": PASSWORD, "csrf_token": before},
        follow_redirects=False,
    )
    cookie = r.headers["set-cookie"].lower()
    assert "mediagen_session=" in cookie and "httponly" in cookie and "samesite=lax" in cookie
    after = csrf_of(client.get("/music").text)
    assert after != before


def test_pages_send_a_strict_content_security_policy(client: TestClient) -> None:
    r = client.get("/login")
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["cache-control"] == "no-store"


def test_logout_needs_csrf(client: TestClient) -> None:
    token = sign_in(client, "admin@example.com")
    assert client.post("/logout", data={"csrf_token": "wrong"}).status_code == 403
    assert client.get("/music", follow_redirects=False).status_code == 200
    r = client.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert r.headers["location"] == "/login"
    assert client.get("/music", follow_redirects=False).status_code == 303


def test_session_calls_to_the_json_api_need_the_csrf_header(client: TestClient) -> None:
    token = sign_in(client, "admin@example.com")
    body = {"prompt": "x", "model": "synth/music", "duration": 1}
    assert client.post("/api/v2/generate/audio", json=body).status_code == 403
    r = client.post("/api/v2/generate/audio", json=body, headers={"X-CSRF-Token": token})
    assert r.status_code == 202, r.text


def test_limited_user_sees_only_their_clients(
    client: TestClient, app_and_services: tuple[Any, Services], admin: Principal
) -> None:
    _, services = app_and_services
    row, _ = services.generations.create(
        admin, "audio", GenerateRequest(prompt="acme only jingle", model="synth/music", campaign_id="spring")
    )
    sign_in(client, "limited@example.com")
    assert "acme only jingle" not in client.get("/music").text
    for url in (
        f"/assets/audio/{row.id}",
        f"/assets/audio/{row.id}/card",
        "/campaigns/spring",
        "/clients/acme",
    ):
        r = client.get(url)
        assert r.status_code == 404, url
        assert "Not found" in r.text and "acme" not in r.text.lower().split("<main", 1)[1]
    assert client.get(f"/api/audio/{row.id}").status_code == 404
    clients_page = client.get("/clients").text
    assert "Globex" in clients_page and "Acme" not in clients_page
    assert "cannot create new ones" in clients_page


def test_unknown_kinds_and_ids_are_404_pages(client: TestClient) -> None:
    sign_in(client, "admin@example.com")
    huge = "/assets/audio/99999999999999999999999"  # past any row id: a 404, not an overflow
    for url in (
        "/assets/sound/1",
        "/assets/audio/abc",
        "/assets/audio/999999",
        huge,
        f"{huge}/card",
        "/generate/podcasts",
    ):
        r = client.get(url)
        assert r.status_code == 404, url
        assert r.headers["content-type"].startswith("text/html")


def test_gallery_pages_and_keeps_filters_in_the_url(
    client: TestClient, app_and_services: tuple[Any, Services], admin: Principal
) -> None:
    _, services = app_and_services
    services.campaigns.create_client(admin, sc.ClientCreate(id="bulk", name="Bulk"))
    for i in range(PAGE_SIZE + 1):
        services.generations.create(
            admin, "image", GenerateRequest(prompt=f"bulk image {i}", model="synth/image", client_id="bulk")
        )
    sign_in(client, "admin@example.com")
    first = client.get("/images?client_id=bulk").text
    assert "Page 1 of 2" in first
    assert first.count('class="card ') == PAGE_SIZE
    assert "bulk image 24" in first and "bulk image 0<" not in first  # newest first
    assert 'href="/images?client_id=bulk&amp;page=2"' in first
    second = client.get("/images?client_id=bulk&page=2").text
    assert "Page 2 of 2" in second and second.count('class="card ') == 1
    assert "bulk image 0" in second
    assert client.get("/images?client_id=bulk&status=bogus&page=-3").status_code == 200


def test_client_and_campaign_forms_show_errors_beside_fields(client: TestClient) -> None:
    token = sign_in(client, "admin@example.com")
    r = client.post("/clients", data={"csrf_token": token, "name": "", "id": "bad id!"})
    assert r.status_code == 422
    assert 'id="new-name-error" role="alert"' in r.text
    assert 'id="new-id-error" role="alert"' in r.text
    assert 'aria-describedby="new-id-hint new-id-error" aria-invalid="true"' in r.text
    r = client.post(
        "/clients", data={"csrf_token": token, "name": "Initech", "id": "initech"}, follow_redirects=False
    )
    assert r.status_code == 303 and r.headers["location"] == "/clients/initech"
    r = client.post("/clients", data={"csrf_token": token, "name": "Again", "id": "initech"})
    assert r.status_code == 422 and "already exists" in r.text and 'id="new-id-error"' in r.text
    r = client.post(
        "/campaigns", data={"csrf_token": token, "client_id": "initech", "name": "", "status": "active"}
    )
    assert r.status_code == 422 and 'id="new-name-error"' in r.text
    r = client.post(
        "/campaigns",
        data={
            "csrf_token": token,
            "client_id": "initech",
            "name": "Launch",
            "id": "launch",
            "status": "active",
        },
        follow_redirects=False,
    )
    assert r.headers["location"] == "/campaigns/launch"
    page = client.get("/campaigns/launch").text
    assert "Launch" in page and "estimated cost" in page
    r = client.post(
        "/campaigns/launch/briefs",
        data={"csrf_token": token, "title": "Hero", "text": "Bright"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert "Hero" in client.get("/campaigns/launch").text


def test_generate_page_embeds_the_catalog_with_availability(client: TestClient) -> None:
    sign_in(client, "admin@example.com")
    page = client.get("/generate/music?campaign_id=spring").text
    assert 'value="synth/music" checked' in page
    assert re.search(r'value="meta/musicgen"[^>]* disabled', page)
    assert "Unavailable: meta/musicgen runs on Replicate" in page
    assert '<option value="spring" data-client="acme" selected>' in page
    assert '<option value="acme" selected>' in page


def test_local_models_say_how_to_get_them_and_a_running_job_shows_its_progress(
    client: TestClient, app_and_services: tuple[Any, Services], admin: Principal
) -> None:
    _, services = app_and_services
    sign_in(client, "admin@example.com")
    page = client.get("/generate/music").text
    assert re.search(r'value="local/musicgen-small"[^>]* disabled', page)
    assert "mediagen models pull local/musicgen-small" in page

    row, _ = services.generations.create(admin, "audio", GenerateRequest(prompt="lofi beat"))
    with services.db.write() as s:
        s.execute(
            update(Generation)
            .where(Generation.id == row.id)
            .values(status="processing", progress=0.42, progress_note="generating")
        )
    asset = client.get(f"/assets/audio/{row.id}").text
    assert 'id="asset-progress"' in asset and 'value="0.42"' in asset and ">42%<" in asset
    assert "Generating…" in asset

    # Once made: where it ran and the seed that reproduces it (chosen at random when none was asked).
    meta = {"device": "cuda", "dtype": "float16", "batch_size": 3, "run_seconds": 4.25, "seed": 912}
    with services.db.write() as s:
        s.execute(update(Generation).where(Generation.id == row.id).values(status="failed", meta=meta))
    details = client.get(f"/assets/audio/{row.id}").text
    ran_on = r'data-field="device">cuda <span class="muted">float16</span>, in a batch of 3, 4.2 s'
    assert re.search(ran_on, details)
    assert '<dd data-field="seed"><code>912</code></dd>' in details

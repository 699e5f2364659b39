"""Input bounds, probed one defect at a time: numbers past 64 bits, empty ids, oversized bodies
and fields. Each malformed input is a 4xx that names the field, and an oversized body is refused
before it is read (`api.limits.RequestLimits`), with or without a key."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from mediagen.api.limits import MAX_INT64, MAX_WEBHOOK_BYTES, WEBHOOK_PREFIX, body_limit
from mediagen.app import create_app
from mediagen.campaigns import schemas as sc
from mediagen.campaigns.tables import Brief
from mediagen.config import Settings
from mediagen.db.migrate import upgrade
from mediagen.services import Services
from mediagen.vocabulary import MAX_ID
from mediagen.web.listing import MAX_PAGE
from tests.conftest import PostgresDatabase, free_port, postgres_available

PASSWORD = "correct horse battery"
BODY_CAP = 256 * 1024  # smaller than the default 1 MiB, so the probes stay cheap
HUGE = [2**63, 2**64, 10**30, 10**100]
KINDS = (("audio", "audio"), ("image", "images"), ("video", "videos"))


@pytest.fixture(scope="module")
def app_and_services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FastAPI, Services]]:
    data = tmp_path_factory.mktemp("bounds")
    settings = Settings(
        data_dir=Path(data),
        secret_key="test-secret",
        generate_rate_limit_per_minute=0,
        max_request_body_bytes=BODY_CAP,
    )
    upgrade(settings.resolved_database_url)
    app = create_app(settings, run_workers=False)
    services: Services = app.state.services
    user = services.auth.create_user(email="admin@example.com", password=PASSWORD, role="admin")
    _, token = services.auth.create_key(user_id=user.id, name="bounds")
    app.state.admin_key = token
    admin = services.auth.principal_for_user(user)
    services.campaigns.create_client(admin, sc.ClientCreate(id="acme", name="Acme"))
    services.campaigns.create_campaign(admin, sc.CampaignCreate(id="spring", client_id="acme", name="Spring"))
    services.campaigns.create_brief(admin, sc.BriefCreate(id="jingle", campaign_id="spring", title="Jingle"))
    yield app, services
    services.db.dispose()


@pytest.fixture(scope="module")
def api(app_and_services: tuple[FastAPI, Services]) -> Iterator[TestClient]:
    app, _ = app_and_services
    with TestClient(app, headers={"X-API-Key": app.state.admin_key}, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def anon(app_and_services: tuple[FastAPI, Services]) -> Iterator[TestClient]:
    with TestClient(app_and_services[0], raise_server_exceptions=False) as c:
        yield c


def fields(response: Any) -> list[str]:
    """The fields a 4xx names; also checks it is one, in our error shape."""
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    body = response.json()
    assert isinstance(body["detail"], str)
    return [e["field"] for e in body.get("errors") or []]


def id_operations(app: FastAPI) -> list[tuple[str, str]]:
    """Every documented operation with an integer id in its path (method, path)."""
    ops = []
    for path, item in app.openapi()["paths"].items():
        for method, op in item.items():
            for param in op.get("parameters", []):
                if param["in"] == "path" and param["schema"].get("type") == "integer":
                    ops.append((method.upper(), path))
    return ops


def needs_a_body(response: Any) -> bool:
    """A 400 for an operation sent without its required JSON body (the sweeps send none)."""
    return response.status_code == 400 and response.json()["detail"] == "A JSON request body is required"


# -- numbers past 64 bits -----------------------------------------------------------------------------


def test_every_integer_path_id_is_bounded(
    api: TestClient, app_and_services: tuple[FastAPI, Services]
) -> None:
    ops = id_operations(app_and_services[0])
    assert len(ops) >= 20  # every kind's item, bytes, derivations, cancel, retry, and the Cog webhook
    ops += [("HEAD", "/api/audio/{gen_id}/data"), ("HEAD", "/api/images/{gen_id}/thumbnail")]
    for method, path in ops:
        name = re.search(r"\{(\w+)\}", path).group(1)  # type: ignore[union-attr]
        query = "?token=x" if "webhooks" in path else ""

        def at(value: object, path: str = path, name: str = name, query: str = query) -> str:
            """The path with the id set to `value` and any other parameter valid (a file name, or
            a second id such as a comment's)."""
            path = path.replace(f"{{{name}}}", str(value))
            return re.sub(r"\{(\w+)\}", lambda m: "1" if m[1].endswith("_id") else "waveform", path) + query

        for value in [*HUGE, 0, -1, "1e3", "x"]:
            r = api.request(method, at(value))
            assert r.status_code == 422, (method, path, value, r.status_code, r.text[:200])
            if method != "HEAD":
                assert fields(r) == [name], (method, path, value)
        # The largest id a database holds is well-formed: it just names nothing.
        r = api.request(method, at(MAX_ID))
        assert r.status_code in (401, 404) or needs_a_body(r), (method, path, r.status_code, r.text[:200])


def test_the_largest_id_names_nothing_on_postgresql(tmp_path: Path) -> None:
    """Ids are 32-bit INTEGER columns on PostgreSQL, which refuses to compare one with a larger
    number (a 500 once): every id route at the bound answers 404 (or 401), never 500."""
    if not postgres_available():
        pytest.skip("PostgreSQL not reachable")
    pg = PostgresDatabase()
    settings = Settings(data_dir=tmp_path, database_url=pg.url, secret_key="test-secret")
    try:
        upgrade(settings.resolved_database_url)
        app = create_app(settings, run_workers=False)
        services: Services = app.state.services
        user = services.auth.create_user(email="admin@example.com", password=PASSWORD, role="admin")
        _, token = services.auth.create_key(user_id=user.id, name="bounds")
        with TestClient(app, headers={"X-API-Key": token}, raise_server_exceptions=False) as c:
            for method, path in id_operations(app):
                url = re.sub(r"\{(\w+)\}", lambda m: str(MAX_ID) if m[1].endswith("id") else "waveform", path)
                r = c.request(method, url + ("?token=x" if "webhooks" in path else ""))
                assert r.status_code in (401, 404) or needs_a_body(r), (method, path, r.status_code, r.text)
        services.db.dispose()
    finally:
        pg.drop()


def test_the_cog_webhook_refuses_a_huge_id_without_a_traceback(
    anon: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.clear()
    r = anon.post(f"/api/webhooks/cog/{2**63}?token=abc", json={"id": "p", "status": "succeeded"})
    assert r.status_code == 422 and fields(r) == ["gen_id"]
    r = anon.post(f"/api/webhooks/cog/{MAX_ID}?token=abc", json={"id": "p", "status": "succeeded"})
    assert r.status_code == 401
    r = anon.post("/api/webhooks/cog/5?token=", json={})
    assert r.status_code == 422 and fields(r) == ["token"]
    r = anon.post(f"/api/webhooks/replicate?gen={2**64}", json={})
    assert r.status_code == 422 and fields(r) == ["gen"]
    assert not [rec for rec in caplog.records if rec.levelname in ("ERROR", "CRITICAL")]


@pytest.mark.parametrize(
    "path", ["/api/audio", "/api/images", "/api/videos", "/api/clients", "/api/campaigns", "/api/briefs"]
)
def test_offsets_and_limits_are_bounded(api: TestClient, path: str) -> None:
    for value in [*HUGE, -1]:
        r = api.get(path, params={"offset": str(value)})
        assert r.status_code == 422 and fields(r) == ["offset"], (path, value, r.text[:200])
        r = api.get(path, params={"limit": str(value)})
        assert r.status_code == 422 and fields(r) == ["limit"], (path, value)
    r = api.get(path, params={"offset": str(MAX_INT64)})
    assert r.status_code == 200 and r.json()["count"] == 0


def sign_in(client: TestClient) -> str:
    def csrf(html: str) -> str:
        m = re.search(r'<meta name="csrf-token" content="([^"]+)"', html)
        assert m
        return m.group(1)

    token = csrf(client.get("/login").text)
    r = client.post(
        "/login",
        data={"email": "admin@example.com", "password": PASSWORD, "csrf_token": token, "next": "/images"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text[:300]
    return csrf(client.get("/images").text)


@pytest.mark.parametrize("page", ["/music", "/images", "/videos", "/clients", "/campaigns"])
def test_page_numbers_past_any_list_are_404_not_500(anon: TestClient, page: str) -> None:
    sign_in(anon)
    for value in [*HUGE, MAX_PAGE + 1, "9" * 5000]:
        r = anon.get(page, params={"page": str(value)})
        assert r.status_code == 404, (page, str(value)[:30], r.status_code)
        assert r.headers["content-type"].startswith("text/html")
    for value in ["²", "١", "-3", "abc", "", "0", "00"]:  # not a page number: the first page
        assert anon.get(page, params={"page": value}).status_code == 200, (page, value)
    assert anon.get(page, params={"page": str(MAX_PAGE)}).status_code == 200  # past the end: empty


# -- empty and oversized ids -----------------------------------------------------------------------


@pytest.mark.parametrize("field", ["client_id", "campaign_id", "brief_id"])
@pytest.mark.parametrize(("kind", "path"), KINDS)
def test_an_empty_filing_id_names_the_field(api: TestClient, field: str, kind: str, path: str) -> None:
    r = api.post(f"/api/v2/generate/{kind}", json={"prompt": "x", field: ""})
    assert r.status_code == 422 and fields(r) == [field], r.text
    r = api.post(f"/api/v2/generate/{kind}", json={"prompt": "x", field: "x" * 65})
    assert r.status_code == 422 and fields(r) == [field]
    r = api.post(f"/api/{path}/upload", params={"title": "t", field: ""}, content=b"RIFF")
    assert r.status_code == 422 and fields(r) == [field], r.text
    r = api.get(f"/api/{path}", params={field: ""})  # a filter: empty is "any"
    assert r.status_code == 200


def test_briefs_refuse_empty_references(api: TestClient) -> None:
    r = api.patch("/api/briefs/jingle", json={"campaign_id": ""})
    assert r.status_code == 422 and fields(r) == ["campaign_id"]
    r = api.post("/api/briefs", json={"client_id": "", "title": "x"})
    assert r.status_code == 422 and fields(r) == ["client_id"]
    r = api.post("/api/briefs", json={"campaign_id": "", "title": "x"})
    assert r.status_code == 422 and fields(r) == ["campaign_id"]
    r = api.post("/api/campaigns", json={"client_id": "", "name": "x"})
    assert r.status_code == 422 and fields(r) == ["client_id"]
    assert api.get("/api/briefs/jingle").json()["campaign_id"] == "spring"


def test_overlong_path_ids_are_422(api: TestClient) -> None:
    for path in ("/api/clients/{}", "/api/campaigns/{}/stats", "/api/briefs/{}"):
        r = api.get(path.format("x" * 65))
        assert r.status_code == 422 and len(fields(r)) == 1


# -- oversized fields ------------------------------------------------------------------------------


def deep(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(levels):
        value = {"a": value}
    return value


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/clients", {"name": "x" * 201}, "name"),
        ("/api/clients", {"name": "x", "description": "x" * 5001}, "description"),
        ("/api/campaigns", {"client_id": "acme", "name": "x", "goal": "x" * 5001}, "goal"),
        ("/api/briefs", {"client_id": "acme", "title": "x" * 201}, "title"),
        ("/api/briefs", {"client_id": "acme", "title": "x", "text": "x" * 20001}, "text"),
        ("/api/briefs", {"client_id": "acme", "title": "x", "direction": {"mood": "x" * 17000}}, "direction"),
        ("/api/briefs", {"client_id": "acme", "title": "x", "direction": deep(7)}, "direction"),
        (
            "/api/briefs",
            {"client_id": "acme", "title": "x", "direction": {str(i): i for i in range(101)}},
            "direction",
        ),
        ("/api/briefs", {"client_id": "acme", "title": "x", "direction": {"n": 2**64}}, "direction"),
        ("/api/v2/generate/audio", {"prompt": "x" * 2001}, "prompt"),
        ("/api/v2/generate/audio", {"prompt": "x", "collection": "x" * 129}, "collection"),
        ("/api/v2/generate/audio", {"prompt": "x", "collection": ""}, "collection"),
        ("/api/v2/generate/audio", {"prompt": "x", "parameters": {"p": "x" * 70000}}, "parameters"),
        ("/api/v2/generate/audio", {"prompt": "x", "parameters": deep(8)}, "parameters"),
        ("/api/v2/generate/audio", {"prompt": "x", "parameters": {"input_audio": 2**63}}, "parameters"),
        ("/api/v2/generate/audio", {"prompt": "x", "audio_id": 2**63}, "audio_id"),
        ("/api/v2/generate/audio", {"prompt": "x", "seed": 2**64}, "seed"),
        ("/api/v2/generate/audio", {"prompt": "x", "output_format": "x" * 65}, "output_format"),
        ("/api/v2/generate/video", {"prompt": "x", "image_id": 0}, "image_id"),
        ("/api/v2/generate/video", {"prompt": "x", "negative_prompt": "x" * 2001}, "negative_prompt"),
        ("/api/v2/generate/image", {"prompt": "x", "width": -(2**63) - 1}, "width"),
    ],
    ids=lambda v: v if isinstance(v, str) and len(v) < 40 else None,
)
def test_oversized_fields_are_422_naming_the_field(api: TestClient, path: str, body: Any, field: str) -> None:
    r = api.post(path, json=body)
    assert r.status_code == 422, r.text[:300]
    assert fields(r) == [field], r.text[:300]


def test_non_finite_numbers_are_422(api: TestClient) -> None:
    for raw, field in (
        (b'{"prompt": "x", "duration": NaN}', "duration"),
        (b'{"prompt": "x", "temperature": Infinity}', "temperature"),
        (b'{"prompt": "x", "parameters": {"bpm": NaN}}', "parameters"),
    ):
        r = api.post("/api/v2/generate/audio", content=raw, headers={"content-type": "application/json"})
        assert r.status_code == 422 and fields(r) == [field], r.text
    raw = b'{"client_id": "acme", "title": "x", "direction": {"tempo": -Infinity}}'
    r = api.post("/api/briefs", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 422 and fields(r) == ["direction"]


def test_patch_bounds_match_create(api: TestClient) -> None:
    r = api.patch("/api/briefs/jingle", json={"direction": {"x": "y" * 17000}})
    assert r.status_code == 422 and fields(r) == ["direction"]
    r = api.patch("/api/clients/acme", json={"name": "x" * 201})
    assert r.status_code == 422 and fields(r) == ["name"]


# -- lists never load large columns -----------------------------------------------------------------


def test_brief_lists_carry_summaries_not_the_direction(
    api: TestClient, anon: TestClient, app_and_services: tuple[FastAPI, Services]
) -> None:
    _, services = app_and_services
    direction = {"palette": "teal " * 3000}
    r = api.post(
        "/api/briefs",
        json={
            "id": "long",
            "campaign_id": "spring",
            "title": "Long",
            "text": "t" * 20000,
            "direction": direction,
        },
    )
    assert r.status_code == 201, r.text[:300]
    # A row stored before the bounds existed: 4 MB of direction and 2 MB of text.
    with services.db.write() as s:
        s.add(
            Brief(
                id="legacy",
                client_id="acme",
                campaign_id="spring",
                title="Legacy",
                text="L" * 2_000_000,
                direction={"blob": "d" * 4_000_000},
            )
        )
    r = api.get("/api/briefs", params={"limit": 100})
    assert r.status_code == 200
    assert len(r.content) < 10_000, len(r.content)
    listed = {b["id"]: b for b in r.json()["briefs"]}
    assert "direction" not in listed["long"]
    assert len(listed["long"]["text"]) == sc.EXCERPT_CHARS and listed["long"]["text_truncated"] is True
    assert listed["jingle"]["text"] == "" and listed["jingle"]["text_truncated"] is False
    full = api.get("/api/briefs/long").json()
    assert full["direction"] == direction and len(full["text"]) == 20000
    # The gallery's brief picker reads the same summaries.
    sign_in(anon)
    page = anon.get("/images")
    assert page.status_code == 200 and "Legacy" in page.text
    assert len(page.content) < 500_000
    with services.db.write() as s:
        s.delete(s.get(Brief, "legacy"))


# -- body size ---------------------------------------------------------------------------------------


async def _drive(
    app: FastAPI, method: str, path: str, headers: dict[str, str], chunk: bytes
) -> tuple[int, int, bytes]:
    """Runs one request through the app with an endless body; returns (status, chunks read, body)."""
    read = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal read
        read += 1
        if read > 10_000:
            raise AssertionError("the app read 10 000 chunks of an oversized body")
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    path, _, query = path.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
        "state": {},
    }
    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], read, body


def drive(app: FastAPI, method: str, path: str, headers: dict[str, str], chunk: bytes = b"x" * 65536):
    return anyio.run(_drive, app, method, path, headers, chunk)


BIG = str(150 * 1024 * 1024)


def test_an_absurd_content_length_is_413_not_500(app_and_services: tuple[FastAPI, Services]) -> None:
    app = app_and_services[0]
    for declared in ("9" * 5000, str(2**64)):
        status, read, _ = drive(app, "POST", "/api/briefs", {"content-length": declared})
        assert status == 413 and read == 0


@pytest.mark.parametrize("authenticated", [False, True])
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/briefs"),
        ("POST", "/api/v2/generate/audio"),
        ("PATCH", "/api/clients/acme"),
        ("POST", "/api/keys"),
        ("POST", "/login"),  # pages' forms too
        ("POST", "/api/nowhere"),
    ],
)
def test_a_declared_oversized_body_is_413_before_a_byte_is_read(
    app_and_services: tuple[FastAPI, Services], method: str, path: str, authenticated: bool
) -> None:
    app = app_and_services[0]
    headers = {"content-type": "application/json", "content-length": BIG}
    if authenticated:
        headers["x-api-key"] = app.state.admin_key
    status, read, body = drive(app, method, path, headers)
    assert status == 413 and read == 0
    assert json.loads(body)["detail"].startswith("Request body too large")


def test_a_streamed_oversized_body_is_cut_at_the_cap(app_and_services: tuple[FastAPI, Services]) -> None:
    app = app_and_services[0]
    headers = {"content-type": "application/json", "transfer-encoding": "chunked"}
    chunk = b" " * 4096
    status, read, body = drive(
        app, "POST", "/api/briefs", {**headers, "x-api-key": app.state.admin_key}, chunk
    )
    assert status == 413 and read == BODY_CAP // len(chunk) + 1
    assert json.loads(body)["detail"].startswith("Request body too large")
    # Without a key nothing is read at all: the key is checked before the body.
    for key in ({}, {"x-api-key": "mg_wrong"}):
        status, read, body = drive(app, "POST", "/api/briefs", {**headers, **key}, chunk)
        assert status == 401 and read == 0 and "X-API-Key" in json.loads(body)["detail"]
    # The same for a form posted to a page, cut at the cap.
    status, read, _ = drive(
        app,
        "POST",
        "/login",
        {"content-type": "application/x-www-form-urlencoded", "transfer-encoding": "chunked"},
        chunk,
    )
    assert status == 413 and read == BODY_CAP // len(chunk) + 1


def test_uploads_blobs_and_webhooks_keep_their_own_caps(
    api: TestClient, anon: TestClient, app_and_services: tuple[FastAPI, Services]
) -> None:
    app, services = app_and_services
    settings = services.settings
    for _, path in KINDS:
        assert body_limit(settings, "POST", f"/api/{path}/upload") == settings.max_upload_bytes
    assert body_limit(settings, "PUT", "/api/blobs") >= settings.max_upload_bytes
    assert body_limit(settings, "POST", "/api/webhooks/cog/1") == MAX_WEBHOOK_BYTES
    assert body_limit(settings, "POST", "/api/briefs") == BODY_CAP
    over_json_cap = b"\0" * (BODY_CAP * 3)
    r = api.post("/api/audio/upload", params={"title": "noise"}, content=over_json_cap)
    assert r.status_code == 422 and fields(r) == ["file"]  # read whole, then refused as not audio
    r = api.put("/api/blobs", content=over_json_cap)
    assert r.status_code == 201 and r.json()["size"] == len(over_json_cap)
    assert api.delete(f"/api/blobs/{r.json()['key']}").status_code == 204
    r = anon.post("/api/webhooks/cog/1?token=wrong", content=over_json_cap)
    assert r.status_code == 401
    # Their own caps still hold, also before reading.
    status, read, _ = drive(
        app,
        "POST",
        "/api/audio/upload?title=t",
        {"x-api-key": app.state.admin_key, "content-length": str(settings.max_upload_bytes + 1)},
    )
    assert status == 413 and read == 0
    status, read, _ = drive(
        app, "POST", "/api/webhooks/cog/1?token=x", {"content-length": str(MAX_WEBHOOK_BYTES + 1)}
    )
    assert status == 413 and read == 0
    # An unauthenticated upload is refused before its bytes are read.
    status, read, _ = drive(app, "POST", "/api/audio/upload?title=t", {"content-length": "1000"})
    assert status == 401 and read == 0


def test_the_early_key_check_matches_the_routes(app_and_services: tuple[FastAPI, Services]) -> None:
    """The body guard asks for a key on every /api/ body but the webhooks'. A public /api/ route
    with a body would be refused there: it must be added beside the webhooks in `api.limits`."""
    for path, item in app_and_services[0].openapi()["paths"].items():
        for method, op in item.items():
            if "requestBody" in op and path.startswith("/api/"):
                public = path.startswith(WEBHOOK_PREFIX)
                assert bool(op.get("security")) != public, (method, path)


def test_unauthenticated_bodies_are_401_before_they_are_parsed(anon: TestClient) -> None:
    r = anon.post("/api/clients", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 401 and r.headers["www-authenticate"] == "APIKey"
    r = anon.post("/api/clients", json={"name": "x"}, headers={"X-API-Key": "mg_wrong"})
    assert r.status_code == 401


def test_a_real_server_answers_413_without_reading_the_body(
    app_and_services: tuple[FastAPI, Services],
) -> None:
    """Through uvicorn and a socket: a client that announces 150 MB gets its answer after sending
    only a little, and the connection is closed rather than drained."""
    app = app_and_services[0]
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        for key in ("", f"X-API-Key: {app.state.admin_key}\r\n"):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                head = (
                    f"POST /api/briefs HTTP/1.1\r\nHost: x\r\n{key}Content-Type: application/json\r\n"
                    f"Content-Length: {BIG}\r\n\r\n"
                )
                sock.sendall(head.encode() + b"{" + b" " * 65536)
                answer = b""
                while b"\r\n\r\n" not in answer:
                    piece = sock.recv(65536)
                    if not piece:
                        break
                    answer += piece
                assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    finally:
        server.should_exit = True
        thread.join(10)

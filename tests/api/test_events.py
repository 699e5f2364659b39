"""`GET /api/events` in-process: the SSE framing, replay and resume by `Last-Event-ID`, tenant
scope, filters, a revoked key ending an open stream, and the document. (The same stream across a
worker process and an API process, read as it comes: `test_events_live.py`.)"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient

from mediagen.app import create_app
from mediagen.campaigns import schemas as sc
from mediagen.config import Settings
from mediagen.generations.ports import Step
from mediagen.services import Services
from tests.conftest import free_port
from tests.generations.conftest import migrate


@dataclass
class Frame:
    id: int | None
    event: str | None
    data: dict[str, Any] | None


def parse_sse(text: str) -> tuple[list[Frame], list[str]]:
    """Frames (id, event, JSON data) and the comment lines, as an EventSource would read them."""
    frames, comments = [], []
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.split("\n"):
            if line.startswith(":"):
                comments.append(line[1:].strip())
            elif ": " in line:
                name, value = line.split(": ", 1)
                fields[name] = value
        if "data" in fields or "event" in fields:
            ident = fields.get("id")
            data = json.loads(fields["data"]) if "data" in fields else None
            frames.append(Frame(int(ident) if ident else None, fields.get("event"), data))
    return frames, comments


@dataclass
class World:
    http: TestClient
    services: Services
    admin_key: str
    acme_key: str


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data = tmp_path_factory.mktemp("events-api")
    settings = Settings(
        data_dir=data, secret_key="test", generate_rate_limit_per_minute=0, events_poll_seconds=0.05
    )
    settings.ensure_dirs()
    migrate(settings.resolved_database_url)
    app = create_app(settings, run_workers=False)
    services: Services = app.state.services
    user = services.auth.create_user(
        email="admin@example.com", password="correct horse battery", role="admin"
    )
    admin = services.auth.principal_for_user(user)
    for client in ("acme", "globex"):
        services.campaigns.create_client(admin, sc.ClientCreate(id=client, name=client.title()))
    _, admin_key = services.auth.create_key(user_id=user.id, name="root")
    _, acme_key = services.auth.create_key(user_id=user.id, name="acme only", clients=["acme"])
    with TestClient(app) as http:
        yield World(http, services, admin_key, acme_key)


def generate(w: World, kind: str = "audio", **body: Any) -> int:
    r = w.http.post(
        f"/api/v2/generate/{kind}",
        json={"prompt": "warm pads", **({"duration": 1} if kind == "audio" else {}), **body},
        headers={"X-API-Key": w.admin_key},
    )
    assert r.status_code == 202, r.text
    gen_id = int(r.json()["id"])
    w.services.pipeline.run(Step.SUBMIT, gen_id)
    return gen_id


def stream(w: World, key: str | None = None, headers: dict[str, str] | None = None, **params: Any) -> Any:
    sent = {"X-API-Key": key or w.admin_key, **(headers or {})}
    return w.http.get("/api/events", params={"max_seconds": 0.2, **params}, headers=sent)


def frames(w: World, **kw: Any) -> list[Frame]:
    r = stream(w, **kw)
    assert r.status_code == 200, r.text
    return parse_sse(r.text)[0]


def test_a_stream_replays_every_change_in_order_as_sse(world: World) -> None:
    gen_id = generate(world, client_id="acme")
    r = stream(world, since=0, ids=str(gen_id))
    assert r.headers["content-type"].startswith("text/event-stream")
    assert r.headers["cache-control"] == "no-cache"
    assert r.text.startswith("retry: 3000\n")
    got = parse_sse(r.text)[0]
    assert [f.event for f in got] == ["generation.created", "generation.processing", "generation.completed"]
    assert [f.data["seq"] for f in got] == [1, 2, 3]  # type: ignore[index]
    ids = [f.id for f in got]
    assert ids == sorted(ids) and len(set(ids)) == 3
    done = got[-1].data
    assert done is not None
    assert (done["kind"], done["id"], done["status"], done["progress"]) == ("audio", gen_id, "completed", 1.0)
    assert done["data_url"] == f"/api/audio/{gen_id}/data"


def test_last_event_id_resumes_without_a_gap_or_a_duplicate(world: World) -> None:
    first, second = generate(world), generate(world, kind="image", prompt="teal", width=64, height=64)
    everything = [f for f in frames(world, since=0) if f.data and f.data["id"] in (first, second)]
    assert len(everything) == 6
    cut = everything[2].id
    assert cut is not None
    for how in ({"headers": {"Last-Event-ID": str(cut)}}, {"last_event_id": cut}):
        rest = [f for f in frames(world, **how) if f.data and f.data["id"] in (first, second)]  # type: ignore[arg-type]
        assert [f.id for f in rest] == [f.id for f in everything[3:]]
    # The header wins over `since`.
    resumed = frames(world, since=0, headers={"Last-Event-ID": str(everything[-1].id)})
    assert all(f.id is not None and f.id > everything[-1].id for f in resumed)  # type: ignore[operator]


def test_a_stream_without_a_position_starts_now(world: World) -> None:
    generate(world)
    time.sleep(2.2)  # older than the grace a fresh stream repeats
    assert frames(world) == []


def test_filters_narrow_the_stream(world: World) -> None:
    audio = generate(world)
    image = generate(world, kind="image", prompt="amber", width=64, height=64)
    kinds = {f.data["kind"] for f in frames(world, since=0, kind="image") if f.data}
    assert kinds == {"image"}
    assert {f.data["id"] for f in frames(world, since=0, ids=f"{audio}, {image}") if f.data} == {audio, image}


def test_a_key_limited_to_acme_never_receives_another_clients_events(world: World) -> None:
    acme = generate(world, client_id="acme")
    globex = generate(world, client_id="globex")
    unfiled = generate(world)
    seen = {f.data["id"] for f in frames(world, key=world.acme_key, since=0) if f.data}
    assert acme in seen and globex not in seen and unfiled not in seen
    assert all(f.data["client_id"] == "acme" for f in frames(world, key=world.acme_key, since=0) if f.data)
    # Naming globex's asset does not help.
    assert frames(world, key=world.acme_key, since=0, ids=str(globex)) == []
    assert {acme, globex, unfiled} <= {f.data["id"] for f in frames(world, since=0) if f.data}


@pytest.mark.parametrize(
    ("params", "headers", "field"),
    [
        ({"ids": "1,x"}, {}, "ids"),
        ({"ids": ","}, {}, "ids"),
        ({"ids": ",".join(str(i) for i in range(1, 102))}, {}, "ids"),
        ({"kind": "podcast"}, {}, "kind"),
        ({"since": -1}, {}, "since"),
        ({"max_seconds": 0}, {}, "max_seconds"),
        ({}, {"Last-Event-ID": "abc"}, "Last-Event-ID"),
    ],
)
def test_bad_parameters_are_a_422_naming_them(
    world: World, params: dict[str, Any], headers: dict[str, str], field: str
) -> None:
    r = stream(world, headers=headers, **params)
    assert r.status_code == 422, r.text
    assert field.lower() in json.dumps(r.json()).lower()


def test_a_stream_needs_a_key(world: World) -> None:
    r = world.http.get("/api/events", params={"max_seconds": 0.1})
    assert r.status_code == 401
    assert world.http.get("/api/events", headers={"X-API-Key": "nope"}).status_code == 401


def test_revoking_the_key_ends_an_open_stream(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    user = world.services.auth.get_user_by_email("admin@example.com")
    assert user is not None
    row, key = world.services.auth.create_key(user_id=user.id, name="short-lived")
    answer: dict[str, Any] = {}
    # The key is revoked once the stream reads the log, i.e. after it was let in: on a loaded
    # machine a fixed pause could end before the request got that far, and it was refused instead.
    polling = threading.Event()
    real = world.services.events.events_after

    def noted(*args: Any, **kw: Any) -> Any:
        polling.set()
        return real(*args, **kw)

    monkeypatch.setattr(world.services.events, "events_after", noted)

    def follow() -> None:
        answer["r"] = world.http.get("/api/events", params={"max_seconds": 30}, headers={"X-API-Key": key})

    reader = threading.Thread(target=follow)
    reader.start()
    assert polling.wait(15), "the stream never started reading the log"
    revoked = time.monotonic()
    world.services.auth.revoke_key_for(world.services.auth.principal_for_user(user), row.id)
    reader.join(15)
    assert not reader.is_alive()
    assert answer["r"].status_code == 200
    assert time.monotonic() - revoked < 6
    last = parse_sse(answer["r"].text)[0][-1]
    assert last.event == "stream.closed" and last.data == {"reason": "unauthenticated"}


def test_the_stream_is_documented_as_text_event_stream(world: World) -> None:
    op = world.http.get("/openapi.json").json()["paths"]["/api/events"]["get"]
    assert "text/event-stream" in op["responses"]["200"]["content"]
    names = {p["name"] for p in op["parameters"]}
    assert {"Last-Event-ID", "since", "kind", "ids", "take_group", "max_seconds"} <= names


def test_the_reader_never_blocks_other_requests(world: World, tmp_path: Path) -> None:
    """Requests answer while a stream is open: its database reads run off the event loop."""
    done = threading.Event()

    def hold() -> None:
        world.http.get("/api/events", params={"max_seconds": 1}, headers={"X-API-Key": world.admin_key})
        done.set()

    threading.Thread(target=hold).start()
    time.sleep(0.2)
    started = time.monotonic()
    assert world.http.get("/api/me", headers={"X-API-Key": world.admin_key}).status_code == 200
    assert time.monotonic() - started < 1.0 and not done.is_set()
    done.wait(5)


def test_a_client_that_goes_away_stops_its_stream(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """Through uvicorn and a socket: once the client closes the connection the server stops
    reading the log for it at the next poll, not at the next event or heartbeat."""
    app = world.http.app
    reads: list[float] = []
    real = world.services.events.events_after

    def counted(*args: Any, **kw: Any) -> Any:
        reads.append(time.monotonic())
        return real(*args, **kw)

    monkeypatch.setattr(world.services.events, "events_after", counted)
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
        # On a loaded machine (CI) a stream has now and then not polled at all within many
        # seconds of its first frame (cause not found yet: see the closing note of issue 15);
        # up to three connections are tried for one that polls, then it is closed.
        for _attempt in range(3):
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
                with http.stream("GET", "/api/events", headers={"X-API-Key": world.admin_key}) as r:
                    assert r.status_code == 200
                    assert next(r.iter_lines()).startswith("retry:")
                    waited = time.monotonic() + 10
                    while not reads and time.monotonic() < waited:
                        time.sleep(0.05)
            if reads:
                break
        assert reads, "the stream never read the log"
        # Poll is 0.05 s here: a live stream reads ten times in half a second. A loaded machine
        # may take a few polls to notice the close; after that the count must stay put.
        deadline, settled = time.monotonic() + 5, -1
        while len(reads) != settled and time.monotonic() < deadline:
            settled = len(reads)
            time.sleep(0.5)
        assert len(reads) == settled, "the stream went on reading after its client left"
    finally:
        server.should_exit = True
        thread.join(10)


def test_ending_the_session_ends_a_pages_stream(world: World) -> None:
    """A signed-in page's stream (cookie, no key) stops when its session is ended elsewhere."""
    app = world.http.app
    with TestClient(app) as browser:
        login = browser.get("/login").text
        token = re.search(r'name="csrf-token" content="([^"]+)"', login)
        assert token is not None
        r = browser.post(
            "/login",
            data={
                "email": "admin@example.com",
                "password": "correct horse battery",
                "csrf_token": token.group(1),
            },
            follow_redirects=False,
        )
        assert r.status_code == 303, r.text
        answer: dict[str, Any] = {}

        def follow() -> None:
            started = time.monotonic()
            answer["r"] = browser.get("/api/events", params={"max_seconds": 30})
            answer["took"] = time.monotonic() - started

        reader = threading.Thread(target=follow)
        reader.start()
        time.sleep(0.5)
        user = world.services.auth.get_user_by_email("admin@example.com")
        assert user is not None
        world.services.auth.end_other_sessions(
            world.services.auth.principal_for_user(user), keep_session=None
        )
        reader.join(15)
        assert not reader.is_alive() and answer["took"] < 6
        assert answer["r"].status_code == 200
        assert parse_sse(answer["r"].text)[0][-1].event == "stream.closed"

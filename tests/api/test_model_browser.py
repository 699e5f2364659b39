"""The model browser through a real `mediagen serve` against the fake Replicate: search, a model's
preview, adding one by id (admins whose key reaches every client), generating with it through
`POST /api/v2/generate/{kind}` to a completed asset, removing it; and `mediagen models add`, run
as another process on the server's database, seen by the running server at once."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import LiveServer, make_server
from tests.fakes.replicate_server import LLM_MODEL, FakeReplicate, Script

# A server process and the CLI as subprocesses: slow (tests/conftest.py says which are).
pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

ACE = "lucataco/ace-step"
LYRIA = "google/lyria-2"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeReplicate]:
    with FakeReplicate() as server:
        server.default_script = Script(start_after=0.0, run_for=0.05)
        yield server


@pytest.fixture(scope="module")
def server(fake: FakeReplicate, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    srv = make_server(
        tmp_path_factory.mktemp("model-browser"),
        REPLICATE_API_TOKEN=fake.token,
        MEDIAGEN_REPLICATE_BASE_URL=fake.base_url,
        MEDIAGEN_DOWNLOAD_ALLOWED_HOSTS=fake.delivery_allow_entry,
    ).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def api(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client(timeout=60.0) as c:
        yield c


def ok(r: httpx.Response, status: int = 200) -> Any:
    assert r.status_code == status, f"{r.request.method} {r.request.url}: {r.status_code} {r.text[:800]}"
    return r.json() if r.content else None


def field_of(r: httpx.Response) -> str:
    return str(r.json()["errors"][0]["field"])


def test_search_and_preview(api: httpx.Client) -> None:
    found = ok(api.get("/api/models/replicate/search", params={"q": "music"}))
    by_id = {m["id"]: m for m in found["models"]}
    assert by_id[LYRIA]["kind"] == "audio" and by_id[LYRIA]["in_catalog"] is None
    assert by_id["meta/musicgen"]["in_catalog"] == "built-in"
    assert by_id[LYRIA]["cover_image_url"] and by_id[LYRIA]["run_count"] == 180_000
    assert found["collections"][0]["slug"] == "ai-music-generation"
    text = ok(api.get("/api/models/replicate/search", params={"q": "language"}))
    llm = next(m for m in text["models"] if m["id"] == LLM_MODEL)
    assert llm["kind"] == "unsupported" and "makes text" in llm["why"]
    r = api.get("/api/models/replicate/search", params={"q": ""})
    assert r.status_code == 422 and field_of(r) == "q"

    preview = ok(api.get(f"/api/models/replicate/{ACE}"))
    assert preview["kind"] == "audio" and preview["request_map"]["prompt"] == "tags"
    assert list(preview["input_schema"]["properties"])[:3] == ["tags", "lyrics", "duration"]
    assert preview["example_files"][0]["kind"] == "audio"
    assert api.get("/api/models/replicate/nobody/nothing").status_code == 404


def test_add_generate_and_remove(api: httpx.Client, server: LiveServer, fake: FakeReplicate) -> None:
    added = ok(api.post("/api/models/replicate", json={"model": ACE}), 201)
    assert added["id"] == ACE and added["kind"] == "audio" and added["engine"] == "replicate"
    assert added["available"] is True and added["label"] == "added from Replicate"
    assert added["input_schema"]["properties"]["scheduler"]["enum"] == ["euler", "heun", "pingpong"]
    assert ACE in {m["id"] for m in ok(api.get("/api/models", params={"kind": "audio"}))["models"]}
    assert ok(api.get(f"/api/models/{ACE}"))["request_map"]["prompt"] == "tags"

    job = ok(
        api.post("/api/v2/generate/audio", json={"prompt": "lofi piano", "model": ACE, "duration": 12}), 202
    )
    item = server.wait_for("audio", job["id"])
    assert item["status"] == "completed", item
    assert item["model_id"] == ACE and item["parameters"]["tags"] == "lofi piano"
    (create,) = [
        r for r in fake.create_requests if (r.json or {}).get("input", {}).get("tags") == "lofi piano"
    ]
    assert create.path == "/v1/predictions" and create.json["version"] == fake.models[ACE].versions[0]
    # Its own schema's limits, as for a built-in model.
    r = api.post("/api/v2/generate/audio", json={"prompt": "x", "model": ACE, "duration": 900})
    assert r.status_code == 422 and field_of(r) == "duration"

    r = api.post("/api/models/replicate", json={"model": ACE})
    assert r.status_code == 409 and field_of(r) == "model"
    assert api.delete(f"/api/models/{ACE}").status_code == 204
    assert api.get(f"/api/models/{ACE}").status_code == 404
    assert api.delete(f"/api/models/{ACE}").status_code == 404
    r = api.post("/api/v2/generate/audio", json={"prompt": "x", "model": ACE})
    assert r.status_code == 422 and field_of(r) == "model"
    assert ok(api.get(f"/api/audio/{job['id']}"))["status"] == "completed"  # what it made stays


def test_refusals(api: httpx.Client, server: LiveServer) -> None:
    r = api.post("/api/models/replicate", json={"model": "meta/musicgen"})
    assert r.status_code == 409 and "built in" in r.json()["detail"]
    r = api.post("/api/models/replicate", json={"model": LLM_MODEL})
    assert r.status_code == 422 and field_of(r) == "model" and "makes text" in r.json()["detail"]
    r = api.post("/api/models/replicate", json={"model": "nobody/nothing"})
    assert r.status_code == 422 and field_of(r) == "model"
    r = api.post("/api/models/replicate", json={"model": "not a model"})
    assert r.status_code == 422 and field_of(r) == "model"
    r = api.post("/api/models/replicate", json={"model": ACE, "version": "xyz"})
    assert r.status_code == 422 and field_of(r) == "version"
    assert api.delete("/api/models/meta/musicgen").status_code == 409
    # An admin key limited to one client may not change what every client sees.
    ok(api.post("/api/clients", json={"id": "acme", "name": "Acme"}), 201)
    limited = ok(api.post("/api/keys", json={"name": "acme only", "clients": ["acme"]}), 201)["key"]
    with server.client(limited) as c:
        assert c.post("/api/models/replicate", json={"model": ACE}).status_code == 403
        assert c.delete("/api/models/meta/musicgen").status_code == 403
        assert c.get("/api/models/replicate/search", params={"q": "music"}).status_code == 200  # may look


def cli(server: LiveServer, fake: FakeReplicate, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MEDIAGEN_", "REPLICATE_"))}
    env.update(
        MEDIAGEN_DATA_DIR=str(server.data_dir),
        REPLICATE_API_TOKEN=fake.token,
        MEDIAGEN_REPLICATE_BASE_URL=fake.base_url,
    )
    return subprocess.run(
        [sys.executable, "-m", "mediagen.cli", "models", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_models_add_from_the_command_line_is_seen_by_the_running_server(
    api: httpx.Client, server: LiveServer, fake: FakeReplicate
) -> None:
    done = cli(server, fake, "add", LYRIA)
    assert done.returncode == 0, done.stderr
    assert f"Added {LYRIA}: makes audio" in done.stdout and "its official endpoint" in done.stdout
    # Another process added it: the server's catalog reads it on the first request naming it.
    assert ok(api.get(f"/api/models/{LYRIA}"))["kind"] == "audio"
    job = ok(api.post("/api/v2/generate/audio", json={"prompt": "synthwave", "model": LYRIA}), 202)
    assert server.wait_for("audio", job["id"])["status"] == "completed"
    assert any(r.path == f"/v1/models/{LYRIA}/predictions" for r in fake.create_requests)

    again = cli(server, fake, "add", LYRIA)
    assert again.returncode == 1 and "already in the catalog" in again.stderr
    text = cli(server, fake, "add", LLM_MODEL)
    assert text.returncode == 1 and "makes text" in text.stderr
    removed = cli(server, fake, "remove", LYRIA)
    assert removed.returncode == 0, removed.stderr
    deadline = time.monotonic() + 5  # the server's catalog checks again within a second
    while LYRIA in {m["id"] for m in ok(api.get("/api/models"))["models"]}:
        assert time.monotonic() < deadline, "the server still lists the removed model"
        time.sleep(0.2)

"""The lean byte path (api/byte_path.py): an asset's bytes asked for with an API key are answered
without the router, with the same authorization and the same response as the full route; every
other answer (401, 404, 409, a query string) still comes from the full route."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient

from mediagen.app import create_app
from mediagen.campaigns import schemas as sc
from mediagen.config import Settings
from mediagen.db.migrate import upgrade
from mediagen.generations.service import GenerationService
from mediagen.services import Services

COMPARED = ("content-type", "content-length", "content-range", "etag", "accept-ranges", "cache-control")
SECURITY = ("x-content-type-options", "x-frame-options", "referrer-policy")


def wav_bytes() -> bytes:
    t = np.arange(44100) / 44100
    buf = io.BytesIO()
    sf.write(buf, 0.3 * np.sin(2 * np.pi * 440 * t), 44100, format="WAV")
    return buf.getvalue()


class World:
    def __init__(self, app: Any, services: Services, keys: dict[str, str], ids: dict[str, int]) -> None:
        self.app, self.services, self.keys, self.ids = app, services, keys, ids

    def client(self, who: str | None) -> TestClient:
        headers = {"X-API-Key": self.keys[who]} if who else {}
        return TestClient(self.app, headers=headers, raise_server_exceptions=False)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    settings = Settings(
        data_dir=Path(tmp_path_factory.mktemp("bytes")), secret_key="t", generate_rate_limit_per_minute=0
    )
    upgrade(settings.resolved_database_url)
    app = create_app(settings, run_workers=False)
    services: Services = app.state.services
    admin_user = services.auth.create_user(
        email="admin@example.com", password="correct horse 1", role="admin"
    )
    admin = services.auth.principal_for_user(admin_user)
    for client_id in ("acme", "globex"):
        services.campaigns.create_client(admin, sc.ClientCreate(id=client_id, name=client_id))
    member = services.auth.create_user(email="m@example.com", password="correct horse 2", role="member")
    keys = {
        "admin": services.auth.create_key(user_id=admin_user.id, name="a")[1],
        "globex": services.auth.create_key(user_id=member.id, name="g", clients=["globex"])[1],
    }
    world = World(app, services, keys, {})
    with world.client("admin") as api:
        r = api.post("/api/audio/upload", params={"title": "tone", "client_id": "acme"}, content=wav_bytes())
        assert r.status_code == 201, r.text
        world.ids["acme"] = r.json()["audio_id"]
        r = api.post("/api/v2/generate/audio", json={"prompt": "held back", "client_id": "acme"})
        world.ids["pending"] = r.json()["audio_id"]  # workers are off: it stays pending
    yield world
    services.close()


def test_the_lean_path_answers_as_the_full_route_does(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"/api/audio/{world.ids['acme']}/data"
    cases: list[dict[str, str]] = [{}, {"Range": "bytes=100-4195"}, {"Range": "bytes=-10"}]
    with world.client("admin") as c:
        full = [c.get(url + "?download=false", headers=h) for h in cases]  # a query: the full route
        head_full = c.head(url + "?download=false")
        etag = full[0].headers["etag"]
        # The router's own lookup is never asked: the bytes still come.
        monkeypatch.setattr(GenerationService, "get", lambda *a, **k: pytest.fail("went through the router"))
        lean = [c.get(url, headers=h) for h in cases]
        head_lean = c.head(url)
        unmodified = c.get(url, headers={"If-None-Match": etag})
        too_far = c.get(url, headers={"Range": "bytes=99999999-"})
    for a, b in [*zip(full, lean, strict=True), (head_full, head_lean)]:
        assert (a.status_code, a.content) == (b.status_code, b.content)
        for name in (*COMPARED, *SECURITY):
            assert a.headers.get(name) == b.headers.get(name), name
    assert [r.status_code for r in lean] == [200, 206, 206]
    assert lean[1].content == full[0].content[100:4196] and len(lean[2].content) == 10
    assert unmodified.status_code == 304 and too_far.status_code == 416
    assert too_far.headers["content-range"] == f"bytes */{len(full[0].content)}"


def test_every_other_answer_comes_from_the_full_route(world: World) -> None:
    acme, pending = world.ids["acme"], world.ids["pending"]
    with world.client("globex") as c:
        r = c.get(f"/api/audio/{acme}/data")  # another client's asset: as if there were none
        none = c.get("/api/audio/2000000001/data").json()["detail"]
        assert r.status_code == 404 and r.json()["detail"] == none.replace("2000000001", str(acme))
    with world.client(None) as c:
        assert c.get(f"/api/audio/{acme}/data").status_code == 401
        assert c.get(f"/api/audio/{acme}/data", headers={"X-API-Key": "mg_wrong"}).status_code == 401
    with world.client("admin") as c:
        assert c.get(f"/api/images/{acme}/data").status_code == 404  # the wrong kind
        r = c.get(f"/api/audio/{pending}/data")
        assert r.status_code == 409 and "pending" in r.json()["detail"]
        assert c.get("/api/audio/99999999999/data").status_code == 422  # past any id
        r = c.get(f"/api/audio/{acme}/data", params={"download": "true"})
        assert r.status_code == 200 and r.headers["content-disposition"].startswith("attachment")

"""Kit plans over HTTP against a live `mediagen serve` (its own workers and heartbeat): the
contract's routes from a brief to a finished kit, a re-run that adds nothing, images from a brief's
scenes, and another tenant's plan that does not exist."""

from __future__ import annotations

import io
import time
import zipfile
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import LiveServer, make_server

pytestmark = pytest.mark.slow  # a `mediagen serve` child process

BRIEF = {
    "id": "sunny",
    "title": "Sunny launch",
    "text": "A bright summer drink for people on the move",
    "campaign_id": "summer",
    "objective": "Launch the drink",
    "audience": "commuters",
    "key_messages": ["Cold in a minute"],
    "tone": "upbeat",
    "channels": ["instagram-reel", "radio"],
    "lengths": [6],
    "must_haves": ["the can"],
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    srv = make_server(tmp_path_factory.mktemp("plans")).start()
    with srv.client() as c:
        for path, body in (
            ("/api/clients", {"id": "acme", "name": "Acme"}),
            ("/api/clients", {"id": "globex", "name": "Globex"}),
            ("/api/campaigns", {"id": "summer", "client_id": "acme", "name": "Summer"}),
            ("/api/briefs", BRIEF),
        ):
            answer = c.post(path, json=body)
            assert answer.status_code == 201, answer.text
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def api(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client(timeout=60.0) as c:
        yield c


def ok(r: httpx.Response, status: int = 200) -> Any:
    assert r.status_code == status, f"{r.request.method} {r.request.url}: {r.status_code} {r.text[:800]}"
    return r.json()


def until_settled(api: httpx.Client, plan_id: int, timeout: float = 120.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        plan = ok(api.get(f"/api/plans/{plan_id}"))
        if plan["status"] != "running":
            return plan
        assert time.monotonic() < deadline, f"plan {plan_id} still running: {plan}"
        time.sleep(0.3)


def test_brief_to_plan_to_kit(api: httpx.Client) -> None:
    drafted = api.post("/api/briefs/sunny/plan")
    plan = ok(drafted, 201)
    assert drafted.headers["location"] == f"/api/plans/{plan['id']}"
    assert (plan["status"], plan["planner"], plan["version"]) == ("draft", "rules", 1)
    for d in plan["deliverables"]:
        assert {"id", "kind", "model", "prompt", "parameters", "channel", "status"} <= d.keys()
        assert d["status"] == "planned" and d["asset"] is None
    for s in plan["scenes"]:
        assert {"n", "purpose", "duration", "prompt"} <= s.keys()
    spots = [d for d in plan["deliverables"] if d["role"] == "spot"]
    assert sorted((s["channel"], s["kind"], s["length"]) for s in spots) == [
        ("instagram-reel", "video", 6.0),
        ("radio", "audio", 6.0),
    ]
    assert ok(api.get("/api/briefs/sunny/plans"))["plans"][0]["id"] == plan["id"]

    # Edit: send back what was read, one prompt changed, the scenes in another order.
    visual = next(d for d in plan["deliverables"] if d["role"] == "visual")
    visual["prompt"] = "A cold can on a sunny windowsill"
    plan["scenes"] = plan["scenes"][::-1]
    edited = ok(api.patch(f"/api/plans/{plan['id']}", json=plan))
    assert edited["version"] == 2
    assert next(d for d in edited["deliverables"] if d["id"] == visual["id"])["prompt"] == visual["prompt"]
    assert [s["n"] for s in edited["scenes"]] == list(range(1, len(plan["scenes"]) + 1))
    bad = api.patch(f"/api/plans/{plan['id']}", json={"deliverables": [{**visual, "model": "synth/music"}]})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "deliverables[0].model"
    stale = api.post(f"/api/plans/{plan['id']}/approve", json={"version": 1})
    assert stale.status_code == 409
    assert api.post(f"/api/plans/{plan['id']}/run").status_code == 409  # a draft

    ok(api.post(f"/api/plans/{plan['id']}/approve", json={"version": 2}))
    started = ok(api.post(f"/api/plans/{plan['id']}/run"), 202)
    assert started["status"] == "running"
    done = until_settled(api, plan["id"])
    assert done["status"] == "done", done
    for d in done["deliverables"]:
        assert d["status"] == "done" and d["asset"]["kind"] == d["kind"] and len(d["ids"]) == 1
    reel = next(d for d in done["deliverables"] if d["channel"] == "instagram-reel")
    spot = ok(api.get(f"/api/videos/{reel['asset']['id']}"))
    assert (spot["model_id"], spot["width"], spot["height"]) == ("post/compose", 1080, 1920)
    assert spot["brief_id"] == "sunny" and spot["campaign_id"] == "summer"
    radio = next(d for d in done["deliverables"] if d["channel"] == "radio")
    assert ok(api.get(f"/api/audio/{radio['asset']['id']}"))["model_id"] == "post/master"

    # Again: nothing new.
    again = ok(api.post(f"/api/plans/{plan['id']}/run"), 202)
    assert [d["ids"] for d in again["deliverables"]] == [d["ids"] for d in done["deliverables"]]
    assert until_settled(api, plan["id"])["status"] == "done"

    kit = api.get(f"/api/plans/{plan['id']}/kit.zip")
    assert kit.status_code == 200 and kit.headers["content-type"] == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(kit.content)).namelist()
    assert len(names) == len(done["deliverables"])
    assert {n.split("/")[0] for n in names} >= {"instagram-reel", "radio", "music", "clips"}

    retry = api.post(f"/api/plans/{plan['id']}/items/{radio['id']}/retry")
    assert retry.status_code == 409  # nothing failed

    # The kit shared for sign-off: the link opens its finished deliverables.
    link = ok(api.post("/api/shares", json={"target": {"plan_id": plan["id"]}}), 201)
    assert link["target"] == {"plan_id": plan["id"]} and link["campaign_id"] == "summer"


def test_images_from_a_briefs_scenes(api: httpx.Client) -> None:
    plan = ok(api.get("/api/briefs/sunny/plans"))["plans"]
    scenes = ok(api.get(plan[0]["url"]))["scenes"] if plan else None
    made = ok(api.post("/api/v2/generate/image", json={"brief_id": "sunny"}), 202)
    assert len(made["ids"]) == len(scenes or made["ids"]) and made["plan_id"] == (
        plan[0]["id"] if plan else None
    )
    seed = ok(api.post("/api/generate-images-from-brief", json={"brief_id": "sunny"}), 202)
    assert len(seed["ids"]) == len(made["ids"]) and seed["image_ids"] == seed["ids"]
    first = ok(api.get(f"/api/images/{seed['ids'][0]}"))
    assert first["brief_id"] == "sunny" and first["prompt"] == seed["images"][0]["prompt"]
    audio = api.post("/api/v2/generate/audio", json={"brief_id": "sunny"})
    assert audio.status_code == 422 and audio.json()["errors"][0]["field"] == "prompt"


def test_another_tenants_plan_does_not_exist(api: httpx.Client, server: LiveServer) -> None:
    plan = ok(api.post("/api/briefs/sunny/plan"), 201)
    key = ok(api.post("/api/keys", json={"name": "globex only", "clients": ["globex"]}), 201)["key"]
    with server.client(key) as globex:
        for method, url, body in (
            ("GET", f"/api/plans/{plan['id']}", None),
            ("PATCH", f"/api/plans/{plan['id']}", {"scenes": plan["scenes"]}),
            ("POST", f"/api/plans/{plan['id']}/approve", None),
            ("POST", f"/api/plans/{plan['id']}/run", None),
            ("POST", f"/api/plans/{plan['id']}/items/d1/retry", None),
            ("GET", f"/api/plans/{plan['id']}/kit.zip", None),
            ("GET", "/api/briefs/sunny/plans", None),
            ("POST", "/api/briefs/sunny/plan", None),
        ):
            r = globex.request(method, url, json=body)
            assert r.status_code == 404, (method, url, r.text)
            assert "Sunny" not in r.text
        images = globex.post("/api/v2/generate/image", json={"brief_id": "sunny"})
        assert images.status_code == 422 and images.json()["errors"][0]["field"] == "brief_id"
    assert ok(api.get(f"/api/plans/{plan['id']}"))["version"] == 1

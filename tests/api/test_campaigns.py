"""Clients, campaigns and briefs through the live API (SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import LiveServer


def test_client_crud(live_server_any_db: LiveServer) -> None:
    with live_server_any_db.client() as c:
        r = c.post("/api/clients", json={"id": "acme", "name": "Acme", "description": "Rockets"})
        assert r.status_code == 201 and r.json()["id"] == "acme"
        assert c.post("/api/clients", json={"id": "acme", "name": "Again"}).status_code == 409
        gen = c.post("/api/clients", json={"name": "Generated"}).json()
        assert gen["id"].startswith("client_")
        assert c.patch("/api/clients/acme", json={"name": "Acme Corp"}).json()["name"] == "Acme Corp"
        assert c.get("/api/clients/acme").json()["description"] == "Rockets"
        listed = c.get("/api/clients", params={"q": "acme"}).json()
        assert listed["total"] == 1 and listed["count"] == 1 and listed["clients"][0]["id"] == "acme"
        assert c.get("/api/clients/nope").status_code == 404
        assert c.delete(f"/api/clients/{gen['id']}").status_code == 204
        assert c.get(f"/api/clients/{gen['id']}").status_code == 404


def test_campaign_crud_and_references(live_server_any_db: LiveServer) -> None:
    with live_server_any_db.client() as c:
        c.post("/api/clients", json={"id": "globex", "name": "Globex"})
        r = c.post(
            "/api/campaigns",
            json={"id": "campaign_123", "client_id": "globex", "name": "Spring Launch", "goal": "Awareness"},
        )
        assert r.status_code == 201, r.text
        assert r.json()["status"] == "draft"
        r = c.post("/api/campaigns", json={"client_id": "ghost", "name": "x"})
        assert r.status_code == 422 and r.json()["detail"].startswith("client_id:")
        assert r.json()["errors"][0]["field"] == "client_id"
        r = c.post("/api/campaigns", json={"client_id": "globex", "name": "x", "status": "live"})
        assert r.status_code == 422 and "status" in r.json()["detail"]
        r = c.patch("/api/campaigns/campaign_123", json={"status": "active"})
        assert r.json()["status"] == "active"
        page = c.get("/api/campaigns", params={"client_id": "globex", "status": "active"}).json()
        assert [x["id"] for x in page["campaigns"]] == ["campaign_123"]
        stats = c.get("/api/campaigns/campaign_123/stats").json()
        assert (
            stats["total"] == 0
            and stats["cost_usd"] == 0
            and set(stats["by_kind"]) == {"audio", "image", "video"}
        )


def test_brief_implies_client_and_checks_campaign(live_server_any_db: LiveServer) -> None:
    with live_server_any_db.client() as c:
        c.post("/api/clients", json={"id": "initech", "name": "Initech"})
        c.post("/api/clients", json={"id": "umbrella", "name": "Umbrella"})
        c.post("/api/campaigns", json={"id": "tps", "client_id": "initech", "name": "TPS"})
        r = c.post(
            "/api/briefs",
            json={
                "campaign_id": "tps",
                "title": "Jingle",
                "text": "upbeat",
                "direction": {"mood": "happy", "bpm": 120},
            },
        )
        assert r.status_code == 201 and r.json()["client_id"] == "initech"
        brief_id = r.json()["id"]
        r = c.post("/api/briefs", json={"campaign_id": "tps", "client_id": "umbrella", "title": "x"})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "client_id"
        r = c.post("/api/briefs", json={"title": "orphan"})
        assert r.status_code == 422 and "client_id" in r.json()["detail"]
        r = c.post("/api/briefs", json={"campaign_id": "nope", "title": "x"})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "campaign_id"
        assert c.get("/api/briefs", params={"campaign_id": "tps"}).json()["total"] == 1
        assert c.get(f"/api/briefs/{brief_id}").json()["direction"] == {"mood": "happy", "bpm": 120}


def test_pagination_is_stable_and_counts(live_server_any_db: LiveServer) -> None:
    with live_server_any_db.client() as c:
        c.post("/api/clients", json={"id": "pager", "name": "Pager"})
        for i in range(7):
            c.post("/api/campaigns", json={"id": f"pg-{i}", "client_id": "pager", "name": f"C{i}"})
        seen = []
        for offset in (0, 3, 6):
            page = c.get("/api/campaigns", params={"client_id": "pager", "limit": 3, "offset": offset}).json()
            assert page["total"] == 7
            seen += [x["id"] for x in page["campaigns"]]
        assert sorted(seen) == sorted(f"pg-{i}" for i in range(7)) and len(seen) == 7
        assert seen[0] == "pg-6"  # newest first
        r = c.get("/api/campaigns", params={"limit": 0})
        assert r.status_code == 422 and "limit" in r.json()["detail"]
        assert c.get("/api/campaigns", params={"limit": 101}).status_code == 422


def test_errors_are_actionable(live_server: LiveServer) -> None:
    with live_server.client() as c:
        r = c.post("/api/clients", content=b'{"name": ', headers={"Content-Type": "application/json"})
        assert r.status_code == 400 and r.json()["detail"].startswith("Malformed JSON")
        r = c.post("/api/clients", json={"name": "x", "colour": "red"})
        assert r.status_code == 422 and r.json()["detail"] == "colour: unknown field"
        r = c.post("/api/clients", json={"id": "bad id!", "name": "x"})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "id"
        r = c.post("/api/clients", json={})
        assert r.status_code == 422 and r.json()["detail"] == "name: field required"
        spec = c.get("/openapi.json").json()
        responses = spec["paths"]["/api/clients"]["post"]["responses"]
        assert "400" in responses and "422" in responses


def test_campaign_delete_with_assets_needs_cascade(live_server: LiveServer) -> None:
    with live_server.client() as c:
        c.post("/api/clients", json={"id": "hooli", "name": "Hooli"})
        c.post("/api/campaigns", json={"id": "nucleus", "client_id": "hooli", "name": "Nucleus"})
        r = c.post(
            "/api/v2/generate/audio",
            json={"prompt": "calm piano", "campaign_id": "nucleus", "duration": 1, "model": "synth/music"},
        )
        assert r.status_code == 202, r.text
        gen_id = r.json()["audio_id"]
        item = live_server.wait_for("audio", gen_id)
        assert item["status"] == "completed"
        r = c.delete("/api/campaigns/nucleus")
        assert r.status_code == 409 and "cascade" in r.json()["detail"]
        r = c.delete("/api/clients/hooli")
        assert r.status_code == 409
        stats = c.get("/api/clients/hooli/stats").json()
        assert stats["total"] == 1 and stats["by_kind"]["audio"]["by_status"] == {"completed": 1}
        assert abs(stats["duration_seconds"] - 1.0) < 0.1
        assert c.delete("/api/campaigns/nucleus", params={"cascade": "true"}).status_code == 204
        assert c.get(f"/api/audio/{gen_id}").status_code == 404
        assert c.get("/api/clients/hooli/stats").json()["total"] == 0


def contract_brand(logo_image_id: int) -> dict[str, Any]:
    """The issue's contract example, with a logo that exists on this server."""
    return {
        "palette": ["#ff6600"],
        "style_keywords": ["bold", "sunny"],
        "avoid": ["dark"],
        "music": {"genres": ["house"], "moods": ["uplifting"], "bpm": [110, 128]},
        "aspects": ["9:16", "16:9"],
        "loudness": "social",
        "logo_image_id": logo_image_id,
        "fonts": ["Inter"],
    }


def make_image(server: LiveServer, c: httpx.Client, client_id: str | None) -> int:
    body: dict[str, Any] = {"prompt": "a round logo", "model": "synth/image"}
    if client_id:
        body["client_id"] = client_id
    r = c.post("/api/v2/generate/image", json=body)
    assert r.status_code == 202, r.text
    image_id = int(r.json()["image_id"])
    assert server.wait_for("images", image_id)["status"] == "completed"
    return image_id


def test_client_brand_contract(live_server_any_db: LiveServer) -> None:
    with live_server_any_db.client() as c:
        assert c.post("/api/clients", json={"id": "brandco", "name": "Brand Co"}).json()["brand"] is None
        logo = make_image(live_server_any_db, c, "brandco")
        r = c.patch("/api/clients/brandco", json={"brand": contract_brand(logo)})
        assert r.status_code == 200, r.text
        assert r.json()["brand"] == contract_brand(logo) and r.json()["name"] == "Brand Co"
        assert c.get("/api/clients/brandco").json()["brand"] == contract_brand(logo)
        listed = c.get("/api/clients", params={"q": "brand co"}).json()["clients"]
        assert listed[0]["brand"]["palette"] == ["#ff6600"]
        # Sent again, the brand replaces the stored one whole.
        r = c.patch("/api/clients/brandco", json={"brand": {"fonts": ["Roboto"]}})
        assert r.json()["brand"]["fonts"] == ["Roboto"] and r.json()["brand"]["palette"] == []
        assert r.json()["brand"]["logo_image_id"] is None and r.json()["brand"]["music"] is None
        r = c.patch("/api/clients/brandco", json={"brand": None})
        assert r.status_code == 200 and r.json()["brand"] is None
        r = c.patch("/api/clients/brandco", json={"brand": {"logo_image_id": 2**62}})  # beyond any row
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "brand.logo_image_id"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"music": {"bpm": [128, 110]}}, "brand.music.bpm"),
        ({"music": {"bpm": [20, 100]}}, "brand.music.bpm"),
        ({"music": {"bpm": [100, 300]}}, "brand.music.bpm"),
        ({"palette": ["#ff6600", "orange"]}, "brand.palette[1]"),
        ({"aspects": ["2:1"]}, "brand.aspects[0]"),
        ({"loudness": "loud"}, "brand.loudness"),
        ({"logo_image_id": 987654}, "brand.logo_image_id"),
        ({"colour": "red"}, "brand.colour"),
    ],
)
def test_bad_brand_fields_are_named(live_server: LiveServer, change: dict[str, Any], field: str) -> None:
    with live_server.client() as c:
        c.post("/api/clients", json={"id": "badbrand", "name": "Bad Brand"})
        r = c.patch(
            "/api/clients/badbrand", json={"brand": {**contract_brand(1), "logo_image_id": None, **change}}
        )
        assert r.status_code == 422, r.text
        assert [e["field"] for e in r.json()["errors"]] == [field]
        assert c.get("/api/clients/badbrand").json()["brand"] is None


def test_a_logo_must_be_a_finished_image_of_the_client(live_server: LiveServer) -> None:
    with live_server.client() as c:
        for cid in ("logoco", "otherco"):
            c.post("/api/clients", json={"id": cid, "name": cid})
        others = make_image(live_server, c, "otherco")
        r = c.patch("/api/clients/logoco", json={"brand": {"logo_image_id": others}})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "brand.logo_image_id"
        assert "another client" in r.json()["detail"]
        unfiled = make_image(live_server, c, None)
        r = c.patch("/api/clients/logoco", json={"brand": {"logo_image_id": unfiled}})
        assert r.status_code == 200 and r.json()["brand"]["logo_image_id"] == unfiled


BRIEF = {
    "title": "Summer drop",
    "text": "Launch the summer range.",
    "objective": "Awareness among commuters",
    "audience": "Urban 18-30",
    "key_messages": ["Light as air", "Made to last"],
    "tone": "playful",
    "channels": ["instagram-reel", "youtube"],
    "lengths": [15],
    "must_haves": ["logo end card"],
}


def test_brief_structured_fields(live_server_any_db: LiveServer) -> None:
    with live_server_any_db.client() as c:
        c.post("/api/clients", json={"id": "briefco", "name": "Brief Co"})
        c.post("/api/campaigns", json={"id": "summer", "client_id": "briefco", "name": "Summer"})
        r = c.post("/api/briefs", json={**BRIEF, "client_id": "briefco", "campaign_id": "summer"})
        assert r.status_code == 201, r.text
        made = r.json()
        assert {k: made[k] for k in BRIEF} == {**BRIEF, "lengths": [15.0]}
        assert c.get(f"/api/briefs/{made['id']}").json()["key_messages"] == BRIEF["key_messages"]
        listed = c.get("/api/briefs", params={"campaign_id": "summer"}).json()["briefs"]
        assert listed[0]["channels"] == ["instagram-reel", "youtube"]
        r = c.patch(
            f"/api/briefs/{made['id']}",
            json={"channels": ["tv-eu", "tv-eu"], "objective": None, "lengths": [6, 30]},
        )
        assert r.status_code == 200, r.text
        assert (r.json()["channels"], r.json()["objective"], r.json()["lengths"]) == (
            ["tv-eu"],
            None,
            [6.0, 30.0],
        )
        assert r.json()["must_haves"] == ["logo end card"]  # not sent: kept
        r = c.patch(f"/api/briefs/{made['id']}", json={"must_haves": None})
        assert r.json()["must_haves"] == []
        plain = c.post("/api/briefs", json={"client_id": "briefco", "title": "Plain"}).json()
        assert (plain["channels"], plain["objective"], plain["lengths"]) == ([], None, [])


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"channels": ["youtube", "myspace"]}, "channels[1]"),
        ({"lengths": [15, 0]}, "lengths[1]"),
        ({"lengths": [601]}, "lengths[0]"),
        ({"lengths": [5] * 11}, "lengths"),
        ({"key_messages": ["x"] * 21}, "key_messages"),
        ({"key_messages": ["x" * 301]}, "key_messages[0]"),
        ({"must_haves": [""]}, "must_haves[0]"),
        ({"tone": "t" * 201}, "tone"),
    ],
)
def test_bad_brief_fields_are_named(live_server: LiveServer, change: dict[str, Any], field: str) -> None:
    with live_server.client() as c:
        c.post("/api/clients", json={"id": "badbrief", "name": "Bad Brief"})
        r = c.post("/api/briefs", json={**BRIEF, "client_id": "badbrief", **change})
        assert r.status_code == 422, r.text
        assert [e["field"] for e in r.json()["errors"]] == [field]
        if field == "channels[1]":
            assert "myspace" in r.json()["detail"] and "instagram-reel" in r.json()["detail"]


def test_campaign_budget_and_stats(live_server_any_db: LiveServer) -> None:
    with live_server_any_db.client() as c:
        c.post("/api/clients", json={"id": "budgetco", "name": "Budget Co"})
        r = c.post(
            "/api/campaigns", json={"id": "lean", "client_id": "budgetco", "name": "Lean", "budget_usd": 5}
        )
        assert r.status_code == 201 and r.json()["budget_usd"] == 5.0
        r = c.patch("/api/campaigns/lean", json={"budget_usd": -1})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "budget_usd"
        r = c.post(
            "/api/v2/generate/audio",
            json={"prompt": "calm piano", "campaign_id": "lean", "duration": 1, "model": "synth/music"},
        )
        assert r.status_code == 202, r.text
        audio_id = r.json()["audio_id"]
        assert live_server_any_db.wait_for("audio", audio_id)["status"] == "completed"
        r = c.patch(f"/api/audio/{audio_id}", json={"views": 400, "clicks": 10, "conversions": 1})
        assert r.status_code == 200, r.text
        stats = c.get("/api/campaigns/lean/stats").json()
        assert stats["total"] == 1 and stats["by_status"] == {"completed": 1}
        assert (stats["cost_usd"], stats["actual_cost_usd"], stats["spent_usd"], stats["committed_usd"]) == (
            0,
            0,
            0,
            0,
        )
        assert stats["budget"] == {
            "budget_usd": 5.0,
            "spent_usd": 0.0,
            "committed_usd": 0.0,
            "remaining_usd": 5.0,
        }
        assert stats["performance"] == {"views": 400, "clicks": 10, "conversions": 1, "ctr": 0.025}
        client = c.get("/api/clients/budgetco/stats").json()
        assert client["budget"] is None and client["performance"]["views"] == 400
        r = c.patch("/api/campaigns/lean", json={"budget_usd": None})
        assert r.json()["budget_usd"] is None
        assert c.get("/api/campaigns/lean/stats").json()["budget"] is None

"""Clients, campaigns and briefs through the live API (SQLite and PostgreSQL)."""

from __future__ import annotations

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

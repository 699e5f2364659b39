"""Authentication on every route, key lifecycle and client scoping, against a live server."""

from __future__ import annotations

import re
import subprocess
import sys
import time

import httpx
import pytest
from fastapi.routing import APIRoute

from mediagen.app import create_app
from mediagen.config import Settings
from tests.conftest import LiveServer

# Routes that are deliberately reachable without an API key, and why.
PUBLIC = {
    "/health",  # load balancers and scripts probe it
    "/api/webhooks/replicate",  # verified by its signature instead
    "/api/webhooks/cog/{gen_id}",  # verified by the per-generation token instead
}


def _walk(routes: list, prefix: str = "") -> list[tuple[str, set[str]]]:
    """Every endpoint, descending into included routers (however FastAPI nests them)."""
    found: list[tuple[str, set[str]]] = []
    for r in routes:
        if isinstance(r, APIRoute):
            found.append((prefix + r.path, set(r.methods)))
        elif hasattr(r, "original_router"):
            found += _walk(
                r.original_router.routes, prefix + (getattr(r.include_context, "prefix", "") or "")
            )
        elif hasattr(r, "routes") and not hasattr(r, "app"):
            found += _walk(r.routes, prefix + getattr(r, "path", ""))
    return found


def _api_routes(tmp_path) -> list[tuple[str, set[str]]]:
    app = create_app(Settings(data_dir=tmp_path / "walk"), run_workers=False)
    routes = [(p, m) for p, m in _walk(app.routes) if p.startswith(("/api", "/health"))]
    documented = {p for p in app.openapi()["paths"] if p.startswith(("/api", "/health"))}
    assert documented <= {p for p, _ in routes}, documented - {p for p, _ in routes}
    return routes


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


def test_every_api_route_requires_a_key(live_server_any_db: LiveServer, tmp_path) -> None:
    """Walks the app's route table: a new route without auth fails this test."""
    routes = _api_routes(tmp_path)
    assert len(routes) > 40
    checked = 0
    with httpx.Client(base_url=live_server_any_db.url, timeout=10) as anon:
        for path, methods in routes:
            if path in PUBLIC:
                continue
            for method in methods - {"HEAD"}:
                url = _concrete(path)
                r = anon.request(method, url, json={} if method in ("POST", "PUT", "PATCH") else None)
                assert r.status_code == 401, f"{method} {path} answered {r.status_code} without a key"
                assert "X-API-Key" in r.json()["detail"]
                r = anon.request(
                    method,
                    url,
                    headers={"X-API-Key": "mg_wrong"},
                    json={} if method in ("POST", "PUT", "PATCH") else None,
                )
                assert r.status_code == 401, f"{method} {path} accepted a wrong key"
                checked += 1
    assert checked > 40


def test_public_routes_are_the_documented_ones(tmp_path) -> None:
    paths = {p for p, _ in _api_routes(tmp_path)}
    assert PUBLIC <= paths


def test_health_needs_no_key(live_server_any_db: LiveServer) -> None:
    r = httpx.get(f"{live_server_any_db.url}/health")
    assert r.status_code == 200
    assert r.json()["database"] == "ok" and r.json()["queue"] == "ok"


def test_bootstrap_prints_admin_credentials_once(live_server: LiveServer) -> None:
    assert live_server.admin_key and live_server.admin_key.startswith("mg_")
    assert live_server.admin_email and live_server.admin_password
    lines = [ln for ln in live_server.output if ln.startswith("Admin ")]
    assert [ln.split(":")[0] for ln in lines] == ["Admin email", "Admin password", "Admin API key"]
    with live_server.client() as c:
        assert c.get("/api/clients").status_code == 200


def test_key_create_list_revoke(live_server_any_db: LiveServer) -> None:
    srv = live_server_any_db
    with srv.client() as admin:
        r = admin.post("/api/keys", json={"name": "ci"})
        assert r.status_code == 201
        body = r.json()
        assert set(body) >= {"id", "name", "key", "clients", "created_at"}
        token = body["key"]
        listed = admin.get("/api/keys").json()["keys"]
        assert body["id"] in [k["id"] for k in listed]
        assert all("key" not in k and "key_hash" not in k for k in listed)
        with srv.client(token) as c:
            assert c.get("/api/campaigns").status_code == 200
        assert admin.delete(f"/api/keys/{body['id']}").status_code == 204
        with srv.client(token) as c:
            r = c.get("/api/campaigns")
            assert r.status_code == 401 and "revoked" in r.json()["detail"]
        assert admin.delete("/api/keys/doesnotexist").status_code == 404
        r = admin.get("/api/keys").json()["keys"]
        assert next(k for k in r if k["id"] == body["id"])["revoked_at"] is not None


def test_key_last_used_is_recorded(live_server: LiveServer) -> None:
    with live_server.client() as admin:
        body = admin.post("/api/keys", json={"name": "usage"}).json()
        with live_server.client(body["key"]) as c:
            c.get("/api/clients")
        row = next(k for k in admin.get("/api/keys").json()["keys"] if k["id"] == body["id"])
        assert row["last_used_at"] is not None


def test_cli_keys_create_and_revoke(live_server: LiveServer) -> None:
    env = live_server.env()
    with live_server.client() as admin:  # the CLI refuses a key for a client that does not exist
        admin.post("/api/clients", json={"id": "acme-cli", "name": "Acme CLI"})
    out = subprocess.run(
        [sys.executable, "-m", "mediagen.cli", "keys", "create", "--name", "cli", "--client", "acme-cli"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    token = out.stdout.strip().splitlines()[-1]
    assert token.startswith("mg_")
    key_id = re.search(r"Created key (\w+)", out.stdout).group(1)  # type: ignore[union-attr]
    with live_server.client(token) as c:
        assert [row["id"] for row in c.get("/api/clients").json()["clients"]] == ["acme-cli"]
    subprocess.run(
        [sys.executable, "-m", "mediagen.cli", "keys", "revoke", key_id],
        env=env,
        check=True,
        capture_output=True,
    )
    # Revoked by another process: the server's one-second key cache may still answer once.
    time.sleep(1.1)
    with live_server.client(token) as c:
        assert c.get("/api/clients").status_code == 401


def test_cli_users_create_with_clients(live_server: LiveServer) -> None:
    env = live_server.env()
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "mediagen.cli",
            "users",
            "create",
            "--email",
            "m@example.com",
            "--password",
            "s3cret-pass-orchid",
            "--client",
            "a",
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    dup = subprocess.run(
        [
            sys.executable,
            "-m",
            "mediagen.cli",
            "users",
            "create",
            "--email",
            "m@example.com",
            "--password",
            "s3cret-pass-orchid",
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    assert dup.returncode != 0 and "already exists" in dup.stderr


@pytest.fixture(scope="module")
def two_tenants(live_server_any_db: LiveServer) -> dict[str, str]:
    srv = live_server_any_db
    with srv.client() as admin:
        for cid in ("tenant-a", "tenant-b"):
            assert admin.post("/api/clients", json={"id": cid, "name": cid.upper()}).status_code == 201
            assert (
                admin.post(
                    "/api/campaigns", json={"id": f"camp-{cid}", "client_id": cid, "name": "Launch"}
                ).status_code
                == 201
            )
            assert (
                admin.post(
                    "/api/briefs", json={"id": f"brief-{cid}", "campaign_id": f"camp-{cid}", "title": "Brief"}
                ).status_code
                == 201
            )
        key_a = admin.post("/api/keys", json={"name": "a", "clients": ["tenant-a"]}).json()["key"]
    return {"a": key_a}


def test_scoped_key_cannot_see_other_client(live_server_any_db: LiveServer, two_tenants) -> None:
    srv = live_server_any_db
    with srv.client(two_tenants["a"]) as a:
        for path in (
            "/api/clients/tenant-b",
            "/api/campaigns/camp-tenant-b",
            "/api/briefs/brief-tenant-b",
            "/api/campaigns/camp-tenant-b/stats",
            "/api/clients/tenant-b/stats",
        ):
            r = a.get(path)
            assert r.status_code == 404, path
        for path in (
            "/api/clients/tenant-a",
            "/api/campaigns/camp-tenant-a",
            "/api/briefs/brief-tenant-a",
            "/api/campaigns/camp-tenant-a/stats",
        ):
            assert a.get(path).status_code == 200, path
        for path, key in (
            ("/api/clients", "clients"),
            ("/api/campaigns", "campaigns"),
            ("/api/briefs", "briefs"),
        ):
            ids = [x["id"] for x in a.get(path, params={"limit": 100}).json()[key]]
            assert ids and all("tenant-b" not in i for i in ids), (path, ids)
        # Filtering by the other client's id shows nothing, rather than an error that confirms it exists.
        assert a.get("/api/campaigns", params={"client_id": "tenant-b"}).json()["total"] == 0
        assert a.delete("/api/campaigns/camp-tenant-b").status_code == 404
        assert a.patch("/api/briefs/brief-tenant-b", json={"title": "x"}).status_code == 404
        r = a.post("/api/campaigns", json={"client_id": "tenant-b", "name": "sneaky"})
        assert r.status_code == 422 and "client_id" in r.json()["detail"]
        assert a.post("/api/clients", json={"name": "new"}).status_code == 403
        r = a.post("/api/keys", json={"name": "wider", "clients": ["tenant-b"]})
        assert r.status_code == 422
        narrow = a.post("/api/keys", json={"name": "same"}).json()
        assert narrow["clients"] == ["tenant-a"]
    with srv.client() as admin:
        assert admin.get("/api/campaigns/camp-tenant-b").status_code == 200

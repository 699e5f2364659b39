"""Every response carries the security headers (not only the pages), HSTS once served over HTTPS,
and the API docs work offline from the package's own Swagger UI."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mediagen.app import create_app
from mediagen.config import Settings
from mediagen.db.migrate import upgrade


def client_for(data: Path, **settings: object) -> TestClient:
    config = Settings(data_dir=data, secret_key="test-secret", **settings)  # type: ignore[arg-type]
    config.ensure_dirs()
    upgrade(config.resolved_database_url)
    return TestClient(create_app(config, run_workers=False))


@pytest.fixture
def plain(tmp_path: Path) -> Iterator[TestClient]:
    with client_for(tmp_path / "data") as client:
        yield client


@pytest.mark.parametrize(
    "url", ["/health", "/api/clients", "/openapi.json", "/static/app.css", "/docs", "/login"]
)
def test_every_kind_of_response_has_the_headers(plain: TestClient, url: str) -> None:
    r = plain.get(url)
    assert r.status_code in (200, 401), (url, r.status_code)
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["referrer-policy"] == "same-origin"
    assert "strict-transport-security" not in r.headers  # plain HTTP: HSTS would be a lie
    assert len(r.headers.get_list("x-frame-options")) == 1  # pages set their own: never twice


def test_hsts_once_the_public_url_is_https(tmp_path: Path) -> None:
    with client_for(tmp_path / "data", public_url="https://media.example") as client:
        assert client.get("/health").headers["strict-transport-security"].startswith("max-age=")


def test_the_docs_load_their_assets_from_this_server(plain: TestClient) -> None:
    page = plain.get("/docs").text
    assert "cdn" not in page.lower() and "/docs-assets/swagger-ui-bundle.js" in page
    for asset in ("/docs-assets/swagger-ui-bundle.js", "/docs-assets/swagger-ui.css"):
        r = plain.get(asset)
        assert r.status_code == 200 and len(r.content) > 10_000

"""What the in-process page tests share: an app on a fresh database with the people and records
most of them start from (an admin, a user limited to globex, clients acme and globex)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mediagen.app import create_app
from mediagen.auth.service import Principal
from mediagen.campaigns import schemas as sc
from mediagen.config import Settings
from mediagen.db.migrate import upgrade
from mediagen.services import Services

PASSWORD = "correct horse battery"


@dataclass
class PageWorld:
    app: Any
    services: Services
    admin: Principal


def page_world(
    factory: pytest.TempPathFactory, name: str, *, limited: bool = True, spring: bool = True
) -> PageWorld:
    """The app (workers off), admin@example.com, limited@example.com (globex only, unless not
    `limited`), clients acme and globex, and acme's "spring" campaign (unless not `spring`)."""
    settings = Settings(
        data_dir=Path(factory.mktemp(name)), secret_key="test-secret", generate_rate_limit_per_minute=0
    )
    upgrade(settings.resolved_database_url)
    app = create_app(settings, run_workers=False)
    services: Services = app.state.services
    user = services.auth.create_user(email="admin@example.com", password=PASSWORD, role="admin")
    if limited:
        services.auth.create_user(email="limited@example.com", password=PASSWORD, clients=["globex"])
    admin = services.auth.principal_for_user(user)
    for cid, label in (("acme", "Acme"), ("globex", "Globex")):
        services.campaigns.create_client(admin, sc.ClientCreate(id=cid, name=label))
    if spring:
        services.campaigns.create_campaign(
            admin, sc.CampaignCreate(id="spring", client_id="acme", name="Spring Launch")
        )
    return PageWorld(app, services, admin)


def csrf_of(page: str) -> str:
    """The CSRF token a page carries (every form posts it back)."""
    m = re.search(r'<meta name="csrf-token" content="([^"]+)"', page)
    assert m, "page has no csrf meta tag"
    return m.group(1)


def signed_in(app: Any, email: str = "admin@example.com", password: str = PASSWORD) -> TestClient:
    """A browser-like client of `app`, signed in through the login form."""
    client = TestClient(app, base_url="http://testserver")
    token = csrf_of(client.get("/login").text)
    form = {"email": email, "password": password, "csrf_token": token}
    r = client.post("/login", data=form, follow_redirects=False)
    assert r.status_code == 303, r.text
    return client

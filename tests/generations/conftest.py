"""In-process core fixtures: the real services on a tmp SQLite, with an in-memory job queue
whose steps the tests run themselves (no server, no threads, no sleeping)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mediagen.auth.service import Principal
from mediagen.campaigns import schemas as sc
from mediagen.config import Settings
from mediagen.db.migrate import upgrade
from mediagen.jobs.memory import MemoryJobQueue
from mediagen.services import Services, build_services

ADMIN = Principal(user_id="u-admin", email="admin@example.com", role="admin", clients=None)


def make_services(data_dir: Path, **settings: object) -> tuple[Services, MemoryJobQueue]:
    config = Settings(data_dir=data_dir, **settings)  # type: ignore[arg-type]
    config.ensure_dirs()
    upgrade(config.resolved_database_url)
    queue = MemoryJobQueue()
    return build_services(config, queue=queue), queue


@pytest.fixture
def core(tmp_path: Path) -> Iterator[tuple[Services, MemoryJobQueue]]:
    services, queue = make_services(tmp_path / "data", generate_rate_limit_per_minute=0)
    user = services.auth.create_user(email=ADMIN.email, password="correct horse", role="admin")
    admin = services.auth.principal_for_user(user)
    services.campaigns.create_client(admin, sc.ClientCreate(id="acme", name="Acme"))
    services.campaigns.create_client(admin, sc.ClientCreate(id="globex", name="Globex"))
    services.campaigns.create_campaign(admin, sc.CampaignCreate(id="spring", client_id="acme", name="Spring"))
    yield services, queue
    services.close()


@pytest.fixture
def services(core: tuple[Services, MemoryJobQueue]) -> Services:
    return core[0]


@pytest.fixture
def queue(core: tuple[Services, MemoryJobQueue]) -> MemoryJobQueue:
    return core[1]


@pytest.fixture
def admin(services: Services) -> Principal:
    user = services.auth.get_user_by_email(ADMIN.email)
    assert user is not None
    return services.auth.principal_for_user(user)

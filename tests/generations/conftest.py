"""In-process core fixtures: the real services on a tmp SQLite, with an in-memory job queue
whose steps the tests run themselves (no server, no threads, no sleeping)."""

from __future__ import annotations

import atexit
import functools
import shutil
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from mediagen.auth.service import Principal
from mediagen.campaigns import schemas as sc
from mediagen.config import Settings
from mediagen.db.migrate import upgrade
from mediagen.engines.base import Engine
from mediagen.generations.tables import Generation
from mediagen.jobs.memory import MemoryJobQueue
from mediagen.services import Services, build_services
from tests.fakes.replicate_server import FakeReplicate, Script

ADMIN = Principal(user_id="u-admin", email="admin@example.com", role="admin", clients=None)


def _sqlite_file(url: str) -> Path | None:
    return Path(url.removeprefix("sqlite:///")) if url.startswith("sqlite:///") else None


def _copy_database(template: Path, target: Path) -> None:
    src, dst = sqlite3.connect(template), sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()


@functools.cache
def _migrated_template() -> Path:
    """One SQLite database made by the real migrations, once per test process."""
    folder = Path(tempfile.mkdtemp(prefix="mediagen-migrated-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    path = folder / "mediagen.db"
    upgrade(f"sqlite:///{path}")
    return path


@functools.cache
def _seeded_template() -> Path:
    """The migrated database plus `seed_people`, once per test process."""
    folder = Path(tempfile.mkdtemp(prefix="mediagen-seeded-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    services, _ = make_services(folder / "data")
    try:
        seed_people(services)
    finally:
        services.close()
    return folder / "data" / "mediagen.db"


def migrate(url: str, *, template: Path | None = None) -> bool:
    """`upgrade(url)`, faster: a new SQLite file gets a copy of a migrated template (the same schema
    and alembic revision; running the migrations cost a quarter second per test). Returns whether
    the template was copied."""
    target = _sqlite_file(url)
    if target is None or target.exists():
        upgrade(url)
        return False
    _copy_database(template or _migrated_template(), target)
    return True


def _build(
    data_dir: Path, template: Path | None, **settings: object
) -> tuple[Services, MemoryJobQueue, bool]:
    settings.setdefault("generate_rate_limit_per_minute", 0)  # tests of the limit set their own
    config = Settings(data_dir=data_dir, **settings)  # type: ignore[arg-type]
    config.ensure_dirs()
    copied = migrate(config.resolved_database_url, template=template)
    queue = MemoryJobQueue()
    return build_services(config, queue=queue), queue, copied


def make_services(data_dir: Path, **settings: object) -> tuple[Services, MemoryJobQueue]:
    services, queue, _ = _build(data_dir, None, **settings)
    return services, queue


def make_seeded_services(data_dir: Path, **settings: object) -> tuple[Services, MemoryJobQueue, Principal]:
    """`make_services` with `seed_people` done, copied from a database seeded once per process
    (hashing the admin's password with argon2 was most of every test's set-up time)."""
    services, queue, copied = _build(data_dir, _seeded_template(), **settings)
    if not copied:  # not a new SQLite file (e.g. PostgreSQL): seed it here
        return services, queue, seed_people(services)
    user = services.auth.get_user_by_email(ADMIN.email)
    assert user is not None
    return services, queue, services.auth.principal_for_user(user)


@pytest.fixture
def core(tmp_path: Path) -> Iterator[tuple[Services, MemoryJobQueue]]:
    # The admin user, acme and globex, and acme's "spring" campaign (`seed_people`).
    services, queue, _ = make_seeded_services(tmp_path / "data", generate_rate_limit_per_minute=0)
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


# -- shared helpers ---------------------------------------------------------------------------------


def seed_people(services: Services) -> Principal:
    """The admin user and the acme/globex clients (with acme's "spring" campaign) that `core` has."""
    user = services.auth.create_user(email=ADMIN.email, password="correct horse", role="admin")
    admin = services.auth.principal_for_user(user)
    services.campaigns.create_client(admin, sc.ClientCreate(id="acme", name="Acme"))
    services.campaigns.create_client(admin, sc.ClientCreate(id="globex", name="Globex"))
    services.campaigns.create_campaign(admin, sc.CampaignCreate(id="spring", client_id="acme", name="Spring"))
    return admin


def set_row(services: Services, gen_id: int, **values: Any) -> None:
    """Move a row by hand (a crashed worker, an old job): tests set leases and times directly."""
    with services.db.write() as s:
        s.execute(update(Generation).where(Generation.id == gen_id).values(**values))


def reread(services: Services, gen_id: int) -> Generation:
    with services.db.read() as s:
        found = s.get(Generation, gen_id)
    assert found is not None, f"generation {gen_id} is gone"
    return found


def blob_bytes(services: Services, key: str) -> bytes:
    info = services.store.stat(key)
    assert info is not None, f"blob {key} is gone"
    return b"".join(services.store.open_range(key, 0, max(0, info.size - 1)))


# -- the hosted path: the real Replicate engine against the fake Replicate server ---------------------

# Predictions start at once and run until the test moves the fake's clock past RUN_FOR (`advance`), so
# no test depends on how fast this machine happens to be.
RUN_FOR = 600.0
LONG = Script(start_after=0.0, run_for=RUN_FOR)


@dataclass
class Hosted:
    services: Services
    queue: MemoryJobQueue
    admin: Principal
    fake: FakeReplicate

    @property
    def engine(self) -> Engine:
        engine = self.services.router.engine("replicate")
        assert engine is not None
        return engine


@pytest.fixture
def fake_replicate() -> Iterator[FakeReplicate]:
    with FakeReplicate() as fake:
        fake.default_script = LONG
        yield fake


@pytest.fixture
def hosted_factory(tmp_path: Path, fake_replicate: FakeReplicate) -> Iterator[Callable[..., Hosted]]:
    """Services whose Replicate engine talks to the fake (extra settings as keyword arguments)."""
    made: list[Services] = []

    def factory(**settings: Any) -> Hosted:
        services, queue, admin = make_seeded_services(
            tmp_path / f"hosted{len(made)}",
            generate_rate_limit_per_minute=0,
            replicate_api_token=fake_replicate.token,
            replicate_base_url=fake_replicate.base_url,
            download_allowed_hosts=[fake_replicate.delivery_allow_entry],
            **settings,
        )
        made.append(services)
        return Hosted(services, queue, admin, fake_replicate)

    yield factory
    for services in made:
        services.close()


@pytest.fixture
def hosted(hosted_factory: Callable[..., Hosted]) -> Hosted:
    """Polling only (no public URL, so no webhooks are asked for)."""
    return hosted_factory()

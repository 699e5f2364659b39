"""The real services on a temporary SQLite (the core's seeded set-up: the admin, clients acme and
globex, acme's "spring" campaign), and a way to file generation rows with the money and the
performance figures the tests need, as the pipeline would have left them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mediagen.auth.service import Principal
from mediagen.generations.tables import Generation
from mediagen.services import Services
from tests.generations.conftest import make_seeded_services

Row = Callable[..., int]


@pytest.fixture
def seeded(tmp_path: Path) -> Iterator[tuple[Services, Principal]]:
    services, _, admin = make_seeded_services(tmp_path / "data")
    yield services, admin
    services.close()


@pytest.fixture
def services(seeded: tuple[Services, Principal]) -> Services:
    return seeded[0]


@pytest.fixture
def admin(seeded: tuple[Services, Principal]) -> Principal:
    return seeded[1]


@pytest.fixture
def add_row(services: Services) -> Row:
    """Insert one generation (filed under acme's "spring" campaign unless told otherwise)."""

    def add(**values: Any) -> int:
        fields: dict[str, Any] = {
            "kind": "audio",
            "prompt": "a test row",
            "model_id": "synth/music",
            "engine": "synth",
            "status": "completed",
            "client_id": "acme",
            "campaign_id": "spring",
            "cost_usd": 0.0,
        }
        fields.update(values)
        with services.db.write() as s:
            row = Generation(**fields)
            s.add(row)
            s.flush()
            return row.id

    return add

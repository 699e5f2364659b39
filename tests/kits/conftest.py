"""The `kits` fixture: the real services with an in-memory queue, acme's "spring" campaign."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.generations.conftest import make_seeded_services
from tests.kits.plan_kit import Kits


@pytest.fixture
def kits(tmp_path: Path) -> Iterator[Kits]:
    services, queue, admin = make_seeded_services(tmp_path / "data")
    yield Kits(services, queue, admin)
    services.close()

"""What the review, comment and bulk tests share: the real app in-process on a seeded SQLite
(acme with campaign "spring", globex), an unrestricted key and a key limited to acme, and assets
inserted as rows (a review edit needs no bytes, and a row is a hundred times faster to make)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from mediagen.app import create_app
from mediagen.auth.service import Principal
from mediagen.campaigns import schemas as sc
from mediagen.db.base import utcnow
from mediagen.generations.tables import Event, Generation
from mediagen.services import Services
from mediagen.vocabulary import KINDS, Kind, Status
from tests.generations.conftest import make_seeded_services


@dataclass
class Kit:
    services: Services
    admin: Principal
    api: TestClient  # an unrestricted admin key
    acme_key: str  # a key limited to acme

    def add(self, kind: str = "audio", *, prompt: str = "calm piano", **columns: Any) -> int:
        """A completed asset row (10 s of audio or video unless said otherwise)."""
        values: dict[str, Any] = {
            "status": Status.COMPLETED,
            "client_id": "acme",
            "duration": None if kind == Kind.IMAGE else 10.0,
            "created_at": utcnow(),
        }
        values.update(columns)
        values.setdefault("updated_at", values["created_at"])
        with self.services.db.write() as s:
            row = Generation(
                kind=kind,
                prompt=prompt,
                model_id="synth/music",
                engine="synth",
                parameters={},
                meta={},
                **values,
            )
            s.add(row)
            s.flush()
            return row.id

    def url(self, kind: str, gen_id: int, suffix: str = "") -> str:
        return f"/api/{KINDS[Kind(kind)].path}/{gen_id}{suffix}"

    def as_acme(self) -> dict[str, str]:
        return {"X-API-Key": self.acme_key}

    def row(self, gen_id: int) -> Generation:
        with self.services.db.read() as s:
            found = s.get(Generation, gen_id)
        assert found is not None
        return found

    def events(self, gen_id: int) -> list[tuple[str, dict[str, Any]]]:
        with self.services.db.read() as s:
            rows = s.scalars(select(Event).where(Event.generation_id == gen_id).order_by(Event.seq)).all()
        return [(e.type, e.data) for e in rows]


def fields_of(response: Any) -> list[str]:
    """The fields a 422 names."""
    assert response.status_code == 422, response.text
    return [e["field"] for e in response.json()["errors"]]


def ago(seconds: float) -> Any:
    return utcnow() - timedelta(seconds=seconds)


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kit]:
    """One app per test module (each test makes assets of its own, so none sees another's)."""
    services, _, admin = make_seeded_services(tmp_path_factory.mktemp("review") / "data")
    campaigns = services.campaigns
    campaigns.create_campaign(admin, sc.CampaignCreate(id="autumn", client_id="globex", name="Autumn"))
    campaigns.create_brief(admin, sc.BriefCreate(id="jingle", campaign_id="spring", title="Jingle"))
    campaigns.create_brief(admin, sc.BriefCreate(id="harvest", campaign_id="autumn", title="Harvest"))
    _, token = services.auth.create_key(user_id=admin.user_id, name="root")
    _, acme = services.auth.create_key(user_id=admin.user_id, name="acme only", clients=["acme"])
    with TestClient(create_app(services.settings, run_workers=False), headers={"X-API-Key": token}) as api:
        yield Kit(services, admin, api, acme)
    services.close()

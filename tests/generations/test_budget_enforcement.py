"""Campaign budgets at generation time: a request whose estimate would take the campaign over what
remains is refused with a 409 that says by how much (nothing is made, nothing is sent to the
provider), an admin may override it per request (and the asset keeps what was overridden), anyone
else asking to override is a 403, free work never counts, and a finished run's actual cost
replaces its estimate in what remains."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from mediagen.app import create_app
from mediagen.auth.service import Principal
from mediagen.campaigns.tables import Campaign
from mediagen.errors import Conflict, Forbidden
from mediagen.generations.schemas import GenerateRequest
from mediagen.generations.tables import Generation
from mediagen.services import Services
from mediagen.vocabulary import Status
from tests.fakes.replicate_server import Script
from tests.generations.conftest import Hosted, reread

MUSICGEN = "meta/musicgen"
ESTIMATE = 0.023  # 10 s of MusicGen at the catalog's $0.0023 per second
RUNS = 12.5  # predict_time on the fake's clock: 12.5 s × $0.0014 (A100) = $0.0175


def set_budget(services: Services, campaign_id: str, usd: float | None) -> None:
    with services.db.write() as s:
        row = s.get(Campaign, campaign_id)
        assert row is not None
        row.budget_usd = usd


def track(**fields: object) -> GenerateRequest:
    return GenerateRequest(prompt="lo-fi beat", model=MUSICGEN, duration=10, campaign_id="spring", **fields)  # type: ignore[arg-type]


def count_rows(services: Services) -> int:
    with services.db.read() as s:
        return len(s.query(Generation.id).all())


def member_of_acme(services: Services) -> Principal:
    user = services.auth.create_user(
        email="m@example.com", password="correct horse", role="member", clients=["acme"]
    )
    return services.auth.principal_for_user(user)


def numbers(text: str) -> list[float]:
    return [float(n) for n in re.findall(r"\d+(?:\.\d+)?", text)]


@pytest.mark.timeout(60)
def test_a_request_over_what_remains_is_refused_saying_by_how_much(hosted: Hosted) -> None:
    services, fake = hosted.services, hosted.fake
    fake.default_script = Script(start_after=0.0, run_for=RUNS)
    set_budget(services, "spring", 0.05)
    first, _ = services.generations.create(hosted.admin, "audio", track())
    assert first.cost_usd == pytest.approx(ESTIMATE)
    before = (count_rows(services), len(fake.create_requests))

    with pytest.raises(Conflict) as refused:
        services.generations.create(hosted.admin, "audio", track(n=2))  # 0.046 more, 0.027 left
    assert refused.value.field == "campaign_id"
    said = numbers(refused.value.message)
    assert 0.027 in [round(n, 3) for n in said]  # what remains
    assert 0.046 in [round(n, 3) for n in said]  # what was asked
    assert 0.019 in [round(n, 3) for n in said]  # by how much
    assert (count_rows(services), len(fake.create_requests)) == before  # nothing made, nothing sent

    second, _ = services.generations.create(hosted.admin, "audio", track())  # one more still fits
    assert second.status == Status.PROCESSING


@pytest.mark.timeout(60)
def test_an_admin_may_override_and_the_asset_keeps_what_was_overridden(hosted: Hosted) -> None:
    services = hosted.services
    set_budget(services, "spring", 0.01)
    with pytest.raises(Conflict):
        services.generations.create(hosted.admin, "audio", track())
    row, _ = services.generations.create(hosted.admin, "audio", track(override_budget=True))
    assert row.status == Status.PROCESSING
    assert "budget" in row.meta["budget_override"]
    # Within the budget, an override changes nothing and leaves no note.
    set_budget(services, "spring", 100.0)
    calm, _ = services.generations.create(hosted.admin, "audio", track(override_budget=True))
    assert "budget_override" not in calm.meta


@pytest.mark.timeout(60)
def test_only_an_admin_may_ask_to_override(hosted: Hosted) -> None:
    services = hosted.services
    set_budget(services, "spring", 100.0)
    member = member_of_acme(services)
    with pytest.raises(Forbidden) as refused:
        services.generations.create(member, "audio", track(override_budget=True))
    assert refused.value.field == "override_budget"
    row, _ = services.generations.create(member, "audio", track())  # without it: fine
    assert row.campaign_id == "spring"


def test_free_work_is_never_refused(services: Services, admin: Principal) -> None:
    set_budget(services, "spring", 0.0)
    row, _ = services.generations.create(
        admin, "audio", GenerateRequest(prompt="calm piano", duration=1, campaign_id="spring")
    )
    assert row.engine == "synth" and row.cost_usd == 0.0


@pytest.mark.timeout(60)
def test_a_finished_runs_actual_cost_replaces_its_estimate_in_what_remains(hosted: Hosted) -> None:
    services, fake = hosted.services, hosted.fake
    fake.default_script = Script(start_after=0.0, run_for=RUNS)
    set_budget(services, "spring", 0.041)
    first, _ = services.generations.create(hosted.admin, "audio", track())
    with pytest.raises(Conflict):  # 0.023 committed + 0.023 asked > 0.041
        services.generations.create(hosted.admin, "audio", track())
    fake.advance(RUNS + 1)
    services.pipeline.refresh(first.id)
    hosted.queue.drain(services.pipeline)
    done = reread(services, first.id)
    assert done.status == Status.COMPLETED and done.actual_cost_usd == pytest.approx(0.0175)
    second, _ = services.generations.create(hosted.admin, "audio", track())  # 0.0175 + 0.023 fits
    assert second.status == Status.PROCESSING


@pytest.mark.timeout(60)
def test_the_api_answers_409_with_the_amounts_and_403_for_a_members_override(hosted: Hosted) -> None:
    services = hosted.services
    set_budget(services, "spring", 0.01)
    _, admin_key = services.auth.create_key(user_id=hosted.admin.user_id, name="root")
    member = member_of_acme(services)
    _, member_key = services.auth.create_key(user_id=member.user_id, name="member")
    body = {"prompt": "lo-fi beat", "model": MUSICGEN, "duration": 10, "campaign_id": "spring"}
    with TestClient(create_app(services.settings, run_workers=False)) as api:
        r = api.post("/api/v2/generate/audio", json=body, headers={"X-API-Key": admin_key})
        assert r.status_code == 409, r.text
        assert "budget" in r.json()["detail"] and 0.023 in [round(n, 3) for n in numbers(r.json()["detail"])]
        r = api.post(
            "/api/v2/generate/audio",
            json={**body, "override_budget": True},
            headers={"X-API-Key": member_key},
        )
        assert r.status_code == 403, r.text
        assert "override_budget" in r.text
        r = api.post(
            "/api/v2/generate/audio", json={**body, "override_budget": True}, headers={"X-API-Key": admin_key}
        )
        assert r.status_code == 202, r.text

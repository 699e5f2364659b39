"""A client's and a campaign's stats: counts as before, money three ways (the estimate, the
provider's actual figures, and spent = actual where known else the estimate, over completed
assets), what running work holds committed, the budget block of a campaign that has a budget,
and the performance figures summed with CTR derived."""

from __future__ import annotations

import pytest

from mediagen.auth.service import Principal
from mediagen.campaigns import schemas as sc
from mediagen.errors import NotFound
from mediagen.services import Services
from tests.campaigns.conftest import Row


def test_campaign_stats_add_costs_budget_and_performance(
    services: Services, admin: Principal, add_row: Row
) -> None:
    add_row(
        kind="audio",
        status="completed",
        cost_usd=0.2,
        actual_cost_usd=0.125,
        duration=10.0,
        views=1000,
        clicks=30,
        conversions=3,
    )
    add_row(kind="video", status="completed", cost_usd=1.0, duration=5.0, views=600, clicks=10)
    add_row(kind="image", status="completed", cost_usd=0.05, actual_cost_usd=0.0, conversions=2)
    add_row(kind="video", status="processing", cost_usd=0.5)
    add_row(kind="audio", status="failed", cost_usd=0.3, actual_cost_usd=0.1, duration=99.0)
    add_row(kind="audio", status="completed", cost_usd=7.0, campaign_id=None, views=50, clicks=50)

    stats = services.campaigns.stats(admin, "campaign", "spring")
    assert (stats.total, stats.by_status) == (5, {"completed": 3, "processing": 1, "failed": 1})
    assert stats.duration_seconds == 15.0  # completed only
    assert stats.cost_usd == pytest.approx(2.05)
    assert stats.actual_cost_usd == pytest.approx(0.225)
    assert stats.spent_usd == pytest.approx(0.125 + 1.0 + 0.0)
    assert stats.committed_usd == pytest.approx(0.5)
    assert stats.by_kind["audio"].spent_usd == pytest.approx(0.125)
    assert stats.by_kind["audio"].actual_cost_usd == pytest.approx(0.225)
    assert stats.by_kind["video"].cost_usd == pytest.approx(1.5)
    assert stats.budget is None  # no budget set
    assert stats.performance == sc.Performance(views=1600, clicks=40, conversions=5, ctr=0.025)

    services.campaigns.update_campaign(admin, "spring", sc.CampaignUpdate(budget_usd=2.0))
    budget = services.campaigns.stats(admin, "campaign", "spring").budget
    assert budget == sc.BudgetOut(budget_usd=2.0, spent_usd=1.125, committed_usd=0.5, remaining_usd=0.375)
    assert budget == services.campaigns.budget(admin, "spring")

    client = services.campaigns.stats(admin, "client", "acme")
    assert client.total == 6 and client.budget is None
    assert client.performance == sc.Performance(views=1650, clicks=90, conversions=5, ctr=round(90 / 1650, 6))
    assert client.spent_usd == pytest.approx(8.125)


def test_no_views_no_ctr(services: Services, admin: Principal, add_row: Row) -> None:
    add_row(clicks=3)
    perf = services.campaigns.stats(admin, "campaign", "spring").performance
    assert perf == sc.Performance(views=0, clicks=3, conversions=0, ctr=None)
    empty = services.campaigns.stats(admin, "client", "globex")
    assert empty.total == 0 and empty.spent_usd == 0 and empty.performance.ctr is None


def test_stats_of_another_clients_campaign_are_not_found(services: Services, admin: Principal) -> None:
    globex_only = Principal(
        user_id="u-g", email="g@example.com", role="member", clients=frozenset({"globex"})
    )
    with pytest.raises(NotFound):
        services.campaigns.stats(globex_only, "campaign", "spring")

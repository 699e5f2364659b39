"""A campaign's budget as the records count it: spent is what completed generations cost (the
provider's figure where recorded, else the estimate), committed is the estimate of those still
running, and `check_budget` admits exactly what is left, refusing anything more with a 409 that
names the campaign and says what is left, what was asked and by how much it is exceeded."""

from __future__ import annotations

import pytest

from mediagen.auth.service import Principal
from mediagen.campaigns import schemas as sc
from mediagen.errors import Conflict, NotFound
from mediagen.services import Services
from tests.campaigns.conftest import Row
from tests.generations.conftest import set_row


def spring_rows(add_row: Row) -> None:
    """spent 1.25 + 0.50 = 1.75; committed 1.00 + 0.75 = 1.75; the rest does not count."""
    add_row(status="completed", cost_usd=2.0, actual_cost_usd=1.25)  # the provider's figure wins
    add_row(status="completed", cost_usd=0.5)  # no actual figure: the estimate
    add_row(status="pending", cost_usd=1.0)
    add_row(status="processing", cost_usd=0.75, actual_cost_usd=9.0)  # not finished: the estimate
    add_row(status="failed", cost_usd=3.0, actual_cost_usd=0.4)
    add_row(status="canceled", cost_usd=5.0)
    add_row(status="completed", cost_usd=4.0, campaign_id="autumn")  # another campaign
    add_row(status="completed", cost_usd=4.0, campaign_id=None)  # the client, no campaign


def check(services: Services, campaign_id: str | None, amount: float) -> None:
    with services.db.write() as s:
        services.campaigns.check_budget(s, campaign_id, amount)


@pytest.fixture
def budgeted(services: Services, admin: Principal, add_row: Row) -> Services:
    services.campaigns.create_campaign(admin, sc.CampaignCreate(id="autumn", client_id="acme", name="Autumn"))
    services.campaigns.update_campaign(admin, "spring", sc.CampaignUpdate(budget_usd=10.0))
    spring_rows(add_row)
    return services


def test_budget_sums_spent_committed_and_remaining(budgeted: Services, admin: Principal) -> None:
    assert budgeted.campaigns.budget(admin, "spring") == sc.BudgetOut(
        budget_usd=10.0, spent_usd=1.75, committed_usd=1.75, remaining_usd=6.5
    )
    autumn = budgeted.campaigns.budget(admin, "autumn")
    assert autumn == sc.BudgetOut(budget_usd=None, spent_usd=4.0, committed_usd=0.0, remaining_usd=None)


def test_exactly_what_is_left_is_admitted_and_a_cent_more_refused(budgeted: Services) -> None:
    check(budgeted, "spring", 6.5)
    with pytest.raises(Conflict) as refused:
        check(budgeted, "spring", 6.51)
    assert refused.value.field == "campaign_id"
    message = refused.value.message
    assert "'spring'" in message
    assert "$6.50 left of its $10.00 budget" in message
    assert "$1.75 spent, $1.75 committed" in message
    assert "needs $6.51, $0.01 more than is left" in message


def test_small_amounts_keep_their_places(budgeted: Services, admin: Principal) -> None:
    budgeted.campaigns.update_campaign(admin, "spring", sc.CampaignUpdate(budget_usd=3.5023))
    with pytest.raises(Conflict) as refused:
        check(budgeted, "spring", 0.0046)
    assert "$0.0023 left" in refused.value.message and "$0.0023 more" in refused.value.message


def test_a_finished_run_frees_what_its_estimate_held(
    budgeted: Services, admin: Principal, add_row: Row
) -> None:
    running = add_row(status="processing", cost_usd=6.5)
    with pytest.raises(Conflict):
        check(budgeted, "spring", 0.01)
    set_row(budgeted, running, status="completed", actual_cost_usd=4.0)
    assert budgeted.campaigns.budget(admin, "spring").remaining_usd == 2.5
    check(budgeted, "spring", 2.5)


def test_no_budget_no_campaign_or_free_work_is_never_refused(budgeted: Services, admin: Principal) -> None:
    check(budgeted, None, 1e6)
    check(budgeted, "autumn", 1e6)  # no budget set
    budgeted.campaigns.update_campaign(admin, "spring", sc.CampaignUpdate(budget_usd=1.0))  # already over
    assert budgeted.campaigns.budget(admin, "spring").remaining_usd == -2.5
    check(budgeted, "spring", 0.0)  # synth and local models cost nothing
    with pytest.raises(Conflict) as refused:
        check(budgeted, "spring", 0.5)
    assert "$0.00 left" in refused.value.message and "$3.00 more" in refused.value.message
    budgeted.campaigns.update_campaign(admin, "spring", sc.CampaignUpdate(budget_usd=None))
    check(budgeted, "spring", 1e6)


def test_another_clients_campaign_budget_is_not_found(budgeted: Services) -> None:
    globex_only = Principal(
        user_id="u-g", email="g@example.com", role="member", clients=frozenset({"globex"})
    )
    with pytest.raises(NotFound):
        budgeted.campaigns.budget(globex_only, "spring")

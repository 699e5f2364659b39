"""Campaign performance figures on an asset: views, clicks and conversions set through PATCH (whole
numbers ≥ 0, null clears), CTR derived in the asset JSON, each change an `updated` event like the
other review fields, another client's asset a 404, and the review panel's form on the page."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.studio.review_kit import Kit, fields_of, kit
from tests.web.page_kit import PASSWORD
from tests.web.test_pages import csrf_of

__all__ = ["kit"]


def test_figures_are_set_shown_and_ctr_derived(kit: Kit) -> None:
    gen_id = kit.add("video")
    fresh = kit.api.get(kit.url("video", gen_id)).json()
    assert (fresh["views"], fresh["clicks"], fresh["conversions"], fresh["ctr"]) == (None, None, None, None)

    r = kit.api.patch(kit.url("video", gen_id), json={"views": 12000, "clicks": 342, "conversions": 17})
    assert r.status_code == 200, r.text
    item = r.json()
    assert (item["views"], item["clicks"], item["conversions"]) == (12000, 342, 17)
    assert item["ctr"] == pytest.approx(342 / 12000)
    assert item == kit.api.get(kit.url("video", gen_id)).json()
    row = kit.row(gen_id)
    assert (row.views, row.clicks, row.conversions) == (12000, 342, 17)
    kind, data = kit.events(gen_id)[-1]
    assert kind == "generation.updated" and data["fields"] == ["views", "clicks", "conversions"]


def test_one_figure_at_a_time_and_null_clears(kit: Kit) -> None:
    gen_id = kit.add("image", views=100, clicks=5)
    item = kit.api.patch(kit.url("image", gen_id), json={"clicks": 8}).json()
    assert (item["views"], item["clicks"], item["ctr"]) == (100, 8, pytest.approx(0.08))
    item = kit.api.patch(kit.url("image", gen_id), json={"views": None}).json()
    assert item["views"] is None and item["clicks"] == 8 and item["ctr"] is None  # nothing to divide by
    item = kit.api.patch(kit.url("image", gen_id), json={"views": 0}).json()
    assert item["views"] == 0 and item["ctr"] is None
    before = len(kit.events(gen_id))
    kit.api.patch(kit.url("image", gen_id), json={"clicks": 8})  # the same value: nothing changes
    assert len(kit.events(gen_id)) == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"views": -1}, "views"),
        ({"clicks": 2.5}, "clicks"),
        ({"conversions": "12"}, "conversions"),
        ({"views": True}, "views"),
        ({"clicks": 2**63}, "clicks"),
    ],
)
def test_figures_are_whole_numbers_from_zero(kit: Kit, body: dict[str, object], field: str) -> None:
    gen_id = kit.add("audio")
    assert fields_of(kit.api.patch(kit.url("audio", gen_id), json=body)) == [field]
    assert kit.row(gen_id).views is None


def test_another_clients_asset_is_not_found(kit: Kit) -> None:
    gen_id = kit.add("audio", client_id="globex")
    r = kit.api.patch(kit.url("audio", gen_id), json={"views": 5}, headers=kit.as_acme())
    assert r.status_code == 404
    assert kit.row(gen_id).views is None


def test_the_review_panel_has_the_figures_and_ctr(kit: Kit) -> None:
    gen_id = kit.add("audio", views=2000, clicks=50, conversions=3)
    kit.services.auth.create_user(email="perf@example.com", password=PASSWORD, role="admin")
    with TestClient(kit.api.app, base_url="http://testserver") as browser:  # a signed-in person
        token = csrf_of(browser.get("/login").text)
        r = browser.post(
            "/login", data={"email": "perf@example.com", "password": PASSWORD, "csrf_token": token}
        )
        assert r.status_code == 200, r.text
        page = browser.get(f"/assets/audio/{gen_id}").text
    panel = page[page.index('id="performance-form"') : page.index('id="refile-form"')]
    assert 'id="perf-views" name="views" type="number" min="0"' in panel and 'value="2000"' in panel
    assert 'value="50"' in panel and 'value="3"' in panel
    assert '<span id="perf-ctr" data-field="ctr">2.50%</span>' in panel

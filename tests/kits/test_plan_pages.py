"""The plan pages in-process (a signed-in session, workers off): a brief's plans, drafting one,
errors shown beside the field they name, a scene moved, a deliverable added, and another tenant's
plan as the not-found page."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from mediagen.campaigns import schemas as sc
from tests.web.page_kit import PASSWORD, PageWorld, csrf_of, page_world, signed_in


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> PageWorld:
    w = page_world(tmp_path_factory, "plan-pages")
    w.services.campaigns.create_brief(
        w.admin,
        sc.BriefCreate(
            id="sunny", campaign_id="spring", title="Sunny launch", channels=["radio"], lengths=[5]
        ),
    )
    return w


@pytest.fixture(scope="module")
def browser(world: PageWorld) -> Iterator[TestClient]:
    with signed_in(world.app) as client:
        yield client


def post(client: TestClient, url: str, data: dict[str, str], page: str) -> object:
    return client.post(url, data={**data, "csrf_token": csrf_of(page)}, follow_redirects=False)


def form_of(page: str) -> dict[str, str]:
    """The plan form's fields as the browser would post them."""
    fields = dict(re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', page))
    fields.update(re.findall(r'<textarea[^>]*name="([^"]+)"[^>]*>([^<]*)</textarea>', page))
    selects = re.findall(r'<select[^>]*name="(d\.[^"]+)"[^>]*>(.*?)</select>', page, re.S)
    for name, options in selects:
        chosen = re.search(r'<option value="([^"]+)" selected', options)
        fields[name] = chosen.group(1) if chosen else ""
    for name in re.findall(r'<input type="checkbox" name="([^"]+)" value="on" checked', page):
        fields[name] = "on"
    return {k: v.replace("&#34;", '"').replace("&amp;", "&") for k, v in fields.items() if k != "csrf_token"}


def test_draft_edit_move_and_add_from_the_pages(world: PageWorld, browser: TestClient) -> None:
    listing = browser.get("/briefs/sunny/plans")
    assert listing.status_code == 200 and "Draft a kit plan" in listing.text and "radio" in listing.text
    drafted = post(browser, "/briefs/sunny/plans", {}, listing.text)
    assert drafted.status_code == 303  # type: ignore[attr-defined]
    url = drafted.headers["location"]  # type: ignore[attr-defined]
    plan_id = int(url.rsplit("/", 1)[1])
    page = browser.get(url).text
    plan = world.services.kits.get(world.admin, plan_id)
    bed = next(d for d in plan.deliverables if d.role == "music")

    # An empty prompt: the page again, the error beside that prompt, nothing saved.
    fields = {**form_of(page), f"d.{bed.id}.prompt": ""}
    refused = post(browser, url, fields, page)
    assert refused.status_code == 422  # type: ignore[attr-defined]
    assert f'id="d-{bed.id}-prompt-error"' in refused.text  # type: ignore[attr-defined]
    assert world.services.kits.get(world.admin, plan_id).version == 1

    # A new prompt, and scene 1 moved down, in one post.
    first, second = plan.scenes[0].prompt, plan.scenes[1].prompt
    fields = {**form_of(page), f"d.{bed.id}.prompt": "warm house groove", "move": "down:1"}
    saved = post(browser, url, fields, page)
    assert saved.status_code == 303  # type: ignore[attr-defined]
    after = world.services.kits.get(world.admin, plan_id)
    assert next(d for d in after.deliverables if d.id == bed.id).prompt == "warm house groove"
    assert [s.prompt for s in after.scenes[:2]] == [second, first] and after.version == 2

    page = browser.get(url).text
    added = post(browser, f"{url}/deliverables", {"role": "visual", "prompt": "a square poster"}, page)
    assert added.status_code == 303  # type: ignore[attr-defined]
    visuals = [d for d in world.services.kits.get(world.admin, plan_id).deliverables if d.role == "visual"]
    assert any(d.prompt == "a square poster" and d.model == "synth/image" for d in visuals)
    empty = post(browser, f"{url}/deliverables", {"role": "clip", "prompt": ""}, page)
    assert empty.status_code == 422 and 'id="add-prompt-error"' in empty.text  # type: ignore[attr-defined]

    # Run before approving: the page says so.
    ran = post(browser, f"{url}/run", {}, page)
    assert ran.status_code == 409 and "approve it first" in ran.text  # type: ignore[attr-defined]
    approved = post(browser, f"{url}/approve", {"version": "3"}, page)
    assert approved.status_code == 303  # type: ignore[attr-defined]
    assert world.services.kits.get(world.admin, plan_id).status == "approved"
    kit = browser.get(f"{url}/kit")
    assert kit.status_code == 200 and 'data-item="' in kit.text and "Share for sign-off" in kit.text


def test_another_tenants_plan_is_the_not_found_page(world: PageWorld) -> None:
    plan = world.services.kits.draft(world.admin, "sunny")
    with TestClient(world.app) as client:
        token = csrf_of(client.get("/login").text)
        form = {"email": "limited@example.com", "password": PASSWORD, "csrf_token": token}
        assert client.post("/login", data=form, follow_redirects=False).status_code == 303
        for url in (f"/plans/{plan.id}", f"/plans/{plan.id}/kit", "/briefs/sunny/plans"):
            page = client.get(url)
            assert page.status_code == 404 and "Sunny" not in page.text, url
        page = client.get(f"/plans/{plan.id}")
        sent = {"csrf_token": csrf_of(page.text), "version": "1"}
        for action in ("", "/approve", "/run", "/deliverables"):
            refused = client.post(f"/plans/{plan.id}{action}", data=sent, follow_redirects=False)
            assert refused.status_code == 404, action
    after = world.services.kits.get(world.admin, plan.id)
    assert (after.status, after.version) == ("draft", 1)

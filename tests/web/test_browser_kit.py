"""Brief to kit in a real browser (Debian's Chromium via Playwright) against a live `mediagen serve`:
a plan drafted from the brief's page, a prompt edited and a scene moved on the plan page, approved
and run; the kit page follows every deliverable live until the kit is done, downloads it as one zip
and makes a sign-off link that opens the finished deliverables without an account.

The synth and post-production engines make everything here in seconds.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import LiveServer
from tests.web.browser_kit import ACME_SPRING, new_context, shot, signed_in_state, start_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]

BRIEF = {
    "id": "sunny",
    "campaign_id": "spring",
    "title": "Sunny launch",
    "text": "A bright summer drink",
    "tone": "upbeat",
    "channels": ["instagram-reel"],
    "lengths": [6],
}
LONG = 120_000  # ms: the whole kit, spots included


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    srv = start_server(tmp_path_factory, "web-kit", (*ACME_SPRING, ("/api/briefs", BRIEF)))
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def admin_state(browser: Any, server: LiveServer) -> dict[str, Any]:
    return signed_in_state(browser, server, "/briefs/sunny/plans")


def test_brief_to_plan_to_edit_to_run_to_kit_to_zip(page: Any, server: LiveServer, tmp_path: Any) -> None:
    page.goto(f"{server.url}/briefs/sunny")
    page.click("a[href='/briefs/sunny/plans']")
    page.wait_for_url("**/briefs/sunny/plans")
    assert "instagram-reel" in page.locator(".kit-facts").inner_text()
    page.click("#draft-plan")
    page.wait_for_url("**/plans/*")
    plan_id = int(page.url.rstrip("/").rsplit("/", 1)[1].split("#")[0])
    assert "Drafted plan" in page.locator(".flash").inner_text()

    # Edit a clip's prompt and save.
    clip = page.locator('li.kit-item[data-role="clip"]').first
    clip_id = clip.get_attribute("data-item")
    page.fill(f"#d-{clip_id}-prompt", "Sunlight through a cold can, slow push in")
    page.click("#plan-save")
    page.wait_for_url(f"**/plans/{plan_id}#deliverables")
    assert page.input_value(f"#d-{clip_id}-prompt") == "Sunlight through a cold can, slow push in"

    # Move the first scene down: the second one is first now.
    first, second = (page.input_value(f"#s-{n}-prompt") for n in (1, 2))
    page.click('button[name="move"][value="down:1"]')
    page.wait_for_url(f"**/plans/{plan_id}#scenes")
    assert [page.input_value(f"#s-{n}-prompt") for n in (1, 2)] == [second, first]
    with server.client() as c:
        plan = c.get(f"/api/plans/{plan_id}").json()
    assert plan["version"] == 3 and plan["status"] == "draft"
    shot(page, "test_kit_plan_page")

    # Approve, run: off to the kit page, which follows the run until every deliverable is done.
    page.click("#plan-approve")
    page.wait_for_selector("#plan-run")
    page.click("#plan-run")
    page.wait_for_url(f"**/plans/{plan_id}/kit")
    rows = page.locator("tr[data-item]")
    count = rows.count()
    assert count == len(plan["deliverables"])
    page.wait_for_function(
        "document.querySelector('#kit-plan-status').dataset.status === 'done'", timeout=LONG
    )
    page.wait_for_function(
        f"document.querySelectorAll('tr[data-item][data-status=\"done\"]').length === {count}"
    )
    assert page.locator("#kit-progress").inner_text().startswith(f"{count} of {count}")
    spot = page.locator("tr[data-item] .kit-role", has_text="Spot")
    assert spot.count() == 1
    reel = page.locator("section", has_text="instagram-reel")
    assert reel.locator("[data-item-asset] a", has_text="video #").count() == 1
    # Each finished deliverable shows at a glance: a thumbnail that loaded, a player for music.
    thumb = reel.locator("img.kit-preview")
    thumb.scroll_into_view_if_needed()
    loaded = "[...document.querySelectorAll('img.kit-preview')].every((i) => i.naturalWidth > 0)"
    page.wait_for_function(loaded)
    assert page.locator("audio.kit-preview").count() >= 1
    shot(page, "test_kit_done")

    # The kit as one zip.
    with page.expect_download() as download:
        page.click("#kit-zip")
    saved = tmp_path / "kit.zip"
    download.value.save_as(saved)
    names = zipfile.ZipFile(saved).namelist()
    assert len(names) == count and any(n.startswith("instagram-reel/") for n in names)

    # Share for sign-off: a link that shows the finished deliverables to someone without an account.
    page.click("button.share-open")
    dialog = page.locator("dialog[open]")
    dialog.locator("[data-share-create]").click()
    url_box = dialog.locator("[data-share-url]")
    page.wait_for_function("document.querySelector('dialog[open] [data-share-url]').value.includes('/s/')")
    link = url_box.input_value()
    ctx = new_context(page.context.browser)
    try:
        outsider = ctx.new_page()
        outsider.goto(link)
        assert "Kit for sign-off" in outsider.locator("h1").inner_text()
        assert outsider.locator("[data-share-item]").count() == count
    finally:
        ctx.close()

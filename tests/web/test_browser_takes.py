"""Takes in a real browser (Debian's Chromium via Playwright) against a live `mediagen serve`:
three takes made from the generate form land on their compare page, where switching take keeps
the playback position and picking a winner approves it and rejects the rest; an upload from the
video form is filed under the campaign chosen; and on a phone the prompt is on the first screen.

One server and one browser serve the module; the synth makes two-second tracks, so the takes are
ready within a couple of seconds.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest
from PIL import Image

from tests.conftest import LiveServer
from tests.web.browser_kit import ACME_SPRING, new_context, shot, signed_in_state, start_server

pytestmark = pytest.mark.browser

AUDIO = "document.querySelector('#takes-audio')"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    srv = start_server(tmp_path_factory, "web-takes", ACME_SPRING)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def admin_state(browser: Any, server: LiveServer) -> dict[str, Any]:
    return signed_in_state(browser, server, "/generate/music")


def review_of(page: Any, gen_id: int) -> str:
    return str(page.locator(f'li.take[data-id="{gen_id}"] [data-review]').inner_text())


def test_three_takes_compare_at_the_same_position_and_pick_a_winner(page: Any, server: LiveServer) -> None:
    page.goto(f"{server.url}/generate/music?campaign_id=spring")
    page.fill("#in-prompt", "warm lo-fi piano, 90 bpm")
    page.fill("#in-duration", "4")
    page.fill("#takes-n", "3")
    assert page.locator("#generate-submit").inner_text() == "Generate 3 takes"
    page.click("#generate-submit")
    page.wait_for_url("**/takes/tg_*")
    page.wait_for_function("document.querySelectorAll('li.take[data-status=\"completed\"]').length === 3")
    ids = [int(x) for x in page.eval_on_selector_all("li.take", "els => els.map(e => e.dataset.id)")]
    seeds = page.locator("[data-seed]").all_inner_texts()
    assert len(ids) == 3 and len(set(seeds)) == 3 and all(s.isdigit() for s in seeds)
    assert "Spring Launch" in page.locator(".breadcrumb").inner_text()

    # One transport: play take A, pause at some point, switch to B: B starts where A was.
    page.wait_for_function(f"{AUDIO}.readyState >= 1 && !document.querySelector('#transport-play').disabled")
    page.click("#transport-play")
    page.wait_for_function(f"{AUDIO}.currentTime > 1.0")
    page.click("#transport-play")
    page.wait_for_function(f"{AUDIO}.paused")
    at = page.evaluate(f"{AUDIO}.currentTime")
    page.click(f'li.take[data-id="{ids[1]}"] [data-listen]')
    page.wait_for_function(f"{AUDIO}.src.endsWith('/api/audio/{ids[1]}/data') && {AUDIO}.readyState >= 1")
    assert page.evaluate(f"{AUDIO}.currentTime") == pytest.approx(at, abs=0.05)
    assert page.locator(f'li.take[data-id="{ids[1]}"] [data-listen]').get_attribute("aria-pressed") == "true"
    assert page.locator("#transport-now").inner_text() == "Hearing take B"
    # Playing, a switch carries on from where it was (and keeps playing).
    page.click("#transport-play")
    page.wait_for_function(f"{AUDIO}.currentTime > {at + 0.3}")
    page.click(f'li.take[data-id="{ids[2]}"] [data-listen]')
    page.wait_for_function(f"{AUDIO}.src.endsWith('/api/audio/{ids[2]}/data') && !{AUDIO}.paused")
    assert page.evaluate(f"{AUDIO}.currentTime") >= at + 0.3
    page.click("#transport-play")

    # Pick B: approved, the others rejected; Undo puts them all back in review.
    page.click(f'li.take[data-id="{ids[1]}"] [data-pick]')
    page.wait_for_function("document.querySelector('#takes-winner-text').textContent.includes('Take B')")
    assert [review_of(page, i) for i in ids] == ["Rejected", "Approved", "Rejected"]
    shot(page, "test_takes_compare_winner")
    page.click("#takes-undo")
    page.wait_for_function("document.querySelector('#takes-winner-text').textContent.startsWith('No winner')")
    assert [review_of(page, i) for i in ids] == ["In review"] * 3
    with server.client() as c:
        assert c.get(f"/api/audio/{ids[1]}").json()["review_status"] == "in_review"


def test_an_upload_from_the_video_form_is_filed_under_the_chosen_campaign(
    page: Any, server: LiveServer
) -> None:
    page.goto(f"{server.url}/generate/videos")
    page.select_option("#campaign_id", "spring")
    # The kind tabs now carry the campaign too.
    assert "campaign_id=spring" in (page.locator('[data-tab-gallery="music"]').get_attribute("href") or "")
    png = io.BytesIO()
    Image.new("RGB", (32, 18), (30, 90, 200)).save(png, "PNG")
    page.set_input_files(
        "#in-image-file", {"name": "logo.png", "mimeType": "image/png", "buffer": png.getvalue()}
    )
    page.wait_for_function("document.querySelector('#in-image').value !== ''")
    image_id = int(page.input_value("#in-image"))
    with server.client() as c:
        item = c.get(f"/api/images/{image_id}").json()
    assert item["campaign_id"] == "spring" and item["client_id"] == "acme"


def test_on_a_phone_the_prompt_is_on_the_first_screen(
    browser: Any, admin_state: dict[str, Any], server: LiveServer
) -> None:
    ctx = new_context(browser, storage_state=admin_state, viewport={"width": 390, "height": 844})
    try:
        pg = ctx.new_page()
        pg.goto(f"{server.url}/generate/music")
        prompt = pg.locator("#in-prompt")
        prompt.wait_for()
        box = prompt.bounding_box()
        assert box is not None and box["y"] + box["height"] < 844, box  # the whole box, not only its top
        assert pg.locator(".model-picker").is_hidden() and pg.locator("#model-select").is_visible()
        shot(pg, "test_generate_phone")
        # The keys list stacks each key, so its Revoke button is on screen.
        pg.goto(f"{server.url}/keys")
        revoke = pg.locator("button", has_text="Revoke").first
        rbox = revoke.bounding_box()
        assert rbox is not None and rbox["x"] + rbox["width"] <= 390, rbox
        shot(pg, "test_keys_phone")
    finally:
        ctx.close()

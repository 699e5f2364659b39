"""Review and organise in a real browser (Debian's Chromium via Playwright) against a live
`mediagen serve`: star, rate and approve an asset on its page, a time-coded comment and its marker
on the waveform, searching a gallery, and bulk work on two selected cards.

The tracks are tiny uploads (two seconds of WAV, finished and with a waveform the moment they are
stored), so nothing waits for a render.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import LiveServer, make_server
from tests.web.browser_kit import signed_in_state
from tests.web.test_compose_pages import make_music

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    srv = make_server(tmp_path_factory.mktemp("web-review")).start()
    with srv.client() as c:
        for path, body in (
            ("/api/clients", {"id": "acme", "name": "Acme Corp"}),
            ("/api/clients", {"id": "globex", "name": "Globex"}),
            ("/api/campaigns", {"id": "spring", "client_id": "acme", "name": "Spring Launch"}),
            ("/api/campaigns", {"id": "spring-g", "client_id": "globex", "name": "Spring Launch"}),
        ):
            r = c.post(path, json=body)
            assert r.status_code == 201, r.text
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def tracks(server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, int]:
    folder = Path(tmp_path_factory.mktemp("tracks"))
    ids = {}
    with server.client() as c:
        for name in ("harbour", "lantern", "meadow"):
            r = c.post(
                "/api/audio/upload",
                params={"title": f"{name} theme", "campaign_id": "spring"},
                content=make_music(folder / f"{name}.wav", 2.0).read_bytes(),
                headers={"Content-Type": "audio/wav"},
            )
            assert r.status_code in (200, 201), r.text
            ids[name] = r.json()["id"]
    return ids


@pytest.fixture(scope="module")
def admin_state(browser: Any, server: LiveServer) -> dict[str, Any]:
    return signed_in_state(browser, server, "/music")


def api_item(server: LiveServer, gen_id: int) -> dict[str, Any]:
    with server.client() as c:
        r = c.get(f"/api/audio/{gen_id}")
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]


def test_star_rate_approve_and_comment_on_an_asset(
    page: Any, server: LiveServer, tracks: dict[str, int]
) -> None:
    gen_id = tracks["harbour"]
    page.goto(f"{server.url}/assets/audio/{gen_id}")
    page.wait_for_function("document.querySelector('#player canvas.wave')?.mediagenPlayer !== undefined")

    page.click("#review-star")
    page.wait_for_selector('#review-star[aria-pressed="true"]')
    page.click('label[for="rating-4"]')
    page.wait_for_selector("#review-saved:has-text('Rated 4 of 5')")
    page.click('label[for="review-approved"]')
    page.wait_for_selector("#review-badge.review-approved")
    page.wait_for_selector("#review-history li:has-text('Approved by')")
    page.fill("#review-title", "Harbour, final")
    page.click("#review-form button[type=submit]")
    page.wait_for_selector("#review-saved:has-text('Saved')")
    page.fill("#tag-input", "Hero")
    page.press("#tag-input", "Enter")
    page.wait_for_selector('#tag-list li[data-tag="hero"]')
    item = api_item(server, gen_id)
    assert (item["favorite"], item["rating"], item["review_status"]) == (True, 4, "approved")
    assert (item["title"], item["tags"]) == ("Harbour, final", ["hero"])

    # A bad edit is refused beside its field, and nothing is saved.
    page.evaluate("document.querySelector('#tag-input').removeAttribute('maxlength')")
    page.fill("#tag-input", "x" * 65)
    page.press("#tag-input", "Enter")
    page.wait_for_selector("#review-tags-error:not([hidden])")
    assert api_item(server, gen_id)["tags"] == ["hero"]

    # A comment at the player's position: listed with its time and marked on the waveform.
    page.evaluate("document.querySelector('#player audio').currentTime = 1.2")
    page.wait_for_function("document.querySelector('#comment-at').textContent === '0:01'")
    page.fill("#comment-text", "The horn comes in late")
    page.click("#comment-form button[type=submit]")
    page.wait_for_selector("#comment-list li:has-text('The horn comes in late') .comment-at:has-text('0:01')")
    markers = page.evaluate("document.querySelector('#player canvas.wave').mediagenPlayer.markers()")
    assert len(markers) == 1 and markers[0]["at"] == pytest.approx(1.2)

    # A click on the marker seeks to the comment's own time and marks it in the list.
    page.evaluate("document.querySelector('#player audio').currentTime = 0")
    wave = page.locator("#player canvas.wave")
    box = wave.bounding_box()
    duration = page.evaluate("document.querySelector('#player audio').duration")
    wave.click(position={"x": box["width"] * 1.2 / duration + 3, "y": box["height"] / 2})
    page.wait_for_function("Math.abs(document.querySelector('#player audio').currentTime - 1.2) < 0.01")
    assert page.locator("#comment-list li.is-current").count() == 1

    # ... and so does the comment's time in the list.
    page.evaluate("document.querySelector('#player audio').currentTime = 0")
    page.click("#comment-list .comment-at")
    page.wait_for_function("Math.abs(document.querySelector('#player audio').currentTime - 1.2) < 0.01")
    with server.client() as c:
        comments = c.get(f"/api/audio/{gen_id}/comments").json()["comments"]
    assert [(x["at"], x["text"]) for x in comments] == [(1.2, "The horn comes in late")]


def test_search_select_bulk_approve_and_download_link(
    page: Any, server: LiveServer, tracks: dict[str, int]
) -> None:
    page.goto(f"{server.url}/music")
    assert page.evaluate("[8.4, 70.5, 125].map(window.Mediagen.fmtDuration)") == ["0:08", "1:11", "2:05"]

    # Choosing a client narrows the campaigns at once, named by client where names collide.
    assert sorted(page.locator("#f-campaign option").all_inner_texts()[1:]) == [
        "Spring Launch — Acme Corp",
        "Spring Launch — Globex",
    ]
    page.select_option("#f-client", "acme")
    assert page.locator("#f-campaign option").all_inner_texts() == [
        "All campaigns",
        "Spring Launch — Acme Corp",
    ]

    page.fill("#f-q", "lantern")
    page.press("#f-q", "Enter")
    page.wait_for_url("**/music?*q=lantern*")
    assert page.locator("li.card").count() == 1
    assert page.locator(f'li.card[data-id="{tracks["lantern"]}"]').count() == 1

    page.goto(f"{server.url}/music")
    first, second = tracks["lantern"], tracks["meadow"]
    assert page.locator("#bulk-bar").is_hidden()
    page.locator(f'li.card[data-id="{first}"] input[data-select]').check()
    page.locator(f'li.card[data-id="{second}"] input[data-select]').focus()
    page.keyboard.press("Space")  # selectable from the keyboard
    assert page.locator("#bulk-count").inner_text() == "2 selected"
    href = page.locator("#bulk-download").get_attribute("href")
    assert href.startswith("/api/downloads?items=")
    assert sorted(href.split("=", 1)[1].split(",")) == sorted([f"audio:{first}", f"audio:{second}"])

    page.click('#bulk-bar [data-bulk="approve"]')
    page.wait_for_selector("#bulk-status:has-text('Approved 2 tracks')")
    for gen_id in (first, second):
        page.wait_for_selector(f'li.card[data-id="{gen_id}"] .review-approved')
        assert api_item(server, gen_id)["review_status"] == "approved"
    assert api_item(server, tracks["harbour"])["review_status"] in ("draft", "approved")  # not touched here
    assert page.locator("input[data-select]:checked").count() == 0

    # A card's star toggles in place.
    star = page.locator(f'li.card[data-id="{second}"] [data-star]')
    star.click()
    page.wait_for_selector(f'li.card[data-id="{second}"] [data-star][aria-pressed="true"]')
    assert api_item(server, second)["favorite"] is True


# Stands in for live.js swapping a card in (keeping its selection) while a bulk request is in flight:
# each card is replaced by a copy, with its checkbox state carried over, just as the response lands.
SWAP_CARDS_WHEN_BULK_ANSWERS = """
() => {
  const original = window.fetch;
  window.fetch = async (...args) => {
    const res = await original(...args);
    if (String(args[0]).includes("/api/bulk")) {
      for (const card of document.querySelectorAll("#gallery-grid li.card")) {
        const copy = card.cloneNode(true);
        copy.querySelector("input[data-select]").checked = card.querySelector("input[data-select]").checked;
        card.replaceWith(copy);
      }
    }
    return res;
  };
}
"""


def test_bulk_work_ends_the_selection_even_when_a_live_update_swapped_the_cards(
    page: Any, server: LiveServer, tracks: dict[str, int]
) -> None:
    page.goto(f"{server.url}/music")
    page.evaluate(SWAP_CARDS_WHEN_BULK_ANSWERS)
    picked = (tracks["lantern"], tracks["meadow"])
    for gen_id in picked:
        page.locator(f'li.card[data-id="{gen_id}"] input[data-select]').check()
    assert page.locator("#bulk-count").inner_text() == "2 selected"

    page.click('#bulk-bar [data-bulk="reject"]')
    page.wait_for_selector("#bulk-status:has-text('Rejected 2 tracks')")
    for gen_id in picked:
        # The card on the page is the server's fresh one, not the swapped-in copy.
        page.wait_for_selector(f'li.card[data-id="{gen_id}"] .review-rejected')
        assert api_item(server, gen_id)["review_status"] == "rejected"
    assert page.locator("input[data-select]:checked").count() == 0
    assert page.locator("#bulk-count").inner_text() == "0 selected"

    # A live update swapping a card in right after does not hide what the bar says happened...
    page.evaluate(
        "(id) => { const c = document.querySelector(`li.card[data-id='${id}']`);"
        " c.replaceWith(c.cloneNode(true)); }",
        picked[0],
    )
    assert page.locator("#bulk-status").is_visible()
    # ... but the bar still goes once it has said it (after four seconds), or at once on Escape.
    page.keyboard.press("Escape")
    page.wait_for_selector("#bulk-bar", state="hidden", timeout=2000)

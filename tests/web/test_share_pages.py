"""Review links in a real browser (Debian's Chromium via Playwright) against a live `mediagen serve`:
the team makes a link on an asset's page and copies its URL; someone without an account opens it in
a fresh browser, plays the track, leaves their name, a time-coded comment and an approval, and the
team sees them recorded; the campaign page lists the link and revokes it, and the link is gone.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import LiveServer
from tests.web.browser_kit import ACME_SPRING, new_context, shot, signed_in_state, start_server
from tests.web.test_compose_pages import make_music

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    srv = start_server(tmp_path_factory, "web-share", ACME_SPRING)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def track(server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> int:
    """A finished three-second track filed under the campaign (set-up, uploaded over the API)."""
    wav = make_music(Path(tmp_path_factory.mktemp("music")) / "bed.wav", 3.0)
    with server.client() as c:
        r = c.post(
            "/api/audio/upload",
            params={"title": "Spring bed", "campaign_id": "spring"},
            content=wav.read_bytes(),
        )
        assert r.status_code == 201, r.text
        return int(r.json()["id"])


@pytest.fixture(scope="module")
def admin_state(browser: Any, server: LiveServer) -> dict[str, Any]:
    return signed_in_state(browser, server, "/campaigns")


@pytest.fixture
def reviewer(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A browser of someone with no account: no cookies, nothing signed in."""
    ctx = new_context(browser, viewport={"width": 1100, "height": 900})
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    yield pg
    shot(pg, f"{request.node.name}-reviewer")
    ctx.close()
    assert not errors, f"JavaScript errors: {errors}"


def make_link(page: Any, server: LiveServer, track: int, label: str) -> str:
    page.goto(f"{server.url}/assets/audio/{track}")
    page.click("#share-panel [data-share-open]")
    dialog = page.locator(f"#share-dialog-asset-audio-{track}")
    assert dialog.is_visible()
    dialog.locator("select[name=expires_in]").select_option(str(86400))
    dialog.locator("input[name=label]").fill(label)
    dialog.locator("[data-share-create]").click()
    url_box = dialog.locator("[data-share-url]")
    url_box.wait_for(state="visible")
    url = str(url_box.input_value())
    assert url.startswith(f"{server.url}/s/") and len(url.rsplit("/", 1)[1]) == 43
    dialog.locator("[data-share-close]").click()
    # The asset's panel lists the new link.
    page.wait_for_selector(f"#share-panel .share-link:has-text('{label}')")
    return url


def test_a_reviewer_without_an_account_plays_comments_and_approves(
    page: Any, reviewer: Any, server: LiveServer, track: int
) -> None:
    url = make_link(page, server, track, "Client round 1")

    reviewer.goto(url)
    assert reviewer.locator("h1").inner_text() == "Client round 1"
    assert reviewer.locator(".site-header").count() == 0  # no nav: nothing of the app beyond the link
    # The waveform player: peaks drawn from the link's own waveform URL, the audio plays.
    canvas = reviewer.locator("canvas.wave")
    reviewer.wait_for_function("document.querySelector('audio[data-share-media]').readyState >= 1")
    duration = reviewer.evaluate("document.querySelector('audio[data-share-media]').duration")
    assert abs(duration - 3.0) <= 0.1
    canvas.focus()
    reviewer.keyboard.press("Space")
    reviewer.wait_for_function("document.querySelector('audio[data-share-media]').currentTime > 0.2")
    reviewer.keyboard.press("Space")  # pause
    box = canvas.bounding_box()
    canvas.click(position={"x": box["width"] * 0.5, "y": box["height"] / 2})  # seek to the middle
    at = reviewer.evaluate("document.querySelector('audio[data-share-media]').currentTime")
    assert abs(at - 1.5) < 0.3

    # Without a name nothing is sent: the name field says so.
    reviewer.fill("[data-comment-form] textarea", "The drop lands late here")
    reviewer.click("[data-comment-form] button[type=submit]")
    assert reviewer.locator("#reviewer-error").is_visible()
    reviewer.fill("#reviewer-name", "Dana at Acme")
    reviewer.click("[data-comment-form] button[type=submit]")
    comment = reviewer.locator(".share-comment", has_text="The drop lands late here")
    comment.wait_for()
    assert "Dana at Acme" in comment.inner_text()
    assert comment.locator("[data-share-seek]").count() == 1
    assert reviewer.locator(".share-marker").count() == 1

    reviewer.click("[data-verdict=approved]")
    reviewer.wait_for_selector("[data-share-status].review-approved")
    assert reviewer.locator("[data-verdict-note]").inner_text() == "Approved by Dana at Acme."

    # Coming back: the name is remembered on this device, the comment is listed.
    reviewer.reload()
    assert reviewer.locator("#reviewer-name").input_value() == "Dana at Acme"
    assert reviewer.locator(".share-comment", has_text="The drop lands late here").count() == 1
    assert reviewer.locator("[data-share-status]").inner_text() == "Approved"

    # The team sees it recorded under the reviewer's name and the link.
    with server.client() as c:
        link_id = c.get("/api/shares", params={"kind": "audio", "id": track}).json()["shares"][0]["id"]
        history = c.get(f"/api/audio/{track}/history").json()["history"]
        comments = c.get(f"/api/audio/{track}/comments").json()["comments"]
        item = c.get(f"/api/audio/{track}").json()
    assert history[-1]["to"] == "approved" and history[-1]["actor_name"] == "Dana at Acme"
    assert history[-1]["share_id"] == link_id
    assert comments[-1]["author_name"] == "Dana at Acme" and comments[-1]["share_id"] == link_id
    assert abs(comments[-1]["at"] - at) < 0.05
    assert item["review_status"] == "approved"


def test_the_campaign_page_lists_and_revokes_a_link(
    page: Any, reviewer: Any, server: LiveServer, track: int
) -> None:
    page.goto(f"{server.url}/campaigns/spring")
    page.click("[data-share-open]")
    dialog = page.locator("#share-dialog-campaign-spring")
    dialog.locator("input[name=label]").fill("Whole campaign, round 2")
    dialog.locator("[data-share-create]").click()
    dialog.locator("[data-share-url]").wait_for(state="visible")
    url = str(dialog.locator("[data-share-url]").input_value())
    dialog.locator("[data-share-close]").click()
    row = page.locator(".share-link", has_text="Whole campaign, round 2")
    row.wait_for()
    assert "The whole campaign" in row.inner_text()

    reviewer.goto(url)
    assert reviewer.locator(f"#shared-audio-{track}").count() == 1

    row.locator("[data-share-revoke]").click()
    page.click("#confirm-ok")
    row.wait_for(state="detached")
    response = reviewer.goto(url)
    assert response.status == 410
    assert "was revoked" in reviewer.locator("h1").inner_text()

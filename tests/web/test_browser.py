"""The web UI in a real browser (Debian's Chromium via Playwright) against a live `mediagen serve`.

One server and one browser serve the whole module. The server routes `meta/musicgen` to a Cog
address where nothing listens and allows one attempt, so that model fails at once with an
"unreachable" error, and `riffusion/riffusion` to a stub Cog server that accepts predictions and
never finishes them (a job that stays `processing` until canceled); the offline synth models
complete normally. Happy, failing and running paths all run against the same server.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.conftest import ROOT, LiveServer, make_server
from tests.web.browser_kit import ARTIFACTS, new_context, shot

pytestmark = pytest.mark.browser

LIMITED_EMAIL = "limited@example.com"
LIMITED_PASSWORD = "violet-harbor-lantern"
DONE_TIMEOUT_MS = 60_000


class StuckCog(BaseHTTPRequestHandler):
    """Just enough of Cog's HTTP API for a prediction that is accepted and never finishes.

    PUT /predictions/{id} answers 202 "processing" (and no webhook ever follows), the health check
    says BUSY, cancel succeeds: what a real Cog server does while a long prediction runs.
    """

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_PUT(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._reply(202, {"id": self.path.rsplit("/", 1)[-1], "status": "processing"})

    def do_GET(self) -> None:
        self._reply(200, {"status": "BUSY"} if self.path == "/health-check" else {})

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._reply(200, {})

    def log_message(self, *_args: Any) -> None:
        pass


# fixtures -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def stuck_cog() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), StuckCog)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, stuck_cog: str) -> Iterator[LiveServer]:
    routes = {"meta/musicgen": "http://127.0.0.1:9", "riffusion/riffusion": stuck_cog}
    srv = make_server(
        tmp_path_factory.mktemp("web"), MEDIAGEN_COG_ROUTES=json.dumps(routes), MEDIAGEN_MAX_ATTEMPTS="1"
    ).start()
    with srv.client() as c:
        for path, body in (
            ("/api/clients", {"id": "acme", "name": "Acme Corp"}),
            ("/api/clients", {"id": "other", "name": "Other Co"}),
            (
                "/api/campaigns",
                {
                    "id": "spring",
                    "client_id": "acme",
                    "name": "Spring Launch",
                    "status": "active",
                    "goal": "Launch the spring range",
                },
            ),
            ("/api/campaigns", {"id": "autumn", "client_id": "acme", "name": "Autumn", "status": "draft"}),
        ):
            r = c.post(path, json=body)
            assert r.status_code == 201, r.text
    yield srv
    srv.stop()


def sign_in(page: Any, server: LiveServer, email: str, password: str) -> None:
    page.goto(f"{server.url}/login")
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_url("**/music")


@pytest.fixture(scope="module")
def admin_state(browser: Any, server: LiveServer) -> dict[str, Any]:
    """A signed-in admin session, made once through the sign-in form and reused by every test."""
    ctx = new_context(
        browser,
    )
    page = ctx.new_page()
    page.goto(f"{server.url}/videos")
    assert "/login?next=%2Fvideos" in page.url
    page.fill("#email", server.admin_email or "")
    page.fill("#password", "wrong password")
    page.click("button[type=submit]")
    assert page.locator("#login-error").inner_text() == "Wrong email or password."
    page.fill("#password", server.admin_password or "")
    page.click("button[type=submit]")
    page.wait_for_url("**/videos")
    state = ctx.storage_state()
    ctx.close()
    return state  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def campaign_tracks(server: LiveServer) -> list[int]:
    """A few finished tracks in the Spring Launch campaign (made over the API: this is setup)."""
    prompts = [
        "warm acoustic folk with hand claps",
        "driving synthwave, 118 bpm",
        "calm ambient piano at sunrise",
        "funky disco groove with slap bass",
    ]
    ids = []
    with server.client() as c:
        for prompt in prompts:
            r = c.post(
                "/api/v2/generate/audio",
                json={"prompt": prompt, "model": "synth/music", "duration": 4, "campaign_id": "spring"},
            )
            assert r.status_code == 202, r.text
            ids.append(r.json()["id"])
    for gen_id in ids:
        assert server.wait_for("audio", gen_id)["status"] == "completed"
    return ids


# helpers ------------------------------------------------------------------------------------
def choose_model(page: Any, model_id: str) -> None:
    page.check(f'input[name="model"][value="{model_id}"]')
    page.wait_for_selector("#in-prompt")


def submit_and_open_asset(page: Any, kind: str) -> int:
    page.click("#generate-submit")
    page.wait_for_url(f"**/assets/{kind}/*")
    return int(page.url.rstrip("/").rsplit("/", 1)[1])


def wait_status(page: Any, status: str) -> None:
    page.wait_for_selector(f"#asset-status.status-{status}", timeout=DONE_TIMEOUT_MS)


# tests --------------------------------------------------------------------------------------
def test_generate_music_for_a_campaign_and_play_it(page: Any, server: LiveServer) -> None:
    page.goto(f"{server.url}/generate/music")
    choose_model(page, "synth/music")
    page.fill("#in-prompt", "upbeat electronic with heavy bass")
    page.fill("#in-duration", "3")
    page.select_option("#campaign_id", "spring")
    assert page.input_value("#client_id") == "acme"  # the campaign implies its client
    gen_id = submit_and_open_asset(page, "audio")

    # Follow the job without reloading: a marker set now must survive until the player shows.
    page.evaluate("window.__samePage = true")
    wait_status(page, "completed")
    assert page.evaluate("window.__samePage") is True
    assert page.locator("#asset-elapsed").inner_text().startswith("Took ")

    audio = page.locator("#player audio")
    assert audio.get_attribute("src") == f"/api/audio/{gen_id}/data"
    page.wait_for_function("document.querySelector('#player audio').readyState >= 1")
    duration = page.evaluate("document.querySelector('#player audio').duration")
    assert abs(duration - 3.0) <= 0.1

    canvas = page.locator("canvas.wave")
    box = canvas.bounding_box()
    canvas.click(position={"x": box["width"] / 2, "y": box["height"] / 2})
    current = page.evaluate("document.querySelector('#player audio').currentTime")
    assert abs(current - duration / 2) <= 0.1 * duration / 2
    page.wait_for_function("document.querySelector('#player audio').readyState >= 2")
    # Keyboard: the waveform is a focusable slider; Home goes to 0, → moves 5 s (clamped to the end).
    canvas.focus()
    page.keyboard.press("Home")
    assert page.evaluate("document.querySelector('#player audio').currentTime") == 0
    page.keyboard.press("ArrowRight")
    assert page.evaluate("document.querySelector('#player audio').currentTime") == pytest.approx(
        duration, abs=0.1
    )
    assert canvas.get_attribute("role") == "slider"

    details = page.locator(".details").first.inner_text()
    assert "Spring Launch" in details and "Acme Corp" in details and "audio/mpeg" in details
    assert page.locator("#download-link").get_attribute("href") == f"/api/audio/{gen_id}/data?download=true"
    page.evaluate("document.querySelector('#player audio').currentTime = 1.2")  # a playhead in the shot
    page.wait_for_timeout(100)


def test_gallery_filtered_by_campaign_shows_cards_with_waveforms(
    page: Any, server: LiveServer, campaign_tracks: list[int]
) -> None:
    page.goto(f"{server.url}/music")
    page.select_option("#f-campaign", "spring")
    page.click("text=Apply filters")
    page.wait_for_url("**/music?*campaign_id=spring*")
    for gen_id in campaign_tracks:
        assert page.locator(f'li.card[data-id="{gen_id}"]').count() == 1
    first = page.locator(f'li.card[data-id="{campaign_tracks[0]}"]')
    assert first.locator(".card-duration").inner_text() == "0:04"
    # The waveform is fetched lazily when the card is on screen, then drawn from the stored peaks.
    page.wait_for_function(
        f"document.querySelector('li.card[data-id=\"{campaign_tracks[0]}\"] canvas')._peaks !== undefined"
    )
    # Play in place; starting another card pauses the first.
    button = first.locator(".play-button")
    button.click()
    page.wait_for_function(
        f"document.querySelector('li.card[data-id=\"{campaign_tracks[0]}\"] .play-button')"
        ".getAttribute('aria-pressed') === 'true'"
    )
    other = page.locator(f'li.card[data-id="{campaign_tracks[1]}"] .play-button')
    other.click()
    page.wait_for_function(
        f"document.querySelector('li.card[data-id=\"{campaign_tracks[1]}\"] .play-button')"
        ".getAttribute('aria-pressed') === 'true'"
    )
    assert button.get_attribute("aria-pressed") == "false"
    other.click()
    page.wait_for_function(
        f"document.querySelector('li.card[data-id=\"{campaign_tracks[1]}\"] .play-button')"
        ".getAttribute('aria-pressed') === 'false'"
    )
    # Another campaign's filter does not list them; the card links to the asset page.
    page.goto(f"{server.url}/music?campaign_id=autumn")
    assert page.locator("li.card").count() == 0
    page.goto(f"{server.url}/music?campaign_id=spring")
    page.wait_for_function(
        "Array.from(document.querySelectorAll('canvas.card-wave')).every(c => c._peaks !== undefined)"
    )
    page.locator(f'li.card[data-id="{campaign_tracks[0]}"] .card-link').click()
    page.wait_for_url(f"**/assets/audio/{campaign_tracks[0]}")
    page.go_back()


def test_user_limited_to_another_client_cannot_see_the_asset(
    browser: Any, server: LiveServer, campaign_tracks: list[int]
) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "mediagen.cli",
            "users",
            "create",
            "--email",
            LIMITED_EMAIL,
            "--password",
            LIMITED_PASSWORD,
            "--client",
            "other",
        ],
        env=server.env(),
        cwd=server.data_dir.parent,
        check=True,
        capture_output=True,
        timeout=60,
    )
    ctx = new_context(browser, viewport={"width": 1280, "height": 900})
    pg = ctx.new_page()
    try:
        sign_in(pg, server, LIMITED_EMAIL, LIMITED_PASSWORD)
        assert pg.locator("li.card").count() == 0
        pg.goto(f"{server.url}/music?campaign_id=spring")
        assert pg.locator("li.card").count() == 0
        response = pg.goto(f"{server.url}/assets/audio/{campaign_tracks[0]}")
        assert response.status == 404
        assert pg.locator("h1").inner_text() == "Not found"
        assert pg.goto(f"{server.url}/campaigns/spring").status == 404
        pg.goto(f"{server.url}/clients")
        assert "Other Co" in pg.content() and "Acme Corp" not in pg.content()
        pg.goto(f"{server.url}/generate/music")
        assert pg.locator("#client_id option", has_text="Acme Corp").count() == 0
        assert pg.input_value("#client_id") == "other"
        shot(pg, "test_limited_user_404")
    finally:
        ctx.close()


def test_failed_generation_shows_the_error_and_retry_makes_a_new_one(page: Any, server: LiveServer) -> None:
    page.goto(f"{server.url}/generate/music")
    choose_model(page, "meta/musicgen")
    page.fill("#in-prompt", "warm folk guitar")
    page.fill("#in-duration", "5")
    page.select_option("#campaign_id", "spring")
    first = submit_and_open_asset(page, "audio")
    wait_status(page, "failed")
    error = page.locator("#asset-error")
    assert error.is_visible()
    assert "unreachable" in page.locator("#asset-error-text").inner_text()
    assert page.locator('[data-action="cancel"]').is_hidden()
    shot(page, "test_failed_asset")
    page.click('#asset-error [data-action="retry"]')
    page.wait_for_url(lambda url: url.rstrip("/").split("/")[-1] != str(first))
    second = int(page.url.rstrip("/").rsplit("/", 1)[1])
    assert second != first
    wait_status(page, "failed")
    with server.client() as c:
        again = c.get(f"/api/audio/{second}").json()
    assert again["model_id"] == "meta/musicgen" and again["campaign_id"] == "spring"
    page.goto(f"{server.url}/music?status=failed")
    card = page.locator(f'li.card[data-id="{second}"]')
    assert "unreachable" in card.locator(".card-error").inner_text()


def test_running_job_updates_live_and_can_be_canceled(page: Any, server: LiveServer) -> None:
    page.goto(f"{server.url}/generate/music?model=riffusion/riffusion")
    # Riffusion's prompt input is `prompt_a`: the form still treats it as the prompt.
    page.fill("#in-prompt_a", "funky synth solo over a slow groove")
    page.select_option("#campaign_id", "autumn")
    gen_id = submit_and_open_asset(page, "audio")
    wait_status(page, "processing")
    assert page.locator(".player-waiting").inner_text().strip() == "Generating…"
    elapsed = page.locator("#asset-elapsed")
    assert elapsed.inner_text().startswith("Running for ")
    first = elapsed.inner_text()
    page.wait_for_function(f"document.querySelector('#asset-elapsed').textContent !== {json.dumps(first)}")
    assert page.locator('[data-action="regenerate"]').is_hidden()
    assert page.locator("#download-link").is_hidden()
    shot(page, "test_running_asset")

    page.goto(f"{server.url}/music?campaign_id=autumn")
    card = page.locator(f'li.card[data-id="{gen_id}"]')
    assert "card-processing" in (card.get_attribute("class") or "")
    assert "Generating" in card.inner_text()
    assert card.get_attribute("data-refresh") == f"/assets/audio/{gen_id}/card"

    page.goto(f"{server.url}/assets/audio/{gen_id}")
    page.evaluate("window.__samePage = true")
    page.click('[data-action="cancel"]')
    wait_status(page, "canceled")
    assert page.evaluate("window.__samePage") is True
    assert page.locator("#asset-error-title").inner_text() == "Canceled"
    assert page.locator('#asset-error [data-action="retry"]').is_visible()
    assert page.locator('[data-action="cancel"]').is_hidden()
    assert page.locator(".player-waiting").count() == 0
    with server.client() as c:
        assert c.get(f"/api/audio/{gen_id}").json()["status"] == "canceled"


def test_generate_an_image_and_a_video(page: Any, server: LiveServer) -> None:
    page.goto(f"{server.url}/generate/images")
    choose_model(page, "synth/image")
    page.fill("#in-prompt", "pastel spring flowers on warm paper")
    page.select_option("#in-aspect_ratio", '"16:9"')
    page.select_option("#campaign_id", "spring")
    submit_and_open_asset(page, "image")
    wait_status(page, "completed")
    page.wait_for_function("document.querySelector('#player img').complete")
    assert page.evaluate("document.querySelector('#player img').naturalWidth") > 0
    shot(page, "test_image_asset")

    page.goto(f"{server.url}/generate/videos")
    choose_model(page, "synth/video")
    page.fill("#in-prompt", "slow pan over a neon city at night")
    page.fill("#in-duration", "2")
    page.click(".more-settings summary")
    page.select_option("#in-resolution", '"240p"')
    page.select_option("#campaign_id", "spring")
    gen_id = submit_and_open_asset(page, "video")
    wait_status(page, "completed")
    video = page.locator("#player video")
    assert video.get_attribute("src") == f"/api/videos/{gen_id}/data"
    page.wait_for_function("document.querySelector('#player video').readyState >= 1")
    assert abs(page.evaluate("document.querySelector('#player video').duration") - 2.0) <= 0.1
    with server.client() as c:
        assert c.get(f"/api/videos/{gen_id}").json()["parameters"]["resolution"] == "240p"
    page.goto(f"{server.url}/videos?campaign_id=spring")
    thumb = page.locator(f'li.card[data-id="{gen_id}"] img')
    thumb.wait_for()
    page.wait_for_function(f"document.querySelector('li.card[data-id=\"{gen_id}\"] img').naturalWidth > 0")


def test_upload_a_start_image_for_a_video(page: Any, server: LiveServer, tmp_path: Any) -> None:
    from PIL import Image

    logo = tmp_path / "logo.png"
    Image.new("RGB", (320, 180), (30, 90, 200)).save(logo)
    page.goto(f"{server.url}/generate/videos")
    choose_model(page, "synth/video")
    page.fill("#in-prompt", "logo reveal")
    page.fill("#in-duration", "1")
    page.set_input_files("#in-image-file", str(logo))
    page.wait_for_function("document.querySelector('#in-image').value !== ''")
    upload_id = int(page.eval_on_selector("#in-image", "el => el.value"))
    with server.client() as c:
        up = c.get(f"/api/images/{upload_id}").json()
    assert up["status"] == "completed" and up["model_id"] == "upload" and up["width"] == 320
    gen_id = submit_and_open_asset(page, "video")
    wait_status(page, "completed")
    with server.client() as c:
        assert c.get(f"/api/videos/{gen_id}").json()["parameters"]["image"] == upload_id


def test_keyboard_tab_to_the_prompt_and_press_enter(page: Any, server: LiveServer) -> None:
    # ?model= preselects: on this server the default music model is the (failing) routed MusicGen.
    page.goto(f"{server.url}/generate/music?model=synth/music")
    page.wait_for_selector("#in-prompt")
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "in-prompt":
            break
    else:
        raise AssertionError("the prompt is not reachable with Tab")
    page.keyboard.type("gentle lofi beat for a product demo")
    page.keyboard.press("Enter")
    page.wait_for_url("**/assets/audio/*")
    wait_status(page, "completed")


def test_validation_errors_show_beside_their_fields(page: Any, server: LiveServer) -> None:
    page.goto(f"{server.url}/generate/music")
    choose_model(page, "synth/music")
    page.fill("#in-prompt", "too long")
    page.fill("#in-duration", "500")
    page.click("#generate-submit")
    error = page.locator("#in-duration-error")
    error.wait_for()
    assert "300" in error.inner_text()
    assert error.get_attribute("role") == "alert"
    duration = page.locator("#in-duration")
    assert duration.get_attribute("aria-invalid") == "true"
    assert "in-duration-error" in (duration.get_attribute("aria-describedby") or "")
    assert page.url.endswith("/generate/music")
    page.fill("#in-duration", "3")
    page.fill("#in-prompt", "   ")
    page.click("#generate-submit")
    page.locator("#in-prompt-error").wait_for()
    assert page.locator("#in-duration-error").is_hidden()


def test_api_keys_create_copy_and_revoke(page: Any, server: LiveServer) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.goto(f"{server.url}/keys")
    page.fill("#name", "browser test key")
    page.check('input[name="clients"][value="acme"]')
    page.click("text=Create key")
    token = page.input_value("#new-key-value")
    assert token.startswith("mg_")
    page.click("[data-copy]")
    page.wait_for_function("document.querySelector('#copy-status').textContent.length > 0")
    assert page.evaluate("navigator.clipboard.readText()") == token
    with server.client(token) as c:
        assert c.get("/api/clients").json()["total"] == 1  # limited to acme
    row = page.locator("tr", has_text="browser test key")
    assert "Acme" in row.inner_text() or "acme" in row.inner_text()
    row.locator("button", has_text="Revoke").click()
    page.locator("#confirm-dialog").wait_for()
    page.click("#confirm-ok")
    page.wait_for_selector("tr.is-revoked", state="attached")
    assert "Revoked" in page.locator("tr", has_text="browser test key").inner_text()
    with server.client(token) as c:
        assert c.get("/api/clients").status_code == 401


def test_asset_delete_asks_first(page: Any, server: LiveServer) -> None:
    with server.client() as c:
        gen_id = c.post(
            "/api/v2/generate/image",
            json={"prompt": "to be deleted", "model": "synth/image", "client_id": "acme"},
        ).json()["id"]
    server.wait_for("images", gen_id)
    page.goto(f"{server.url}/assets/image/{gen_id}")
    page.click('[data-action="delete"]')
    page.click("#confirm-dialog button[value=cancel]")
    assert page.url.endswith(f"/assets/image/{gen_id}")
    page.click('[data-action="delete"]')
    page.click("#confirm-ok")
    page.wait_for_url("**/images")
    with server.client() as c:
        assert c.get(f"/api/images/{gen_id}").status_code == 404


def test_running_cards_refresh_themselves(page: Any, server: LiveServer) -> None:
    with server.client() as c:
        gen_id = c.post(
            "/api/v2/generate/audio",
            json={"prompt": "slow build", "model": "synth/music", "duration": 20, "client_id": "other"},
        ).json()["id"]
    page.goto(f"{server.url}/music?client_id=other")
    card = page.locator(f'li.card[data-id="{gen_id}"]')
    status = card.get_attribute("data-status")
    if status != "completed":  # the synth may already be done on a fast machine
        assert "card-completed" not in (card.get_attribute("class") or "")
    page.wait_for_selector(f'li.card[data-id="{gen_id}"][data-status="completed"]', timeout=DONE_TIMEOUT_MS)
    page.wait_for_selector(f'li.card[data-id="{gen_id}"] .play-button')


def test_no_horizontal_scroll_at_360px(
    browser: Any, server: LiveServer, admin_state: dict[str, Any], campaign_tracks: list[int]
) -> None:
    ctx = new_context(browser, storage_state=admin_state, viewport={"width": 360, "height": 780})
    pg = ctx.new_page()
    try:
        for path in (
            "/music?campaign_id=spring",
            "/generate/videos",
            f"/assets/audio/{campaign_tracks[0]}",
            "/campaigns/spring",
            "/campaigns",
            "/clients",
            "/keys",
            "/images",
        ):
            pg.goto(f"{server.url}{path}")
            pg.wait_for_load_state("load")
            width = pg.evaluate("document.scrollingElement.scrollWidth")
            assert width <= 361, f"{path} is {width}px wide at 360px"
        pg.goto(f"{server.url}/music?campaign_id=spring")
        shot(pg, "test_gallery_360")
    finally:
        ctx.close()


def test_docs_screenshots(
    browser: Any, server: LiveServer, admin_state: dict[str, Any], campaign_tracks: list[int]
) -> None:
    """The gallery and the asset page at desktop size, for the README (saved to test-artifacts/)."""
    ctx = new_context(browser, storage_state=admin_state, viewport={"width": 1280, "height": 800})
    pg = ctx.new_page()
    try:
        pg.goto(f"{server.url}/music?campaign_id=spring&status=completed")
        pg.wait_for_function(
            "Array.from(document.querySelectorAll('canvas.card-wave')).every(c => c._peaks !== undefined)"
        )
        pg.screenshot(path=str(ARTIFACTS / "gallery.png"))
        pg.goto(f"{server.url}/assets/audio/{campaign_tracks[1]}")
        pg.wait_for_function("document.querySelector('#player audio')?.readyState >= 1")
        pg.evaluate("document.querySelector('#player audio').currentTime = 1.5")
        pg.wait_for_timeout(150)
        pg.screenshot(path=str(ARTIFACTS / "asset-page.png"))
    finally:
        ctx.close()
    if os.environ.get("MEDIAGEN_UPDATE_DOCS"):
        for name in ("gallery.png", "asset-page.png"):
            shutil.copy(ARTIFACTS / name, ROOT / "docs" / name)
    assert (ARTIFACTS / "gallery.png").stat().st_size > 10_000

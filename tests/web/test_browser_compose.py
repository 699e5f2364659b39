"""Post-production in a real browser (Debian's Chromium via Playwright) against a live `mediagen serve`:
composing a spot on the compose page, mastering a track from its page, exporting a video for
channels, and the loudness badges and lineage links those leave on asset pages and cards.

One server and one browser serve the module; the source media are tiny uploads made here (a
second of video, an image, two seconds of music), so renders stay short on two cores.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import LiveServer, make_server
from tests.web.browser_kit import new_context, shot, signed_in_state
from tests.web.test_compose_pages import make_image, make_music, make_video

pytestmark = pytest.mark.browser

RENDER_TIMEOUT_MS = 120_000  # a 1080p render on a shared two-core machine


# fixtures -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    srv = make_server(tmp_path_factory.mktemp("web-post")).start()
    with srv.client() as c:
        for path, body in (
            ("/api/clients", {"id": "acme", "name": "Acme Corp"}),
            (
                "/api/campaigns",
                {"id": "spring", "client_id": "acme", "name": "Spring Launch", "status": "active"},
            ),
        ):
            r = c.post(path, json=body)
            assert r.status_code == 201, r.text
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def sources(server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, int]:
    """Finished assets to build from, uploaded over the API (setup, not what is tested)."""
    folder = Path(tmp_path_factory.mktemp("sources"))
    files = {
        "video": ("videos", make_video(folder / "wave.mp4"), "video/mp4"),
        "video2": ("videos", make_video(folder / "city.mp4"), "video/mp4"),
        "doomed": ("videos", make_video(folder / "doomed.mp4"), "video/mp4"),
        "image": ("images", make_image(folder / "logo.png"), "image/png"),
        "audio": ("audio", make_music(folder / "bed.wav", 2.0), "audio/wav"),
    }
    ids = {}
    with server.client() as c:
        for name, (path, file, mime) in files.items():
            r = c.post(
                f"/api/{path}/upload",
                params={"title": f"{name} source", "campaign_id": "spring"},
                content=file.read_bytes(),
                headers={"Content-Type": mime},
            )
            assert r.status_code in (200, 201), r.text
            ids[name] = r.json()["id"]
    return ids


@pytest.fixture(scope="module")
def admin_state(browser: Any, server: LiveServer) -> dict[str, Any]:
    return signed_in_state(browser, server, "/compose")


# helpers ------------------------------------------------------------------------------------
def add_clip(page: Any, kind: str, gen_id: int) -> None:
    before = page.locator("#timeline li.clip").count()
    page.click(f'[data-add-clip="{kind}"][data-id="{gen_id}"]')
    page.wait_for_function(f"document.querySelectorAll('#timeline li.clip').length === {before + 1}")


def clip_titles(page: Any) -> list[str]:
    return [t.strip() for t in page.locator("#timeline li.clip .clip-title strong").all_inner_texts()]


def submit_and_open(page: Any, kind: str) -> int:
    page.click("#compose-submit")
    page.wait_for_url(f"**/assets/{kind}/*")
    return int(page.url.rstrip("/").rsplit("/", 1)[1])


def wait_completed(page: Any) -> None:
    page.wait_for_selector("#asset-status.status-completed", timeout=RENDER_TIMEOUT_MS)


def api_item(server: LiveServer, path: str) -> dict[str, Any]:
    with server.client() as c:
        r = c.get(path)
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]


# tests --------------------------------------------------------------------------------------
def test_compose_a_spot_from_clips_and_music(page: Any, server: LiveServer, sources: dict[str, int]) -> None:
    v1, v2, img, doomed, music = (sources[k] for k in ("video", "video2", "image", "doomed", "audio"))
    page.goto(f"{server.url}/compose")
    assert page.locator("#compose-submit").inner_text() == "Master the audio"  # nothing chosen yet
    add_clip(page, "video", v1)
    add_clip(page, "image", img)
    add_clip(page, "video", v2)
    assert page.locator("#compose-submit").inner_text() == "Make the video"
    assert clip_titles(page) == [f"Video #{v1}", f"Image #{img}", f"Video #{v2}"]

    # Reorder with the keyboard-reachable buttons: focus follows the clip that moved.
    page.click('button[aria-label="Move clip 3 earlier"]')
    assert clip_titles(page) == [f"Video #{v1}", f"Video #{v2}", f"Image #{img}"]
    assert page.evaluate("document.activeElement.getAttribute('aria-label')") == "Move clip 2 earlier"
    assert f"Video #{v2} is now clip 2 of 3" in page.locator("#timeline-status").inner_text()
    page.click('button[aria-label^="Remove clip 1"]')
    assert clip_titles(page) == [f"Video #{v2}", f"Image #{img}"]
    add_clip(page, "video", v1)
    page.click('button[aria-label="Move clip 3 earlier"]')
    page.click('button[aria-label="Move clip 2 earlier"]')
    assert clip_titles(page) == [f"Video #{v1}", f"Video #{v2}", f"Image #{img}"]

    # The library filter finds a clip by its id.
    page.fill("#library-filter", f"#{img}")
    assert page.locator(f'.pick[data-kind="image"][data-id="{img}"]').is_visible()
    assert page.locator(f'.pick[data-kind="video"][data-id="{v1}"]').is_hidden()
    page.fill("#library-filter", "")

    page.fill("#clip-0-in", "-1")
    page.fill("#clip-0-out", "0.9")
    page.fill("#clip-2-duration", "1")
    page.check("#clip-2-zoom")
    page.check(f"#music-{music}")
    assert page.locator("#music-settings").is_visible()
    page.select_option("#music-mode", "duck")
    page.fill("#music-fade_out", "0.5")
    page.select_option("#transition", "crossfade")
    page.fill("#transition-duration", "0.3")
    page.check("#aspect-2")  # 9:16
    page.select_option("#fit", "pad")
    page.select_option("#background", "colour")
    page.fill("#length", "2")
    page.select_option("#campaign_id", "spring")
    assert page.input_value("#client_id") == "acme"
    assert "A 9:16 video from 3 clips" in page.locator("#compose-summary").inner_text()
    shot(page, "compose-page")

    # An error the API finds shows beside the field it names, and the page stays.
    page.click("#compose-submit")
    error = page.locator("#clip-0-in-error")
    error.wait_for()
    assert error.get_attribute("role") == "alert" and "0" in error.inner_text()
    assert page.get_attribute("#clip-0-in", "aria-invalid") == "true"
    assert page.url.endswith("/compose")
    page.fill("#clip-0-in", "0.2")
    assert error.is_hidden()

    # A clip deleted since the page loaded: the 404 names it, beside that clip.
    add_clip(page, "video", doomed)
    with server.client() as c:
        assert c.delete(f"/api/videos/{doomed}").status_code == 204
    page.click("#compose-submit")
    page.locator("#clip-3-error").wait_for()
    assert "not found" in page.locator("#clip-3-error").inner_text().lower()
    page.click('button[aria-label^="Remove clip 4"]')

    spot = submit_and_open(page, "video")
    item = api_item(server, f"/api/videos/{spot}")
    recipe = item["parameters"]
    assert [c.get("video_id") or c.get("image_id") for c in recipe["clips"]] == [v1, v2, img]
    assert recipe["clips"][0] == {"video_id": v1, "in": 0.2, "out": 0.9}
    assert recipe["clips"][2] == {"image_id": img, "duration": 1, "zoom": True}
    assert recipe["music"]["audio_id"] == music and recipe["music"]["mode"] == "duck"
    assert recipe["transition"] == {"type": "crossfade", "duration": 0.3}
    assert (recipe["aspect"], recipe["fit"], recipe["background"]) == ("9:16", "pad", "#000000")
    assert recipe["length"] == 2 and recipe["loudness"] == "social"
    assert item["campaign_id"] == "spring" and item["model_id"] == "post/compose"

    made_from = page.locator("#made-from").inner_text()
    for name in (f"Video #{v1}", f"Video #{v2}", f"Image #{img}", f"Track #{music}"):
        assert name in made_from
    page.click(f'#made-from a[href="/assets/audio/{music}"]')
    page.wait_for_url(f"**/assets/audio/{music}")
    assert page.locator(f'#used-in a[href="/assets/video/{spot}"]').count() == 1
    page.go_back()

    # Rendered: the player, the frame asked for, and the loudness panel filled in without a reload.
    page.evaluate("window.__samePage = true")
    wait_completed(page)
    assert page.evaluate("window.__samePage") is True
    page.wait_for_selector('#loudness-panel li[data-preset="social"] .verdict-meets')
    done = api_item(server, f"/api/videos/{spot}")
    assert (done["width"], done["height"]) == (1080, 1920)
    assert done["duration"] == pytest.approx(2.0, abs=0.05)
    page.wait_for_function("document.querySelector('#player video')?.readyState >= 1")


def test_master_a_track_from_its_page(page: Any, server: LiveServer, sources: dict[str, int]) -> None:
    music = sources["audio"]
    page.goto(f"{server.url}/assets/audio/{music}")
    page.click("#compose-link")
    page.wait_for_url(f"**/compose?audio_id={music}")
    assert page.is_checked(f"#music-{music}")
    assert page.locator("#timeline li.clip").count() == 0
    assert page.locator("#compose-submit").inner_text() == "Master the audio"
    assert page.locator("#aspect-1").is_hidden() and page.locator("#output_format").is_visible()
    assert page.input_value("#length") == "2"
    page.fill("#length", "")
    page.click("#compose-submit")
    page.locator("#length-error").wait_for()  # a master needs its length
    assert page.get_attribute("#length", "aria-invalid") == "true"
    page.fill("#length", "3")
    page.select_option("#loudness", "podcast")
    master = submit_and_open(page, "audio")
    item = api_item(server, f"/api/audio/{master}")
    assert item["model_id"] == "post/master"
    assert item["parameters"]["music"]["audio_id"] == music and item["parameters"]["length"] == 3
    wait_completed(page)
    page.wait_for_selector('#loudness-panel li[data-preset="podcast"] .verdict-meets')
    assert api_item(server, f"/api/audio/{master}")["duration"] == pytest.approx(3.0, abs=0.05)


def test_export_a_video_for_channels(page: Any, server: LiveServer, sources: dict[str, int]) -> None:
    video = sources["video"]
    page.goto(f"{server.url}/videos?campaign_id=spring")
    badge = page.locator(f'li.card[data-id="{video}"] .card-loudness .loud')
    assert "LUFS" in badge.inner_text() and "for social" in badge.inner_text()

    page.goto(f"{server.url}/assets/video/{video}")
    assert page.locator('#loudness-panel li[data-preset="broadcast_eu"] .verdict').count() == 1
    page.click('[data-action="export"]')
    dialog = page.locator("#export-dialog")
    assert dialog.is_visible()
    page.click("#export-submit")
    assert "at least one channel" in page.locator("#export-channels-error").inner_text()
    page.check("#channel-youtube")
    page.check("#channel-tiktok")
    page.click("#export-submit")
    page.wait_for_url("**/exports/*")
    export_id = int(page.url.rsplit("/", 1)[1])
    assert page.locator("table.renditions tbody tr").count() == 2
    assert page.locator('tr[data-channel="youtube"]').count() == 1

    # The table follows the renditions as they render, then offers the zip.
    page.evaluate("window.__samePage = true")
    page.wait_for_selector("#export-zip", timeout=2 * RENDER_TIMEOUT_MS)
    page.wait_for_selector('#export-live[data-running="false"]', timeout=2 * RENDER_TIMEOUT_MS)
    assert page.evaluate("window.__samePage") is True
    assert page.locator('tr[data-status="completed"]').count() == 2
    assert "1080 × 1920" in page.locator('tr[data-channel="tiktok"]').inner_text()
    zipped = page.request.get(f"{server.url}/api/exports/{export_id}/zip")
    assert zipped.status == 200
    names = zipfile.ZipFile(io.BytesIO(zipped.body())).namelist()
    assert sorted(n.split("-")[1] for n in names) == ["tiktok", "youtube"]
    with server.client() as c:
        listed = c.get(f"/api/exports/{export_id}").json()
    assert json.dumps(sorted(r["channel"] for r in listed["renditions"])) == '["tiktok", "youtube"]'


def test_post_production_pages_fit_a_phone(
    browser: Any, server: LiveServer, admin_state: dict[str, Any], sources: dict[str, int]
) -> None:
    ctx = new_context(browser, storage_state=admin_state, viewport={"width": 360, "height": 780})
    pg = ctx.new_page()
    try:
        pg.goto(f"{server.url}/compose?video_id={sources['video']}")
        pg.wait_for_selector("#timeline li.clip")
        for path in (f"/compose?video_id={sources['video']}", f"/assets/video/{sources['video']}"):
            pg.goto(f"{server.url}{path}")
            pg.wait_for_load_state("load")
            width = pg.evaluate("document.scrollingElement.scrollWidth")
            assert width <= 361, f"{path} is {width}px wide at 360px"
        shot(pg, "test_compose_360")
    finally:
        ctx.close()

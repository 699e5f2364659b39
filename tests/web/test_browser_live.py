"""Live pages in a real browser: a gallery and an asset page follow the event stream of a live
`mediagen serve` (no workers of its own) while a separate `mediagen worker` process, and this
test's own writes to the database, change the asset. Progress shows as it is reported, the asset
page switches to its player, the gallery shows a new asset and a finished one, all without a
reload and with the pages' polling standing down while the stream is open.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from mediagen.config import Settings
from mediagen.db.session import Database
from mediagen.generations.leases import Rows
from mediagen.generations.running import RowControl
from mediagen.vocabulary import Status
from tests.conftest import LiveServer, make_server
from tests.web.browser_kit import new_context, shot, signed_in_state

pytestmark = pytest.mark.browser
WAIT_MS = 60_000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    env = {"MEDIAGEN_RUN_CONSUMER": "false", "MEDIAGEN_EVENTS_POLL_SECONDS": "0.1"}
    srv = make_server(tmp_path_factory.mktemp("web-live"), **env).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def admin_state(browser: Any, server: LiveServer) -> dict[str, Any]:
    return signed_in_state(browser, server, "/music")


def generate(server: LiveServer, prompt: str) -> int:
    with server.client() as c:
        r = c.post("/api/v2/generate/audio", json={"prompt": prompt, "duration": 1})
    assert r.status_code == 202, r.text
    return int(r.json()["id"])


def connected(page: Any) -> None:
    page.wait_for_function("window.Mediagen && window.Mediagen.live && window.Mediagen.live.connected")


def test_pages_follow_progress_completion_and_new_assets_without_reloading(
    browser: Any, server: LiveServer, admin_state: dict[str, Any]
) -> None:
    first = generate(server, "first light")  # stays pending: nothing consumes the queue yet
    ctx = new_context(browser, storage_state=admin_state, viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    gallery, asset = ctx.new_page(), ctx.new_page()
    asset_reads: list[str] = []
    for pg in (gallery, asset):
        pg.on("pageerror", lambda exc: errors.append(str(exc)))
    asset.on(
        "request", lambda r: asset_reads.append(r.url) if r.url.endswith(f"/api/audio/{first}") else None
    )
    worker = None
    try:
        gallery.goto(f"{server.url}/music")
        asset.goto(f"{server.url}/assets/audio/{first}")
        for pg in (gallery, asset):
            connected(pg)
            pg.evaluate("window.__notReloaded = true")
        card = f'#gallery-grid li.card[data-id="{first}"]'
        assert gallery.get_attribute(card, "data-status") == "pending"

        # The worker's moves, made from this process: claimed, then progress as an engine reports it.
        settings = Settings(data_dir=server.data_dir)
        db = Database(settings.resolved_database_url)
        rows = Rows(settings, db)
        with db.write() as s:
            assert rows.claim(first, "test", session=s)
        gallery.wait_for_selector(f'{card}[data-status="processing"]', timeout=WAIT_MS)
        RowControl(rows, first).progress(0.42, "decoding")
        asset.wait_for_function("document.querySelector('#waiting-text').textContent.includes('42%')")
        assert "Decoding" in asset.text_content("#waiting-text")  # type: ignore[operator]
        assert asset.evaluate("document.querySelector('#asset-progress').value") == pytest.approx(0.42)
        gallery.wait_for_function(
            f"document.querySelector('{card} .live-percent')?.textContent === '42%'", timeout=WAIT_MS
        )
        # Back to the queue, and a real worker process takes it from there.
        assert rows.cas(first, (Status.PROCESSING,), status=Status.PENDING)
        db.dispose()
        worker = subprocess.Popen(
            [sys.executable, "-m", "mediagen.cli", "worker"],
            cwd=server.data_dir.parent,
            env=server.env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        asset.wait_for_selector("#player audio", timeout=WAIT_MS)
        gallery.wait_for_selector(f'{card}[data-status="completed"] .play-button', timeout=WAIT_MS)

        second = generate(server, "second wind")
        gallery.wait_for_selector(f'#gallery-grid li.card[data-id="{second}"]', timeout=WAIT_MS)
        gallery.wait_for_selector(
            f'#gallery-grid li.card[data-id="{second}"][data-status="completed"]', timeout=WAIT_MS
        )
        order = gallery.eval_on_selector_all(
            "#gallery-grid li.card", "cards => cards.map(c => +c.dataset.id)"
        )
        assert order[:2] == [second, first]  # newest first, where a reload would put it
        gallery.wait_for_function("document.querySelector('#gallery-summary').textContent.includes('of 2')")
        for pg in (gallery, asset):
            assert pg.evaluate("window.__notReloaded") is True
        # The asset page read its asset on events only (open, and each status move), not twice a second.
        assert len(asset_reads) < 12, asset_reads
        shot(gallery, "test_live_gallery")
        shot(asset, "test_live_asset")
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(20)
        ctx.close()
    assert not errors, f"JavaScript errors: {errors}"

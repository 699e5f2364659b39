"""What every browser test module shares: Debian's Chromium driven by Playwright (never a
downloaded browser), contexts that may evaluate scripts, screenshots in test-artifacts/.

Importing it skips the importing module where Chromium or Playwright is missing. The `browser`
and `page` fixtures are in tests/web/conftest.py; a module provides its own `server` and
`admin_state`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT

CHROMIUM = "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    pytest.skip(f"{CHROMIUM} is missing: apt-get install -y chromium", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

ARTIFACTS = ROOT / "test-artifacts"


def new_context(browser: Any, **kw: Any) -> Any:
    # Playwright's wait_for_function evaluates strings, which the pages' CSP (script-src 'self')
    # rightly forbids; the CSP itself is checked in test_pages.py.
    return browser.new_context(bypass_csp=True, **kw)


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


# The records most modules start from: one client with one campaign.
ACME_SPRING: tuple[tuple[str, dict[str, Any]], ...] = (
    ("/api/clients", {"id": "acme", "name": "Acme Corp"}),
    ("/api/campaigns", {"id": "spring", "client_id": "acme", "name": "Spring Launch"}),
)


def start_server(
    factory: pytest.TempPathFactory,
    name: str,
    records: tuple[tuple[str, dict[str, Any]], ...] = (),
    **env: str,
) -> Any:
    """`mediagen serve` for one module, with the clients and campaigns it needs created over the API."""
    from tests.conftest import make_server

    srv = make_server(factory.mktemp(name), **env).start()
    with srv.client() as c:
        for path, body in records:
            answer = c.post(path, json=body)
            assert answer.status_code == 201, answer.text
    return srv


def signed_in_state(browser: Any, server: Any, landing: str) -> dict[str, Any]:
    """The admin's session, made once through the sign-in form (landing on `landing`)."""
    ctx = new_context(browser)
    page = ctx.new_page()
    page.goto(f"{server.url}/login?next={landing}")
    page.fill("#email", server.admin_email or "")
    page.fill("#password", server.admin_password or "")
    page.click("button[type=submit]")
    page.wait_for_url(f"**{landing}")
    state = ctx.storage_state()
    ctx.close()
    return state  # type: ignore[no-any-return]

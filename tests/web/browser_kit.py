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

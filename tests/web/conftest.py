"""Fixtures of the browser test modules (see browser_kit.py): one Chromium per module, and a
page per test, signed in with the module's `admin_state`, that fails on any JavaScript error and
leaves a screenshot behind."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from tests.web.browser_kit import CHROMIUM, sync_api

    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield b
        b.close()


@pytest.fixture
def page(browser: Any, admin_state: dict[str, Any], request: pytest.FixtureRequest) -> Iterator[Any]:
    from tests.web.browser_kit import new_context, shot

    ctx = new_context(browser, storage_state=admin_state, viewport={"width": 1280, "height": 900})
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    yield pg
    shot(pg, request.node.name)
    ctx.close()
    assert not errors, f"JavaScript errors: {errors}"

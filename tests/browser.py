"""The browser tests' chromium: Debian's, headless, driven through Playwright, launched with
the same arguments everywhere (one place to change them)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
#: a browser test module's ``pytestmark``: marked ``browser``, skipped without chromium
MARKS = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason="needs Debian chromium at /usr/bin/chromium (apt-get install chromium)",
    ),
]


def launch(playwright: Any, *extra: str) -> Any:
    """Chromium launched by a running Playwright, with ``extra`` arguments after ours."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=[*ARGS, *extra])


@contextmanager
def chromium(*extra: str) -> Iterator[Any]:
    """A chromium of its own Playwright, closed afterwards."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch(playwright, *extra)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One chromium for the module's tests (each opens its own context)."""
    with chromium() as launched:
        yield launched

"""Headless Chromium for the dashboard tests: Debian's /usr/bin/chromium, driven by Playwright.

Playwright never downloads a browser here: it launches the system's Chromium
(`executable_path`), in a fresh temporary profile, with the flags that keep it off the network.
Where Chromium or Playwright is missing the browser tests skip, saying why, except on CI
(``CI=true``, set by .ci/run, which installs Chromium): there they fail.
"""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path(os.environ.get("SPACEACTORS_CHROMIUM", "/usr/bin/chromium"))
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 15_000  # the bound on every wait for the page


def require_browser() -> None:
    """Skip (locally) or fail (on CI) when headless Chromium or Playwright is missing."""
    missing = None
    if not CHROMIUM.exists():
        missing = f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            missing = "Playwright is not installed (pip install -e '.[test]')"
    if missing is None:
        return
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"the browser tests must run on CI, but {missing}; .ci/run installs both")
    pytest.skip(f"browser test: {missing}")


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium (a Playwright `Browser`), closed on exit."""
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=FLAGS, timeout=60_000
        )
        try:
            yield browser
        finally:
            browser.close()


def get_json(url: str, timeout: float = 5.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.load(response)

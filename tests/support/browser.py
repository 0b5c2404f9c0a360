"""Open a page in real headless Chromium (Debian's, driven by Playwright; no browser is
downloaded) with the network cut off; tests skip with the reason when either is absent."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


def chromium_path() -> str | None:
    return next((p for p in map(shutil.which, CHROMIUM_NAMES) if p), None)


def require_browser() -> str:
    """The Chromium executable, or skip the test saying what is missing."""
    path = chromium_path()
    if path is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("the playwright package is not installed (pip install -e '.[dev]')")
    return path


@dataclass
class Rendered:
    counts: dict[str, int]
    console_errors: list[str] = field(default_factory=list)
    blocked_requests: list[str] = field(default_factory=list)
    attributes: dict[str, list[str | None]] = field(default_factory=dict)


def render(
    page_file: Path, selectors: dict[str, str], attributes: dict[str, tuple[str, str]] | None = None
) -> Rendered:
    """Load ``page_file`` and count ``selectors``; ``attributes``: name → (selector,
    attribute) to collect from every match."""
    from playwright.sync_api import Route, sync_playwright

    executable = require_browser()
    result = Rendered(counts={})

    def offline(route: Route) -> Any:
        if route.request.url.startswith("file:"):
            return route.continue_()
        result.blocked_requests.append(route.request.url)
        return route.abort()

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=executable, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = browser.new_page()
            page.on(
                "console",
                lambda m: result.console_errors.append(m.text) if m.type == "error" else None,
            )
            page.on("pageerror", lambda e: result.console_errors.append(str(e)))
            page.route("**/*", offline)
            page.goto(page_file.as_uri(), wait_until="load")
            for name, selector in selectors.items():
                result.counts[name] = page.locator(selector).count()
            for name, (selector, attribute) in (attributes or {}).items():
                result.attributes[name] = [
                    el.get_attribute(attribute) for el in page.locator(selector).all()
                ]
        finally:
            browser.close()
    return result

"""Browser-test fixtures: the real server as a subprocess and Debian's chromium driven by Playwright.

The server runs exactly as a user starts it (`python server.py serve --demo …`), with a short
progress tick and a short demo "now watching" schedule where a test needs to see it change.
Chromium is the system one (`/usr/bin/chromium`); nothing is downloaded.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from playwright import sync_api as playwright_api

from tests.helpers.browser import CHROMIUM, CHROMIUM_FLAGS, DashboardServer, REPO, SCREENSHOTS, SCRUBBED_ENV, SERVER_START_SECONDS, WatchedPage, free_port, load_every_section, nothing, save_screenshot, scroll_through, start_server, watch  # noqa: F401


@pytest.fixture(scope="package")
def dashboard(tmp_path_factory) -> Iterator[DashboardServer]:
    """The bundled demo account with something playing for the whole session (banner visible)."""
    workdir = tmp_path_factory.mktemp("dashboard")
    server = start_server(workdir, args=["--demo", "--data-dir", str(workdir / "data")],
                          env={"WATCHING_TICK_SECONDS": "1", "DEMO_WATCHING_SCHEDULE": "episode:3600,idle:60"})
    yield server
    server.stop()


@pytest.fixture
def watching_server(tmp_path) -> Iterator[DashboardServer]:
    """The demo account playing 6 s episodes with 6 s pauses and a tick every half second."""
    server = start_server(tmp_path / "watching", args=["--demo", "--data-dir", str(tmp_path / "data")],
                          env={"WATCHING_TICK_SECONDS": "0.5", "DEMO_WATCHING_SCHEDULE": "episode:6,idle:6"})
    yield server
    server.stop()


# Package scope, not session: Playwright's sync API keeps an asyncio loop marked as running
# until it stops, and the Tornado tests that run after this package need to start their own.
@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium")
    manager = playwright_api.sync_playwright().start()
    chromium = manager.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
    yield chromium
    chromium.close()
    manager.stop()


@pytest.fixture
def open_page(browser) -> Iterator[Any]:
    """`open_page(url, width=, height=, color_scheme=, before_load=, every_section=)` -> WatchedPage,
    loaded and rendered (every section, unless `every_section=False`: then only the first screen);
    `before_load(page)` runs before navigation (to listen to WebSockets, say)."""
    contexts = []

    def opener(url: str, *, width: int = 1440, height: int = 900, color_scheme: str = "dark",
               tolerate=nothing, ready_timeout_ms: int = 20000, before_load=None,
               every_section: bool = True) -> WatchedPage:
        context = browser.new_context(viewport={"width": width, "height": height}, color_scheme=color_scheme,
                                      locale="en-US", timezone_id="UTC")
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15000)
        watched = watch(page, tolerate)
        if before_load is not None:
            before_load(page)
        page.goto(url)
        page.wait_for_selector("html[data-ready='true']", timeout=ready_timeout_ms)
        if every_section:
            load_every_section(page)
        return watched

    yield opener
    for context in contexts:
        context.close()



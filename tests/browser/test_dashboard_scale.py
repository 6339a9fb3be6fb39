"""The dashboard with a 50× generated account (~200k history rows, 12.5k movies): it renders in
pages, stays free of errors and answers searches. Bounded: one account, one server, one browser."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.helpers.browser import LAYOUT_SHIFT_OBSERVER, REPO, layout_shift, start_server

PAGE_SIZE = 24
CLS_LIMIT = 0.02
GENERATE_SECONDS = 240
START_SECONDS = 180  # loading ~200k history rows takes a while on a shared 2-core machine


@pytest.fixture(scope="module")
def scale_server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scale50")
    account = folder / "data"
    subprocess.run([sys.executable, str(REPO / "server.py"), "demo", "--out", str(account), "--scale", "50",
                    "--no-images"], cwd=folder, check=True, timeout=GENERATE_SECONDS, capture_output=True)
    server = start_server(folder / "run", args=["--data-dir", str(account)],
                          env={"WATCHING_TICK_SECONDS": "1", "DEMO_WATCHING_SCHEDULE": "episode:3600,idle:60"},
                          start_seconds=START_SECONDS)
    yield server
    server.stop()


def test_scale_50_account_renders_in_pages_without_errors(scale_server, open_page):
    # Generated --no-images: the page learns there are no pictures and asks for none.
    watched = open_page(scale_server.url, ready_timeout_ms=60000)
    page = watched.page
    ready_ms = page.evaluate("performance.getEntriesByName('dashboard-ready')[0].startTime")
    print(f"\nscale 50: all sections rendered {ready_ms:.0f} ms after navigation start")
    assert ready_ms > 0  # the ready mark exists; how fast is the bench's business (bench/dashboard.py)

    history = scale_server.get_json(f"/api/trakt/user/history?type=shows&page=1&limit={PAGE_SIZE}")
    total = history["metadata"]["total"]
    assert total > 100_000
    panel = page.locator("#history [role=tabpanel]:not([hidden])")
    cards = panel.locator(".card").count()
    status = re.fullmatch(r"Showing ([\d,]+) of ([\d,]+) plays", panel.locator(".grid-status").inner_text())
    assert status and status.group(2) == f"{total:,}"
    # A few pages at most (binges fold into one card each), never the whole history.
    assert 12 <= cards <= int(status.group(1).replace(",", "")) <= 6 * PAGE_SIZE
    # Only pages were fetched, never a whole collection file.
    collection_requests = [url for url in watched.requests if "/api/trakt/user/history" in url
                           or "/api/trakt/user/watched" in url or "/api/trakt/user/watchlist" in url]
    assert collection_requests and all("page=" in url and f"limit={PAGE_SIZE}" in url for url in collection_requests)
    # The document stays small however big the account is.
    assert page.evaluate("document.getElementsByTagName('*').length") < 6000

    # Every poster falls back to its text frame (no images in this account).
    assert page.locator(".poster.is-missing").count() > 0

    comments = scale_server.get_json("/api/trakt/user/comments?page=1&limit=1")["metadata"]["total"]
    assert page.locator("#comments .comment").count() == min(comments, 12)
    # Comments and list items too: pages only, never the whole (megabyte) file.
    paged_requests = [url for url in watched.requests if "/api/trakt/user/comments" in url
                      or re.search(r"/api/trakt/user/lists/[^/?]+", url)]
    assert any("/comments" in url for url in paged_requests) and any("/lists/" in url for url in paged_requests)
    assert all("page=" in url for url in paged_requests), paged_requests

    movie = scale_server.get_json("/api/trakt/user/watched?type=movies&page=1&limit=1")["data"][0]["movie"]
    page.locator("input[type=search]").fill(movie["title"])
    page.locator("#search-results .search-row-title a", has_text=movie["title"]).first.wait_for(timeout=15000)

    page.locator("#history .btn-more").click()
    page.wait_for_function(
        f"() => document.querySelectorAll('#history [role=tabpanel]:not([hidden]) .card').length > {cards}")
    watched.assert_clean()


@pytest.mark.parametrize("width,height,mobile", [(390, 844, True), (1440, 900, False)], ids=["phone", "desktop"])
def test_scale_50_account_loads_without_moving(scale_server, browser, width, height, mobile):
    context = browser.new_context(viewport={"width": width, "height": height}, is_mobile=mobile, has_touch=mobile,
                                  locale="en-US", timezone_id="UTC")
    try:
        page = context.new_page()
        page.add_init_script(LAYOUT_SHIFT_OBSERVER)
        page.goto(scale_server.url)
        page.wait_for_selector("html[data-ready='true']", timeout=60000)
        page.wait_for_timeout(500)
        shift = layout_shift(page)
        assert shift["total"] <= CLS_LIMIT, f"layout shift {shift['total']:.4f}: {shift['entries']}"
    finally:
        context.close()

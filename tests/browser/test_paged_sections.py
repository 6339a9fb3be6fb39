"""Comments and the items of a list are fetched a page at a time (README "Dashboard"): no request the
dashboard makes asks for a whole comments or list-items file, and *Load more* shows the next page.

Expected values come from the bundled demo account's files on disk, which the `--demo` server serves."""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, urlsplit

from services import resources
from services.data import layout

COMMENTS_PAGE = 12  # what the comments section shows at a time
ITEMS_PAGE = 24  # what a list's items grid shows at a time
PAGED_PATH = re.compile(r"/api/trakt/user/(comments|lists/[^/]+)/?")


def demo_rows(endpoint: str) -> list:
    return json.loads((resources.demo_data_dir() / endpoint).read_text())["data"]


def created_at(row: dict) -> str:
    return (row["comment"] if isinstance(row.get("comment"), dict) else row)["created_at"]


def paged_route_requests(urls: list[str]) -> list[tuple[str, dict]]:
    """(path, query) of every request to the comments or to a list's items."""
    found = []
    for url in urls:
        parts = urlsplit(url)
        if PAGED_PATH.fullmatch(parts.path):
            found.append((parts.path, {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}))
    return found


def test_comments_and_list_items_are_only_ever_fetched_in_pages(dashboard, open_page):
    watched = open_page(dashboard.url)
    page = watched.page
    lists = demo_rows(layout.LISTS)
    comments = demo_rows(layout.COMMENTS)
    assert len(comments) > 2 * COMMENTS_PAGE, "the demo account has comments for three pages"

    # Every list opened in turn: its first page of items, nothing more.
    cards = page.locator("#lists .list-card")
    grid = page.locator("#list-items")
    for n, entry in enumerate(lists):
        cards.nth(n).click()
        page.wait_for_function(
            f"() => document.querySelector('#list-items .list-title')?.textContent === {entry['name']!r}")
        rows = demo_rows(layout.list_items_endpoint(entry["ids"]["slug"]))
        if rows:
            grid.locator(".card").first.wait_for()
        assert grid.locator(".card").count() == min(len(rows), ITEMS_PAGE), entry["name"]
        assert grid.locator(".btn-more").is_visible() == (len(rows) > ITEMS_PAGE), entry["name"]

    # A list with more than a page: Load more brings its next items.
    longest = max(range(len(lists)), key=lambda n: lists[n]["item_count"])
    items = demo_rows(layout.list_items_endpoint(lists[longest]["ids"]["slug"]))
    assert len(items) > ITEMS_PAGE, "the demo account has a list longer than one page"
    cards.nth(longest).click()
    page.wait_for_function(
        f"() => document.querySelector('#list-items .list-title')?.textContent === {lists[longest]['name']!r}")
    grid.locator(".card").first.wait_for()
    grid.locator(".btn-more").click()
    page.wait_for_function(f"() => document.querySelectorAll('#list-items .card').length === {len(items)}")
    titles = grid.locator(".card-title > :first-child").all_inner_texts()
    assert titles == [(row.get("movie") or row.get("show") or {})["title"] for row in items]

    # The comments: the first page, then each Load more the next one, in the file's order.
    section = page.locator("#comments")
    stamps = section.locator(".comment-foot time")
    assert stamps.evaluate_all("els => els.map(el => el.getAttribute('datetime'))") == \
        [created_at(row) for row in comments[:COMMENTS_PAGE]]
    for shown in range(2 * COMMENTS_PAGE, len(comments) + COMMENTS_PAGE, COMMENTS_PAGE):
        section.locator(".btn-more").click()
        page.wait_for_function(f"() => document.querySelectorAll('#comments .comment').length === "
                               f"{min(shown, len(comments))}")
    assert stamps.evaluate_all("els => els.map(el => el.getAttribute('datetime'))") == \
        [created_at(row) for row in comments]
    assert section.locator(".btn-more").is_hidden()
    assert section.locator(".grid-status").inner_text() == f"Showing {len(comments)} of {len(comments)}"

    requests = paged_route_requests(watched.requests)
    whole = [path for path, query in requests if "page" not in query]
    assert not whole, f"whole files fetched: {whole}"
    comment_pages = sorted(int(q["page"]) for path, q in requests if path.endswith("/comments"))
    assert comment_pages == list(range(1, -(-len(comments) // COMMENTS_PAGE) + 1))
    assert all(q["limit"] == str(COMMENTS_PAGE) for path, q in requests if path.endswith("/comments"))
    list_requests = [(path, q) for path, q in requests if "/lists/" in path]
    assert {path.rsplit("/", 1)[1] for path, _ in list_requests} == {entry["ids"]["slug"] for entry in lists}
    assert all(q["limit"] == str(ITEMS_PAGE) for _, q in list_requests)
    watched.assert_clean()

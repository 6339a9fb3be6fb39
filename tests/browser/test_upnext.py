"""The "Up next" row and the "Upcoming" list in headless Chromium, on the demo account."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from tests.helpers.browser import start_server

FEED_TOKEN = "browser-feed-token-42"


@pytest.fixture(scope="module")
def feed_server(tmp_path_factory):
    """The demo with CALENDAR_TOKEN set: the page says how to subscribe, never with the token."""
    workdir = tmp_path_factory.mktemp("upnext-feed")
    server = start_server(workdir, args=["--demo", "--data-dir", str(workdir / "data")],
                          env={"CALENDAR_TOKEN": FEED_TOKEN, "TIMEZONE": "UTC"})
    yield server
    server.stop()


def expected_label(day: str, start: str) -> str:
    offset = (date.fromisoformat(day) - date.fromisoformat(start)).days
    if offset == 0:
        return "Today"
    if offset == 1:
        return "Tomorrow"
    if offset < 7:
        return date.fromisoformat(day).strftime("%A")  # Chromium runs with an English locale here
    return None


def test_up_next_shows_one_card_per_show_in_progress_in_the_apis_order(dashboard, open_page):
    page = open_page(dashboard.url).page
    rows = dashboard.get_json("/api/trakt/user/up-next")["data"]
    assert rows, "the demo has shows in progress"
    cards = page.locator("#upnext-body .upnext-card")
    assert cards.count() == len(rows)
    titles = [t.strip() for t in page.locator("#upnext-body .upnext-title").all_inner_texts()]
    assert titles == [row["show"]["title"] for row in rows]
    first = rows[0]
    code = f"S{first['next_episode']['season']:02d}E{first['next_episode']['number']:02d}"
    assert code in cards.first.locator(".upnext-episode").inner_text()
    left = first["aired_left"]
    assert cards.first.locator(".upnext-left").inner_text() == f"{left} episode{'' if left == 1 else 's'} left"
    bar = cards.first.locator("[role=progressbar]")
    assert bar.get_attribute("aria-valuenow") == str(first["watched"])


def test_upcoming_is_grouped_by_day_with_today_and_tomorrow(dashboard, open_page):
    page = open_page(dashboard.url).page
    calendar = dashboard.get_json("/api/trakt/user/calendar?days=14")
    start = calendar["metadata"]["start_date"]
    days = list(dict.fromkeys(row["date"] for row in calendar["data"]))
    assert days, "the demo always has an upcoming fortnight"
    shown = [t.strip() for t in page.locator("#upcoming-body .upcoming-day-title").all_inner_texts()]
    assert len(shown) == len(days)
    for label, day in zip(shown, days):
        wanted = expected_label(day, start)
        if wanted is not None:
            assert label == wanted, (label, day)
        else:
            assert label not in ("Today", "Tomorrow") and str(int(day[8:])) in label
    items = page.locator("#upcoming-body .upcoming-item")
    assert items.count() == len(calendar["data"])
    assert date.fromisoformat(days[-1]) < date.fromisoformat(start) + timedelta(days=14)
    # without CALENDAR_TOKEN there is nothing to subscribe to
    assert page.locator("#upcoming-body .upcoming-feed").count() == 0


def test_the_subscribe_hint_shows_when_a_calendar_token_is_set_but_never_the_token(feed_server, open_page):
    page = open_page(feed_server.url).page
    hint = page.locator("#upcoming-body .upcoming-feed")
    hint.wait_for()
    assert "/calendar.ics?token=" in hint.inner_text()
    assert FEED_TOKEN not in page.content()


def test_up_next_shows_the_posters_the_image_index_holds(dashboard, open_page):
    rows = dashboard.get_json("/api/trakt/user/up-next")["data"]
    indexed = set(dashboard.get_json("/api/images/available")["shows"]["posters"])
    expected = [row["show"]["title"] for row in rows if row["show"]["ids"].get("tmdb") in indexed]
    assert expected, "the demo has artwork for shows in progress"
    page = open_page(dashboard.url).page
    page.locator("#upnext").scroll_into_view_if_needed()
    page.wait_for_load_state("networkidle")
    loaded = page.locator("#upnext-body .upnext-card").evaluate_all("""cards => cards
        .filter(card => card.querySelector('.poster img')?.naturalWidth > 0)
        .map(card => card.querySelector('.upnext-title').textContent.trim())""")
    assert loaded == expected

"""The dashboard in headless Chromium against the real server on the demo account.

Every test loads `GET /` from a `trakt-watch serve --demo` process, waits for the page's own
"everything has its first data" signal (`<html data-ready="true">`) and compares what is on
screen with what the API returns.
"""

from __future__ import annotations

import json
import re

from tests.helpers.browser import load_every_section, save_screenshot, scroll_through, watch

PAGE_SIZE = 24  # cards per page of history/watchlist/watched (static/js/collections.js)
COMMENTS_PAGE = 12


def fmt(n: int) -> str:
    return f"{n:,}"


def duration(minutes: int) -> str:
    days, rest = divmod(minutes, 1440)
    return f"{days}d {rest // 60}h"


def card_titles(panel) -> list[str]:
    return [t.strip() for t in panel.locator(".card-title a, .card-title .title-text").all_inner_texts()]


def open_tab(page, section: str, tab: str):
    """Select a tab of a section and return its panel once the first page is rendered."""
    page.locator(f"#{section} [role=tab][data-tab={tab}]").click()
    panel = page.locator(f"#{section} [role=tabpanel]:not([hidden])")
    panel.locator(".card, .state-empty").first.wait_for()
    return panel


# --- load ----------------------------------------------------------------------------------
def test_page_loads_without_console_errors_or_failed_requests(dashboard, open_page):
    watched = open_page(dashboard.url)
    page = watched.page
    scroll_through(page)
    watched.assert_clean()
    # The favicon and the stylesheet/modules were requested and answered (no 404 above).
    assert any(url.endswith("/static/favicon.svg") for url in watched.requests)
    assert any(url.endswith("/static/js/app.js") for url in watched.requests)
    # The demo ships some titles without artwork: the page knows (GET /api/images/available), asks
    # nothing for them and shows their text fallback.
    assert watched.tolerated == []
    assert any(url.endswith("/api/images/available") for url in watched.requests)
    assert page.locator(".poster.is-missing .poster-fallback-title").count() > 0


def test_profile_header_shows_account_and_demo_badge(dashboard, open_page):
    page = open_page(dashboard.url).page
    profile = dashboard.get_json("/api/trakt/user/profile")["data"]
    index = dashboard.get_json("/api/trakt")
    header = page.locator("#profile-body")
    assert header.locator("h1").inner_text().startswith(profile["name"])
    username = header.locator(".profile-username a")
    assert username.inner_text() == f"@{profile['username']}"
    assert username.get_attribute("href") == f"https://trakt.tv/users/{profile['ids']['slug']}"
    assert header.locator(".badge-demo").inner_text().lower() == "demo account"
    assert index["metadata"]["source"] == "demo"
    assert "Joined " in header.inner_text()
    assert header.locator("#data-as-of").get_attribute("datetime") == index["metadata"]["last_updated"]
    assert page.locator(".avatar img").get_attribute("alt")


def test_stat_cards_and_charts_match_the_api(dashboard, open_page):
    page = open_page(dashboard.url).page
    stats = dashboard.get_json("/api/trakt/user/stats")["data"]
    activity = dashboard.get_json("/api/trakt/user/activity")

    def stat(name: str) -> str:
        return page.locator(f"[data-stat={name}]").inner_text()

    assert stat("movies") == fmt(stats["movies"]["watched"])
    assert stat("shows") == fmt(stats["shows"]["watched"])
    assert stat("episodes") == fmt(stats["episodes"]["watched"])
    assert stat("plays") == fmt(stats["movies"]["plays"] + stats["episodes"]["plays"])
    assert stat("time") == duration(stats["movies"]["minutes"] + stats["episodes"]["minutes"])
    assert stat("ratings") == fmt(stats["ratings"]["total"])

    distribution = stats["ratings"]["distribution"]
    values = page.locator("#chart-ratings .bar-value").all_inner_texts()
    assert values == [fmt(distribution[str(r)]) for r in range(1, 11)]
    assert page.locator("#chart-ratings .bar-label").all_inner_texts() == [str(r) for r in range(1, 11)]

    months = activity["months"]
    assert len(months) == 24
    assert page.locator("#chart-months .mc-col").count() == 24
    # Each column's tooltip carries that month's numbers.
    last = months[-1]
    tip = page.locator("#chart-months .mc-col").last.get_attribute("title")
    assert f"{fmt(last['movies'])} movies, {fmt(last['episodes'])} episodes" in tip

    counts = activity["heatmap"]["counts"]
    cells = page.locator("#chart-heatmap .heatmap .hm-cell")
    assert cells.count() == 7 * 24
    busiest = max(max(row) for row in counts)
    assert f"({fmt(busiest)})" in page.locator("#chart-heatmap .hm-busiest").inner_text()
    assert activity["timezone"] in page.locator("#heatmap-zone").inner_text()
    # Screen readers get the numbers as tables.
    assert page.locator("#chart-heatmap table tbody tr").count() == 7


def test_collections_render_pages_from_the_api(dashboard, open_page):
    page = open_page(dashboard.url).page

    def api_page(collection: str, kind: str, number: int = 1) -> dict:
        return dashboard.get_json(f"/api/trakt/user/{collection}?type={kind}&page={number}&limit={PAGE_SIZE}")

    # Recently watched episodes: first tab, newest first, season poster asked for. A binge of
    # one season shares a card; read in order, the cards account for every history row shown.
    panel = page.locator("#history [role=tabpanel]:not([hidden])")
    total = api_page("history", "shows")["metadata"]["total"]
    status = re.fullmatch(r"Showing ([\d,]+) of ([\d,]+) plays", panel.locator(".grid-status").inner_text())
    assert status and status.group(2) == fmt(total)
    shown = int(status.group(1).replace(",", ""))
    assert shown % PAGE_SIZE == 0 or shown == total
    rows = [row for number in range(1, shown // PAGE_SIZE + 1) for row in api_page("history", "shows", number)["data"]]
    cards = panel.locator(".card")
    assert cards.count() >= 12
    sizes = [int(n) for n in cards.evaluate_all("els => els.map(e => e.dataset.episodes)")]
    assert sum(sizes) == len(rows) == shown
    titles, position = card_titles(panel), 0
    for title, size in zip(titles, sizes):
        group = rows[position:position + size]
        assert {row["show"]["title"] for row in group} == {title}
        assert len({row["episode"]["season"] for row in group}) == 1
        position += size
    first = rows[0]
    code = f"S{first['episode']['season']:02d}E"
    assert panel.locator(".card-sub").first.inner_text().startswith(code)
    assert f"&season={first['episode']['season']}" in panel.locator(".poster img").first.get_attribute("src")
    assert page.locator("#history [data-tab=episodes] .tab-count").inner_text() == fmt(total)

    # "Load more" appends further pages from the API.
    panel.locator(".btn-more").click()
    page.wait_for_function(f"""() => document.querySelector(
        '#history [role=tabpanel]:not([hidden]) .grid-status').textContent.startsWith('Showing ') &&
        !document.querySelector('#history [role=tabpanel]:not([hidden]) .grid-status').textContent
          .startsWith('Showing {fmt(shown)} ')""")
    assert sum(int(n) for n in cards.evaluate_all("els => els.map(e => e.dataset.episodes)")) > shown

    # Movies are one card per play, a page at a time.
    movies = open_tab(page, "history", "movies")
    assert card_titles(movies) == [row["movie"]["title"] for row in api_page("history", "movies")["data"]]
    movie_total = api_page("history", "movies")["metadata"]["total"]
    assert movies.locator(".grid-status").inner_text() == f"Showing {PAGE_SIZE} of {fmt(movie_total)}"
    movies.locator(".btn-more").click()
    page.wait_for_function(
        "() => document.querySelectorAll('#history [role=tabpanel]:not([hidden]) .card').length === 48")
    second = api_page("history", "movies", 2)
    assert card_titles(movies)[PAGE_SIZE:] == [row["movie"]["title"] for row in second["data"]]
    assert movies.locator(".grid-status").inner_text() == f"Showing 48 of {fmt(movie_total)}"

    watchlist = page.locator("#watchlist [role=tabpanel]:not([hidden])")
    rows = api_page("watchlist", "movies")["data"]
    assert card_titles(watchlist) == [row["movie"]["title"] for row in rows]
    assert watchlist.locator(".rank").all_inner_texts() == [f"#{row['rank']}" for row in rows]
    notes = [row["notes"] for row in rows if row.get("notes")]
    assert watchlist.locator(".card-notes").all_inner_texts() == notes
    shows = open_tab(page, "watchlist", "shows")
    assert card_titles(shows) == [row["show"]["title"] for row in api_page("watchlist", "shows")["data"]]

    watched = page.locator("#watched [role=tabpanel]:not([hidden])")
    rows = api_page("watched", "movies")["data"]
    assert card_titles(watched) == [row["movie"]["title"] for row in rows]
    assert watched.locator(".plays").all_inner_texts() == [f"{fmt(row['plays'])}×" for row in rows]
    shows = open_tab(page, "watched", "shows")
    rows = api_page("watched", "shows")["data"]
    assert card_titles(shows) == [row["show"]["title"] for row in rows]
    episodes_watched = sum(len(season["episodes"]) for season in rows[0]["seasons"])
    assert shows.locator(".card-sub").first.inner_text().startswith(f"{fmt(episodes_watched)} episode")


def test_lists_show_cards_then_items(dashboard, open_page):
    page = open_page(dashboard.url).page
    lists = dashboard.get_json("/api/trakt/user/lists")["data"]
    cards = page.locator("#lists .list-card")
    assert cards.locator(".list-name").all_inner_texts() == [entry["name"] for entry in lists]
    assert cards.first.get_attribute("aria-pressed") == "true"

    def items_of(entry: dict) -> list[str]:
        rows = dashboard.get_json(f"/api/trakt/user/lists/{entry['ids']['slug']}")["data"]
        return [(row.get("movie") or row.get("show"))["title"] for row in rows][:PAGE_SIZE]

    grid = page.locator("#list-items")
    assert grid.locator(".list-title").inner_text() == lists[0]["name"]
    assert card_titles(grid) == items_of(lists[0])

    cards.nth(1).click()
    page.wait_for_function(f"() => document.querySelector('#list-items .list-title')?.textContent === {lists[1]['name']!r}")
    grid.locator(".card").first.wait_for()
    assert card_titles(grid) == items_of(lists[1])
    assert cards.nth(1).get_attribute("aria-pressed") == "true"
    assert cards.first.get_attribute("aria-pressed") == "false"


def test_comments_mark_reviews_and_blur_spoilers_until_revealed(dashboard, open_page):
    page = open_page(dashboard.url).page
    comments = dashboard.get_json("/api/trakt/user/comments")["data"]
    shown = comments[:COMMENTS_PAGE]
    section = page.locator("#comments")
    assert section.locator(".comment").count() == len(shown)

    def flag(row: dict, name: str) -> bool:
        return bool((row.get("comment") if isinstance(row.get("comment"), dict) else row).get(name))

    assert section.locator(".comment.is-review").count() == sum(flag(row, "review") for row in shown)
    spoilers = section.locator(".spoiler:not(.spoiler-inline)")
    assert spoilers.count() == sum(flag(row, "spoiler") for row in shown)
    assert spoilers.count() > 0, "the demo account has spoiler comments to show"

    # A real button beside the blurred text; the text is inert (no focus, no screen reader) until shown.
    spoiler = spoilers.first
    text = spoiler.locator(":scope > .spoiler-text")
    assert "blur" in text.evaluate("el => getComputedStyle(el).filter")
    assert text.evaluate("el => el.inert") is True
    button = spoiler.locator(":scope > button.spoiler-button")
    assert button.evaluate("el => el.nextElementSibling.classList.contains('spoiler-text')")
    button.focus()
    page.keyboard.press("Enter")
    assert "is-revealed" in spoiler.get_attribute("class")
    assert text.evaluate("el => getComputedStyle(el).filter") == "none"
    assert text.evaluate("el => el.inert") is False
    assert spoiler.locator(":scope > button.spoiler-button").count() == 0

    if len(comments) > COMMENTS_PAGE:
        section.locator(".btn-more").click()
        page.wait_for_function(
            f"() => document.querySelectorAll('#comments .comment').length === {min(len(comments), 2 * COMMENTS_PAGE)}")


def test_every_title_links_to_trakt_imdb_tmdb_and_letterboxd(dashboard, open_page):
    page = open_page(dashboard.url).page
    movie = dashboard.get_json(f"/api/trakt/user/watched?type=movies&page=1&limit={PAGE_SIZE}")["data"][0]["movie"]
    card = page.locator("#watched .card").first
    ids = movie["ids"]
    hrefs = {a.inner_text(): a.get_attribute("href") for a in card.locator(".ext-links a").all()}
    assert hrefs == {
        "Trakt": f"https://trakt.tv/movies/{ids['slug']}",
        "IMDb": f"https://www.imdb.com/title/{ids['imdb']}/",
        "TMDB": f"https://www.themoviedb.org/movie/{ids['tmdb']}",
        "Letterboxd": f"https://letterboxd.com/imdb/{ids['imdb']}/",
    }
    assert card.locator(".card-title a").get_attribute("href") == f"https://trakt.tv/movies/{ids['slug']}"
    # Every card and search row title is a link when the title has ids.
    assert page.locator(".card-title .title-text").count() == 0
    show_link = page.locator("#history .card-title a").first.get_attribute("href")
    assert show_link.startswith("https://trakt.tv/shows/")


# --- search --------------------------------------------------------------------------------
def test_search_finds_a_demo_title_as_you_type(dashboard, open_page):
    watched = open_page(dashboard.url)
    page = watched.page
    movie = dashboard.get_json("/api/trakt/user/watched?type=movies&page=1&limit=1")["data"][0]["movie"]
    title = movie["title"]
    box = page.locator("input[type=search]")
    box.click()
    box.press_sequentially(title.lower(), delay=40)
    results = page.locator("#search-results")
    row = results.locator(".search-row", has=page.locator(".search-row-title a", has_text=title)).first
    row.wait_for()
    assert results.is_visible()
    searches = [url for url in watched.requests if "/api/trakt/search" in url]
    assert 0 < len(searches) < len(title), "typing is debounced: fewer requests than keystrokes"

    expected = dashboard.get_json(f"/api/trakt/search?q={title.lower().replace(' ', '+')}&type=all&limit=40")
    api_row = next(r for r in expected["results"]["movies"] if r["movie"]["title"] == title)
    badges = row.locator(".search-sources .badge").all_inner_texts()
    list_names = [entry["name"] for entry in api_row.get("lists", [])]
    for source in api_row["sources"]:
        if source == "list" and list_names:
            assert set(list_names) <= set(badges)  # a list shows by name
        else:
            assert source.capitalize() in badges
    assert fmt(expected["total_results"]) in results.locator(".search-summary").inner_text()

    page.select_option("#search-type", "shows")
    page.wait_for_function("() => !document.querySelector('#search-results .search-group[aria-label=Movies]')")
    assert results.locator(".search-group[aria-label=Movies]").count() == 0

    box.press("Escape")
    results.wait_for(state="hidden")
    watched.assert_clean()


# --- now watching --------------------------------------------------------------------------
def test_now_watching_banner_appears_advances_and_hides(watching_server, open_page):
    frames = []

    def listen(page):
        page.on("websocket", lambda ws: ws.on("framereceived", lambda payload: frames.append(json.loads(payload))))

    watched = open_page(watching_server.url, before_load=listen)
    page = watched.page
    banner = page.locator("#now-watching")
    bar = page.locator("#now-watching [role=progressbar]")
    assert page.locator("#live-indicator").get_attribute("data-state") in ("live", "connecting")
    page.wait_for_selector("#live-indicator[data-state=live]")

    # Catch an episode with time left to watch its bar move: if the phase ends first, take the next.
    for _ in range(3):
        banner.wait_for(state="visible", timeout=20000)
        before = float(bar.get_attribute("aria-valuenow"))
        outcome = page.wait_for_function(f"""() => {{
            if (document.querySelector('#now-watching').hidden) return 'hidden';
            const now = Number(document.querySelector('#nw-progress').getAttribute('aria-valuenow'));
            return now > {before} ? 'advanced' : false;
        }}""", timeout=8000).json_value()
        if outcome == "advanced":
            break
    assert outcome == "advanced", "the progress bar never moved while something played"
    assert bar.get_attribute("aria-valuemin") == "0"
    assert bar.get_attribute("aria-valuemax") == "100"
    assert page.locator("#nw-title").inner_text()
    value = bar.get_attribute("aria-valuenow")
    assert re.fullmatch(r"\d{1,3}\.\d", value), value
    assert re.fullmatch(r"\d{1,3}% — (\d+ h )?\d+ min left", bar.get_attribute("aria-valuetext"))
    assert re.fullmatch(r"S\d+E\d+ - .+|Movie", page.locator("#nw-subtitle").inner_text())
    # The state came over the socket, and so did the ticks (every 0.5 s here).
    kinds = [frame.get("type") for frame in frames]
    assert "watching" in kinds and "tick" in kinds
    tick = next(frame["data"] for frame in frames if frame["type"] == "tick")
    assert set(tick) >= {"percentage", "elapsed_seconds", "remaining_seconds"}

    banner.wait_for(state="hidden", timeout=20000)
    watched.assert_clean()


def test_socket_drop_shows_offline_polls_and_reconnects(dashboard, browser):
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-US")
    try:
        page = context.new_page()
        attempts = []

        def route(ws):
            # The first two connections are dropped at once; the third reaches the server.
            attempts.append(ws.url)
            if len(attempts) <= 2:
                ws.close(code=1011, reason="test: dropped")
            else:
                ws.connect_to_server()

        page.route_web_socket(re.compile(r".*/ws/watching$"), route)
        with page.expect_request(lambda request: request.url.endswith("/api/watching")):
            page.goto(dashboard.url)
            page.wait_for_function("""() => {
                const el = document.querySelector('#live-indicator');
                return el.dataset.state === 'offline' && el.textContent.includes('Offline');
            }""")
        # While the socket is down the banner is kept current by polling GET /api/watching.
        page.wait_for_function("() => !document.querySelector('#now-watching').hidden")
        # The backoff retries and a later connection goes through.
        page.wait_for_selector("#live-indicator[data-state=live]", timeout=15000)
        assert len(attempts) >= 3
    finally:
        context.close()


# --- images, layout, keyboard -------------------------------------------------------------------
def test_posters_lazy_load_with_fixed_frames_and_text_fallback(dashboard, open_page):
    watched = open_page(dashboard.url)
    page = watched.page
    first_frame = page.locator("#history .poster").first
    box_before = first_frame.bounding_box()
    scroll_through(page)
    box_after = first_frame.bounding_box()
    assert (box_before["width"], box_before["height"]) == (box_after["width"], box_after["height"])

    images = page.locator(".poster img")
    assert images.count() > 50
    assert set(images.evaluate_all("els => els.map(e => e.loading)")) == {"lazy"}
    assert all(alt.endswith("poster") for alt in images.evaluate_all("els => els.map(e => e.alt)"))
    assert all("/api/images?" in src for src in images.evaluate_all("els => els.map(e => e.getAttribute('src'))"))
    widths = page.locator(".poster.is-loaded img").evaluate_all("els => els.map(e => e.naturalWidth)")
    assert len(widths) >= 20 and all(w > 0 for w in widths)
    # Frames keep the 2:3 placeholder shape whether the picture came or not.
    ratio = box_after["height"] / box_after["width"]
    assert abs(ratio - 1.5) < 0.02
    missing = page.locator(".poster.is-missing")
    assert missing.count() > 0 and missing.locator("img").count() == 0  # never requested, never a 404
    assert missing.first.locator(".poster-fallback-title").inner_text().strip()
    watched.assert_clean()


def test_phone_viewport_has_no_horizontal_scroll_and_screenshots_are_saved(dashboard, open_page):
    desktop = open_page(dashboard.url, width=1440, height=900)
    scroll_through(desktop.page)
    save_screenshot(desktop.page, "dashboard-desktop")
    light = open_page(dashboard.url, width=1440, height=900, color_scheme="light")
    assert light.page.evaluate("getComputedStyle(document.body).backgroundColor") != \
        desktop.page.evaluate("getComputedStyle(document.body).backgroundColor")
    save_screenshot(light.page, "dashboard-desktop-light")

    for width, height, name in ((390, 844, "dashboard-phone"), (360, 740, "dashboard-phone-360")):
        phone = open_page(dashboard.url, width=width, height=height)
        scroll_through(phone.page)
        scroll_width = phone.page.evaluate("document.documentElement.scrollWidth")
        assert scroll_width <= width, f"{name}: page is {scroll_width}px wide in a {width}px viewport"
        path = save_screenshot(phone.page, name)
        assert path.stat().st_size > 10_000
        phone.assert_clean()
    desktop.assert_clean()


def test_keyboard_reaches_skip_link_tabs_and_search(dashboard, open_page):
    page = open_page(dashboard.url).page
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip-link"
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"
    tab = page.locator("#watchlist [role=tab][data-tab=movies]")
    tab.focus()
    page.keyboard.press("ArrowRight")
    shows_tab = page.locator("#watchlist [role=tab][data-tab=shows]")
    assert shows_tab.get_attribute("aria-selected") == "true"
    assert page.evaluate("document.activeElement.dataset.tab") == "shows"
    page.locator("#watchlist [role=tabpanel]:not([hidden]) .card").first.wait_for()
    # The search box is a labelled <input type=search>.
    assert page.locator("label[for=search-input]").count() == 1


def test_a_failing_request_shows_an_inline_error_with_retry(dashboard, browser):
    """One endpoint failing leaves a message in its own section (not a blank one) and Retry works."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-US")
    try:
        page = context.new_page()
        failing = {"activity": True}

        def route(route):
            if failing["activity"]:
                route.fulfill(status=503, content_type="application/json",
                              body='{"error": "Activity statistics are not ready yet"}')
            else:
                route.continue_()

        page.route(re.compile(r".*/api/trakt/user/activity$"), route)
        watched = watch(page, tolerate=lambda url: url.endswith("/api/trakt/user/activity"))
        page.goto(dashboard.url)
        page.wait_for_selector("html[data-ready='true']")
        load_every_section(page)
        error = page.locator("#chart-months-body .state-error")
        assert "Activity statistics are not ready yet" in error.inner_text()
        assert page.locator("#chart-heatmap-body .state-error").count() == 1
        # The rest of the page is unaffected.
        assert page.locator("#stats-cards .stat-card").count() == 6
        assert page.locator("#history .card").count() >= 12

        failing["activity"] = False
        error.get_by_role("button", name="Retry").click()
        page.locator("#chart-months-body .mc-col").first.wait_for()
        assert page.locator("#chart-months-body .mc-col").count() == 24
        watched.assert_clean()
        assert any(t.endswith("/api/trakt/user/activity") for t in watched.tolerated), "the 503 was seen"
    finally:
        context.close()

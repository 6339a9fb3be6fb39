"""The year view (/year/#YYYY) in headless Chromium against the demo account: the numbers on screen
are the API's, on a phone and a desktop, dark and light."""

from __future__ import annotations

import pytest

from tests.helpers.browser import save_screenshot, scroll_through


def fmt(n: int) -> str:
    return f"{n:,}"


def duration(minutes: int) -> str:
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    return f"{hours}h {mins}m" if hours else f"{mins}m"


@pytest.mark.parametrize("width,height,scheme", [(1440, 900, "dark"), (390, 844, "light"), (1440, 900, "light"),
                                                 (390, 844, "dark")])
def test_the_year_view_shows_the_api_figures(dashboard, open_page, width, height, scheme):
    everything = dashboard.get_json("/api/trakt/user/insights")
    year = everything["years"][1]  # a whole past year
    document = dashboard.get_json(f"/api/trakt/user/insights?year={year}")
    watched = open_page(f"{dashboard.url}year/#{year}", width=width, height=height, color_scheme=scheme)
    page = watched.page
    scroll_through(page)
    assert page.locator("#year-heading").inner_text() == f"{year} in review"
    totals = document["totals"]
    big = {key: page.locator(f".year-big-item[data-total={key}] dd").inner_text()
           for key in ("plays", "time", "movies", "shows", "episodes", "rewatches", "streak")}
    assert big == {"plays": fmt(totals["plays"]), "time": duration(totals["minutes"]), "movies": fmt(totals["movies"]),
                   "shows": fmt(totals["shows"]), "episodes": fmt(totals["episodes"]),
                   "rewatches": fmt(totals["rewatches"]), "streak": fmt(document["streaks"]["longest"]["days"])}
    # Every day of the year is a cell carrying that day's plays.
    cells = page.locator(".year-day[data-date]")
    assert cells.count() in (365, 366)
    shown = dict(zip(cells.evaluate_all("cells => cells.map(c => c.dataset.date)"),
                     cells.evaluate_all("cells => cells.map(c => Number(c.dataset.plays))")))
    assert {day: plays for day, plays in shown.items() if plays} == document["days"]
    titles = page.locator("#top-shows .year-top-title").all_inner_texts()
    assert titles == [row["show"]["title"] for row in document["top_shows"]]
    assert page.locator("#top-movies .year-top-title").all_inner_texts() == [
        row["movie"]["title"] for row in document["top_movies"]]
    assert page.locator(".year-ratings-summary").get_attribute("data-ratings") == str(document["ratings"]["count"])
    # The charts' numbers are in tables a screen reader reads (the bars are hidden from it).
    captions = page.locator(".visually-hidden table caption").all_text_contents()
    assert {"Plays per month", "Time per genre", "Plays per decade of release"} <= set(captions)
    # The calendar's days, one row per day with plays, in a table anyone can open.
    assert page.locator(".year-days table").count() == 0  # built on first opening
    page.locator(".year-days summary").click()
    day_rows = page.locator(f".year-days table:has(caption:text-is('Plays per day in {year}')) tbody tr")
    day_rows.first.wait_for()  # (the toggle event comes after the click)
    assert day_rows.count() == len(document["days"])
    assert sum(int(n.replace(",", "")) for n in day_rows.locator("td").all_inner_texts()) == sum(document["days"].values())
    month_rows = page.locator(".visually-hidden table:has(caption:text-is('Plays per month')) tbody tr")
    assert month_rows.count() == 12
    # One column, nothing wider than the screen.
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    watched.assert_clean()
    save_screenshot(page, f"year-{width}-{scheme}")


def test_the_picker_switches_to_all_time_and_back(dashboard, open_page):
    everything = dashboard.get_json("/api/trakt/user/insights")
    watched = open_page(f"{dashboard.url}year/")
    page = watched.page
    latest = everything["years"][0]
    assert page.locator("#year-heading").inner_text() == f"{latest} in review"
    options = page.locator("#year-select option").evaluate_all("options => options.map(o => o.value)")
    assert options == [str(y) for y in everything["years"]] + ["all"]
    page.select_option("#year-select", "all")
    page.locator("#year-heading:text-is('All time')").wait_for()  # (the page's CSP forbids wait_for_function)
    plays = page.locator(".year-big-item[data-total=plays] dd").inner_text()
    assert plays == fmt(everything["totals"]["plays"])
    assert page.locator(".year-calendar").count() == 0  # a calendar is per year
    page.select_option("#year-select", str(latest))
    page.locator(f"#year-heading:text-is('{latest} in review')").wait_for()
    assert page.locator("#main").get_attribute("aria-busy") == "false"
    assert page.locator(".year-calendar").count() == 1
    watched.assert_clean()


def test_a_year_without_plays_shows_zeros_and_the_header_links_to_the_view(dashboard, open_page):
    page = open_page(f"{dashboard.url}year/#2001").page
    assert page.locator(".year-big-item[data-total=plays] dd").inner_text() == "0"
    assert page.locator("#top-shows").count() == 0 and page.locator(".state-empty").count() >= 2
    home = open_page(dashboard.url).page
    assert home.locator("a[href='/year/']").count() >= 1


def test_printed_on_a4_portrait_every_card_fits_a_page_and_the_picker_is_gone(dashboard, open_page, tmp_path):
    year = dashboard.get_json("/api/trakt/user/insights")["years"][1]
    # A4 is 210 x 297 mm; with 12 mm margins the printable box is about 703 x 1031 CSS pixels.
    page = open_page(f"{dashboard.url}year/#{year}", width=703, height=1031, color_scheme="light").page
    scroll_through(page)
    page.emulate_media(media="print")
    assert page.locator("#year-select").is_hidden()
    assert page.evaluate("document.documentElement.scrollWidth") <= 703
    heights = page.locator(".year-card").evaluate_all("cards => cards.map(c => c.getBoundingClientRect().height)")
    assert heights and max(heights) < 1031  # so `break-inside: avoid` can keep each card whole
    pdf = page.pdf(path=str(tmp_path / "year.pdf"), format="A4", print_background=True)
    assert pdf.startswith(b"%PDF") and pdf.count(b"/Type /Page") >= 2


def test_the_plays_per_month_chart_links_each_of_its_years_to_the_year_view(dashboard, open_page):
    months = dashboard.get_json("/api/trakt/user/activity")["months"]
    years = sorted({m["month"][:4] for m in months if m["movies"] + m["episodes"]})
    assert len(years) >= 2, "the demo's last 24 months span several years"
    watched = open_page(dashboard.url, every_section=False)
    page = watched.page
    links = page.locator("#chart-months figcaption a")
    assert links.evaluate_all("links => links.map(a => a.getAttribute('href'))") == [f"/year/#{y}" for y in years]
    # Each says where it leads to a screen reader too, and is reachable from the keyboard.
    for year in years:
        page.get_by_role("link", name=f"{year} in review", exact=True).wait_for()
    earliest = page.get_by_role("link", name=f"{years[0]} in review", exact=True)
    earliest.focus()  # (scrolled to, it brings sections near enough to load)
    page.wait_for_load_state("networkidle")  # leaving the page would abort what it still fetches
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/year/#{years[0]}")
    page.locator(f"#year-heading:text-is('{years[0]} in review')").wait_for()
    plays = page.locator(".year-big-item[data-total=plays] dd").inner_text()
    document = dashboard.get_json(f"/api/trakt/user/insights?year={years[0]}")
    assert plays == fmt(document["totals"]["plays"])
    assert page.locator("#year-select").input_value() == years[0]
    watched.assert_clean()


def test_the_year_view_paints_its_first_screen_small_and_builds_the_tables_on_approach(dashboard, open_page):
    page = open_page(f"{dashboard.url}year/", width=390, height=844).page
    assert page.evaluate("document.getElementsByTagName('*').length") <= 1500
    assert page.locator("table:has(caption:text-is('Plays per decade of release'))").count() == 0  # far below
    scroll_through(page)
    assert page.locator("table:has(caption:text-is('Plays per decade of release'))").count() == 1

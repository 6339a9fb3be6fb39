"""The dashboard and the year view as a phone and a desktop see them: nothing moves during a cold
load (layout shift ≤ 0.02), and axe-core finds no accessibility violation in any view, light or dark."""

from __future__ import annotations

import pytest

from tests.helpers.browser import LAYOUT_SHIFT_OBSERVER, axe_violations, layout_shift, load_every_section, scroll_through

CLS_LIMIT = 0.02
VIEWPORTS = {"phone": {"width": 390, "height": 844, "mobile": True},
             "desktop": {"width": 1440, "height": 900, "mobile": False}}


@pytest.fixture
def fresh_page(browser):
    """`fresh_page(viewport, color_scheme)`: a page in a new context (nothing cached), with the
    layout-shift observer installed before anything loads. CSP bypassed so axe can be injected."""
    contexts = []

    def opener(viewport: str, color_scheme: str = "dark"):
        size = VIEWPORTS[viewport]
        context = browser.new_context(
            viewport={"width": size["width"], "height": size["height"]}, is_mobile=size["mobile"],
            has_touch=size["mobile"], color_scheme=color_scheme, locale="en-US", timezone_id="UTC", bypass_csp=True)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15000)
        page.add_init_script(LAYOUT_SHIFT_OBSERVER)
        return page

    yield opener
    for context in contexts:
        context.close()


def assert_steady(page, what: str) -> None:
    shift = layout_shift(page)
    assert shift["total"] <= CLS_LIMIT, f"{what}: layout shift {shift['total']:.4f} > {CLS_LIMIT}: {shift['entries']}"


@pytest.mark.parametrize("viewport", ["phone", "desktop"])
def test_a_cold_load_and_a_scroll_to_the_end_move_nothing(dashboard, fresh_page, viewport):
    page = fresh_page(viewport)
    page.goto(dashboard.url)
    page.wait_for_selector("html[data-ready='true']")
    page.wait_for_timeout(500)  # late pictures and the first progress ticks
    assert_steady(page, f"{viewport}, first screen")
    # The sections built as the reader nears them must not push what is on screen either: a
    # reader scrolling down half a screen at a time, to the end.
    step = VIEWPORTS[viewport]["height"] // 2
    y = 0
    while y < page.evaluate("document.documentElement.scrollHeight - innerHeight"):
        y += step
        page.evaluate(f"window.scrollTo(0, {y})")
        page.wait_for_timeout(150)
    page.wait_for_selector(".section-lazy:not([data-loaded])", state="detached")
    assert_steady(page, f"{viewport}, scrolled to the end")


def test_the_first_screen_is_small_and_the_rest_waits_for_the_reader(dashboard, fresh_page):
    page = fresh_page("phone")
    page.goto(dashboard.url)
    page.wait_for_selector("html[data-ready='true']")
    assert page.evaluate("document.getElementsByTagName('*').length") <= 1500
    # The comments are far below the first screen: not fetched, not built.
    assert page.locator("#comments .comment").count() == 0
    assert page.locator("#comments").get_attribute("data-loaded") is None
    load_every_section(page)
    assert page.locator("#comments .comment").count() > 0


def other_views(page):
    """Every view beyond the first: each collection tab, a list, a revealed spoiler, search results."""
    for tab in page.locator("[role=tab][aria-selected=false]").all():
        tab.click()
        page.locator("[role=tabpanel]:not([hidden]) .paged").last.wait_for()
        yield f"tab {tab.get_attribute('id')}"
    lists = page.locator("#lists .list-card")
    if lists.count() > 1:
        lists.nth(1).click()
        page.locator("#list-items .card").first.wait_for()
        yield "second list"
    page.locator("#comments .spoiler-button").first.click()
    yield "a revealed spoiler"
    page.locator("input[type=search]").fill("the")
    page.locator("#search-results .search-row").first.wait_for()
    yield "search results"


@pytest.mark.parametrize("color_scheme", ["dark", "light"])
@pytest.mark.parametrize("viewport", ["phone", "desktop"])
def test_axe_finds_no_violation_in_any_view(dashboard, fresh_page, viewport, color_scheme):
    page = fresh_page(viewport, color_scheme)
    page.goto(dashboard.url)
    page.wait_for_selector("html[data-ready='true']")
    load_every_section(page)
    assert page.locator("#comments .spoiler-button").count() > 0, "the demo account has spoilers to check"
    problems = {"every section": axe_violations(page)}
    for view in other_views(page):
        problems[view] = axe_violations(page)
    found = {view: rules for view, rules in problems.items() if rules}
    assert not found, f"{viewport}, {color_scheme}: " + "; ".join(f"{view}: {rules}" for view, rules in found.items())


# Which shifted nodes lie inside the up next section (LAYOUT_SHIFT_OBSERVER names them only).
SHIFTS_INSIDE_UPNEXT = """
window.__upnextShifts = [];
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    for (const source of entry.sources || []) {
      if (source.node && source.node.closest && source.node.closest("#upnext")) {
        window.__upnextShifts.push(source.node.id || source.node.className || source.node.nodeName);
      }
    }
  }
}).observe({ type: "layout-shift", buffered: true });
"""


def assert_up_next_is_populated(page, dashboard) -> None:
    """The demo account has both, so the section really was filled in on screen."""
    rows = dashboard.get_json("/api/trakt/user/up-next")["data"]
    assert rows and page.locator("#upnext-body .upnext-card").count() == len(rows)
    assert page.locator("#upcoming-body .upcoming-item").count() > 0


@pytest.mark.parametrize("viewport", ["phone", "desktop"])
def test_up_next_and_upcoming_arrive_without_moving_anything(dashboard, fresh_page, viewport):
    """A cold load, then the reader scrolls down to up next and upcoming (half a screen at a time)."""
    page = fresh_page(viewport)
    page.goto(dashboard.url)
    page.wait_for_selector("html[data-ready='true']")
    page.wait_for_timeout(300)
    if viewport == "phone":  # a desktop's first screen reaches it
        assert page.locator("#upnext").get_attribute("data-loaded") is None, "built only when the reader nears it"
    target = page.locator("#upnext").evaluate("section => section.getBoundingClientRect().bottom + scrollY")
    y = 0
    while y < target:
        y += VIEWPORTS[viewport]["height"] // 2
        page.evaluate(f"window.scrollTo(0, {y})")
        page.wait_for_timeout(150)
    page.wait_for_selector("#upnext[data-loaded='true']", state="attached")
    page.wait_for_timeout(500)  # its posters
    assert_up_next_is_populated(page, dashboard)
    assert_steady(page, f"{viewport}, up next and upcoming")


@pytest.mark.parametrize("viewport", ["phone", "desktop"])
def test_up_next_keeps_its_place_when_the_reader_jumps_to_it(dashboard, fresh_page, viewport):
    """Straight to the section before its data is in (a fling): the up next row fills exactly the
    room kept for it, so the Upcoming heading and list below it stay where they were. (How long
    the upcoming list is cannot be known before it arrives: what lies below it may move.)"""
    page = fresh_page(viewport)
    page.add_init_script(SHIFTS_INSIDE_UPNEXT)
    page.goto(dashboard.url)
    page.wait_for_selector("html[data-ready='true']")
    page.wait_for_timeout(300)
    page.locator("#upnext").evaluate("section => section.scrollIntoView()")
    page.wait_for_selector("#upnext[data-loaded='true']", state="attached")
    page.wait_for_timeout(500)
    assert_up_next_is_populated(page, dashboard)
    assert page.evaluate("window.__upnextShifts") == []


def year_views(page, years):
    """The views of /year/: the latest year (the default), all time, an earlier year."""
    scroll_through(page)
    yield f"{years[0]} (default)"
    page.locator(".year-days summary").click()
    page.locator(".year-days table").wait_for()
    yield f"{years[0]}, every day as a table"
    for value, heading in (("all", "All time"), (str(years[-1]), f"{years[-1]} in review")):
        page.select_option("#year-select", value)
        page.locator(f"#year-heading:text-is('{heading}')").wait_for()
        page.wait_for_selector("#main[aria-busy='false']")
        scroll_through(page)  # the charts' tables are built as they come near
        yield value


@pytest.mark.parametrize("viewport", ["phone", "desktop"])
def test_a_cold_load_of_the_year_view_moves_nothing(dashboard, fresh_page, viewport):
    page = fresh_page(viewport)
    page.goto(f"{dashboard.url}year/")
    page.wait_for_selector("html[data-ready='true']")
    page.wait_for_timeout(500)  # the top titles' posters
    assert page.locator(".year-day[data-date]").count() >= 365, "the year was drawn"
    assert_steady(page, f"{viewport}, year view")
    step = VIEWPORTS[viewport]["height"] // 2
    y = 0
    while y < page.evaluate("document.documentElement.scrollHeight - innerHeight"):
        y += step
        page.evaluate(f"window.scrollTo(0, {y})")
        page.wait_for_timeout(100)
    page.wait_for_load_state("networkidle")
    assert_steady(page, f"{viewport}, year view scrolled to the end")


@pytest.mark.parametrize("color_scheme", ["dark", "light"])
@pytest.mark.parametrize("viewport", ["phone", "desktop"])
def test_axe_finds_no_violation_in_the_year_view(dashboard, fresh_page, viewport, color_scheme):
    years = dashboard.get_json("/api/trakt/user/insights")["years"]
    assert len(years) >= 2, "the demo account has several years to show"
    page = fresh_page(viewport, color_scheme)
    page.goto(f"{dashboard.url}year/")
    page.wait_for_selector("html[data-ready='true']")
    problems = {view: axe_violations(page) for view in year_views(page, years)}
    found = {view: rules for view, rules in problems.items() if rules}
    assert not found, f"{viewport}, {color_scheme}: " + "; ".join(f"{view}: {rules}" for view, rules in found.items())

"""Query parameters of the mirror's routes (README "API"): history, watched, watchlist, comments, list items,
search, insights, up next, the calendar and its feed.

Declared once here; handlers/data.py parses with them and services/ops/openapi.py documents them."""

from __future__ import annotations

from services.data.insights import YEAR_MAX, YEAR_MIN
from services.data.search import DEFAULT_LIMIT, MAX_LIMIT
from services.query import Param, Query

TYPES = ("movies", "shows", "all")
PAGE_MAX = 1_000_000
PAGE_LIMIT_MAX = 1000
# Paging starts when either `page` or `limit` is given; the other then takes its default.
PAGE_DEFAULT = 1
PAGE_LIMIT_DEFAULT = 50
SEARCH_QUERY_MAX = 200

PAGE = Param("page", "Page number (1-based); with it the answer holds `limit` items and paging metadata "
                     f"(default {PAGE_DEFAULT} when `limit` is given).",
             type="integer", minimum=1, maximum=PAGE_MAX)
LIMIT = Param("limit", f"Items per page (default {PAGE_LIMIT_DEFAULT} when `page` is given).",
              type="integer", minimum=1, maximum=PAGE_LIMIT_MAX)
# A list-shaped file answered whole, or a page of it (comments, the items of a list).
PAGED = Query((PAGE, LIMIT))

COLLECTION = Query((
    Param("type", "movies or shows: that file; all (default): both as {movies, shows}.",
          choices=TYPES, default="all"),
    PAGE,
    LIMIT,
))


def paging(query: dict) -> tuple[int, int] | None:
    """(page, limit) of a parsed PAGED or COLLECTION query; None: the whole file was asked for."""
    page, limit = query["page"], query["limit"]
    if page is None and limit is None:
        return None
    return page or PAGE_DEFAULT, limit or PAGE_LIMIT_DEFAULT


SEARCH = Query((
    Param("q", "Words to find; case- and accent-insensitive. Blank or white space only: 400.",
          required=True, max_length=SEARCH_QUERY_MAX, strip=True,
          missing_message="Missing search query: q must not be empty"),
    Param("type", "Which kind of title to return.", choices=TYPES, default="all"),
    Param("limit", "At most this many rows per kind.", type="integer", minimum=1, maximum=MAX_LIMIT,
          default=DEFAULT_LIMIT),
))

INSIGHTS = Query((
    Param("year", f"A calendar year ({YEAR_MIN}-{YEAR_MAX}) in the configured TIMEZONE; left out: all time. "
                  "A year without plays answers zeros.",
          type="integer", minimum=YEAR_MIN, maximum=YEAR_MAX),
))

CALENDAR_DAYS_DEFAULT = 14
CALENDAR_DAYS_MAX = 90
CALENDAR_DAYS = Param("days", f"How many days from today (in TIMEZONE), 1-{CALENDAR_DAYS_MAX}.", type="integer",
                      minimum=1, maximum=CALENDAR_DAYS_MAX, default=CALENDAR_DAYS_DEFAULT)

UP_NEXT = Query((
    Param("include", "completed: also the finished shows (next_episode null, aired_left 0).", choices=("completed",)),
))

CALENDAR = Query((CALENDAR_DAYS,))

# The feed's secret (CALENDAR_TOKEN); checked before anything else, so a wrong token is a 404 whatever
# the other parameters say.
FEED_TOKEN = Param("token", "CALENDAR_TOKEN: without it, or with another value, the feed is 404.", max_length=500)
FEED_TOKEN_ONLY = Query((FEED_TOKEN,))
FEED = Query((
    FEED_TOKEN,
    Param("shows", "in-progress: only shows with aired episodes left; all: also the returning shows you are "
                   "up to date with.", choices=("in-progress", "all"), default="all"),
    Param("premieres", "1: only season and series premieres (no movies).", choices=("0", "1"), default="0"),
    CALENDAR_DAYS,
))

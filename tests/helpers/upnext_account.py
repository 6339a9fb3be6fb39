"""A hand-made account for up next and the calendar, whose every answer the tests know.

"Now" is 2026-06-10 12:00 UTC (05:00 in America/Los_Angeles). The shows:
- Alpha (returning): season 1 watched, a special watched, S02E01 aired and unwatched; S02E02 airs
  2026-06-11 02:00 UTC (still June 10 in Los Angeles, 19:00); S02E03, the season finale, a week later.
- Bravo (ended): all watched -> finished.
- Charlie (ended): watched whole in 2025, restarted (`reset_at` 2026-01-01), S01E01 watched again.
- Delta (returning): hidden from progress, aired episodes unwatched, one airing this week.
- Echo (returning): season 1 watched; only a special aired unwatched (never counts); S02E01 premieres
  2026-06-12 20:00 UTC.
- Watchlist: a movie released 2026-06-15 and one released 2026-07-30 (outside a fortnight).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from services.data import layout
from services.data.snapshots import write_flat_folder
from tests.helpers import accounts
from tests.helpers.accounts import movie, show

NOW = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)
ZONE = "America/Los_Angeles"

ALPHA = show("Alpha", 2020, 201)
BRAVO = show("Bravo", 2015, 202)
CHARLIE = show("Charlie", 2010, 203)
DELTA = show("Delta", 2022, 204)
ECHO = show("Echo", 2019, 205)
PREMIERE_MOVIE = dict(movie("June Movie", 2026, 301), released="2026-06-15")
LATER_MOVIE = dict(movie("Summer Movie", 2026, 302), released="2026-07-30")


def _ep(season: int, number: int, aired: str | None, runtime: int | None = None) -> dict:
    return {"season": season, "number": number, "title": f"Episode {season}x{number}",
            "first_aired": aired, "runtime": runtime, "ids": {"trakt": season * 100 + number}}


def _season(number: int, *episodes: dict) -> dict:
    return {"number": number, "episodes": list(episodes)}


def _seen(season: int, *pairs: tuple[int, str]) -> dict:
    return {"number": season, "episodes": [{"number": n, "plays": 1, "last_watched_at": at} for n, at in pairs]}


def _row(base: dict, status: str, runtime: int = 45) -> dict:
    """A row of the show-data file (services/data/layout.py SHOW_SEASONS), without its seasons."""
    return {"show": dict(base, runtime=runtime), "status": status, "updated_at": "2026-06-01T00:00:00.000Z"}


SHOW_DATA = [
    {**_row(ALPHA, "returning series"), "seasons": [
        _season(0, _ep(0, 1, "2021-01-01T00:00:00.000Z")),
        _season(1, _ep(1, 1, "2026-05-01T02:00:00.000Z"), _ep(1, 2, "2026-05-08T02:00:00.000Z"),
                _ep(1, 3, "2026-05-15T02:00:00.000Z")),
        _season(2, _ep(2, 1, "2026-06-04T02:00:00.000Z"), _ep(2, 2, "2026-06-11T02:00:00.000Z", 50),
                _ep(2, 3, "2026-06-18T02:00:00.000Z")),
    ]},
    {**_row(BRAVO, "ended"), "seasons": [
        _season(1, _ep(1, 1, "2015-01-01T02:00:00.000Z"), _ep(1, 2, "2015-01-08T02:00:00.000Z")),
    ]},
    {**_row(CHARLIE, "ended", 30), "seasons": [
        _season(1, _ep(1, 1, "2010-01-01T02:00:00.000Z"), _ep(1, 2, "2010-01-08T02:00:00.000Z"),
                _ep(1, 3, "2010-01-15T02:00:00.000Z")),
    ]},
    {**_row(DELTA, "returning series"), "seasons": [
        _season(1, _ep(1, 1, "2026-05-01T02:00:00.000Z"), _ep(1, 2, "2026-06-12T02:00:00.000Z")),
    ]},
    {**_row(ECHO, "returning series", 60), "seasons": [
        _season(0, _ep(0, 2, "2026-06-01T00:00:00.000Z")),
        _season(1, _ep(1, 1, "2025-01-01T02:00:00.000Z")),
        _season(2, _ep(2, 1, "2026-06-12T20:00:00.000Z"), _ep(2, 2, None)),
    ]},
]

WATCHED_SHOWS = [
    {"plays": 4, "last_watched_at": "2026-06-05T21:00:00.000Z", "reset_at": None, "show": ALPHA, "seasons": [
        _seen(0, (1, "2026-06-01T21:00:00.000Z")),
        _seen(1, (1, "2026-05-02T21:00:00.000Z"), (2, "2026-05-09T21:00:00.000Z"), (3, "2026-06-05T21:00:00.000Z")),
    ]},
    {"plays": 2, "last_watched_at": "2026-05-01T21:00:00.000Z", "show": BRAVO, "seasons": [
        _seen(1, (1, "2026-04-30T21:00:00.000Z"), (2, "2026-05-01T21:00:00.000Z")),
    ]},
    {"plays": 4, "last_watched_at": "2026-06-08T21:00:00.000Z", "reset_at": "2026-01-01T00:00:00.000Z",
     "show": CHARLIE, "seasons": [
         _seen(1, (1, "2026-06-08T21:00:00.000Z"), (2, "2025-03-02T21:00:00.000Z"), (3, "2025-03-03T21:00:00.000Z")),
     ]},
    {"plays": 1, "last_watched_at": "2026-06-09T21:00:00.000Z", "reset_at": None, "show": DELTA, "seasons": [
        _seen(1, (1, "2026-06-09T21:00:00.000Z")),
    ]},
    {"plays": 1, "last_watched_at": "2026-06-03T21:00:00.000Z", "reset_at": None, "show": ECHO, "seasons": [
        _seen(1, (1, "2026-06-03T21:00:00.000Z")),
    ]},
]

HIDDEN = [{"hidden_at": "2026-06-09T22:00:00.000Z", "type": "show", "show": DELTA}]

WATCHLIST_MOVIES = [
    {"rank": 1, "id": 1, "listed_at": "2026-05-01T00:00:00.000Z", "type": "movie", "movie": PREMIERE_MOVIE},
    {"rank": 2, "id": 2, "listed_at": "2026-05-01T00:00:00.000Z", "type": "movie", "movie": LATER_MOVIE},
]


def write_upnext_account(folder: Path) -> Path:
    """The small account of tests/helpers/accounts.py with these shows, the show data and the hidden set."""
    files = accounts.files()
    files.update({layout.WATCHED["shows"]: WATCHED_SHOWS, layout.WATCHLIST["movies"]: WATCHLIST_MOVIES,
                  layout.SHOW_SEASONS: SHOW_DATA, layout.SHOW_HIDDEN: HIDDEN})
    write_flat_folder(folder, files, username=accounts.USERNAME, source=layout.SOURCE_TRAKT,
                      last_updated=accounts.LAST_UPDATED)
    return folder

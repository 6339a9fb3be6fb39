"""The demo account's show data for up next and the calendar (README "Up next and the calendar").

Derived from the generated watched shows alone, so it needs nothing else of the builder: every
watched show gets its seasons with air dates, a status and runtimes, and a few are given roles —
in progress (aired episodes left), returning with episodes airing in the coming fortnight, a season
premiere, a watched special, one hidden from progress and one restarted (a `reset_at`, as Trakt's
progress endpoint reports it). Air dates are relative to the account's anchor; the store moves them
to the load date (services/data/dataset.py), so the demo always has an upcoming fortnight.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from services import times
from services.data import layout

IN_PROGRESS = (0, 1, 2, 3, 7)  # positions in the watched list (newest first)
AIRING_SOON = (0, 2, 7)  # their current season goes on airing weekly
PREMIERE = 4  # up to date; a new season starts in three days
HIDDEN = 5
RESTARTED = 6
WITH_SPECIAL = 1
RELEASE_DAYS = (2, 6, 11, 40)  # watchlist movies released this many days after the anchor (the last: later)
SHOWS_WITH_DATA = 24  # the most recently watched; keeps the bundled copy small (the rest: no show data)


def _z(moment: datetime) -> str:
    return times.iso_z(moment)


def show_files(watched_shows: list[dict], watchlist_movies: list[dict], anchor: datetime) -> dict[str, list]:
    """{seasons file: one row per recently watched show, hidden file: the hidden show, calendar
    movies: a few watchlist movies with release dates}."""
    rows = []
    hidden = []
    evening = anchor.replace(hour=2, minute=0, second=0, microsecond=0)  # 02:00 UTC: US prime time
    for position, watched in enumerate(watched_shows[:SHOWS_WITH_DATA]):
        show = watched["show"]
        runtime = show.get("runtime") or 45
        seasons = []
        last_season = max(s["number"] for s in watched["seasons"])
        for season in watched["seasons"]:
            number = season["number"]
            last = max(e["number"] for e in season["episodes"])
            seen = {e["number"]: times.parse_iso(e["last_watched_at"]) for e in season["episodes"]}
            first_seen = min(seen.values())
            episodes = []
            for episode in range(1, last + 1):
                aired = min(seen.get(episode, first_seen), first_seen) - timedelta(days=7 * (last - episode + 1))
                episodes.append(_episode(show, number, episode, aired.replace(hour=2, minute=0, second=0),
                                         runtime))
            if number == last_season and position in IN_PROGRESS:
                # aired and not watched yet: one to three episodes left
                for extra in range(1, 2 + position % 3):
                    aired = evening - timedelta(days=2 + 7 * (2 + position % 3 - extra))
                    episodes.append(_episode(show, number, last + extra, aired, runtime))
                if position in AIRING_SOON:
                    after = len(episodes)
                    for week in range(3):
                        episodes.append(_episode(show, number, after + week + 1,
                                                 evening + timedelta(days=1 + position % 2 + 7 * week), runtime))
            seasons.append({"number": number, "episodes": episodes})
        if position == PREMIERE:
            seasons.append({"number": last_season + 1, "episodes": [
                _episode(show, last_season + 1, n, anchor.replace(minute=0, second=0, microsecond=0)
                         + timedelta(days=3 + 7 * (n - 1)), runtime) for n in range(1, 9)]})
        if position == WITH_SPECIAL:
            seasons.insert(0, {"number": 0, "episodes": [
                _episode(show, 0, 1, anchor - timedelta(days=30), runtime)]})
        status = "returning series" if position in (*IN_PROGRESS, PREMIERE, HIDDEN) else (
            "ended" if position % 2 else "canceled" if position % 5 == 0 else "returning series")
        row = {"show": show, "status": status, "updated_at": _z(anchor - timedelta(days=position)), "seasons": seasons}
        if position == RESTARTED:
            row["reset_at"] = _z(anchor - timedelta(days=10))
        rows.append(row)
        if position == HIDDEN:
            hidden.append({"hidden_at": _z(anchor - timedelta(days=4)), "type": "show", "show": show})
    releases = [{"movie": item["movie"], "released": (anchor + timedelta(days=days)).date().isoformat()}
                for item, days in zip(watchlist_movies, RELEASE_DAYS)]
    return {layout.SHOW_SEASONS: rows, layout.SHOW_HIDDEN: hidden, layout.CALENDAR_MOVIES: releases}


def _episode(show: dict, season: int, number: int, aired: datetime, runtime: int) -> dict:
    base = show["ids"]["trakt"] * 10_000 + season * 100 + number
    return {"season": season, "number": number, "title": f"Chapter {number}" if season else "Special",
            "first_aired": _z(aired), "runtime": runtime, "ids": {"trakt": base}}

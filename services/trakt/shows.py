"""The show data behind up next and the calendar (README "Up next and the calendar"), fetched after
the sync's main fetch.

Without a token it is derived from public data: the watched shows with `extended=full` (each
show's `status` and `updated_at`, 250 a page), then each show's seasons with their episodes
(`/shows/{id}/seasons?extended=full,episodes`: titles, `first_aired`, runtimes). A show's seasons
are fetched again only when its `updated_at` moved since the served snapshot, so a second sync of
an unchanged account asks for no show's seasons. Trakt's whole calendar is never walked. Every
request goes through the shared client, so the request budget and the sync report count them.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import ujson

from services.data import layout
from services.trakt.client import TraktClient, TraktNotFound, first_error
from services.trakt.report import EndpointReport, SyncReport

log = logging.getLogger(__name__)

UPDATED = "shows/updated"  # report entries
SEASONS = "shows/seasons"
RELEASES = "calendar/movies"
WATCHLIST_MOVIES_PATH = "/users/{u}/watchlist/movies"
MOVIE_FIELDS = ("title", "year", "ids", "runtime")
WATCHED_FULL_PATH = "/users/{u}/watched/shows"
SEASONS_PATH = "/shows/{id}/seasons"
SEASONS_PARAMS = {"extended": "full,episodes"}
SHOW_FIELDS = ("title", "year", "ids", "runtime")
EPISODE_FIELDS = ("season", "number", "title", "first_aired", "runtime", "ids")


async def fetch_show_data(client: TraktClient, username: str, report: SyncReport,
                          previous_root: Path | None) -> dict[str, Any]:
    """{SHOW_SEASONS: one row per watched show, CALENDAR_MOVIES: the watchlist movies with their
    release dates} for the new snapshot; reuses the served snapshot's rows of shows whose
    `updated_at` is unchanged."""
    path = WATCHED_FULL_PATH.format(u=username)
    entry = report.endpoints[UPDATED] = EndpointReport(file=layout.SHOW_SEASONS, path=path)
    watched = await client.get_all_pages(path, {"extended": "full"})
    entry.pages, entry.items, entry.item_count_reported = watched.pages, len(watched.items), watched.item_count
    entry.requests, entry.retries, entry.rate_limited = watched.requests, watched.retries, watched.rate_limited

    previous = await asyncio.to_thread(_previous_rows, previous_root)
    seasons_entry = report.endpoints[SEASONS] = EndpointReport(file=layout.SHOW_SEASONS, path=SEASONS_PATH)
    rows: list[dict | None] = []
    stale: list[tuple[int, dict]] = []
    for item in watched.items:
        show = item.get("show") if isinstance(item, dict) else None
        trakt_id = (show.get("ids") or {}).get("trakt") if isinstance(show, dict) else None
        if not isinstance(trakt_id, int) or isinstance(trakt_id, bool):
            continue
        row = {"show": {k: show.get(k) for k in SHOW_FIELDS}, "status": show.get("status"),
               "updated_at": show.get("updated_at"), "seasons": None}
        earlier = previous.get(trakt_id)
        if earlier is not None and row["updated_at"] and earlier.get("updated_at") == row["updated_at"]:
            row["seasons"] = earlier.get("seasons") or []
        else:
            stale.append((len(rows), row))
        rows.append(row)

    async def seasons_of(position: int, row: dict) -> None:
        trakt_id = row["show"]["ids"]["trakt"]
        try:
            data, _, stats = await client.get_with_stats(SEASONS_PATH.format(id=trakt_id), SEASONS_PARAMS)
        except TraktNotFound:
            report.warn(f"show {trakt_id} ({row['show'].get('title')!r}) is gone from Trakt: no up next for it")
            rows[position] = None
            return
        seasons_entry.requests += stats.requests
        seasons_entry.retries += stats.retries
        seasons_entry.rate_limited += stats.rate_limited
        seasons_entry.pages += 1
        row["seasons"] = _compact_seasons(data)

    try:
        async with asyncio.TaskGroup() as group:
            for position, row in stale:
                group.create_task(seasons_of(position, row))
    except BaseExceptionGroup as errors:
        raise first_error(errors) from None
    kept = [row for row in rows if row is not None]
    seasons_entry.items = len(stale)
    log.info("show data: %d shows, %d fetched, %d unchanged", len(kept), len(stale), len(kept) - len(stale))
    return {layout.SHOW_SEASONS: kept, layout.CALENDAR_MOVIES: await _movie_releases(client, username, report)}


async def _movie_releases(client: TraktClient, username: str, report: SyncReport) -> list[dict]:
    """The watchlist movies that have a release date (`extended=full`; the main fetch's copy has
    none), for the calendar's movie rows: a page of 250 per request."""
    path = WATCHLIST_MOVIES_PATH.format(u=username)
    entry = report.endpoints[RELEASES] = EndpointReport(file=layout.CALENDAR_MOVIES, path=path)
    result = await client.get_all_pages(path, {"extended": "full"})
    entry.pages, entry.item_count_reported = result.pages, result.item_count
    entry.requests, entry.retries, entry.rate_limited = result.requests, result.retries, result.rate_limited
    movies = []
    for item in result.items:
        movie = item.get("movie") if isinstance(item, dict) else None
        if isinstance(movie, dict) and isinstance(movie.get("released"), str):
            movies.append({"movie": {k: movie.get(k) for k in MOVIE_FIELDS}, "released": movie["released"]})
    entry.items = len(movies)
    return movies


def _compact_seasons(data: Any) -> list[dict]:
    """Seasons with the episode fields up next and the calendar use (Trakt's full episodes also
    carry overviews and ratings, which would only make the snapshot larger)."""
    seasons = []
    for season in data if isinstance(data, list) else ():
        if not isinstance(season, dict) or not isinstance(season.get("number"), int):
            continue
        episodes = [{k: e.get(k) for k in EPISODE_FIELDS} for e in season.get("episodes") or () if isinstance(e, dict)]
        seasons.append({"number": season["number"], "episodes": episodes})
    return seasons


def _previous_rows(root: Path | None) -> dict[int, dict]:
    """The served snapshot's show data by Trakt id (empty when there is none or it is unreadable)."""
    if root is None:
        return {}
    try:
        document = ujson.loads((root / layout.SHOW_SEASONS).read_bytes())
    except (OSError, ValueError):
        return {}
    rows = document.get("data") if isinstance(document, dict) else None
    found = {}
    for row in rows if isinstance(rows, list) else ():
        trakt_id = ((row.get("show") or {}).get("ids") or {}).get("trakt") if isinstance(row, dict) else None
        if isinstance(trakt_id, int):
            found[trakt_id] = row
    return found

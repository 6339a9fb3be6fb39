"""The show data behind up next and the calendar (README "Up next and the calendar"), fetched after
the sync's main fetch.

What each watched show needs is decided from the main fetch's watched shows (`extended=progress,full`:
the episodes watched, and the show's `status`, `aired_episodes` and `updated_at`), so nothing is
read twice:

- hidden from progress on Trakt (signed in: `/users/hidden/progress_watched`): nothing;
- ended or canceled, and every aired episode watched since its `reset_at`: nothing, it is finished;
- aired episodes not watched (it may be in progress): its seasons with their episodes
  (`/shows/{id}/seasons?extended=full,episodes`), one request per show;
- watched to the end but still returning: without a token its seasons too (its next episodes);
  signed in, its upcoming episodes come from `/calendars/my/shows/{start}/{days}` instead: three
  requests for every such show together (Trakt gives 33 days per request, the calendar shows 90).

`/shows/{id}/progress/watched` would cost the same one request per show as the seasons, but its
answer changes with every play, while the seasons change only with the show's `updated_at`: a show's
seasons are fetched again only when its `updated_at` moved, so a sync of unchanged shows asks for
none. The movie releases come from the watchlist's own pages (250 movies a request), or signed in,
when a watchlist of more than 750 movies would take more than three, from `/calendars/my/movies`
(three requests for the 99 days). Trakt's whole calendar is never walked.

A new play reuses every show's seasons; the hidden shows and the calendar are read again only on
a full re-mirror, on the daily refresh, or when Trakt's `shows.hidden_at` moved. A sync whose
watched shows were carried over carries the show data too (no request), except once every
SHOW_REFRESH_HOURS: then the watched shows are read again with `extended=full` (status,
`updated_at` and aired counts, 250 shows a request) so a newly announced episode is not left waiting
for the weekly full re-mirror. The seasons of returning shows watched to the end (they only add
next episodes to the calendar) wait for the next check rather than spend the last tenth of the
request budget's window (`pending` rows), so a first sync of a large account commits within one
window; up next's shows never wait. Every request goes through the shared client (the request budget),
and the sync report counts them with the reason of every show (`show_data`). A failed request fails
the sync, which changes nothing that is served.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import ujson

from services import times
from services.data import layout
from services.data.upnext import FINISHED_STATUSES, watched_since_reset
from services.trakt.client import PAGE_LIMIT, PagedResult, TraktClient, TraktNotFound, first_error
from services.trakt.incremental import STATE_FILE, Plan
from services.trakt.report import EndpointReport, SyncReport, utc_now

log = logging.getLogger(__name__)

# A show's status and aired count are read again at least this often (README "Up next and the calendar").
SHOW_REFRESH_HOURS = 24
CHECKED_AT = "shows_checked_at"  # in the snapshot's sync state: when they were last read
CALENDAR_DAYS = 33  # the most days Trakt gives per calendar request
CALENDAR_REQUESTS = 3  # from yesterday (UTC): the 90 days a calendar may show, in any time zone
# The seasons of returning shows watched to the end (only the calendar's) wait for a later sync rather
# than spend more than this share of the request budget's window; at least this many stay free.
BUDGET_RESERVE = 0.1
BUDGET_RESERVE_MIN = 20

UPDATED = "shows/updated"  # report entries
SEASONS = "shows/seasons"
HIDDEN = "shows/hidden"
CALENDAR = "calendar/shows"
RELEASES = "calendar/movies"
WATCHLIST_MOVIES_PATH = "/users/{u}/watchlist/movies"
WATCHED_FULL_PATH = "/users/{u}/watched/shows"
SEASONS_PATH = "/shows/{id}/seasons"
SEASONS_PARAMS = {"extended": "full,episodes"}
HIDDEN_PATH = "/users/hidden/progress_watched"
HIDDEN_PARAMS = {"type": "show"}
CALENDAR_PATH = "/calendars/my/shows/{start}/{days}"
CALENDAR_MOVIES_PATH = "/calendars/my/movies/{start}/{days}"
MOVIE_FIELDS = ("title", "year", "ids", "runtime")
SHOW_FIELDS = ("title", "year", "ids", "runtime")
EPISODE_FIELDS = ("season", "number", "title", "first_aired", "runtime", "ids")
CALENDAR_EPISODE_FIELDS = ("season", "number", "title", "ids")

# Why a show gets the show data it gets (the report counts them).
IN_PROGRESS = "aired episodes not watched"
RETURNING = "watched to the end, returning"
CAUGHT_UP = "watched to the end, returning: from the calendar"
FINISHED = "watched to the end, ended"
HIDDEN_SHOW = "hidden from progress"
NO_COUNT = "no aired count from Trakt"
NEEDS_SEASONS = (IN_PROGRESS, RETURNING, NO_COUNT)


def reason_for(row: dict, hidden: set, signed_in: bool) -> str:
    """What a watched-show row (progress and full show) needs, as one of the reasons above."""
    show = row.get("show") or {}
    if _trakt_id(show) in hidden:
        return HIDDEN_SHOW
    aired = show.get("aired_episodes")
    if not isinstance(aired, int) or isinstance(aired, bool):
        return NO_COUNT
    if len(watched_since_reset(row)[0]) < aired:
        return IN_PROGRESS
    if str(show.get("status") or "").lower() in FINISHED_STATUSES:
        return FINISHED
    return CAUGHT_UP if signed_in else RETURNING


async def update_show_data(client: TraktClient, username: str, report: SyncReport, plan: Plan,
                           previous_root: Path | None) -> None:
    """Put the show data into `plan`: fetched, refreshed or carried over (see the module docstring).

    May set `plan.commit` (a due refresh commits what it found) and always records when the shows
    were last read in `plan.state`."""
    signed_in = bool(getattr(client, "signed_in", False))
    previous = await asyncio.to_thread(_Previous.read, previous_root)
    watched_file = layout.WATCHED["shows"]
    fetched = watched_file in plan.files
    due = previous.due()
    hidden_moved = signed_in and _hidden_at(plan.state) != _hidden_at(previous.state)
    summary: dict[str, Any] = {"requests": 0, "signed_in": signed_in}
    report.show_data = summary
    pending = previous.pending() if _budget_room(client) > 0 else 0  # with no room, they wait on
    if not (fetched or due or hidden_moved or pending or not previous.complete(signed_in)):
        plan.state[CHECKED_AT] = previous.state.get(CHECKED_AT)
        if plan.commit:  # something else moved: the show data stays as it was
            for file in (layout.SHOW_SEASONS, layout.SHOW_HIDDEN):
                previous.carry(plan, file)
            if layout.WATCHLIST["movies"] in plan.files:
                plan.files[layout.CALENDAR_MOVIES] = await _movie_releases(client, username, report, plan, previous)
            else:
                previous.carry(plan, layout.CALENDAR_MOVIES)
        summary["why"] = f"unchanged: the watched shows were carried over, read at {plan.state[CHECKED_AT]}"
        summary["requests"] = _requests(report)
        return

    if fetched:
        watched, why = plan.files[watched_file], "the watched shows were fetched"
    elif due:
        watched = await _refreshed(client, username, report, await asyncio.to_thread(previous.watched))
        why = f"refresh due: last read at {previous.state.get(CHECKED_AT) or 'never'}"
    else:
        watched = await asyncio.to_thread(previous.watched)
        why = "the hidden shows moved on Trakt" if hidden_moved else f"{pending} shows' seasons were left for later"
    checked_at = utc_now() if fetched or due else previous.state.get(CHECKED_AT)

    # The hidden shows and the calendar are read again on a full re-mirror, when due, or when they
    # moved; a new play alone costs neither.
    renew = due or plan.mode == "full"
    if not signed_in:
        hidden_rows = []
    elif renew or hidden_moved or not previous.has(layout.SHOW_HIDDEN):
        hidden_rows = await _hidden(client, report)
    else:
        hidden_rows = await asyncio.to_thread(previous.hidden)
    hidden = {_trakt_id(row.get("show")) for row in hidden_rows}
    rows, stale, reasons = [], [], collections.Counter()
    reasons_by_row: dict[int, str] = {}
    caught_up: dict[int, dict] = {}
    for item in watched if isinstance(watched, list) else ():
        show = item.get("show") if isinstance(item, dict) else None
        trakt_id = _trakt_id(show)
        if trakt_id is None:
            continue
        reason = reason_for(item, hidden, signed_in)
        reasons[reason] += 1
        row = {"show": {k: show.get(k) for k in SHOW_FIELDS}, "status": show.get("status"),
               "updated_at": show.get("updated_at"), "aired_episodes": show.get("aired_episodes"), "seasons": None}
        rows.append(row)
        reasons_by_row[id(row)] = reason
        if reason not in (*NEEDS_SEASONS, CAUGHT_UP):
            continue
        earlier = previous.rows.get(trakt_id)
        # A caught-up show keeps the seasons it has (complete ones hold its next episodes too), its
        # calendar episodes until the next renewal; the others keep complete seasons only.
        if _still_fresh(earlier, row, partial=reason == CAUGHT_UP and not renew):
            row["seasons"] = earlier["seasons"]
            row["updated_at"] = earlier["updated_at"]  # Trakt's updated_at only moves forward
            if earlier.get("partial"):
                row["partial"] = True
        elif reason == CAUGHT_UP:
            caught_up[trakt_id] = row
        else:
            stale.append(row)

    # Up next needs the shows with aired episodes left now; a returning show watched to the end only
    # adds its next episodes to the calendar, so those wait for a later sync when this one's share
    # of the budget is spent (a first sync of a large account then commits within one window).
    needed = [row for row in stale if reasons_by_row[id(row)] != RETURNING]
    gone = await _fetch_seasons(client, report, needed)
    if caught_up:
        await _calendar(client, report, caught_up)
    if layout.WATCHLIST["movies"] in plan.files or due or not previous.has(layout.CALENDAR_MOVIES):
        plan.files[layout.CALENDAR_MOVIES] = await _movie_releases(client, username, report, plan, previous)
    else:
        previous.carry(plan, layout.CALENDAR_MOVIES)
    optional = [row for row in stale if reasons_by_row[id(row)] == RETURNING]
    room = max(0, _budget_room(client))
    for row in optional[room:]:
        row["pending"] = True  # no seasons yet: fetched by a later sync (the check after this one)
    gone |= await _fetch_seasons(client, report, optional[:room])
    stale = needed + optional[:room]
    rows = [row for row in rows if id(row) not in gone]
    plan.files[layout.SHOW_SEASONS] = rows
    if signed_in:
        plan.files[layout.SHOW_HIDDEN] = hidden_rows
    plan.state[CHECKED_AT] = checked_at
    plan.commit = True
    fetched_now = {id(row) for row in stale}
    summary.update(why=why, shows=len(rows), seasons_fetched=len(stale) - len(gone),
                   seasons_cached=sum(1 for r in rows if isinstance(r["seasons"], list) and id(r) not in fetched_now
                                      and not r.get("partial")),
                   left_for_later=len(optional[room:]), reasons=dict(sorted(reasons.items())),
                   requests=_requests(report))
    log.info("show data (%s): %d shows, %d seasons fetched, %d left for later, %d requests", why, len(rows),
             len(stale) - len(gone), len(optional[room:]), summary["requests"])


# --- the requests ---------------------------------------------------------------------------
def _entry(report: SyncReport, name: str, file: str, path: str) -> EndpointReport:
    return report.endpoints.setdefault(name, EndpointReport(file=file, path=path))


def _count(entry: EndpointReport, result: PagedResult) -> None:
    entry.pages += result.pages
    entry.requests += result.requests
    entry.retries += result.retries
    entry.rate_limited += result.rate_limited
    entry.item_count_reported = result.item_count


def _budget_room(client: TraktClient) -> int:
    """Requests this sync may still send in the budget's current window, leaving BUDGET_RESERVE of
    it to the watcher and the next check."""
    budget = getattr(client, "budget", None)
    if budget is None:
        return 1 << 30
    return budget.limit - budget.used() - max(BUDGET_RESERVE_MIN, int(budget.limit * BUDGET_RESERVE))


def _requests(report: SyncReport) -> int:
    return sum(report.endpoints[name].requests for name in (UPDATED, SEASONS, HIDDEN, CALENDAR, RELEASES)
               if name in report.endpoints)


async def _refreshed(client: TraktClient, username: str, report: SyncReport, carried: list) -> list:
    """The carried watched shows with their show objects read again (`extended=full`: status,
    aired_episodes, updated_at; no seasons, 250 a request)."""
    path = WATCHED_FULL_PATH.format(u=username)
    entry = _entry(report, UPDATED, "", path)  # a check, not a file of its own (report totals count files)
    result = await client.get_all_pages(path, {"extended": "full"})
    _count(entry, result)
    entry.items = len(result.items)
    fresh = {_trakt_id(item.get("show")): item["show"] for item in result.items if isinstance(item, dict)}
    return [dict(row, show=fresh[_trakt_id(row.get("show"))])
            if isinstance(row, dict) and _trakt_id(row.get("show")) in fresh else row for row in carried]


async def _hidden(client: TraktClient, report: SyncReport) -> list[dict]:
    """The shows hidden from progress on Trakt (OAuth only; paginated)."""
    entry = _entry(report, HIDDEN, layout.SHOW_HIDDEN, HIDDEN_PATH)
    result = await client.get_all_pages(HIDDEN_PATH, HIDDEN_PARAMS)
    _count(entry, result)
    rows = [{"hidden_at": item.get("hidden_at"), "type": "show",
             "show": {k: item["show"].get(k) for k in ("title", "year", "ids")}}
            for item in result.items if isinstance(item, dict) and _trakt_id(item.get("show")) is not None]
    entry.items = len(rows)
    return rows


async def _fetch_seasons(client: TraktClient, report: SyncReport, stale: list[dict]) -> set[int]:
    """Each stale row's seasons, concurrently; returns the ids (`id(row)`) of shows gone from Trakt."""
    entry = _entry(report, SEASONS, layout.SHOW_SEASONS, SEASONS_PATH)
    gone: set[int] = set()

    async def seasons_of(row: dict) -> None:
        trakt_id = row["show"]["ids"]["trakt"]
        try:
            data, _, stats = await client.get_with_stats(SEASONS_PATH.format(id=trakt_id), SEASONS_PARAMS)
        except TraktNotFound:
            report.warn(f"show {trakt_id} ({row['show'].get('title')!r}) is gone from Trakt: no up next for it")
            gone.add(id(row))
            return
        entry.requests += stats.requests
        entry.retries += stats.retries
        entry.rate_limited += stats.rate_limited
        entry.pages += 1
        row["seasons"] = _compact_seasons(data)

    try:
        async with asyncio.TaskGroup() as group:
            for row in stale:
                group.create_task(seasons_of(row))
    except BaseExceptionGroup as errors:
        raise first_error(errors) from None
    entry.items += len(stale) - len(gone)
    return gone


async def _calendar(client: TraktClient, report: SyncReport, caught_up: dict[int, dict]) -> None:
    """The upcoming episodes of the caught-up returning shows, from the signed-in calendar, as
    partial seasons (`partial`: only these episodes are known)."""
    entry = _entry(report, CALENDAR, "", CALENDAR_PATH)  # part of the seasons file
    items = await _calendar_items(client, entry, CALENDAR_PATH)
    episodes: dict[int, dict[tuple, dict]] = collections.defaultdict(dict)
    for item in items:
        trakt_id = _trakt_id(item.get("show")) if isinstance(item, dict) else None
        episode = item.get("episode") if trakt_id in caught_up else None
        if not isinstance(episode, dict) or not isinstance(episode.get("season"), int):
            continue
        compact = {k: episode.get(k) for k in CALENDAR_EPISODE_FIELDS}
        compact["first_aired"] = item.get("first_aired") or episode.get("first_aired")
        compact["runtime"] = episode.get("runtime")
        episodes[trakt_id][(episode["season"], episode.get("number"))] = compact
    for trakt_id, row in caught_up.items():
        by_season: dict[int, list] = collections.defaultdict(list)
        for (season, _), episode in episodes.get(trakt_id, {}).items():
            by_season[season].append(episode)
        row["seasons"] = [{"number": number, "episodes": sorted(rows, key=lambda e: e.get("number") or 0)}
                          for number, rows in sorted(by_season.items())]
        row["partial"] = True
    entry.items += sum(len(found) for found in episodes.values())


async def _movie_releases(client: TraktClient, username: str, report: SyncReport, plan: Plan,
                          previous: _Previous) -> list[dict]:
    """The watchlist movies that have a release date, for the calendar's movie rows: from the
    watchlist with `extended=full` (the main fetch's copy has no dates; 250 a request), or signed
    in, when that would take more requests than the calendar's three, from `/calendars/my/movies`
    (every release of the 99 days a calendar may show) narrowed to the watchlist."""
    path = WATCHLIST_MOVIES_PATH.format(u=username)
    watchlist = plan.files.get(layout.WATCHLIST["movies"])
    if watchlist is None:
        watchlist = await asyncio.to_thread(previous.rows_of, layout.WATCHLIST["movies"])
    pages = -(-len(watchlist) // PAGE_LIMIT) if isinstance(watchlist, list) else None
    if getattr(client, "signed_in", False) and pages is not None and pages > CALENDAR_REQUESTS:
        entry = _entry(report, RELEASES, layout.CALENDAR_MOVIES, CALENDAR_MOVIES_PATH)
        wanted = {_trakt_id(item.get("movie")) for item in watchlist if isinstance(item, dict)}
        items = [item for item in await _calendar_items(client, entry, CALENDAR_MOVIES_PATH, {"extended": "full"})
                 if isinstance(item, dict) and _trakt_id(item.get("movie")) in wanted]
        released = [{**item, "movie": {**item["movie"], "released": item.get("released")}} for item in items]
    else:
        entry = _entry(report, RELEASES, layout.CALENDAR_MOVIES, path)
        result = await client.get_all_pages(path, {"extended": "full"})
        _count(entry, result)
        released = result.items
    movies = []
    for item in released:
        movie = item.get("movie") if isinstance(item, dict) else None
        if isinstance(movie, dict) and isinstance(movie.get("released"), str):
            movies.append({"movie": {k: movie.get(k) for k in MOVIE_FIELDS}, "released": movie["released"]})
    entry.items = len(movies)
    return movies


async def _calendar_items(client: TraktClient, entry: EndpointReport, template: str,
                          params: dict | None = None) -> list:
    """Every item of a signed-in calendar from yesterday (UTC), CALENDAR_REQUESTS requests of
    CALENDAR_DAYS days, concurrently."""
    start = (times.now() - timedelta(days=1)).date()
    paths = [template.format(start=(start + timedelta(days=CALENDAR_DAYS * n)).isoformat(), days=CALENDAR_DAYS)
             for n in range(CALENDAR_REQUESTS)]

    async def one(path: str) -> Any:
        data, _, stats = await client.get_with_stats(path, params)
        entry.requests += stats.requests
        entry.retries += stats.retries
        entry.rate_limited += stats.rate_limited
        entry.pages += 1
        return data if isinstance(data, list) else []

    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(one(path)) for path in paths]
    except BaseExceptionGroup as errors:
        raise first_error(errors) from None
    return [item for task in tasks for item in task.result()]


# --- the served snapshot's show data ---------------------------------------------------------
@dataclass
class _Previous:
    """What the served snapshot holds for the show data (everything empty without one)."""

    root: Path | None = None
    rows: dict[int, dict] = field(default_factory=dict)  # show-data rows by Trakt id
    state: dict = field(default_factory=dict)  # sync_state.json
    counts: dict[str, int] = field(default_factory=dict)  # index.json's files

    @classmethod
    def read(cls, root: Path | None) -> _Previous:
        if root is None:
            return cls()
        state = _read_json(root / STATE_FILE)
        index = _read_json(root / layout.INDEX)
        files = ((index or {}).get("data") or {}).get("files") if isinstance(index, dict) else None
        previous = cls(root=root, state=state if isinstance(state, dict) else {},
                       counts={k: v for k, v in (files or {}).items() if isinstance(v, int)})
        document = _read_json(root / layout.SHOW_SEASONS)
        for row in (document or {}).get("data") or () if isinstance(document, dict) else ():
            trakt_id = _trakt_id(row.get("show")) if isinstance(row, dict) else None
            if trakt_id is not None:
                previous.rows[trakt_id] = row
        return previous

    def has(self, file: str) -> bool:
        return self.root is not None and file in self.counts and (self.root / file).is_file()

    def complete(self, signed_in: bool) -> bool:
        files = (layout.SHOW_SEASONS, layout.CALENDAR_MOVIES, *((layout.SHOW_HIDDEN,) if signed_in else ()))
        return all(self.has(file) for file in files)

    def pending(self) -> int:
        """Shows whose seasons an earlier sync left for later."""
        return sum(1 for row in self.rows.values() if row.get("pending"))

    def due(self) -> bool:
        checked = times.parse(self.state.get(CHECKED_AT))
        return checked is None or times.now() - checked >= timedelta(hours=SHOW_REFRESH_HOURS)

    def carry(self, plan: Plan, file: str) -> None:
        if self.has(file):
            assert self.root is not None
            plan.carried[file] = (self.root / file, self.counts[file])

    def watched(self) -> list:
        return self.rows_of(layout.WATCHED["shows"])

    def hidden(self) -> list:
        return self.rows_of(layout.SHOW_HIDDEN)

    def rows_of(self, file: str) -> list:
        document = _read_json(self.root / file) if self.root is not None else None
        rows = document.get("data") if isinstance(document, dict) else None
        return rows if isinstance(rows, list) else []


def _still_fresh(earlier: dict | None, row: dict, partial: bool = False) -> bool:
    """Whether the served seasons of a show still hold: complete (or, with `partial`, from the
    calendar), and its updated_at not moved."""
    if not isinstance(earlier, dict) or not isinstance(earlier.get("seasons"), list):
        return False
    if earlier.get("partial") and not partial:
        return False
    before, now = earlier.get("updated_at"), row.get("updated_at")
    return isinstance(before, str) and isinstance(now, str) and before >= now


def _hidden_at(state: dict) -> Any:
    activities = state.get("last_activities") if isinstance(state, dict) else None
    shows = activities.get("shows") if isinstance(activities, dict) else None
    return shows.get("hidden_at") if isinstance(shows, dict) else None


def _trakt_id(show: Any) -> int | None:
    trakt_id = (show.get("ids") or {}).get("trakt") if isinstance(show, dict) else None
    return trakt_id if isinstance(trakt_id, int) and not isinstance(trakt_id, bool) else None


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


def _read_json(path: Path) -> Any:
    try:
        return ujson.loads(path.read_bytes())
    except (OSError, ValueError):
        return None

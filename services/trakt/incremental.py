"""The incremental sync (README "Sync", Incremental): fetch only what moved since the served
snapshot, carry the rest over, and still commit an ordinary complete snapshot.

Signed in, a check asks `GET /sync/last_activities` and compares each timestamp with the document
stored in the served snapshot (`sync_state.json`, beside `sync_report.json`, never served).
Without a token it reads what public endpoints tell: the stats counts, the newest history page
(`start_at`), the watchlist and the lists with their `updated_at`. New history rows come through
`start_at` from the newest mirrored play minus an overlap and are merged by history `id`; the merge
is checked against Trakt's item count, and any collection that cannot be patched safely (a removed
or back-dated play, a moved watchlist, rating or comment) is fetched whole. A full re-mirror runs
every SYNC_FULL_INTERVAL_HOURS and on `trakt-watch sync --full`.

A file whose data equals the served snapshot's is carried over, never written again, in a check
and in a full re-mirror alike: its `last_updated` stays the time of the sync that last changed it,
so a full re-mirror that finds what the checks found serves the same bytes (and ETags).
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import ujson

from services import times
from services.data import layout
from services.data.snapshots import DataFolder
from services.trakt.client import PAGE_LIMIT, TraktBadResponse, TraktClient, first_error
from services.trakt.endpoints import FIXED_ENDPOINTS, Endpoint, list_item_endpoints
from services.trakt.fetch import FetchedCallback, fetch_all, fetch_endpoint, refuse_private_profile
from services.trakt.report import EndpointReport, SyncReport, utc_now

log = logging.getLogger("trakt_watch.sync")

STATE_FILE = "sync_state.json"
STATE_VERSION = 1
ACTIVITIES_PATH = "/sync/last_activities"
# New plays are asked for from the newest mirrored `watched_at` minus this, so a play Trakt records
# a little late (a scrobble finished offline, a clock off by minutes) is still caught.
HISTORY_OVERLAP = timedelta(hours=6)

# The collections a `data` message names (README "WebSocket"), and the endpoints behind each.
COLLECTIONS: dict[str, tuple[str, ...]] = {
    "profile": ("profile",),
    "stats": ("stats",),
    "history": ("history/movies", "history/shows"),
    "watched": ("watched/movies", "watched/shows"),
    "watchlist": ("watchlist/movies", "watchlist/shows", "watchlist/all"),
    "lists": ("lists",),  # and every list's items
    "comments": ("comments",),
    "ratings": ("ratings",),
}

_WATCHLISTED = ("movies.watchlisted_at", "shows.watchlisted_at", "seasons.watchlisted_at",
                "episodes.watchlisted_at", "watchlist.updated_at")
# Signed in: the last_activities timestamps that move when an endpoint's data changes.
ACTIVITY_KEYS: dict[str, tuple[str, ...]] = {
    "profile": ("account.settings_at",),
    "stats": ("all",),  # counts of everything, the network included
    "history/movies": ("movies.watched_at",),
    "history/shows": ("episodes.watched_at",),
    "watched/movies": ("movies.watched_at",),
    "watched/shows": ("episodes.watched_at",),
    "watchlist/movies": _WATCHLISTED,
    "watchlist/shows": _WATCHLISTED,
    "watchlist/all": _WATCHLISTED,
    "lists": ("lists.updated_at",),
    "comments": ("movies.commented_at", "shows.commented_at", "seasons.commented_at", "episodes.commented_at",
                 "lists.commented_at"),
    "ratings": ("movies.rated_at", "shows.rated_at", "seasons.rated_at", "episodes.rated_at"),
}
# Without a token: the stats counts that move with each endpoint (README "Sync").
STATS_KEYS: dict[str, tuple[tuple[str, ...], ...]] = {
    "history/movies": (("movies", "plays"),),
    "history/shows": (("episodes", "plays"),),
    "ratings": (("ratings",), ("movies", "ratings"), ("shows", "ratings"), ("seasons", "ratings"),
                ("episodes", "ratings")),
    "comments": (("movies", "comments"), ("shows", "comments"), ("seasons", "comments"), ("episodes", "comments")),
}
HISTORY_TYPES = {"history/movies": "movie", "history/shows": "episode"}
WATCHED_OF = {"history/movies": "watched/movies", "history/shows": "watched/shows"}
ENDPOINTS = {endpoint.name: endpoint for endpoint in FIXED_ENDPOINTS}


@dataclass
class Previous:
    """The served snapshot an incremental sync starts from."""

    root: Path
    state: dict
    counts: dict[str, int]  # index.json's `files`
    last_updated: str | None = None  # index.json's: when the served data last changed
    _cache: dict[str, Any] = field(default_factory=dict)

    def has(self, file: str) -> bool:
        return file in self.counts and (self.root / file).is_file()

    def data(self, file: str) -> Any:
        """The `data` of one of its files (read once)."""
        if file not in self._cache:
            self._cache[file] = _read(self.root / file)["data"]
        return self._cache[file]

    async def load(self, *files: str) -> None:
        """Read files in a worker thread (a 10,000-row history is megabytes of JSON: never parsed
        on the server's event loop)."""
        await asyncio.to_thread(lambda: [self.data(file) for file in files])


@dataclass
class Plan:
    """What one sync fetched and what it takes over: everything `write_snapshot` needs."""

    mode: str  # full | incremental
    files: dict[str, Any] = field(default_factory=dict)
    carried: dict[str, tuple[Path, int]] = field(default_factory=dict)
    state: dict = field(default_factory=dict)
    commit: bool = True
    changed: list[str] = field(default_factory=list)
    previous: Previous | None = None


def load_previous(folder: DataFolder, username: str) -> Previous | None:
    """The served snapshot, when an incremental sync may start from it (None: sync in full)."""
    root = folder.served_root()
    if root is None or root == folder.root.resolve() or root == folder.root:
        return None
    try:
        state = _read(root / STATE_FILE)
        index = _read(root / layout.INDEX)
    except (OSError, ValueError, KeyError):
        return None
    files = index.get("data", {}).get("files") if isinstance(index, dict) else None
    if not isinstance(state, dict) or state.get("version") != STATE_VERSION or not isinstance(files, dict):
        return None
    if index.get("metadata", {}).get("username") != username:
        return None
    stamp = index.get("metadata", {}).get("last_updated")
    return Previous(root=root, state=state, counts={k: v for k, v in files.items() if isinstance(v, int)},
                    last_updated=stamp if isinstance(stamp, str) else None)


def full_reason(previous: Previous | None, *, force: bool, signed_in: bool, full_interval_hours: float) -> str | None:
    """Why this sync must be a full re-mirror, or None when a check will do."""
    if force:
        return "a full re-mirror was asked for (--full)"
    if previous is None:
        return "no snapshot of this account with incremental state yet"
    if bool(previous.state.get("signed_in")) != signed_in:
        return "signed in since the last snapshot" if signed_in else "signed out since the last snapshot"
    if full_interval_hours > 0:
        last_full = times.parse(previous.state.get("full_at"))
        if last_full is None or times.now() - last_full >= timedelta(hours=full_interval_hours):
            return f"the full re-mirror every SYNC_FULL_INTERVAL_HOURS={full_interval_hours:g} is due"
    return None


async def plan_sync(client: TraktClient, username: str, folder: DataFolder, report: SyncReport, *,
                    account: str, signed_in: bool, force_full: bool, full_interval_hours: float,
                    on_fetched: FetchedCallback) -> Plan:
    """Fetch what this sync needs and decide what the new snapshot carries over.

    `username` is the user in Trakt's paths (`me` when signed in); `account` the name the served
    snapshot was written for, which an incremental sync must continue."""
    previous = await asyncio.to_thread(load_previous, folder, account)
    reason = full_reason(previous, force=force_full, signed_in=signed_in, full_interval_hours=full_interval_hours)
    # The activities are read before the data, so a change during the fetch moves them again.
    activities = await _activities(client, report) if signed_in else None
    if reason is not None:
        plan = Plan(mode="full")
        plan.files = await fetch_all(client, username, report, on_fetched)
        plan.state = _state(signed_in, activities, full_at=utc_now())
        report.collections = {name: f"fetched whole: {reason}" for name in COLLECTIONS}
    else:
        assert previous is not None
        await previous.load(layout.STATS, layout.WATCHLIST["all"], layout.LISTS, *layout.HISTORY.values())
        check = _Check(client, username, report, previous, on_fetched)
        if signed_in:
            await check.signed_in(activities or {})
        else:
            await check.public()
            # A profile turned private shows a stranger empty or partial data, or (Trakt's 2026
            # watchlist leak) all of it with only the profile saying so (README "Signing in"): the
            # check fails like a full sync. Trakt's X-Private-User header on the watchlist answer
            # tells at no cost (`public` stops there); the profile is asked when that header is
            # missing or something moved (its data must not be committed from a private profile).
            if check.plan.files or check.private_user is None:
                profile = await fetch_endpoint(client, username, ENDPOINTS["profile"], report)
                refuse_private_profile(profile, username)
        plan = check.plan
        plan.state = _state(signed_in, activities, full_at=previous.state.get("full_at"))
        previous_activities = previous.state.get("last_activities")
        plan.commit = bool(plan.files) or (signed_in and activities != previous_activities)
    report.mode = plan.mode
    plan.previous = previous
    plan.changed = await asyncio.to_thread(changed_collections, plan, previous)
    report.changed = list(plan.changed)
    return plan


def keep_unchanged(plan: Plan) -> str | None:
    """Carry every fetched file whose data equals the served snapshot's instead of writing it, and
    return the `last_updated` the new snapshot keeps: the served one's when no served file changes
    (a full re-mirror that finds nothing new, or moved activities of nothing mirrored), else None
    (the time of this commit). Runs in a worker thread: it reads the served files."""
    previous = plan.previous
    if previous is None:
        return None
    for file in list(plan.files):
        if previous.has(file) and plan.files[file] == previous.data(file):
            plan.carried[file] = (previous.root / file, previous.counts[file])
            del plan.files[file]
    served = {file for file in previous.counts if file != layout.INDEX}
    if not plan.files and set(plan.carried) == served:
        return previous.last_updated
    return None


def changed_collections(plan: Plan, previous: Previous | None) -> list[str]:
    """The collections whose data differs from the served snapshot's (all of them without one)."""
    if previous is None:
        return list(COLLECTIONS)
    changed = []
    for name, endpoints in COLLECTIONS.items():
        files = [ENDPOINTS[e].file for e in endpoints]
        if name == "lists":
            files += sorted({f for f in (*plan.files, *plan.carried, *previous.counts) if _is_list_items(f)})
        for file in files:
            in_new = file in plan.files or file in plan.carried
            if in_new != previous.has(file) or (file in plan.files and plan.files[file] != previous.data(file)):
                changed.append(name)
                break
    return changed


# --- the check --------------------------------------------------------------------------------
class _Check:
    """One incremental pass over a previous snapshot; fills `plan`."""

    def __init__(self, client: TraktClient, username: str, report: SyncReport, previous: Previous,
                 on_fetched: FetchedCallback) -> None:
        self.client = client
        self.username = username
        self.report = report
        self.previous = previous
        self.on_fetched = on_fetched
        self.plan = Plan(mode="incremental")
        self.decisions: dict[str, str] = {}  # endpoint name -> why
        self.private_user: str | None = None  # Trakt's X-Private-User on the watchlist answer, lower case

    # --- signed in ---------------------------------------------------------------------------
    async def signed_in(self, activities: dict) -> None:
        before = self.previous.state.get("last_activities") or {}
        moved = {name: [key for key in keys if _dig(activities, key) != _dig(before, key)]
                 for name, keys in ACTIVITY_KEYS.items()}
        jobs: list[Coroutine] = []
        for name, keys in moved.items():
            if not keys:
                since = f"unchanged since {_newest(before, ACTIVITY_KEYS[name])}"
                self._carry_lists(since) if name == "lists" else self._carry(name, since)
                continue
            why = "moved: " + ", ".join(f"{key} {_dig(before, key)} → {_dig(activities, key)}" for key in keys)
            if name in WATCHED_OF.values():
                continue  # fetched with its history, which the merge is checked against
            if name in HISTORY_TYPES:
                jobs.append(self._patch_history(name, why))
            elif name == "lists":
                jobs.append(self._lists(why, None))
            else:
                jobs.append(self._whole(name, why))
        await self._run(jobs)
        self._finish()

    # --- without a token -----------------------------------------------------------------------
    async def public(self) -> None:
        previous = self.previous
        start = self._history_start()
        window_path = f"/users/{self.username}/history"
        jobs = {
            "stats": self._fetch("stats"),
            "watchlist/all": self._watchlist_tail(),
            "lists": self._fetch("lists"),
        }
        if start is not None:
            jobs["window"] = self._window(window_path, start, "history")
        results = await self._gather(jobs)
        if self.private_user == "true":  # Trakt's header on the watchlist answer: nothing more to read
            refuse_private_profile({"private": True}, self.username)
        stats = results["stats"]
        old_stats = previous.data(layout.STATS)
        since = f"unchanged since {previous.state.get('synced_at') or 'the last snapshot'}"
        follow: list[Coroutine] = []

        if stats == old_stats:
            self._carry("stats", since)
        else:
            self._keep("stats", stats, "fetched whole: the stats changed")
        for name in HISTORY_TYPES:
            moved_counts = _moved_stats(STATS_KEYS[name], old_stats, stats)
            old_rows = previous.data(ENDPOINTS[name].file)
            if start is None and not moved_counts:
                self._carry(name, f"{since} (no plays, same play counts)")
                self._carry(WATCHED_OF[name], f"{since} (no plays)")
                continue
            if start is None:
                follow.append(self._whole(name, "fetched whole: the first plays (" + ", ".join(moved_counts) + ")"))
                follow.append(self._whole(WATCHED_OF[name], f"fetched whole: {name} is fetched whole"))
                continue
            window = [row for row in results["window"] if row.get("type") == HISTORY_TYPES[name]]
            old_window = [row for row in old_rows if _when(row) is not None and _when(row) >= start]
            if not moved_counts and _ids(window) == _ids(old_window):
                self._carry(name, f"{since} (no new play since {times.iso_z(start)}, same play counts)")
                self._carry(WATCHED_OF[name], f"{since} (no new play)")
                continue
            why = "moved: " + (", ".join(moved_counts) if moved_counts else f"new plays since {times.iso_z(start)}")
            follow.append(self._patch_history(name, why, window=window, start=start))
        for name in ("ratings", "comments"):
            moved_counts = _moved_stats(STATS_KEYS[name], old_stats, stats)
            if moved_counts:
                follow.append(self._whole(name, "fetched whole: moved: " + ", ".join(moved_counts)))
            else:
                self._carry(name, f"{since} (same counts in the stats)")
        self._carry("profile", f"{since} (no public signal; the full re-mirror refreshes it)")
        unchanged, watchlist = results["watchlist/all"]
        if unchanged:
            for name in COLLECTIONS["watchlist"]:
                self._carry(name, f"{since} (the same last watchlist page and count)")
        else:
            if watchlist is None:
                follow.append(self._whole("watchlist/all", "fetched whole: the watchlist changed"))
            else:
                self._keep("watchlist/all", watchlist, "fetched whole: the watchlist changed")
            follow.append(self._whole("watchlist/movies", "fetched whole: the watchlist changed"))
            follow.append(self._whole("watchlist/shows", "fetched whole: the watchlist changed"))
        lists = results["lists"]
        if lists == previous.data(layout.LISTS):
            self._carry_lists(f"{since} (the same lists, same updated_at)")
        else:
            follow.append(self._lists("moved: a list's updated_at or item_count", lists))
        await self._run(follow)
        self._finish()

    # --- pieces ------------------------------------------------------------------------------
    def _history_start(self) -> Any:
        newest = [_when(row) for name in HISTORY_TYPES for row in self.previous.data(ENDPOINTS[name].file)]
        newest = [moment for moment in newest if moment is not None]
        return max(newest) - HISTORY_OVERLAP if newest else None

    def _carry(self, name: str, why: str) -> None:
        file = ENDPOINTS[name].file
        if not self.previous.has(file):
            raise TraktBadResponse(f"the served snapshot lacks {file}; run trakt-watch sync --full")
        self.plan.carried[file] = (self.previous.root / file, self.previous.counts[file])
        self._decide(name, why)

    async def _watchlist_tail(self) -> tuple[bool, list | None]:
        """(unchanged?, the whole watchlist when this one request brought all of it).

        One request whatever the size: the page holding the last mirrored rows. Trakt adds at
        the end, and a removal or a move renumbers every later `rank`, so that page and the item
        count show both; only a reorder inside earlier pages waits for the full re-mirror."""
        mirrored = self.previous.data(layout.WATCHLIST["all"])
        mirrored = mirrored if isinstance(mirrored, list) else []
        page = max(1, -(-len(mirrored) // PAGE_LIMIT))
        endpoint = ENDPOINTS["watchlist/all"]
        path = endpoint.path.format(u=self.username)
        rows, headers, stats = await self.client.get_with_stats(path, {"page": page, "limit": PAGE_LIMIT})
        entry = self.report.endpoints["watchlist/all"] = EndpointReport(
            file=endpoint.file, path=path, pages=1, items=len(rows) if isinstance(rows, list) else 0,
            requests=stats.requests, retries=stats.retries, rate_limited=stats.rate_limited)
        if not isinstance(rows, list):
            raise TraktBadResponse(f"{path}: expected a JSON array, got {type(rows).__name__}")
        private = headers.get("X-Private-User")
        self.private_user = private.strip().lower() if isinstance(private, str) else None
        count = _int(headers.get("X-Pagination-Item-Count"))
        limit = _int(headers.get("X-Pagination-Limit"))
        pages = _int(headers.get("X-Pagination-Page-Count"))
        entry.item_count_reported = count
        paged_as_asked = limit in (None, PAGE_LIMIT)
        if paged_as_asked and count in (None, len(mirrored)) and rows == mirrored[(page - 1) * PAGE_LIMIT:]:
            return True, None
        whole = page == 1 and paged_as_asked and pages in (None, 1) and (count is None or count == len(rows))
        return False, rows if whole else None

    def _carry_lists(self, why: str) -> None:
        """The lists and every list's items, unchanged."""
        self._carry("lists", why)
        for file, count in self.previous.counts.items():
            if _is_list_items(file) and self.previous.has(file):
                self.plan.carried[file] = (self.previous.root / file, count)

    def _keep(self, name: str, data: Any, why: str) -> None:
        self.plan.files[ENDPOINTS[name].file] = data
        self._decide(name, why)

    def _decide(self, name: str, why: str) -> None:
        self.decisions[name] = why

    async def _fetch(self, name: str) -> Any:
        data = await fetch_endpoint(self.client, self.username, ENDPOINTS[name], self.report)
        self.on_fetched(name, len(ENDPOINTS))
        return data

    async def _whole(self, name: str, why: str) -> None:
        self._keep(name, await self._fetch(name), why if why.startswith("fetched whole") else f"fetched whole: {why}")

    async def _window(self, path: str, start: Any, name: str) -> list:
        """Rows since `start` (deduplicated by history id: a page boundary can repeat a row)."""
        result = await self.client.get_all_pages(path, {"start_at": times.iso_z(start)})
        entry = self.report.endpoints.setdefault(f"{name} since", EndpointReport(file="", path=path))
        entry.pages += result.pages
        entry.items += len(result.items)
        entry.requests += result.requests
        entry.retries += result.retries
        entry.rate_limited += result.rate_limited
        return _unique(result.items)

    async def _patch_history(self, name: str, why: str, *, window: list | None = None, start: Any = None) -> None:
        """New plays merged into the mirrored history, checked against Trakt's item count and
        each title's watched plays (fetched whole here: they moved with the history)."""
        endpoint = ENDPOINTS[name]
        old_rows = self.previous.data(endpoint.file)
        watched_name = WATCHED_OF[name]
        if start is None:
            newest = [moment for moment in map(_when, old_rows) if moment is not None]
            if not newest:
                await self._whole(watched_name, why)
                return await self._whole(name, f"{why}; no mirrored plays to continue from")
            start = max(newest) - HISTORY_OVERLAP
        path = endpoint.path.format(u=self.username)
        jobs = {"watched": self._fetch(watched_name), "total": self._item_count(path, name)}
        if window is None:
            jobs["window"] = self._window(path, start, name)
        results = await self._gather(jobs)
        await self.previous.load(ENDPOINTS[watched_name].file)
        watched, total = results["watched"], results["total"]
        window = results.get("window", window)
        self._keep(watched_name, watched, f"fetched whole: {why}")
        ids = _ids(window)
        merged = _unique(window + [row for row in old_rows
                                   if (_when(row) is None or _when(row) < start) and row.get("id") not in ids])
        if total is None or total != len(merged):
            return await self._whole(name, f"{why}; {total} plays on Trakt but {len(merged)} after merging "
                                           f"(a removed or back-dated play)")
        old_watched = self.previous.data(ENDPOINTS[watched_name].file)
        if not _same_play_deltas(old_rows, merged, old_watched, watched):
            return await self._whole(name, f"{why}; the merged plays of a title differ from its watched plays "
                                           f"(a removed or back-dated play)")
        new = len(ids - _ids(old_rows))
        self._keep(name, merged, f"{why}; {new} new play(s) since {times.iso_z(start)} merged")
        self.on_fetched(name, len(ENDPOINTS))

    async def _item_count(self, path: str, name: str) -> int | None:
        """X-Pagination-Item-Count of `path` (one request with limit=1): the check of a merge."""
        _, headers, stats = await self.client.get_with_stats(path, {"page": 1, "limit": 1})
        entry = self.report.endpoints.setdefault(f"{name} count", EndpointReport(file="", path=path))
        entry.pages += 1
        entry.requests += stats.requests
        entry.retries += stats.retries
        entry.rate_limited += stats.rate_limited
        return _int(headers.get("X-Pagination-Item-Count"))

    async def _lists(self, why: str, lists: list | None) -> None:
        """The lists whole; the items of each list whose object (updated_at, item_count) is
        unchanged are carried over, the others fetched."""
        if lists is None:
            lists = await self._fetch("lists")
        self._keep("lists", lists, f"fetched whole: {why}")
        before = {}
        old_lists = self.previous.data(layout.LISTS)
        for entry in old_lists if isinstance(old_lists, list) else []:
            if isinstance(entry, dict) and isinstance(entry.get("ids"), dict):
                before[entry["ids"].get("trakt")] = entry
        endpoints = list_item_endpoints(lists, self.report.warn)
        by_file = {e.file: e for e in endpoints}
        jobs = []
        for entry in lists:
            trakt_id = entry.get("ids", {}).get("trakt") if isinstance(entry, dict) else None
            slug = entry.get("ids", {}).get("slug") if isinstance(entry, dict) else None
            file = layout.list_items_endpoint(slug) if isinstance(slug, str) and layout.is_safe_slug(slug) else None
            if file not in by_file:
                continue
            if before.get(trakt_id) == entry and self.previous.has(file):
                self.plan.carried[file] = (self.previous.root / file, self.previous.counts[file])
            else:
                jobs.append(self._list_items(by_file[file]))
        await self._run(jobs)

    async def _list_items(self, endpoint: Endpoint) -> None:
        self.plan.files[endpoint.file] = await fetch_endpoint(self.client, self.username, endpoint, self.report)
        self.on_fetched(endpoint.name, len(ENDPOINTS))

    async def _run(self, jobs: list[Coroutine]) -> None:
        try:
            async with asyncio.TaskGroup() as group:
                for job in jobs:
                    group.create_task(job)
        except BaseExceptionGroup as errors:
            raise first_error(errors) from None

    async def _gather(self, jobs: dict[str, Coroutine]) -> dict[str, Any]:
        try:
            async with asyncio.TaskGroup() as group:
                tasks = {name: group.create_task(job) for name, job in jobs.items()}
        except BaseExceptionGroup as errors:
            raise first_error(errors) from None
        return {name: task.result() for name, task in tasks.items()}

    def _finish(self) -> None:
        """Per collection, in a fixed order: "why", or "endpoint: why; endpoint: why"."""
        self.report.collections = {
            collection: "; ".join(self.decisions[name] if len(names) == 1 else f"{name}: {self.decisions[name]}"
                                  for name in names if name in self.decisions)
            for collection, names in COLLECTIONS.items()}


async def _activities(client: TraktClient, report: SyncReport) -> dict:
    data, _, stats = await client.get_with_stats(ACTIVITIES_PATH)
    if not isinstance(data, dict):
        raise TraktBadResponse(f"{ACTIVITIES_PATH}: expected a JSON object, got {type(data).__name__}")
    report.endpoints["last_activities"] = EndpointReport(file="", path=ACTIVITIES_PATH, pages=1, items=1,
                                                         requests=stats.requests, retries=stats.retries,
                                                         rate_limited=stats.rate_limited)
    return data


def _state(signed_in: bool, activities: dict | None, *, full_at: Any) -> dict:
    return {"version": STATE_VERSION, "signed_in": signed_in, "last_activities": activities,
            "full_at": full_at, "synced_at": utc_now()}


# --- small helpers --------------------------------------------------------------------------
def _read(path: Path) -> Any:
    with open(path, "rb") as fh:
        return ujson.loads(fh.read())


def _dig(document: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        document = document.get(part) if isinstance(document, dict) else None
    return document


def _newest(document: dict, keys: tuple[str, ...]) -> str:
    values = [str(v) for v in (_dig(document, key) for key in keys) if v]
    return max(values) if values else "the last snapshot"


def _moved_stats(paths: tuple[tuple[str, ...], ...], before: Any, after: Any) -> list[str]:
    moved = []
    for path in paths:
        old, new = before, after
        for part in path:
            old = old.get(part) if isinstance(old, dict) else None
            new = new.get(part) if isinstance(new, dict) else None
        if old != new:
            label = "stats " + ".".join(path)
            moved.append(f"{label} {old} → {new}" if not isinstance(new, dict) else label)
    return moved


def _when(row: Any) -> Any:
    return times.parse(row.get("watched_at")) if isinstance(row, dict) else None


def _ids(rows: list) -> set:
    return {row.get("id") for row in rows if isinstance(row, dict)}


def _unique(rows: list) -> list:
    """Rows in order, each history id once (rows without an id are kept)."""
    seen: set = set()
    unique = []
    for row in rows:
        row_id = row.get("id") if isinstance(row, dict) else None
        if row_id is not None:
            if row_id in seen:
                continue
            seen.add(row_id)
        unique.append(row)
    return unique


def _same_play_deltas(old_rows: list, new_rows: list, old_watched: Any, new_watched: Any) -> bool:
    """Whether every title gained (or lost) as many history rows as its watched `plays` did
    since the served snapshot: an added and a removed old play that leave the count alone still
    show up here, unless both are of the same title."""
    rows = _plays(new_rows)
    rows.subtract(_plays(old_rows))
    watched = _watched_plays(new_watched)
    watched.subtract(_watched_plays(old_watched))
    return all(rows[key] == watched[key] for key in set(rows) | set(watched))


def _title(item: Any, kinds: tuple[str, ...] = ("movie", "show")) -> tuple | None:
    for kind in kinds:
        media = item.get(kind) if isinstance(item, dict) else None
        if isinstance(media, dict) and isinstance(media.get("ids"), dict):
            return kind, media["ids"].get("trakt")
    return None


def _plays(rows: list) -> collections.Counter:
    return collections.Counter(key for key in map(_title, rows) if key is not None)


def _watched_plays(entries: Any) -> collections.Counter:
    counter: collections.Counter = collections.Counter()
    for entry in entries if isinstance(entries, list) else []:
        key = _title(entry)
        if key is not None and isinstance(entry.get("plays"), int):
            counter[key] += entry["plays"]
    return counter


def _int(raw: str | None) -> int | None:
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


def _is_list_items(file: str) -> bool:
    return file.startswith(layout.LISTS_DIR + "/") and file.endswith(layout.LIST_ITEMS_SUFFIX)



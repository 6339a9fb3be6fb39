"""One sync's work: every endpoint, every page, then the snapshot written and committed in one step
(README "Sync": all or nothing)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from services.data import layout
from services.data.snapshots import DataFolder
from services.trakt.client import LOGIN_HINT, SIGNED_IN_USER, TraktBadResponse, TraktClient, TraktPrivate, first_error
from services.trakt.endpoints import FIXED_ENDPOINTS, Endpoint, list_item_endpoints
from services.trakt.report import SNAPSHOT_REPORT, SUCCESS, EndpointReport, SyncReport, utc_now

# on_fetched(endpoint name, files known so far) after each endpoint is complete
FetchedCallback = Callable[[str, int], Any]


async def fetch_endpoint(client: TraktClient, username: str, endpoint: Endpoint, report: SyncReport) -> Any:
    """One endpoint, every page, counted in the report; raises on failure."""
    path = endpoint.path.format(u=username)
    entry = report.endpoints[endpoint.name] = EndpointReport(file=endpoint.file, path=path)
    params = dict(endpoint.params)
    if endpoint.paged:
        result = await client.get_all_pages(path, params)
        data = result.items
        entry.pages, entry.item_count_reported = result.pages, result.item_count
        stats = result.stats
        if result.item_count is not None and result.item_count != len(data):
            report.warn(f"{endpoint.name}: Trakt reported {result.item_count} items "
                        f"(X-Pagination-Item-Count) but {len(data)} came back")
    else:
        data, _, stats = await client.get_with_stats(path, params)
        entry.pages = 1
        if not isinstance(data, dict):
            raise TraktBadResponse(f"{path}: expected a JSON object, got {type(data).__name__}")
    entry.items = layout.item_count(data)
    entry.requests, entry.retries, entry.rate_limited = stats.requests, stats.retries, stats.rate_limited
    return data


async def fetch_all(client: TraktClient, username: str, report: SyncReport,
                    on_fetched: FetchedCallback) -> dict[str, Any]:
    """Every endpoint, every page; returns {snapshot file: data}. Raises on the first failure."""
    files: dict[str, Any] = {}
    total = [len(FIXED_ENDPOINTS)]

    async def fetch(endpoint: Endpoint) -> Any:
        data = files[endpoint.file] = await fetch_endpoint(client, username, endpoint, report)
        on_fetched(endpoint.name, total[0])
        return data

    try:
        async with asyncio.TaskGroup() as group:
            fixed = {e.name: group.create_task(fetch(e)) for e in FIXED_ENDPOINTS}
            lists = await fixed["lists"]
            item_endpoints = list_item_endpoints(lists, report.warn)
            total[0] += len(item_endpoints)
            for endpoint in item_endpoints:
                group.create_task(fetch(endpoint))
    except BaseExceptionGroup as errors:
        raise first_error(errors) from None
    refuse_private_profile(files.get(layout.PROFILE), username)
    return files


def refuse_private_profile(profile: Any, user: str) -> None:
    """Without a sign-in a private profile gives empty or partial answers (README "Signing in"):
    fail rather than commit a mirror that looks like an account without history."""
    if user != SIGNED_IN_USER and isinstance(profile, dict) and profile.get("private") is True:
        raise TraktPrivate(f"the Trakt profile of {user} is private, so the app key alone reads it empty or "
                           f"partly; to mirror your own private profile, {LOGIN_HINT}")


async def write_snapshot(folder: DataFolder, username: str, files: dict[str, Any], report: SyncReport, *,
                         carried: dict[str, tuple[Path, int]] | None = None,
                         extras: dict[str, Any] | None = None, last_updated: str | None = None) -> Path:
    """Write and commit in a worker thread; a cancellation waits for the disk work to end.

    `carried`: {snapshot file: (file in the served snapshot, item count)} taken over unchanged;
    `extras`: unwrapped, unserved files beside the report (the incremental sync's state);
    `last_updated`: the snapshot's, when not the time of this commit (nothing served changed)."""
    snapshot_report = dict(report.as_json(), outcome=SUCCESS, finished_at=utc_now())

    def write() -> Path:
        with folder.new_snapshot(username=username, source=layout.SOURCE_TRAKT, last_updated=last_updated) as writer:
            report.snapshot = writer.snapshot_id
            snapshot_report["snapshot"] = writer.snapshot_id
            report.last_updated = writer.last_updated
            for endpoint in sorted(files):
                writer.write(endpoint, files[endpoint])
            for endpoint, (source, count) in sorted((carried or {}).items()):
                writer.carry(endpoint, source, count)
            writer.write_index()
            for name, obj in (extras or {}).items():
                writer.write_extra(name, obj)
            snapshot_report["committed"] = True
            writer.write_extra(SNAPSHOT_REPORT, snapshot_report)
            path = writer.commit()
            report.committed = True
            return path

    work = asyncio.ensure_future(asyncio.to_thread(write))
    try:
        return await asyncio.shield(work)
    except asyncio.CancelledError:
        # Let the thread finish: either it committed (then the snapshot stands) or it aborted.
        with contextlib.suppress(Exception):
            await asyncio.wait([work])
        if work.done() and not work.cancelled() and work.exception() is None:
            report.committed = True
            report.finish(SUCCESS)
        raise

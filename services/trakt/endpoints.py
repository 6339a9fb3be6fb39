"""What a sync fetches: one Trakt call per snapshot file (README "Sync").

`FIXED_ENDPOINTS` are the same for every account; `list_item_endpoints()` adds one per list once
the account's lists are known, refusing list entries whose id or slug cannot name a file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from services.data import layout


@dataclass(frozen=True)
class Endpoint:
    """One file of the snapshot and the Trakt call that fills it."""

    name: str  # key in the report
    file: str  # path inside the snapshot (services/data/layout.py)
    path: str  # Trakt path, `{u}` is the username
    params: tuple[tuple[str, str], ...] = ()
    paged: bool = True


FIXED_ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("profile", layout.PROFILE, "/users/{u}", (("extended", "full"),), paged=False),
    Endpoint("stats", layout.STATS, "/users/{u}/stats", paged=False),
    Endpoint("history/movies", layout.HISTORY["movies"], "/users/{u}/history/movies"),
    Endpoint("history/shows", layout.HISTORY["shows"], "/users/{u}/history/shows"),
    # Runtimes, genres, countries and languages (the insights, README "Insights") come with
    # extended=full on the watched collections, which carry each title once; the history is joined
    # to them by Trakt id. extended=full on the history would repeat a show in every episode row
    # and bring the episodes' overviews: many times the bytes for one more field (episode runtimes).
    Endpoint("watched/movies", layout.WATCHED["movies"], "/users/{u}/watched/movies", (("extended", "full"),)),
    # Since mid-2026 watched shows carry their `seasons` only with extended=progress (which pages
    # at 100 rows whatever `limit` says); the older, unpaginated API ignores the parameter.
    Endpoint("watched/shows", layout.WATCHED["shows"], "/users/{u}/watched/shows", (("extended", "progress,full"),)),
    Endpoint("watchlist/movies", layout.WATCHLIST["movies"], "/users/{u}/watchlist/movies"),
    Endpoint("watchlist/shows", layout.WATCHLIST["shows"], "/users/{u}/watchlist/shows"),
    Endpoint("watchlist/all", layout.WATCHLIST["all"], "/users/{u}/watchlist"),
    Endpoint("lists", layout.LISTS, "/users/{u}/lists"),
    Endpoint("comments", layout.COMMENTS, "/users/{u}/comments"),
    Endpoint("ratings", layout.RATINGS, "/users/{u}/ratings"),
)


def list_item_endpoints(lists: list, warn: Callable[[str], Any]) -> list[Endpoint]:
    """One items endpoint per list with a numeric id and a safe, unique slug; each other list is
    skipped and `warn` is told why."""
    endpoints = []
    seen: set[str] = set()
    for position, entry in enumerate(lists):
        ids = entry.get("ids") if isinstance(entry, dict) else None
        name = entry.get("name") if isinstance(entry, dict) else None
        trakt_id = ids.get("trakt") if isinstance(ids, dict) else None
        slug = ids.get("slug") if isinstance(ids, dict) else None
        label = f"list {name!r}" if name else f"list number {position + 1}"
        if isinstance(trakt_id, bool) or not isinstance(trakt_id, int) or trakt_id <= 0:
            warn(f"{label} has no numeric Trakt id: its items were skipped")
            continue
        if not isinstance(slug, str) or not layout.is_safe_slug(slug):
            warn(f"{label} (id {trakt_id}) has a slug that is not safe as a file name "
                 f"({str(slug)[:60]!r}): its items were skipped")
            continue
        if slug in seen:
            warn(f"{label} (id {trakt_id}) repeats the slug {slug!r}: its items were skipped")
            continue
        seen.add(slug)
        endpoints.append(Endpoint(f"lists/{slug}", layout.list_items_endpoint(slug),
                                  f"/users/{{u}}/lists/{trakt_id}/items"))
    return endpoints

"""Names of the files in a data folder (README "Data folder") and the wrapper every file carries."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

INDEX = "index.json"
PROFILE = "user/profile/basic.json"
STATS = "user/stats/overview.json"
HISTORY = {"movies": "user/history/movies.json", "shows": "user/history/shows.json"}
WATCHLIST = {
    "movies": "user/watchlist/movies.json",
    "shows": "user/watchlist/shows.json",
    "all": "user/watchlist/all.json",
}
WATCHED = {"movies": "user/watched/movies.json", "shows": "user/watched/shows.json"}
LISTS = "user/lists/user_lists.json"
LISTS_DIR = "user/lists"
LIST_ITEMS_SUFFIX = "_items.json"
COMMENTS = "user/comments/all.json"
RATINGS = "user/ratings/all.json"

# Every fixed file a complete snapshot has (list item files come on top, one per list).
ALL_FIXED_FILES = (
    INDEX, PROFILE, STATS, *HISTORY.values(), *WATCHLIST.values(), *WATCHED.values(),
    LISTS, COMMENTS, RATINGS,
)

SOURCE_TRAKT = "trakt_api_user_data"
SOURCE_DEMO = "demo"

# A list slug as Trakt makes them; anything else never becomes part of a path.
SLUG_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_-]{0,199}"
_SLUG = re.compile(SLUG_PATTERN)


def is_safe_slug(slug: str) -> bool:
    return bool(_SLUG.fullmatch(slug))  # fullmatch: `$` would let a trailing newline through


def list_items_endpoint(slug: str) -> str:
    """`user/lists/<slug>_items.json`; refuses a slug that could escape the folder."""
    if not is_safe_slug(slug):
        raise ValueError(f"not a list slug: {slug!r}")
    return f"{LISTS_DIR}/{slug}{LIST_ITEMS_SUFFIX}"


def utc_now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def item_count(data: Any) -> int:
    return len(data) if isinstance(data, list) else 1


def wrap(endpoint: str, data: Any, *, username: str, source: str, last_updated: str,
         extra: dict | None = None) -> dict:
    """The `{"metadata", "data"}` wrapper of README "Data folder"."""
    metadata = {
        "last_updated": last_updated,
        "source": source,
        "username": username,
        "endpoint": endpoint,
        "count": item_count(data),
    }
    if extra:
        metadata.update(extra)
    return {"metadata": metadata, "data": data}


_DESCRIPTIONS = {
    "profile": "Basic user profile information",
    "stats": "Comprehensive viewing statistics",
    "history": {"movies": "Movie viewing history", "shows": "TV episode viewing history"},
    "watchlist": {"movies": "Movie watchlist", "shows": "Show watchlist", "all": "Complete watchlist"},
    "watched": {"movies": "All watched movies", "shows": "All watched TV shows"},
    "lists": "Custom user lists",
    "comments": "User comments and reviews",
    "ratings": "User ratings",
}


def index_document(*, username: str, last_updated: str, counts: dict[str, int],
                   authentication: str = "api_key_only") -> dict:
    """The `data` of index.json: what the folder holds and how many items each file has."""
    return {
        "last_updated": last_updated,
        "data_type": "personal_user_data",
        "username": username,
        "authentication": authentication,
        "data_structure": {"user": _DESCRIPTIONS},
        "files": dict(sorted(counts.items())),
    }

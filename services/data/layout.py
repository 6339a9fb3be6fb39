"""Names of the files in a data folder (README "Data folder") and the wrapper every file carries."""

from __future__ import annotations

import re
from typing import Any

from services import times

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

# Up next and the calendar (README "Up next and the calendar"): each watched show with its seasons,
# episodes and status, the shows hidden from progress (signed in), and the watchlist movies with
# their release dates. A snapshot may lack them
# (an older sync, an import): then those routes answer 404 and everything else is served.
SHOWS_DIR = "user/shows"
SHOW_SEASONS = "user/shows/seasons.json"
SHOW_HIDDEN = "user/shows/hidden.json"
CALENDAR_MOVIES = "user/calendar/movies.json"
UPNEXT_FILES = (SHOW_SEASONS, SHOW_HIDDEN, CALENDAR_MOVIES)

# Every fixed file a complete snapshot has (list item files come on top, one per list).
ALL_FIXED_FILES = (
    INDEX, PROFILE, STATS, *HISTORY.values(), *WATCHLIST.values(), *WATCHED.values(),
    LISTS, COMMENTS, RATINGS,
)

# The Trakt sign-in (README "Signing in"): outside the snapshots, private to the service's user.
AUTH_DIR = "auth"
TOKEN = "auth/token.json"
TOKEN_LOCK = "auth/token.lock"  # held while a refresh spends the single-use refresh token

SOURCE_TRAKT = "trakt_api_user_data"
SOURCE_DEMO = "demo"

# A list slug as Trakt makes them; anything else never becomes part of a path.
SLUG_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_-]{0,199}"
_SLUG = re.compile(SLUG_PATTERN)


def is_safe_slug(slug: str) -> bool:
    # Matched whole (`fullmatch`): with `match` and `$`, "best\n" passed and became the file name
    # "best\n_items.json".
    return isinstance(slug, str) and _SLUG.fullmatch(slug) is not None


def list_items_endpoint(slug: str) -> str:
    """`user/lists/<slug>_items.json`; refuses a slug that could escape the folder."""
    if not is_safe_slug(slug):
        raise ValueError(f"not a list slug: {slug!r}")
    return f"{LISTS_DIR}/{slug}{LIST_ITEMS_SUFFIX}"


def utc_now_iso() -> str:
    """Now in the form of the data files' `last_updated` (services/times.py)."""
    return times.iso_offset(times.now())


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

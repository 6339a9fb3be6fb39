"""A fake Trakt API v2: a real HTTP server on 127.0.0.1 serving a scripted account.

It behaves like Trakt in 2026 where the sync and the watcher care: it checks the required
headers (412 without `Content-Type: application/json`, 403 for a wrong or missing key, 400 for a
wrong `trakt-api-version`); paginates with the `X-Pagination-*` headers (100 a page when no
`limit` is sent, 10 for comments; `limit` clamped at 250), `/watched/{movies,shows}` included;
gives watched shows their `seasons` only with `extended=progress`, which caps a page at 100
(`watched_variant = "legacy"`: the older API, each watched list whole and unpaginated, with
seasons unless `extended=noseasons`); answers 204 from `/watching` when nothing plays; and can
inject faults into the next N matching requests (429 JSON or HTML, 5xx/52x, slow answers,
dropped connections, malformed JSON, the API key echoed back, private users).

Signed in (`oauth=FakeTraktOAuth(...)`): the OAuth routes are mounted in front of the API's, an
`Authorization: Bearer` header must carry a live token of that fake (401 `invalid_token` when it
expired or was refreshed away, so a client refreshes once), and `/users/me/...` answers for the
token's user (401 without a token). `private_mode` makes the account private to everybody else,
in one of the ways Trakt shows it (PRIVATE_MODES); its owner's token still reads everything.

    account = FakeAccount.build(history=10_000, watched_movies=3_000, shows=600, lists=40)
    fake = FakeTrakt(account, latency=0.05)
    url = await fake.start()          # or: with fake.running_in_thread() as url: ...
    fake.inject("rate_limit", times=1, retry_after=1)
    await fake.stop()
"""

from __future__ import annotations

import asyncio
import collections
import json
import math
import random
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import tornado.httpserver
import tornado.netutil
import tornado.web

from tests.fakes.bomb import gzip_bomb
from tests.fakes.server import LoopbackServer
from tests.fakes.trakt_oauth import FakeTraktOAuth

MAX_LIMIT = 250
DEFAULT_LIMIT = 100  # a page when no `limit` is sent (2026)
DEFAULT_LIMITS = {"comments": 10, "hidden/progress_watched": 10}  # endpoints whose default differs
PROGRESS_MAX_LIMIT = 100  # `extended=progress` caps a page at this
SHOW_CLOCK = datetime(2026, 6, 1, tzinfo=UTC)  # "now" of the shows' air dates (FakeTrakt.show_clock)
FIRST_AIRED = datetime(2019, 1, 1, 2, tzinfo=UTC)  # episode n of every season aired n weeks later
WATCHED_VARIANTS = ("2026", "legacy")

FAULT_KINDS = (
    "rate_limit",       # 429, JSON body, Retry-After + X-Ratelimit (Trakt's own)
    "rate_limit_html",  # 429, text/html, Retry-After, no X-Ratelimit (a CDN block page)
    "status",           # any status (500, 502, 503, 520-524 ...) with an HTML body
    "slow",             # sleep `delay` seconds, then answer normally
    "drop",             # close the connection without an answer
    "malformed",        # 200 with a truncated JSON body
    "echo_key",         # 200 [] whose X-Pagination-Item-Count is the trakt-api-key sent (a broken upstream)
    "private",          # 401 + X-Private-User: true
    "forbidden",        # 403 (what Trakt answers for a bad key or unapproved app)
    "gzip_bomb",        # 200, Content-Encoding: gzip, ~1.2 MB inflating to 1.2 GB of valid JSON
)

# How a private account looks to a caller that is not its signed-in owner. In each the profile
# answers 200 with the reduced body and `private: true`; the other user paths answer:
PRIVATE_MODES = (
    "401",      # 401 + X-Private-User: true (the documented behaviour)
    "403",      # 403 (2026 drift on some endpoints)
    "empty",    # 200 [] on every list (2026 drift: "history can return an empty list for private profiles")
    "profile",  # their data: only the profile's `private: true` tells (the watchlist leak of 2026)
)
PROFILE_REDUCED = ("username", "private", "name", "vip", "vip_ep", "ids")

_WORDS = ("Silent", "Crimson", "Last", "Hidden", "Broken", "Golden", "Northern", "Paper", "Glass",
          "Midnight", "Electric", "Lost", "Iron", "Quiet", "Wild", "Distant", "Frozen", "Secret")
_NOUNS = ("River", "Empire", "Garden", "Signal", "Harbor", "Machine", "Kingdom", "Orchard", "Voyage",
          "Archive", "Frontier", "Circus", "Lantern", "Mirror", "Station", "Tide", "Engine", "Letter")


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _slugify(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-").replace("--", "-")


@dataclass
class FakeAccount:
    """A scripted Trakt account in real Trakt v2 shapes (what each endpoint returns)."""

    username: str = "fakeuser"
    private: bool = False
    profile: dict = field(default_factory=dict)
    stats: dict = field(default_factory=dict)
    history_movies: list = field(default_factory=list)
    history_shows: list = field(default_factory=list)
    watched_movies: list = field(default_factory=list)
    watched_shows: list = field(default_factory=list)
    watchlist: list = field(default_factory=list)  # movies and shows, each with a rank
    lists: list = field(default_factory=list)
    list_items: dict = field(default_factory=dict)  # list trakt id -> items
    comments: list = field(default_factory=list)
    ratings: list = field(default_factory=list)

    @classmethod
    def build(cls, *, username: str = "fakeuser", history: int = 60, watched_movies: int = 20,
              shows: int = 6, lists: int = 3, list_items: int = 5, watchlist: int = 12,
              comments: int = 4, ratings: int = 15, seed: int = 1, private: bool = False) -> FakeAccount:
        """A deterministic account of the given size. `history` rows are split one third movies,
        two thirds episodes; list number i holds `list_items + i % 3` items."""
        for name, value in (("history", history), ("watched_movies", watched_movies), ("shows", shows),
                            ("lists", lists), ("list_items", list_items), ("watchlist", watchlist),
                            ("comments", comments), ("ratings", ratings)):
            if value < 0:
                raise ValueError(f"{name} must be 0 or more, got {value}")
        rng = random.Random(seed)
        start = datetime(2019, 1, 1, tzinfo=UTC)

        def when() -> str:
            return _iso(start + timedelta(minutes=rng.randrange(0, 60 * 24 * 365 * 6)))

        movie_count = max(1, watched_movies + watchlist + list_items + 10)
        movies = []
        for n in range(1, movie_count + 1):
            title = f"{_WORDS[n % len(_WORDS)]} {_NOUNS[(n // len(_WORDS)) % len(_NOUNS)]} {n}"
            year = 1970 + n % 55
            movies.append({"title": title, "year": year, "ids": {
                "trakt": n, "slug": f"{_slugify(title)}-{year}", "imdb": f"tt{1000000 + n:07d}",
                "tmdb": 10000 + n}})
        show_count = max(1, shows + watchlist // 2 + 5)
        catalog_shows = []  # (show, seasons as list of episode counts)
        for n in range(1, show_count + 1):
            title = f"The {_NOUNS[n % len(_NOUNS)]} of {_WORDS[(n // len(_NOUNS)) % len(_WORDS)]} {n}"
            year = 1990 + n % 35
            show = {"title": title, "year": year, "ids": {
                "trakt": 500000 + n, "slug": f"{_slugify(title)}", "tvdb": 70000 + n,
                "imdb": f"tt{2000000 + n:07d}", "tmdb": 60000 + n}}
            catalog_shows.append((show, [rng.randint(6, 12) for _ in range(rng.randint(1, 5))]))

        def episode(show_index: int, season: int, number: int) -> dict:
            base = (500000 + show_index) * 1000 + season * 50 + number
            return {"season": season, "number": number, "title": f"Episode {number}",
                    "ids": {"trakt": base, "tvdb": base + 7, "imdb": None, "tmdb": base + 3}}

        account = cls(username=username, private=private)
        watched = movies[:watched_movies]
        movie_rows = history // 3
        history_id = history + 1000
        rows = []
        for _ in range(movie_rows):
            movie = rng.choice(watched or movies)
            rows.append({"id": 0, "watched_at": when(), "action": rng.choice(("watch", "scrobble", "checkin")),
                         "type": "movie", "movie": movie})
        rows.sort(key=lambda r: r["watched_at"], reverse=True)
        for row in rows:
            row["id"] = history_id
            history_id -= 1
        account.history_movies = rows

        watched_shows = catalog_shows[:shows]
        rows = []
        for _ in range(history - movie_rows):
            index = rng.randrange(len(watched_shows or catalog_shows))
            show, seasons = (watched_shows or catalog_shows)[index]
            season = rng.randrange(len(seasons)) + 1
            number = rng.randint(1, seasons[season - 1])
            rows.append({"id": 0, "watched_at": when(), "action": rng.choice(("watch", "scrobble")),
                         "type": "episode", "episode": episode(index + 1, season, number), "show": show})
        rows.sort(key=lambda r: r["watched_at"], reverse=True)
        for row in rows:
            row["id"] = history_id
            history_id -= 1
        account.history_shows = rows

        for movie in watched:
            last = when()
            account.watched_movies.append({"plays": rng.randint(1, 3), "last_watched_at": last,
                                           "last_updated_at": last, "movie": movie})
        for show, seasons in watched_shows:
            season_rows = []
            plays = 0
            last = "1970-01-01T00:00:00.000Z"
            for number, episodes in enumerate(seasons, start=1):
                episode_rows = []
                for ep in range(1, episodes + 1):
                    seen = when()
                    last = max(last, seen)
                    count = rng.randint(1, 2)
                    plays += count
                    episode_rows.append({"number": ep, "plays": count, "last_watched_at": seen})
                season_rows.append({"number": number, "episodes": episode_rows})
            account.watched_shows.append({"plays": plays, "last_watched_at": last, "last_updated_at": last,
                                          "reset_at": None, "show": show, "seasons": season_rows})

        unwatched = movies[watched_movies:] or movies
        for rank in range(1, watchlist + 1):
            item: dict[str, Any] = {"rank": rank, "id": 900000 + rank, "listed_at": when(),
                                    "notes": "Must watch" if rank % 5 == 0 else None}
            if rank % 3 == 0:
                item.update(type="show", show=catalog_shows[-1 - (rank % len(catalog_shows))][0])
            else:
                item.update(type="movie", movie=unwatched[rank % len(unwatched)])
            account.watchlist.append(item)

        user = {"username": username, "private": private, "name": username.title(), "vip": False,
                "vip_ep": False, "ids": {"slug": username}}
        for n in range(1, lists + 1):
            name = f"{_WORDS[n % len(_WORDS)]} picks {n}"
            trakt_id = 3000000 + n
            items = []
            for rank in range(1, list_items + n % 3 + 1):
                item = {"rank": rank, "id": trakt_id * 1000 + rank, "listed_at": when(), "notes": None}
                if rank % 4 == 0:
                    item.update(type="show", show=catalog_shows[rank % len(catalog_shows)][0])
                else:
                    item.update(type="movie", movie=movies[(n * 7 + rank) % len(movies)])
                items.append(item)
            created = when()
            account.lists.append({
                "name": name, "description": f"Scripted list number {n}", "privacy": "public",
                "share_link": f"https://trakt.tv/lists/{trakt_id}", "type": "personal",
                "display_numbers": False, "allow_comments": True, "sort_by": "rank", "sort_how": "asc",
                "created_at": created, "updated_at": max(created, when()), "item_count": len(items),
                "comment_count": 0, "likes": n % 4, "ids": {"trakt": trakt_id, "slug": _slugify(name)},
                "user": user})
            account.list_items[trakt_id] = items

        for n in range(1, comments + 1):
            movie = movies[n % len(movies)]
            created = when()
            account.comments.append({"type": "movie", "movie": movie, "comment": {
                "id": 700000 + n, "comment": f"Comment {n}: a thoughtful review of {movie['title']}.",
                "spoiler": False, "review": n % 2 == 0, "parent_id": 0, "created_at": created,
                "updated_at": created, "replies": 0, "likes": n % 3,
                "user_stats": {"rating": 7, "play_count": 1, "completed_count": 1}, "user": user}})
        for n in range(1, ratings + 1):
            if n % 3 == 0:
                show = catalog_shows[n % len(catalog_shows)][0]
                account.ratings.append({"rated_at": when(), "rating": 1 + n % 10, "type": "show", "show": show})
            else:
                account.ratings.append({"rated_at": when(), "rating": 1 + n % 10, "type": "movie",
                                        "movie": movies[n % len(movies)]})

        account.profile = {**user, "joined_at": "2018-03-04T12:00:00.000Z", "location": "Lisbon",
                           "about": "Scripted account for tests", "gender": None, "age": None,
                           "images": {"avatar": {"full": "https://walter.trakt.tv/images/avatar.png"}},
                           "vip_og": False, "vip_years": 0}
        episode_plays = sum(s["plays"] for s in account.watched_shows)
        distribution = {str(r): sum(1 for x in account.ratings if x["rating"] == r) for r in range(1, 11)}
        account.stats = {
            "movies": {"plays": sum(m["plays"] for m in account.watched_movies), "watched": watched_movies,
                       "minutes": 110 * watched_movies, "collected": 0,
                       "ratings": sum(1 for r in account.ratings if r["type"] == "movie"), "comments": comments},
            "shows": {"watched": shows, "collected": 0,
                      "ratings": sum(1 for r in account.ratings if r["type"] == "show"), "comments": 0},
            "seasons": {"ratings": 0, "comments": 0},
            "episodes": {"plays": episode_plays, "watched": sum(len(e["episodes"]) for s in account.watched_shows
                                                                for e in s["seasons"]),
                         "minutes": 45 * episode_plays, "collected": 0, "ratings": 0, "comments": 0},
            "network": {"friends": 2, "followers": 5, "following": 3},
            "ratings": {"total": len(account.ratings), "distribution": distribution},
        }
        return account

    def watchlist_of(self, kind: str) -> list:
        """`movies`, `shows` or `all` (sorted by rank, like Trakt's default)."""
        items = sorted(self.watchlist, key=lambda item: item["rank"])
        if kind == "all":
            return items
        wanted = {"movies": "movie", "shows": "show"}[kind]
        return [item for item in items if item["type"] == wanted]

    def paged_endpoints(self) -> dict[str, int]:
        """Rows per paginated endpoint (path relative to /users/{u}) — what a sync must fetch."""
        sizes = {
            "history/movies": len(self.history_movies), "history/shows": len(self.history_shows),
            "watched/movies": len(self.watched_movies), "watched/shows": len(self.watched_shows),
            "watchlist/movies": len(self.watchlist_of("movies")), "watchlist/shows": len(self.watchlist_of("shows")),
            "watchlist": len(self.watchlist), "lists": len(self.lists), "comments": len(self.comments),
            "ratings": len(self.ratings),
        }
        for lst in self.lists:
            if isinstance(lst, dict) and isinstance(lst.get("ids"), dict) and lst["ids"].get("trakt") in self.list_items:
                sizes[f"lists/{lst['ids']['trakt']}/items"] = len(self.list_items[lst["ids"]["trakt"]])
        return sizes

    def minimum_requests(self, limit: int = MAX_LIMIT, watched_variant: str = "2026", *, signed_in: bool = False) -> int:
        """Requests a complete mirror needs at `limit` rows a page: one per page, at least one per
        endpoint, plus the profile and the stats. Watched shows come at most 100 a page (they are
        asked for with `extended=progress`); the legacy variant sends each watched list whole."""
        total = 2
        for key, n in self.paged_endpoints().items():
            if watched_variant == "legacy" and key.startswith("watched/"):
                total += 1
            else:
                page = min(limit, PROGRESS_MAX_LIMIT) if key == "watched/shows" else limit
                total += max(1, math.ceil(n / page))
        return total + self.show_data_requests(limit, watched_variant, signed_in=signed_in)

    def show_data_requests(self, limit: int = MAX_LIMIT, watched_variant: str = "2026", *,
                           signed_in: bool = False, hidden: tuple[int, ...] = ()) -> int:
        """What a first sync spends on up next's show data: the seasons of every watched show with
        aired episodes not watched (every third show, by construction) and, without a token, of
        every returning one; none for an ended show watched to the end or a hidden one. Signed in,
        the hidden shows (a page) and the calendar's three requests stand in for the returning shows
        watched to the end. Plus the watchlist movies with extended=full (their release dates), or
        signed in, the movie calendar's three requests when those would be more."""
        seasons = caught_up = 0
        for row in self.watched_shows:
            facts = show_facts(row)
            if row["show"]["ids"]["trakt"] in hidden:
                continue
            unwatched = sum(len(s["episodes"]) for s in row["seasons"] if s["number"] >= 1) < facts["aired_episodes"]
            returning = facts["status"] == "returning series"
            seasons += unwatched or (returning and not signed_in)
            caught_up += returning and not unwatched
        releases = max(1, math.ceil(len(self.watchlist_of("movies")) / limit))  # watchlist movies, extended=full
        if signed_in:  # a watchlist of more than three pages: the movie calendar's three requests
            releases = min(releases, 3)
        extra = (1 + (3 if caught_up else 0)) if signed_in else 0  # hidden shows, calendar
        return seasons + releases + extra


@dataclass
class Fault:
    kind: str
    remaining: int
    path: str | None = None  # substring of the request path; None matches everything
    status: int = 500
    retry_after: float | str = 1
    delay: float = 1.0


class FakeTrakt(LoopbackServer):
    """The fake API server; see the module docstring."""

    name = "fake Trakt"

    def __init__(self, account: FakeAccount, api_key: str = "test-key", latency: float = 0.0,
                 oauth: FakeTraktOAuth | None = None) -> None:
        self.account = account
        self.oauth = oauth  # signing in: see the module docstring
        self.private_mode: str | None = None  # one of PRIVATE_MODES
        self.private_user_header = True  # X-Private-User: true|false on the account's paths, as Trakt sends it
        self.authorizations: list[str] = []  # the Authorization header of every GET ("" without one)
        self.api_key = api_key
        self.latency = latency
        self.max_limit = MAX_LIMIT
        self.watched_variant = "2026"  # or "legacy": see the module docstring
        self.fixed_page_size: int | None = None  # set: ignore `limit` altogether, like an old endpoint
        self.unpaginated: set[str] = set()  # endpoint keys (see paged_endpoints) answered whole, no headers
        self.item_count_override: dict[str, int] = {}  # endpoint key -> X-Pagination-Item-Count to claim
        self.watching: dict | None = None
        self.last_headers: dict[str, str] = {}
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.counter: collections.Counter[str] = collections.Counter()
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self.in_flight = 0  # requests being answered now (a dropped one stays counted)
        self.show_updated_at: dict[int, str] = {}  # trakt id -> the show's updated_at (see show_facts)
        self.show_clock = SHOW_CLOCK  # "now" of the seasons' air dates
        self.hidden_shows: list[int] = []  # trakt ids hidden from progress (/users/hidden/progress_watched)
        self.max_in_flight = 0
        self._init_activities()

    # --- lifecycle ---------------------------------------------------------------------------
    def make_app(self) -> tornado.web.Application:
        oauth_routes = self.oauth.routes() if self.oauth is not None else []
        return tornado.web.Application([*oauth_routes, (r"/(.*)", _FakeTraktHandler, {"fake": self})],
                                       log_function=lambda h: None)

    def thread_value(self) -> str:
        return self.base_url

    @property
    def url(self) -> str | None:
        return self.base_url or None

    # --- scripting -------------------------------------------------------------------------
    def inject(self, kind: str, *, times: int = 1, path: str | None = None, status: int = 500,
               retry_after: float | str = 1, delay: float = 1.0) -> None:
        """Make the next `times` requests whose path contains `path` fail in the way `kind` says."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; one of {', '.join(FAULT_KINDS)}")
        if times < 1:
            raise ValueError(f"times must be at least 1, got {times}")
        with self._lock:
            self._faults.append(Fault(kind, times, path, status, retry_after, delay))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def pending_faults(self) -> int:
        with self._lock:
            return sum(f.remaining for f in self._faults)

    def count(self, path_part: str = "") -> int:
        """Requests received whose path contains `path_part`."""
        return sum(n for p, n in self.counter.items() if path_part in p)

    def reset_counts(self) -> None:
        self.requests.clear()
        self.counter.clear()

    def _take_fault(self, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.path is None or fault.path in path:
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    # --- signing in and private accounts --------------------------------------------------
    def caller(self, authorization: str | None) -> tuple[str | None, bool]:
        """(the slug a Bearer token belongs to or None, whether the token must be refused with 401)."""
        if not authorization or self.oauth is None:
            return None, False
        settings = self.oauth.user_for(authorization)
        if settings is None:
            return None, True
        return settings["user"]["ids"]["slug"], False

    def own_path(self, path: str, caller: str | None) -> str | None:
        """`/users/me/...` as the caller's own path; None when `me` comes without a token."""
        parts = path.split("/")
        if len(parts) < 3 or parts[1] != "users" or parts[2] != "me":
            return path
        if caller is None:
            return None
        return "/".join([*parts[:2], caller, *parts[3:]])

    def hidden_from(self, caller: str | None) -> bool:
        """Whether the account is private to this caller (anybody but its signed-in owner)."""
        if self.private_mode is None:
            return False
        if self.private_mode not in PRIVATE_MODES:
            raise ValueError(f"private_mode must be one of {PRIVATE_MODES}, got {self.private_mode!r}")
        return caller != self.account.username

    def expire_access_tokens(self) -> None:
        """Every access token handed out so far has expired at Trakt (their refresh tokens still work)."""
        assert self.oauth is not None
        with self.oauth._lock:
            for token in self.oauth.tokens.values():
                token.created_at -= token.expires_in + 1

    # --- last activities and account changes (incremental sync) ------------------------------
    # GET /sync/last_activities in Trakt's shape; every change a test makes below moves the
    # timestamps Trakt moves for it (README "Sync", incremental checks).
    ACTIVITY_AREAS = {
        "movies": ("watched_at", "collected_at", "rated_at", "watchlisted_at", "favorited_at", "commented_at",
                   "paused_at", "hidden_at"),
        "episodes": ("watched_at", "collected_at", "rated_at", "watchlisted_at", "commented_at", "paused_at"),
        "shows": ("rated_at", "watchlisted_at", "favorited_at", "commented_at", "hidden_at"),
        "seasons": ("rated_at", "watchlisted_at", "commented_at", "hidden_at"),
        "comments": ("liked_at", "blocked_at"),
        "lists": ("liked_at", "updated_at", "commented_at"),
        "watchlist": ("updated_at",),
        "favorites": ("updated_at",),
        "account": ("settings_at", "followed_at", "following_at", "pending_at", "requested_at"),
    }
    ACTIVITY_START = datetime(2026, 1, 1, tzinfo=UTC)

    def _init_activities(self) -> None:
        self.valid_token = None  # Callable[[str], bool] checking `Authorization`; None: not checked
        self._activity_clock = self.ACTIVITY_START
        self.activities = {area: {key: _iso(self.ACTIVITY_START) for key in keys}
                           for area, keys in self.ACTIVITY_AREAS.items()}

    def last_activities(self) -> dict:
        """The document as Trakt sends it: `all` is the newest timestamp of every area."""
        with self._lock:
            document = {area: dict(values) for area, values in self.activities.items()}
        document["all"] = max(v for values in document.values() for v in values.values())
        return {"all": document.pop("all"), **document}

    def _tick(self) -> str:
        """A new moment, strictly later than the last one (tests change the account quickly)."""
        now = max(datetime.now(UTC).replace(microsecond=0), self._activity_clock + timedelta(seconds=1))
        self._activity_clock = now
        return _iso(now)

    def touch(self, *keys: str) -> str:
        """Move `area.key` timestamps (e.g. "movies.rated_at") to now; returns the moment."""
        moment = self._tick()
        with self._lock:
            for dotted in keys:
                area, key = dotted.split(".")
                self.activities[area][key] = moment
        return moment

    def history_all(self) -> list:
        """/users/{u}/history: movie and episode plays together, newest first."""
        rows = self.account.history_movies + self.account.history_shows
        return sorted(rows, key=lambda row: (row["watched_at"], row["id"]), reverse=True)

    def _next_history_id(self) -> int:
        ids = [row["id"] for row in self.account.history_movies + self.account.history_shows]
        return max(ids, default=1000) + 1

    def add_play(self, kind: str = "movie", *, index: int = 0, watched_at: str | None = None) -> dict:
        """A new play of the account's `index`-th watched movie (or an episode of its first watched
        show), as a finished scrobble does: history, watched, stats and `*.watched_at` move."""
        account = self.account
        area = "movies" if kind == "movie" else "episodes"
        moment = self.touch(f"{area}.watched_at")
        when = watched_at or moment
        row_id = self._next_history_id()
        if kind == "movie":
            entry = account.watched_movies[index]
            row = {"id": row_id, "watched_at": when, "action": "scrobble", "type": "movie", "movie": entry["movie"]}
            rows = account.history_movies
            entry["plays"] += 1
            entry["last_watched_at"] = max(entry["last_watched_at"], when)
            entry["last_updated_at"] = moment
            account.stats["movies"]["plays"] += 1
        else:
            entry = account.watched_shows[index]
            season = entry["seasons"][0]
            episode_row = season["episodes"][0]
            episode_row["plays"] += 1
            episode_row["last_watched_at"] = max(episode_row["last_watched_at"], when)
            entry["plays"] += 1
            entry["last_watched_at"] = max(entry["last_watched_at"], when)
            entry["last_updated_at"] = moment
            show = entry["show"]
            base = show["ids"]["trakt"] * 1000 + season["number"] * 50 + episode_row["number"]
            episode = {"season": season["number"], "number": episode_row["number"],
                       "title": f"Episode {episode_row['number']}",
                       "ids": {"trakt": base, "tvdb": base + 7, "imdb": None, "tmdb": base + 3}}
            row = {"id": row_id, "watched_at": when, "action": "scrobble", "type": "episode",
                   "episode": episode, "show": show}
            rows = account.history_shows
            account.stats["episodes"]["plays"] += 1
        rows.append(row)
        rows.sort(key=lambda r: (r["watched_at"], r["id"]), reverse=True)
        return row

    def remove_play(self, row_id: int) -> dict:
        """Remove one history row (POST /sync/history/remove): its title's watched plays and the
        stats go down one, `*.watched_at` moves."""
        account = self.account
        for rows, area, stat in ((account.history_movies, "movies", "movies"),
                                 (account.history_shows, "episodes", "episodes")):
            for row in rows:
                if row["id"] == row_id:
                    rows.remove(row)
                    account.stats[stat]["plays"] -= 1
                    media = "movie" if area == "movies" else "show"
                    watched = account.watched_movies if area == "movies" else account.watched_shows
                    for entry in watched:
                        if entry[media]["ids"]["trakt"] == row[media]["ids"]["trakt"]:
                            entry["plays"] -= 1
                    self.touch(f"{area}.watched_at")
                    return row
        raise KeyError(row_id)

    def rate(self, movie: dict, rating: int) -> None:
        """Rate a movie (a new rating or a changed one): `movies.rated_at` moves."""
        moment = self.touch("movies.rated_at")
        account = self.account
        account.ratings = [r for r in account.ratings if not (r["type"] == "movie" and r["movie"] == movie)]
        account.ratings.insert(0, {"rated_at": moment, "rating": rating, "type": "movie", "movie": movie})
        distribution = {str(r): sum(1 for x in account.ratings if x["rating"] == r) for r in range(1, 11)}
        account.stats["ratings"] = {"total": len(account.ratings), "distribution": distribution}
        account.stats["movies"]["ratings"] = sum(1 for r in account.ratings if r["type"] == "movie")

    def add_to_watchlist(self, movie: dict) -> None:
        """Add a movie at the end of the watchlist: `movies.watchlisted_at` and `watchlist.updated_at` move."""
        moment = self.touch("movies.watchlisted_at", "watchlist.updated_at")
        watchlist = self.account.watchlist
        rank = max((item["rank"] for item in watchlist), default=0) + 1
        watchlist.append({"rank": rank, "id": 990000 + rank, "listed_at": moment, "notes": None,
                          "type": "movie", "movie": movie})

    def remove_from_watchlist(self, rank: int) -> None:
        """Remove the item at `rank`; the later items move up one (`rank` is the position)."""
        self.touch("movies.watchlisted_at", "watchlist.updated_at")
        kept = [item for item in self.account.watchlist_of("all") if item["rank"] != rank]
        for position, item in enumerate(kept, start=1):
            item["rank"] = position
        self.account.watchlist = kept

    def add_list_item(self, list_position: int, movie: dict) -> None:
        """Add a movie to the account's `list_position`-th list: that list's `updated_at`,
        `item_count` and `lists.updated_at` move."""
        moment = self.touch("lists.updated_at")
        lst = self.account.lists[list_position]
        items = self.account.list_items[lst["ids"]["trakt"]]
        rank = len(items) + 1
        items.append({"rank": rank, "id": lst["ids"]["trakt"] * 1000 + rank, "listed_at": moment, "notes": None,
                      "type": "movie", "movie": movie})
        lst["updated_at"] = moment
        lst["item_count"] = len(items)

    # --- routing ---------------------------------------------------------------------------
    def resolve(self, path: str, query: dict[str, str]) -> tuple[str | None, Any]:
        """(endpoint key for pagination or None for an object, data) — raises KeyError for 404."""
        parts = [p for p in path.strip("/").split("/") if p]
        if parts[:1] == ["shows"]:
            return self.resolve_show(parts[1:], query)
        if parts[:1] == ["calendars"] or parts[:2] == ["users", "hidden"]:
            return self.resolve_upnext(parts, query)
        if len(parts) < 2 or parts[0] != "users" or parts[1] != self.account.username:
            raise KeyError(path)
        account = self.account
        rest = parts[2:]
        if not rest:
            profile = dict(account.profile)
            if query.get("extended") != "full":
                profile = {k: profile[k] for k in ("username", "private", "name", "vip", "vip_ep", "ids")
                           if k in profile}
            return None, profile
        head, tail = rest[0], rest[1:]
        if head == "stats" and not tail:
            return None, account.stats
        if head == "history" and not tail:
            return "history", _in_window(self.history_all(), query)
        if head == "history" and len(tail) == 1 and tail[0] in ("movies", "shows", "episodes"):
            if tail[0] == "movies":
                return "history/movies", _in_window(account.history_movies, query)
            return "history/shows", _in_window(account.history_shows, query)
        if head == "watched" and len(tail) == 1 and tail[0] == "movies":
            return "watched/movies", at_level(account.watched_movies, "movie", _extended(query))
        if head == "watched" and len(tail) == 1 and tail[0] == "shows":
            extended = _extended(query)
            return "watched/shows", at_level(self._watched_shows(extended), "show", extended, self.show_facts())
        if head == "watchlist" and not tail:
            return "watchlist", account.watchlist_of("all")
        if head == "watchlist" and len(tail) == 1 and tail[0] in ("movies", "shows"):
            return f"watchlist/{tail[0]}", self.with_full_movies(account.watchlist_of(tail[0]), _extended(query))
        if head == "lists" and not tail:
            return "lists", account.lists
        if head == "lists" and len(tail) == 2 and tail[1] == "items":
            for lst in account.lists:
                if not isinstance(lst, dict) or not isinstance(lst.get("ids"), dict):
                    continue  # a deliberately broken entry (tests of the sync's validation)
                if tail[0] in (str(lst["ids"].get("trakt")), lst["ids"].get("slug")):
                    return f"lists/{lst['ids']['trakt']}/items", account.list_items[lst["ids"]["trakt"]]
            raise KeyError(path)
        if head == "comments" and len(tail) <= 2:
            return "comments", account.comments
        if head == "ratings" and len(tail) <= 1:
            return "ratings", account.ratings
        raise KeyError(path)


    # --- pagination and the watched variants ------------------------------------------------
    def paginates(self, key: str) -> bool:
        """Whether the endpoint `key` answers in pages (with the X-Pagination-* headers)."""
        if key in self.unpaginated or (key.startswith("lists/") and "lists/*" in self.unpaginated):
            return False
        return not (self.watched_variant == "legacy" and key.startswith("watched/"))

    def page_limit(self, key: str, query: dict[str, str]) -> int:
        """Rows on a page of `key`: `limit` (or the endpoint's default), clamped."""
        if self.fixed_page_size:
            return self.fixed_page_size
        most = self.max_limit
        if "progress" in _extended(query):
            most = min(most, PROGRESS_MAX_LIMIT)
        return min(_positive_int(query.get("limit"), DEFAULT_LIMITS.get(key, DEFAULT_LIMIT)), most)

    def _watched_shows(self, extended: set[str]) -> list:
        if self.watched_variant not in WATCHED_VARIANTS:
            raise ValueError(f"watched_variant must be one of {WATCHED_VARIANTS}, got {self.watched_variant!r}")
        if self.watched_variant == "2026":
            with_seasons = "progress" in extended  # since mid-2026, seasons only with extended=progress
        else:
            with_seasons = "noseasons" not in extended
        if with_seasons:
            return self.account.watched_shows
        return [{k: v for k, v in row.items() if k != "seasons"} for row in self.account.watched_shows]


    # === up next and the calendar: shows, progress, hidden, calendars ===========================
    # Kept apart from the rest of the fake (README "Up next and the calendar"). Each watched show's
    # seasons are its watched episodes (all of them), plus, for every third show (trakt id % 3 == 0),
    # one episode aired 3 days before `show_clock` and not yet watched and one airing a week after
    # it; every other returning show gets one episode airing 10 days after `show_clock`. With `extended=full` a show is "returning series" (odd trakt id) or "ended" (even) and
    # carries `aired_episodes` (what aired by `show_clock`, specials left out) and `updated_at`
    # (SHOW_UPDATED_AT unless `show_updated_at[trakt id]` says otherwise): see show_facts().
    # OAuth only, as at Trakt (401 without `Authorization: Bearer`): `/users/hidden/progress_watched`
    # (paginated, 10 a page by default; the shows in `hidden_shows`), `/shows/{id}/progress/watched`,
    # `/calendars/my/shows|movies/{start_date}/{days}` (days 1-33, else 400; not paginated).
    # Public: `/shows/{id}/seasons` (episodes only with extended=episodes), `/shows/{id}/next_episode`
    # (204 when none airs after `show_clock`).
    SHOW_UPDATED_AT = "2026-01-01T00:00:00.000Z"
    CALENDAR_MAX_DAYS = 33
    TOKEN_PATHS = ("/users/hidden/", "/calendars/my/")  # and /shows/{id}/progress/

    def needs_token(self, path: str) -> bool:
        return path.startswith(self.TOKEN_PATHS) or (path.startswith("/shows/") and "/progress/" in path)

    def show_row(self, trakt_id: int) -> dict:
        for row in self.account.watched_shows:
            if row["show"]["ids"]["trakt"] == trakt_id:
                return row
        raise KeyError(trakt_id)

    def show_facts(self) -> dict[int, dict]:
        """{trakt id: what extended=full adds to a watched show beyond full_details()}."""
        return {row["show"]["ids"]["trakt"]: show_facts(row, self.show_updated_at, self.show_clock)
                for row in self.account.watched_shows}

    def full_movie(self, movie: dict) -> dict:
        """With extended=full a movie has its `released` date: trakt id % 20 - 5 days from `show_clock`."""
        released = self.show_clock.date() + timedelta(days=movie["ids"]["trakt"] % 20 - 5)
        return dict(movie, released=released.isoformat(), runtime=100, overview="…")

    def with_full_movies(self, rows: list, extended: set[str]) -> list:
        if "full" not in extended:
            return rows
        return [dict(row, movie=self.full_movie(row["movie"])) if "movie" in row else row for row in rows]

    def seasons_of(self, trakt_id: int) -> list:
        return fake_seasons(self.show_row(trakt_id), self.show_clock)

    def resolve_show(self, parts: list[str], query: dict[str, str]) -> tuple[str | None, Any]:
        """`/shows/{id}/seasons`, `/shows/{id}/next_episode`, `/shows/{id}/progress/watched`: not paginated."""
        if len(parts) < 2 or not parts[0].isdigit():
            raise KeyError("/".join(parts))
        trakt_id = int(parts[0])
        if parts[1:] == ["seasons"]:
            seasons = self.seasons_of(trakt_id)
            if "episodes" not in _extended(query):
                seasons = [{k: v for k, v in season.items() if k != "episodes"} for season in seasons]
            return None, seasons
        if parts[1:] == ["next_episode"]:
            upcoming = [e for s in self.seasons_of(trakt_id) for e in s["episodes"]
                        if s["number"] >= 1 and _moment(e["first_aired"]) > self.show_clock]
            return None, (upcoming[0] if upcoming else None)  # None: 204
        if parts[1:] == ["progress", "watched"]:
            return None, self.progress_of(trakt_id)
        raise KeyError("/".join(parts))

    def progress_of(self, trakt_id: int) -> dict:
        """GET /shows/{id}/progress/watched in Trakt's shape (specials left out, as by default)."""
        row = self.show_row(trakt_id)
        seen = {(s["number"], e["number"]): e["last_watched_at"] for s in row["seasons"] for e in s["episodes"]}
        seasons, aired_all, done_all, next_episode, last_episode = [], 0, 0, None, None
        for season in self.seasons_of(trakt_id):
            aired = [e for e in season["episodes"] if _moment(e["first_aired"]) <= self.show_clock]
            episodes = [{"number": e["number"], "completed": (season["number"], e["number"]) in seen,
                         "last_watched_at": seen.get((season["number"], e["number"]))} for e in aired]
            completed = sum(1 for e in episodes if e["completed"])
            seasons.append({"number": season["number"], "title": f"Season {season['number']}", "aired": len(aired),
                            "completed": completed, "episodes": episodes})
            aired_all += len(aired)
            done_all += completed
            for episode in aired:
                brief = {k: episode[k] for k in ("season", "number", "title", "ids")}
                if (season["number"], episode["number"]) in seen:
                    last_episode = brief
                elif next_episode is None:
                    next_episode = brief
        return {"aired": aired_all, "completed": done_all, "last_watched_at": row["last_watched_at"],
                "reset_at": row.get("reset_at"), "seasons": seasons, "hidden_seasons": [],
                "next_episode": next_episode, "last_episode": last_episode}

    def resolve_upnext(self, parts: list[str], query: dict[str, str]) -> tuple[str | None, Any]:
        """`/users/hidden/progress_watched` and `/calendars/my/{shows,movies}/{start_date}/{days}`."""
        if parts == ["users", "hidden", "progress_watched"]:
            if query.get("type", "show") != "show":
                return "hidden/progress_watched", []
            rows = [{"hidden_at": _iso(self.show_clock - timedelta(days=n + 1)), "type": "show",
                     "show": self.show_row(trakt_id)["show"]} for n, trakt_id in enumerate(self.hidden_shows)]
            return "hidden/progress_watched", rows
        if len(parts) == 5 and parts[:2] == ["calendars", "my"] and parts[2] in ("shows", "movies"):
            start = datetime.fromisoformat(parts[3]).replace(tzinfo=UTC)
            days = int(parts[4]) if parts[4].isdigit() else 0
            if not 1 <= days <= self.CALENDAR_MAX_DAYS:
                raise ValueError(f"days must be 1-{self.CALENDAR_MAX_DAYS}")
            end = start + timedelta(days=days)
            if parts[2] == "movies":
                movies = [self.full_movie(item["movie"]) for item in self.account.watchlist_of("movies")]
                return None, [{"released": m["released"], "movie": {k: v for k, v in m.items() if k != "overview"}}
                              for m in movies if start.date() <= datetime.fromisoformat(m["released"]).date() < end.date()]
            rows = []
            for row in self.account.watched_shows:
                for season in self.seasons_of(row["show"]["ids"]["trakt"]):
                    for episode in season["episodes"]:
                        if start <= _moment(episode["first_aired"]) < end:
                            rows.append({"first_aired": episode["first_aired"], "show": row["show"], "episode":
                                         {k: episode[k] for k in ("season", "number", "title", "ids")}})
            return None, sorted(rows, key=lambda r: r["first_aired"])
        raise KeyError("/".join(parts))


def show_facts(row: dict, updated_at: dict[int, str] | None = None, now: datetime = SHOW_CLOCK) -> dict:
    """What extended=full adds to a watched show (a row with its `seasons`) in the fake: `status`,
    `aired_episodes` (of fake_seasons(), aired by `now`, specials left out; counted without
    building them) and `updated_at`."""
    trakt_id = row["show"]["ids"]["trakt"]
    seasons = row.get("seasons") or []
    weeks = (now - FIRST_AIRED).days // 7
    aired = sum(min(max((e["number"] for e in s["episodes"]), default=0), weeks) for s in seasons if s["number"] >= 1)
    if trakt_id % 3 == 0 and seasons and seasons[-1]["number"] >= 1:
        aired += 1  # the extra one aired 3 days before `now`
    return {"status": "returning series" if trakt_id % 2 else "ended", "aired_episodes": aired,
            "updated_at": (updated_at or {}).get(trakt_id, FakeTrakt.SHOW_UPDATED_AT)}


def fake_seasons(row: dict, now: datetime) -> list:
    """A watched show's seasons with episodes as `/shows/{id}/seasons?extended=full,episodes` answers."""
    trakt_id = row["show"]["ids"]["trakt"]
    seasons = []
    for season in row["seasons"]:
        count = max((e["number"] for e in season["episodes"]), default=0)
        episodes = [{"season": season["number"], "number": n, "title": f"Episode {n}",
                     "first_aired": _iso(FIRST_AIRED + timedelta(days=7 * n)),
                     "runtime": 45, "overview": "…", "rating": 7.5,
                     "ids": {"trakt": trakt_id * 1000 + season["number"] * 50 + n}} for n in range(1, count + 1)]
        seasons.append({"number": season["number"], "ids": {"trakt": trakt_id * 100 + season["number"]},
                        "episodes": episodes})
    extras = (now - timedelta(days=3), now + timedelta(days=7)) if trakt_id % 3 == 0 else (
        (now + timedelta(days=10),) if trakt_id % 2 else ())
    if seasons and seasons[-1]["number"] >= 1:
        last = seasons[-1]
        for when in extras:
            number = len(last["episodes"]) + 1
            last["episodes"].append({"season": last["number"], "number": number, "title": f"Episode {number}",
                                     "first_aired": _iso(when), "runtime": 45,
                                     "ids": {"trakt": trakt_id * 1000 + last["number"] * 50 + number}})
    return seasons
# === end of up next and the calendar ======================================================


class _FakeTraktHandler(tornado.web.RequestHandler):
    def initialize(self, fake: FakeTrakt) -> None:
        self.fake = fake

    def set_default_headers(self) -> None:
        self.clear_header("Server")

    def prepare(self) -> None:
        self.fake.in_flight += 1
        self.fake.max_in_flight = max(self.fake.max_in_flight, self.fake.in_flight)

    def on_finish(self) -> None:
        self.fake.in_flight -= 1

    async def get(self, _: str) -> None:
        fake = self.fake
        path = self.request.path
        query = {k: self.get_query_argument(k) for k in self.request.query_arguments}
        fake.requests.append(("GET", path, query))
        fake.last_headers = dict(self.request.headers)
        fake.counter[path] += 1
        if fake.latency:
            await asyncio.sleep(fake.latency)

        if not self.request.headers.get("Content-Type", "").startswith("application/json"):
            return self._json(412, {"error": "Precondition Failed - use application/json content type"})
        if self.request.headers.get("trakt-api-key") != fake.api_key:
            return self._json(403, {"error": "Forbidden - invalid API key or unapproved app"})
        if self.request.headers.get("trakt-api-version") != "2":
            return self._json(400, {"error": "trakt-api-version must be 2"})

        fake.authorizations.append(self.request.headers.get("Authorization", ""))
        caller, refused = fake.caller(self.request.headers.get("Authorization"))
        if refused:
            return self._json(401, {"error": "invalid_token", "error_description": "The access token provided is "
                                    "expired, revoked, malformed, or invalid for other reasons."})

        fault = fake._take_fault(path)
        if fault is not None:
            if fault.kind == "slow":
                await asyncio.sleep(fault.delay)
            else:
                return self._fail(fault)

        path = fake.own_path(path, caller)
        if path is None:
            return self._json(401, {"error": "Unauthorized - OAuth must be provided"})
        hidden = fake.hidden_from(caller)
        if fake.needs_token(path) and not self.request.headers.get("Authorization", "").startswith("Bearer "):
            return self._json(401, {"error": "Unauthorized - OAuth must be provided"})
        if fake.private_user_header and path.startswith(f"/users/{fake.account.username}/"):
            self.set_header("X-Private-User", str(fake.account.private or fake.private_mode is not None).lower())
        if path.rstrip("/") == "/sync/last_activities":
            if fake.oauth is not None and caller is None:  # OAuth only, as at Trakt
                return self._json(401, {"error": "Unauthorized - OAuth must be provided"})
            return self._last_activities()
        if path.rstrip("/") == f"/users/{fake.account.username}/watching":
            if hidden and fake.private_mode == "403":
                return self._json(403, {"error": "Forbidden"})
            if fake.account.private or hidden:
                return self._private()
            if fake.watching is None:
                self.set_status(204)
                return self.finish()
            return self._json(200, fake.watching)
        try:
            key, data = fake.resolve(path, query)
        except KeyError:
            return self._json(404, {"error": "Not Found"})
        except ValueError as exc:
            return self._json(400, {"error": str(exc)})
        if data is None:  # /shows/{id}/next_episode with none to come
            self.set_status(204)
            return self.finish()
        if fake.account.private:
            return self._private()
        if fake.private_mode is not None and path.rstrip("/") == f"/users/{fake.account.username}":
            data = dict(data, private=True)
            if hidden:
                return self._json(200, {k: data[k] for k in PROFILE_REDUCED if k in data})
        elif hidden and fake.private_mode == "401":
            return self._private()
        elif hidden and fake.private_mode == "403":
            return self._json(403, {"error": "Forbidden"})
        elif hidden and fake.private_mode == "empty" and key is not None:
            data = []
        if key is None or not fake.paginates(key):
            return self._json(200, data)

        page = _positive_int(query.get("page"), 1)
        limit = fake.page_limit(key, query)
        page_count = max(1, math.ceil(len(data) / limit))
        self.set_header("X-Pagination-Page", str(page))
        self.set_header("X-Pagination-Limit", str(limit))
        self.set_header("X-Pagination-Page-Count", str(page_count))
        self.set_header("X-Pagination-Item-Count", str(fake.item_count_override.get(key, len(data))))
        return self._json(200, data[(page - 1) * limit: page * limit])

    def _last_activities(self) -> None:
        """GET /sync/last_activities: OAuth required (checked when the fake has `valid_token`)."""
        check = self.fake.valid_token
        if check is not None and not check(self.request.headers.get("Authorization", "")):
            return self._json(401, {"error": "Unauthorized - OAuth must be provided"})
        return self._json(200, self.fake.last_activities())

    def _json(self, status: int, body: Any) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps(body))

    def _private(self) -> None:
        self.set_header("X-Private-User", "true")
        self._json(401, {"error": "Unauthorized - OAuth must be provided"})

    def _fail(self, fault: Fault) -> None:
        if fault.kind == "rate_limit":
            self.set_header("Retry-After", str(fault.retry_after))
            self.set_header("X-Ratelimit", json.dumps({
                "name": "UNAUTHED_API_GET_LIMIT", "period": 300, "limit": 1000, "remaining": 0,
                "until": _iso(datetime.now(UTC) + timedelta(seconds=float(fault.retry_after)))}))
            return self._json(429, {"error": "Rate Limit Exceeded"})
        if fault.kind == "rate_limit_html":
            self.set_status(429)
            self.set_header("Retry-After", str(fault.retry_after))
            self.set_header("Server", "cloudflare")
            self.set_header("Content-Type", "text/html; charset=UTF-8")
            return self.finish("<!DOCTYPE html><html><head><title>429 Too Many Requests</title></head>"
                               "<body><h1>Too Many Requests</h1></body></html>")
        if fault.kind == "status":
            self.set_status(fault.status, reason="Fault")
            self.set_header("Content-Type", "text/html; charset=UTF-8")
            return self.finish(f"<html><body><h1>{fault.status}</h1>Origin error</body></html>")
        if fault.kind == "drop":
            self._auto_finish = False  # the connection is gone; nothing must be written
            stream = self.request.connection.detach()
            stream.close()
            return None
        if fault.kind == "malformed":
            self.set_status(200)
            self.set_header("Content-Type", "application/json; charset=utf-8")
            self.set_header("X-Pagination-Page", "1")
            self.set_header("X-Pagination-Page-Count", "1")
            return self.finish('[{"watched_at": "2024-01-01T00:00:00.000Z", "movie": {"title": "Cut')
        if fault.kind == "echo_key":
            self.set_header("X-Pagination-Item-Count", self.request.headers.get("trakt-api-key", ""))
            return self._json(200, [])
        if fault.kind == "private":
            return self._private()
        if fault.kind == "forbidden":
            return self._json(403, {"error": "Forbidden - invalid API key or unapproved app"})
        if fault.kind == "gzip_bomb":
            self.set_header("Content-Type", "application/json; charset=utf-8")
            self.set_header("Content-Encoding", "gzip")
            return self.finish(gzip_bomb())
        raise AssertionError(f"unhandled fault {fault.kind}")


def _in_window(rows: list, query: dict[str, str]) -> list:
    """History rows inside `start_at` / `end_at` (both inclusive, ISO datetimes), newest first."""
    start = _moment(query.get("start_at"))
    end = _moment(query.get("end_at"))
    if start is None and end is None:
        return rows
    return [row for row in rows
            if (start is None or _moment(row["watched_at"]) >= start) and (end is None or _moment(row["watched_at"]) <= end)]


def _moment(raw: str | None) -> datetime | None:
    if not raw:
        return None
    return datetime.fromisoformat(raw.replace("Z", "+00:00"))


def _extended(query: dict[str, str]) -> set[str]:
    """The `extended` levels asked for (comma-separated)."""
    return {level.strip() for level in query.get("extended", "").split(",") if level.strip()}


def _positive_int(raw: str | None, default: int) -> int:
    try:
        value = int(raw) if raw is not None else default
    except ValueError:
        return default
    return value if value >= 1 else default


# --- extended=full on the watched collections ---------------------------------------------------
# The account keeps minimal title objects; asked with `extended=full`, the watched lists carry each
# title's runtime, genres, country and language, as Trakt's do (made up from the Trakt id).
_GENRES = ("drama", "comedy", "thriller", "action", "science-fiction", "documentary", "animation", "horror")
_ORIGINS = (("us", "en"), ("gb", "en"), ("fr", "fr"), ("jp", "ja"), ("de", "de"))


def full_details(kind: str, title: dict) -> dict:
    """What `extended=full` adds to a movie or show object (the same every time)."""
    trakt_id = title["ids"]["trakt"]
    country, language = _ORIGINS[trakt_id % len(_ORIGINS)]
    runtime = 80 + trakt_id % 70 if kind == "movie" else 20 + 5 * (trakt_id % 9)
    genres = [_GENRES[trakt_id % len(_GENRES)], _GENRES[(trakt_id // 3 + 1) % len(_GENRES)]]
    return {"runtime": runtime, "genres": sorted(set(genres)), "country": country, "language": language,
            "overview": f"What happens in {title['title']}."}


def at_level(rows: list, kind: str, extended: set[str], facts: dict[int, dict] | None = None) -> list:
    """Watched rows as Trakt answers them for these `extended` levels; a full show also has its
    status, aired_episodes and updated_at (`facts` by trakt id, else show_facts() of the row)."""
    if "full" not in extended:
        return rows

    def full(row: dict) -> dict:
        title = row[kind]
        extra = {}
        if kind == "show":
            extra = facts[title["ids"]["trakt"]] if facts is not None else show_facts(row)
        return {**row, kind: {**title, **full_details(kind, title), **extra}}

    return [full(row) if isinstance(row, dict) and isinstance(row.get(kind), dict) else row for row in rows]

"""A small hand-written account whose every title and count the tests know exactly."""

from __future__ import annotations

from pathlib import Path

from services.data import layout
from services.data.snapshots import write_flat_folder

USERNAME = "sam"
LAST_UPDATED = "2026-11-01T09:00:13.041000+00:00"


def movie(title: str, year: int, trakt: int, runtime: int = 100) -> dict:
    slug = layout_slug(title, year)
    return {"title": title, "year": year, "runtime": runtime,
            "ids": {"trakt": trakt, "slug": slug, "imdb": f"tt{trakt:07d}", "tmdb": 10000 + trakt}}


def show(title: str, year: int, trakt: int) -> dict:
    return {"title": title, "year": year,
            "ids": {"trakt": trakt, "slug": layout_slug(title, year), "imdb": f"tt9{trakt:06d}",
                    "tmdb": 20000 + trakt, "tvdb": 30000 + trakt}}


def layout_slug(title: str, year: int) -> str:
    return "".join(c if c.isalnum() else "-" for c in title.lower()).strip("-") + f"-{year}"


AMELIE = movie("Amélie", 2001, 1)
SPIDER_MAN = movie("Spider-Man", 2002, 2)
STAR = movie("Star", 1999, 3)
STAR_WARS = movie("Star Wars", 1977, 4)
LONE_STAR = movie("Lone Star", 1996, 5)
MUSTARD = movie("Mustard Seed", 2010, 6)
BREAKING_BAD = show("Breaking Bad", 2008, 101)
DARK = show("Dark", 2017, 102)


def history_movie(row_id: int, when: str, media: dict) -> dict:
    return {"id": row_id, "watched_at": when, "action": "watch", "type": "movie", "movie": media}


def history_episode(row_id: int, when: str, media: dict, season: int, number: int) -> dict:
    return {"id": row_id, "watched_at": when, "action": "scrobble", "type": "episode",
            "episode": {"season": season, "number": number, "title": f"Episode {number}", "runtime": 47,
                        "ids": {"trakt": 5000 + row_id}},
            "show": media}


def files() -> dict[str, object]:
    """Every file of README "Data folder" with known contents."""
    history_movies = [
        history_movie(1, "2026-10-31T21:00:00.000Z", AMELIE),
        history_movie(2, "2026-10-01T20:00:00.000Z", AMELIE),
        history_movie(3, "2025-06-15T18:30:00.000Z", STAR_WARS),
    ]
    history_shows = [
        history_episode(10, "2026-10-30T22:00:00.000Z", BREAKING_BAD, 1, 2),
        history_episode(11, "2026-10-29T22:00:00.000Z", BREAKING_BAD, 1, 1),
    ]
    watched_movies = [
        {"plays": 2, "last_watched_at": "2026-10-31T21:00:00.000Z", "last_updated_at": "2026-10-31T21:00:00.000Z",
         "movie": AMELIE},
        {"plays": 1, "last_watched_at": "2025-06-15T18:30:00.000Z", "last_updated_at": "2025-06-15T18:30:00.000Z",
         "movie": STAR_WARS},
        {"plays": 1, "last_watched_at": "2024-01-01T10:00:00.000Z", "last_updated_at": "2024-01-01T10:00:00.000Z",
         "movie": MUSTARD},
    ]
    watched_shows = [
        {"plays": 2, "last_watched_at": "2026-10-30T22:00:00.000Z", "last_updated_at": "2026-10-30T22:00:00.000Z",
         "show": BREAKING_BAD, "seasons": [{"number": 1, "episodes": [
             {"number": 1, "plays": 1, "last_watched_at": "2026-10-29T22:00:00.000Z"},
             {"number": 2, "plays": 1, "last_watched_at": "2026-10-30T22:00:00.000Z"}]}]},
    ]
    watchlist_movies = [
        {"rank": 1, "id": 901, "listed_at": "2026-09-01T10:00:00.000Z", "notes": "Weekend", "type": "movie",
         "movie": SPIDER_MAN},
        {"rank": 2, "id": 902, "listed_at": "2026-09-02T10:00:00.000Z", "notes": None, "type": "movie",
         "movie": LONE_STAR},
    ]
    watchlist_shows = [
        {"rank": 3, "id": 903, "listed_at": "2026-09-03T10:00:00.000Z", "notes": None, "type": "show", "show": DARK},
    ]
    lists = [
        {"name": "Best Movies", "description": "Favourites", "privacy": "public", "type": "personal",
         "item_count": 2, "ids": {"trakt": 4242, "slug": "best-movies"}},
        {"name": "Empty", "description": "", "privacy": "private", "type": "personal",
         "item_count": 0, "ids": {"trakt": 4343, "slug": "empty"}},
    ]
    best_items = [
        {"rank": 1, "id": 1, "listed_at": "2026-01-01T00:00:00.000Z", "type": "movie", "movie": STAR},
        {"rank": 2, "id": 2, "listed_at": "2026-01-02T00:00:00.000Z", "type": "movie", "movie": AMELIE},
    ]
    return {
        layout.PROFILE: {"username": USERNAME, "private": False, "name": "Sam Example", "vip": False,
                         "joined_at": "2020-01-01T00:00:00.000Z", "location": "Lisbon",
                         "about": "Films at night", "ids": {"slug": USERNAME}},
        layout.STATS: {"movies": {"plays": 3, "watched": 3, "minutes": 300, "collected": 0, "ratings": 1,
                                  "comments": 1},
                       "shows": {"watched": 1, "collected": 0, "ratings": 0, "comments": 0},
                       "seasons": {"watched": 1, "collected": 0, "ratings": 0, "comments": 0},
                       "episodes": {"plays": 2, "watched": 2, "minutes": 94, "collected": 0, "ratings": 0,
                                    "comments": 0},
                       "network": {"friends": 0, "followers": 1, "following": 2},
                       "ratings": {"total": 1, "distribution": {str(i): int(i == 9) for i in range(1, 11)}}},
        layout.HISTORY["movies"]: history_movies,
        layout.HISTORY["shows"]: history_shows,
        layout.WATCHED["movies"]: watched_movies,
        layout.WATCHED["shows"]: watched_shows,
        layout.WATCHLIST["movies"]: watchlist_movies,
        layout.WATCHLIST["shows"]: watchlist_shows,
        layout.WATCHLIST["all"]: watchlist_movies + watchlist_shows,
        layout.LISTS: lists,
        layout.list_items_endpoint("best-movies"): best_items,
        layout.list_items_endpoint("empty"): [],
        layout.COMMENTS: [{"id": 7, "comment": "Lovely film, the ending!", "spoiler": True, "review": False,
                           "type": "movie", "movie": AMELIE}],
        layout.RATINGS: [{"rated_at": "2026-10-31T23:00:00.000Z", "rating": 9, "type": "movie", "movie": AMELIE}],
    }


def write_account(folder: Path, *, last_updated: str = LAST_UPDATED, source: str = layout.SOURCE_TRAKT) -> Path:
    write_flat_folder(folder, files(), username=USERNAME, source=source, last_updated=last_updated)
    return folder

"""The rest of the demo account, built on its viewing: ratings, watchlist, personal lists,
comments, the profile and the statistics that add up to all of it."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from services import times
from services.demo import artwork as demo_images
from services.demo.account import ANCHOR_TS, DAY, USERNAME, WINDOW_START, slugify, spread
from services.demo.viewing import Viewing
from services.demo.vocabulary import (LIST_NOTES, LOCATIONS, RATING_WEIGHTS, REVIEW_SENTENCES, SHORT_COMMENTS, SPOILERS,
                                      WATCHLIST_NOTES)


class Curation(Viewing):
    """The third stage of the builder: what the viewer rated, saved, listed and wrote."""

    def make_ratings(self) -> list[dict]:
        rng = self.rng
        values = range(1, 11)
        self.movie_ratings: dict[int, int] = {}
        self.show_ratings: dict[int, int] = {}
        rows: list[tuple[int, dict]] = []

        def rated_at(last_ts: int) -> int:
            return min(ANCHOR_TS - 600, last_ts + rng.randrange(600, 3 * DAY))

        for index in self.watched_movies:
            if index in self.movie_plays and rng.random() < 0.65:
                rating = rng.choices(values, RATING_WEIGHTS)[0]
                self.movie_ratings[index] = rating
                rows.append((rated_at(max(self.movie_plays[index])),
                             {"rating": rating, "type": "movie", "movie": self.movies[index]}))
        for index in self.watched_shows:
            if rng.random() < 0.55:
                rating = rng.choices(values, RATING_WEIGHTS)[0]
                self.show_ratings[index] = rating
                rows.append((rated_at(self.show_last[index]),
                             {"rating": rating, "type": "show", "show": self.shows[index]}))
        watched_keys = sorted(self.episode_plays)
        for show, season in sorted({(k[0], k[1]) for k in rng.sample(watched_keys, 12 * self.scale)}):
            rows.append((rated_at(self.season_last[(show, season)]), {"rating": rng.choices(values, RATING_WEIGHTS)[0],
                                          "type": "season", "season": self.season(show, season),
                                          "show": self.shows[show]}))
        for key in sorted(rng.sample(watched_keys, 40 * self.scale)):
            rows.append((rated_at(max(self.episode_plays[key])),
                         {"rating": rng.choices(values, RATING_WEIGHTS)[0], "type": "episode",
                          "episode": self.episode(*key), "show": self.shows[key[0]]}))
        rows.sort(key=lambda pair: pair[0], reverse=True)
        return [{"rated_at": times.epoch_z(ts), **row} for ts, row in rows]

    def make_watchlist(self) -> dict[str, list[dict]]:
        rng = self.rng
        movies = self.unwatched_movies[: len(self.unwatched_movies) * 2 // 3]
        movies += rng.sample(self.watched_movies, 3 * self.scale)
        self.listed_movies = set(movies)
        partially = [i for i in self.watched_shows
                     if self.show_distinct[i] < self.shows[i]["aired_episodes"]]
        shows = self.unwatched_shows[: max(1, len(self.unwatched_shows) * 4 // 5)]
        shows += partially[: 3 * self.scale]
        self.listed_shows = set(shows)
        entries = [("movie", i) for i in movies] + [("show", i) for i in shows]
        rng.shuffle(entries)
        item_ids = spread(rng, 600_000_000, len(entries), 13)
        items = []
        for rank, (kind, index) in enumerate(entries, start=1):
            media = self.movies[index] if kind == "movie" else self.shows[index]
            note = rng.choice(WATCHLIST_NOTES) if rng.random() < 0.35 else None
            items.append({"rank": rank, "id": item_ids[rank - 1],
                          "listed_at": times.epoch_z(rng.randrange(WINDOW_START, ANCHOR_TS - DAY)),
                          "notes": note, "type": kind, kind: media})
        return {
            "movies": [item for item in items if item["type"] == "movie"],
            "shows": [item for item in items if item["type"] == "show"],
            "all": items,
        }

    def make_lists(self) -> tuple[list[dict], dict[str, list[dict]]]:
        rng = self.rng
        s = self.scale
        favourite = sorted((i for i, r in self.movie_ratings.items() if r >= 9),
                           key=lambda i: (-self.movie_ratings[i], i))[: 25 * s]
        binge = [i for i in self.unwatched_shows if i not in self.listed_shows]
        binge += rng.sample(self.watched_shows, max(0, min(len(self.watched_shows), 15 * s - len(binge))))
        comfort = ([("movie", i) for i in rng.sample(self.watched_movies, 12 * s)]
                   + [("show", i) for i in rng.sample(self.watched_shows, 8 * s)])
        rng.shuffle(comfort)
        foreign = [("movie", i) for i, m in enumerate(self.movies) if not m["title"].isascii()]
        foreign += [("show", i) for i, m in enumerate(self.shows) if not m["title"].isascii()]
        foreign = sorted(foreign, key=lambda pair: (pair[0], pair[1]))[: 12 * s]
        episode_keys = sorted(rng.sample(sorted(self.episode_plays), 10 * s))
        leftovers = [i for i in self.unwatched_movies if i not in self.listed_movies]
        definitions = [
            ("Favourite Films", "The films I rate highest and rewatch most.",
             [("movie", i) for i in favourite]),
            ("Weekend Binge Queue", "Shows lined up for long weekends.",
             [("show", i) for i in binge]),
            ("Rainy Day Comfort", "Movies and shows for staying in.", comfort),
            ("Foreign-Language Gems", "Titles from everywhere, subtitles on.", foreign),
            ("Perfect Episodes", "Single episodes (and seasons) that are flawless.",
             [("episode", k) for k in episode_keys]
             + [("season", (k[0], k[1])) for k in episode_keys[: 2 * s]]),
            ("Anticipated 2027", "Not seen yet: next year's must-watch titles.",
             [("movie", i) for i in leftovers] + [("show", i) for i in self.unwatched_shows[:3 * s]]),
        ]
        lists: list[dict] = []
        items_by_slug: dict[str, list[dict]] = {}
        list_ids = spread(rng, 28_000_000, len(definitions), 500_000)
        item_id = 1_100_000_000
        for number, (name, description, entries) in enumerate(definitions):
            slug = slugify(name)
            created = WINDOW_START + rng.randrange(0, 200 * DAY)
            items = []
            listed = created
            for rank, (kind, ref) in enumerate(entries, start=1):
                item_id += 1 + rng.randrange(40)
                listed = min(ANCHOR_TS - DAY, listed + rng.randrange(3600, 9 * DAY))
                item: dict[str, Any] = {"rank": rank, "id": item_id, "listed_at": times.epoch_z(listed),
                                        "notes": rng.choice(LIST_NOTES) if rng.random() < 0.2 else None,
                                        "type": kind}
                if kind == "movie":
                    item["movie"] = self.movies[ref]
                elif kind == "show":
                    item["show"] = self.shows[ref]
                elif kind == "season":
                    item["season"] = self.season(*ref)
                    item["show"] = self.shows[ref[0]]
                else:
                    item["episode"] = self.episode(*ref)
                    item["show"] = self.shows[ref[0]]
                items.append(item)
            items_by_slug[slug] = items
            lists.append({
                "name": name, "description": description, "privacy": "public",
                "share_link": f"https://trakt.tv/lists/{list_ids[number]}", "type": "personal",
                "display_numbers": number % 2 == 0, "allow_comments": True, "sort_by": "rank",
                "sort_how": "asc", "created_at": times.epoch_z(created), "updated_at": times.epoch_z(listed),
                "item_count": len(items), "comment_count": rng.randrange(4),
                "likes": rng.randrange(30), "ids": {"trakt": list_ids[number], "slug": slug},
                "user": self.user,
            })
        return lists, items_by_slug

    def make_comments(self) -> list[dict]:
        rng = self.rng
        s = self.scale
        targets: list[tuple[str, Any]] = (
            [("movie", i) for i in rng.sample(sorted(self.movie_plays), 18 * s)]
            + [("show", i) for i in rng.sample(self.watched_shows, min(len(self.watched_shows), 8 * s))]
            + [("episode", k) for k in rng.sample(sorted(self.episode_plays), 4 * s)]
        )
        comment_ids = spread(rng, 400_000, len(targets), 900)
        rows: list[tuple[int, dict]] = []
        for n, (kind, ref) in enumerate(targets):
            review = rng.random() < 0.3
            spoiler = rng.random() < 0.25
            if review:
                text = " ".join(rng.sample(REVIEW_SENTENCES, 7))
            else:
                text = rng.choice(SHORT_COMMENTS)
            if spoiler:
                text = f"{text} {rng.choice(SPOILERS)}"
            if kind == "movie":
                play_count, last_play = len(self.movie_plays[ref]), max(self.movie_plays[ref])
                rating = self.movie_ratings.get(ref)
                media = {"movie": self.movies[ref]}
            elif kind == "show":
                play_count, last_play = self.show_plays[ref], self.show_last[ref]
                rating = self.show_ratings.get(ref)
                media = {"show": self.shows[ref]}
            else:
                play_count, last_play = len(self.episode_plays[ref]), max(self.episode_plays[ref])
                rating = None
                media = {"episode": self.episode(*ref), "show": self.shows[ref[0]]}
            created = min(ANCHOR_TS - 600, last_play + rng.randrange(1800, 2 * DAY))
            updated = created if rng.random() < 0.8 else min(ANCHOR_TS - 60, created + rng.randrange(60, 5 * DAY))
            rows.append((created, {
                "type": kind, **media,
                "comment": {
                    "id": comment_ids[n], "parent_id": 0, "created_at": times.epoch_z(created),
                    "updated_at": times.epoch_z(updated), "comment": text, "spoiler": spoiler,
                    "review": review, "replies": rng.randrange(6), "likes": rng.randrange(40),
                    "user_rating": rating,
                    "user_stats": {"rating": rating, "play_count": play_count,
                                   "completed_count": play_count},
                    "user": self.user,
                },
            }))
        rows.sort(key=lambda pair: pair[0], reverse=True)
        return [row for _, row in rows]

    def make_profile(self) -> dict:
        initials = _avatar_svg("DV", 9)
        return {
            "username": USERNAME, "private": False, "deleted": False, "name": "Demo Viewer",
            "vip": False, "vip_ep": False, "director": False,
            "ids": {"slug": USERNAME},
            "joined_at": "2019-03-14T18:22:05.000Z",
            "location": LOCATIONS[0],
            "about": "A synthetic account that ships with Trakt Watch Dashboard: films on weekdays, "
                     "long series binges on weekends. Every title here is invented.",
            "gender": None, "age": None,
            "images": {"avatar": {"full": "data:image/svg+xml," + quote(initials, safe="")}},
            "vip_og": False, "vip_years": 0,
        }

    def make_stats(self, ratings: list[dict], comments: list[dict],
                   watched_movies: list[dict], watched_shows: list[dict]) -> dict:
        def count(rows: list[dict], kind: str) -> int:
            return sum(1 for row in rows if row["type"] == kind)

        distribution = {str(v): 0 for v in range(1, 11)}
        for row in ratings:
            distribution[str(row["rating"])] += 1
        movie_minutes = sum(row["movie"]["runtime"] for row in self.movie_history)
        episode_minutes = sum(row["episode"]["runtime"] for row in self.episode_history)
        watched_movie_count = len(watched_movies)
        episodes_watched = len(self.episode_plays)
        return {
            "movies": {"plays": len(self.movie_history), "watched": watched_movie_count,
                       "minutes": movie_minutes, "collected": watched_movie_count * 2 // 5,
                       "ratings": count(ratings, "movie"), "comments": count(comments, "movie")},
            "shows": {"watched": len(watched_shows), "collected": len(watched_shows) // 3,
                      "ratings": count(ratings, "show"), "comments": count(comments, "show")},
            "seasons": {"ratings": count(ratings, "season"), "comments": count(comments, "season")},
            "episodes": {"plays": len(self.episode_history), "watched": episodes_watched,
                         "minutes": episode_minutes, "collected": episodes_watched // 4,
                         "ratings": count(ratings, "episode"), "comments": count(comments, "episode")},
            "network": {"friends": 4, "followers": 17, "following": 23},
            "ratings": {"total": len(ratings), "distribution": distribution},
        }


def _avatar_svg(initials: str, seed: int) -> str:
    top, bottom, _ = demo_images._palette(seed)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="256" height="256" viewBox="0 0 256 256">'
            f'<defs><linearGradient id="a" x1="0" y1="0" x2="1" y2="1"><stop offset="0" stop-color="{top}"/>'
            f'<stop offset="1" stop-color="{bottom}"/></linearGradient></defs>'
            f'<rect width="256" height="256" rx="128" fill="url(#a)"/>'
            f'<text x="128" y="152" font-family="Georgia,serif" font-size="84" fill="#fff" '
            f'text-anchor="middle">{initials}</text></svg>')


"""The demo catalogue: invented movie and show titles, their seasons and episodes, with ids that
agree across every file."""

from __future__ import annotations

import random

from services.demo.account import (MOVIES_PER_SCALE, SEED, SHOWS_PER_SCALE, USERNAME, imdb_id, release_year, slugify,
                                   spread)
from services.demo.vocabulary import (ADJECTIVES, CURATED_MOVIES, CURATED_SHOWS, EPISODE_WORDS, HYPHENATED, MOVIE_GENRES,
                                      NAMES, NOUNS, ORIGINS, ROMAN, SHOW_GENRES)


class _TitleMaker:
    """Unique invented titles from word patterns, with Trakt slugs that never collide."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.seen_slugs: set[str] = set()
        self.originals: list[str] = []
        self.sequel_of: dict[str, str] = {}

    def claim(self, title: str) -> bool:
        slug = slugify(title)
        if slug in self.seen_slugs:
            return False
        self.seen_slugs.add(slug)
        return True

    def _candidate(self) -> str:
        rng = self.rng
        pick = rng.randrange(100)
        adjective, noun = rng.choice(ADJECTIVES), rng.choice(NOUNS)
        if pick < 22:
            return f"The {adjective} {noun}"
        if pick < 40:
            return f"{adjective} {noun}"
        if pick < 54:
            other = rng.choice(NOUNS)
            return f"{noun} of the {other}" if other != noun else f"{noun} of the {adjective} Sea"
        if pick < 64:
            return f"{rng.choice(NAMES)}'s {noun}"
        if pick < 76:
            return f"{rng.choice(NAMES)} and the {adjective} {noun}"
        if pick < 79:
            return rng.choice(HYPHENATED)
        if pick < 88:
            return f"{rng.choice(HYPHENATED)}: {adjective} {noun}"
        if self.originals:  # a sequel of a title made earlier, so franchises share words
            original = self.originals[int(rng.random() * len(self.originals))]
            for numeral in ROMAN:
                if slugify(f"{original} {numeral}") not in self.seen_slugs:
                    self.sequel_of[f"{original} {numeral}"] = original
                    return f"{original} {numeral}"
        return f"The {adjective} {noun}"

    def make(self) -> str:
        for _ in range(10_000):
            title = self._candidate()
            if self.claim(title):
                if not title.endswith(ROMAN) and ":" not in title:
                    self.originals.append(title)
                return title
        raise RuntimeError("ran out of distinct demo titles; lower the scale")


def _details(trakt_id: int, genres: tuple[str, ...]) -> dict:
    """Genres, country and language of a title, from its Trakt id alone: drawing them from the
    catalogue's generator would change every title and picture made after them."""
    bits = (trakt_id * 2654435761 + 97) & 0xFFFFFFFF
    first = bits % len(genres)
    chosen = [genres[first]]
    if (bits >> 8) % 3:  # two thirds have a second genre
        second = (first + 1 + (bits >> 10) % (len(genres) - 1)) % len(genres)
        chosen.append(genres[second])
    country, language = ORIGINS[(bits >> 16) % len(ORIGINS)]
    return {"genres": chosen, "country": country, "language": language}


class Catalogue:
    """The first stage of the builder: the titles, seasons and episodes the rest of the account
    refers to (every object is created once and shared by reference)."""

    def __init__(self, scale: int) -> None:
        self.scale = scale
        self.rng = random.Random(SEED * 1000 + scale)
        self.titles = _TitleMaker(self.rng)
        self.movies: list[dict] = []
        self.shows: list[dict] = []
        self.show_seasons: list[list[int]] = []  # episodes per season, by show index
        self.season_offsets: list[list[int]] = []  # episodes before each season, by show index
        self.episodes: dict[tuple[int, int, int], dict] = {}
        self.seasons: dict[tuple[int, int], dict] = {}
        self.next_episode_id = 2_000_000
        self.next_episode_tvdb = 4_000_000
        self.next_episode_imdb = 5_000_000
        self.next_episode_tmdb = 900_000
        self.next_season_id = 150_000
        self.user = {"username": USERNAME, "private": False, "name": "Demo Viewer", "vip": False,
                     "vip_ep": False, "ids": {"slug": USERNAME}}

    # -- catalogue ---------------------------------------------------------------------------

    def make_catalogue(self) -> None:
        rng = self.rng
        n_movies = MOVIES_PER_SCALE * self.scale
        n_shows = SHOWS_PER_SCALE * self.scale
        movie_titles = [(t, y) for t, y in CURATED_MOVIES if self.titles.claim(t)]
        show_titles = [(t, y) for t, y in CURATED_SHOWS if self.titles.claim(t)]
        year_of = dict(movie_titles + show_titles)

        def dated(title: str, year: int) -> tuple[str, int]:
            original = self.titles.sequel_of.get(title)
            if original in year_of:  # a sequel comes out a few years after its original
                year = min(2026, year_of[original] + 2 + int(rng.random() * 4))
            year_of[title] = year
            return title, year

        while len(movie_titles) < n_movies:
            movie_titles.append(dated(self.titles.make(), release_year(rng, 1950)))
        while len(show_titles) < n_shows:
            show_titles.append(dated(self.titles.make(), release_year(rng, 1990, mean_age=17)))

        trakt = spread(rng, 10_000, n_movies, 17)
        tmdb = spread(rng, 10_000, n_movies, 61)
        imdb = spread(rng, 100_000, n_movies, 157)
        for i, (title, year) in enumerate(movie_titles):
            runtime = max(75, min(190, int(rng.gauss(112, 20))))
            self.movies.append({
                "title": title, "year": year,
                "ids": {"trakt": trakt[i], "slug": f"{slugify(title)}-{year}",
                        "imdb": imdb_id(imdb[i]), "tmdb": tmdb[i]},
                "runtime": runtime,
                **_details(trakt[i], MOVIE_GENRES),
            })

        trakt = spread(rng, 1_000, n_shows, 23)
        tmdb = spread(rng, 1_000, n_shows, 41)
        tvdb = spread(rng, 70_000, n_shows, 37)
        # IMDb ids are one namespace for every kind: shows and then episodes start above the
        # movies' range (the fixed floors keep the scale-1 ids as they were).
        show_imdb_start = max(3_000_000, imdb[-1] + 1_000)
        imdb = spread(rng, show_imdb_start, n_shows, 97)
        self.next_episode_imdb = max(self.next_episode_imdb, imdb[-1] + 1_000)
        for i, (title, year) in enumerate(show_titles):
            # No more seasons than years on air (one a year at most).
            n_seasons = min(1 + min(int(rng.expovariate(1 / 5.5)), 17), 2027 - year)
            base = rng.choice((8, 10, 10, 12, 13, 16, 20, 22, 22, 24))
            seasons = [max(4, base + rng.randint(-2, 2)) for _ in range(n_seasons)]
            self.show_seasons.append(seasons)
            self.season_offsets.append([sum(seasons[:k]) for k in range(n_seasons)])
            self.shows.append({
                "title": title, "year": year,
                "ids": {"trakt": trakt[i], "slug": f"{slugify(title)}-{year}",
                        "tvdb": tvdb[i], "imdb": imdb_id(imdb[i]), "tmdb": tmdb[i], "tvrage": None},
                "runtime": rng.choice((22, 25, 30, 42, 45, 50, 55, 60)),
                "aired_episodes": sum(seasons),
                **_details(trakt[i], SHOW_GENRES),
            })

    def episode(self, show_index: int, season: int, number: int) -> dict:
        """The episode object, created on first use so its ids are the same everywhere."""
        key = (show_index, season, number)
        found = self.episodes.get(key)
        if found is None:
            self.make_episodes([key])
            found = self.episodes[key]
        return found

    def make_episodes(self, keys: list[tuple[int, int, int]]) -> None:
        """Create the episode objects for `keys` that do not exist yet, in order.

        A tight loop with one random draw per episode split into bit fields: at scale 50 this
        runs for about 200,000 episodes.
        """
        known = self.episodes
        getrandbits = self.rng.getrandbits
        words, n_words = EPISODE_WORDS, len(EPISODE_WORDS)
        trakt, tvdb = self.next_episode_id, self.next_episode_tvdb
        imdb, tmdb = self.next_episode_imdb, self.next_episode_tmdb
        for key in keys:
            if key in known:
                continue
            show_index, season, number = key
            bits = getrandbits(32)
            if season == 1 and number == 1:
                title = "Pilot"
            elif bits & 7 < 2:
                title = f"Chapter {self.season_offsets[show_index][season - 1] + number}"
            else:
                title = words[(bits >> 3) % n_words]
            trakt += 1 + (bits >> 8) % 4
            tvdb += 1 + (bits >> 10) % 3
            imdb += 1 + (bits >> 12) % 5
            tmdb += 1 + (bits >> 15) % 3
            runtime = self.shows[show_index]["runtime"] - 4 + (bits >> 18) % 9
            known[key] = {
                "season": season, "number": number, "title": title,
                "ids": {"trakt": trakt, "tvdb": tvdb, "imdb": f"tt{imdb:07d}", "tmdb": tmdb,
                        "tvrage": None},
                "runtime": runtime if runtime > 18 else 18,
            }
        self.next_episode_id, self.next_episode_tvdb = trakt, tvdb
        self.next_episode_imdb, self.next_episode_tmdb = imdb, tmdb

    def season(self, show_index: int, number: int) -> dict:
        key = (show_index, number)
        found = self.seasons.get(key)
        if found is None:
            self.next_season_id += 1 + self.rng.randrange(5)
            show_tvdb = self.shows[show_index]["ids"]["tvdb"]
            found = {"number": number,
                     "ids": {"trakt": self.next_season_id, "tvdb": show_tvdb * 10 + number,
                             "tmdb": self.next_season_id + 40_000, "tvrage": None}}
            self.seasons[key] = found
        return found


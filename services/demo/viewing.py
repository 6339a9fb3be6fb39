"""The demo account's viewing: history of movies and episodes, then the watched sets and play
counts that follow from it."""

from __future__ import annotations

from collections import defaultdict

from services import times
from services.demo.account import ANCHOR_TS, DAY, WINDOW_START, evening_time, year_start
from services.demo.catalogue import Catalogue

_SESSION_LENGTHS = (1, 2, 2, 3, 3, 4)  # episodes watched in one evening
_DAYS_BETWEEN_SESSIONS = (1, 1, 1, 1, 2, 2, 4)


class Viewing(Catalogue):
    """The second stage of the builder: who watched what and when."""

    # -- viewing -----------------------------------------------------------------------------

    def make_viewing(self) -> None:
        """History events for watched movies and shows; watched sets and play counts follow."""
        rng = self.rng
        rand = rng.random
        latest = ANCHOR_TS - 3600
        # (ts, 0, movie index, ()) or (ts, 1, show index, (show index, season, number)); sorts by time
        events: list[tuple[int, int, int, tuple]] = []
        movie_order = list(range(len(self.movies)))
        rng.shuffle(movie_order)
        n_watched = len(self.movies) * 76 // 100
        self.watched_movies = movie_order[:n_watched]
        self.unwatched_movies = movie_order[n_watched:]
        for index in self.watched_movies:
            roll = rng.random()
            plays = 1 if roll < 0.75 else 2 if roll < 0.93 else rng.randint(3, 4)
            first_day = max(WINDOW_START, year_start(self.movies[index]["year"]))
            for _ in range(plays):
                day = rng.randrange(first_day, latest)
                events.append((min(evening_time(rng, day), latest), 0, index, ()))

        show_order = list(range(len(self.shows)))
        rng.shuffle(show_order)
        n_watched_shows = len(self.shows) * 7 // 8
        self.watched_shows = show_order[:n_watched_shows]
        self.unwatched_shows = show_order[n_watched_shows:]
        for index in self.watched_shows:
            seasons = self.show_seasons[index]
            all_episodes = [(index, s + 1, e + 1) for s, count in enumerate(seasons) for e in range(count)]
            if rng.random() < 0.7:
                wanted = len(all_episodes)
            else:
                wanted = max(1, int(len(all_episodes) * rng.uniform(0.3, 0.95)))
            passes = [all_episodes[:wanted]]
            if rng.random() < 0.55:  # a comfort rewatch of the first season(s)
                passes.append(all_episodes[:min(wanted, sum(seasons[:rng.randint(1, 3)]))])
            first_day = max(WINDOW_START, year_start(self.shows[index]["year"]))
            ts = rng.randrange(first_day, max(first_day + DAY, ANCHOR_TS - 120 * DAY))
            runtime = self.shows[index]["runtime"] * 60
            watched_count = 0
            for episodes in passes:
                position = 0
                while position < len(episodes) and ts < latest:
                    session = evening_time(rng, ts)
                    for _ in range(_SESSION_LENGTHS[int(rand() * len(_SESSION_LENGTHS))]):
                        if position >= len(episodes) or session >= latest:
                            break
                        events.append((session, 1, index, episodes[position]))
                        session += runtime + 60 + int(rand() * 540)
                        position += 1
                    ts = session + DAY * _DAYS_BETWEEN_SESSIONS[int(rand() * len(_DAYS_BETWEEN_SESSIONS))]
                watched_count = max(watched_count, position)
                ts += rng.randrange(30, 200) * DAY
            self.make_episodes(all_episodes[:watched_count])

        events.sort()
        actions = ("scrobble",) * 16 + ("checkin",) + ("watch",) * 3
        movie_rows: list[dict] = []
        episode_rows: list[dict] = []
        # Play times per title, ascending (events are processed in time order).
        self.movie_plays: dict[int, list[int]] = defaultdict(list)
        self.episode_plays: dict[tuple[int, int, int], list[int]] = defaultdict(list)
        movies, shows, known = self.movies, self.shows, self.episodes
        # A small table of random values, cycled, stands in for one draw per row.
        noise = [rng.getrandbits(16) for _ in range(4096)]
        history_id = 8_100_000_000
        for n, (ts, kind, index, key) in enumerate(events):
            bits = noise[n & 4095] ^ n
            history_id += 1 + bits % 7
            watched_at = times.epoch_z(ts)
            action = actions[(bits >> 3) % len(actions)]
            if kind == 0:
                self.movie_plays[index].append(ts)
                movie_rows.append({"id": history_id, "watched_at": watched_at, "action": action,
                                   "type": "movie", "movie": movies[index]})
            else:
                self.episode_plays[key].append(ts)
                episode_rows.append({"id": history_id, "watched_at": watched_at, "action": action,
                                     "type": "episode", "episode": known[key],
                                     "show": shows[index]})
        self.movie_plays = dict(self.movie_plays)
        self.episode_plays = dict(self.episode_plays)
        movie_rows.reverse()  # Trakt lists history newest first
        episode_rows.reverse()
        self.movie_history = movie_rows
        self.episode_history = episode_rows
        self.show_last: dict[int, int] = {}
        self.show_plays: dict[int, int] = {}
        self.show_distinct: dict[int, int] = {}
        self.season_last: dict[tuple[int, int], int] = {}
        for (show, season, _), plays in self.episode_plays.items():
            latest_play = plays[-1]
            self.show_last[show] = max(self.show_last.get(show, 0), latest_play)
            self.show_plays[show] = self.show_plays.get(show, 0) + len(plays)
            self.show_distinct[show] = self.show_distinct.get(show, 0) + 1
            self.season_last[(show, season)] = max(self.season_last.get((show, season), 0), latest_play)
        # A show only counts as watched when at least one episode made it before the anchor.
        self.unwatched_shows += [i for i in self.watched_shows if i not in self.show_last]
        self.watched_shows = [i for i in self.watched_shows if i in self.show_last]

    def watched_movies_data(self) -> list[dict]:
        rows = []
        for index, plays in self.movie_plays.items():
            last = times.epoch_z(plays[-1])
            rows.append({"plays": len(plays), "last_watched_at": last, "last_updated_at": last,
                         "movie": self.movies[index]})
        rows.sort(key=lambda row: row["last_watched_at"], reverse=True)
        return rows

    def watched_shows_data(self) -> list[dict]:
        """Per show: seasons and episodes with plays, in order (keys sort as show, season, number)."""
        rows = []
        current_show = current_season = -1
        season_rows: list[dict] = []
        episodes: list[dict] = []
        for (show, season, number) in sorted(self.episode_plays):
            if show != current_show:
                current_show, current_season = show, -1
                last = times.epoch_z(self.show_last[show])
                season_rows = []
                rows.append({"plays": self.show_plays[show], "last_watched_at": last,
                             "last_updated_at": last, "reset_at": None, "show": self.shows[show],
                             "seasons": season_rows})
            if season != current_season:
                current_season = season
                episodes = []
                season_rows.append({"number": season, "episodes": episodes})
            plays = self.episode_plays[(show, season, number)]
            episodes.append({"number": number, "plays": len(plays), "last_watched_at": times.epoch_z(plays[-1])})
        rows.sort(key=lambda row: row["last_watched_at"], reverse=True)
        return rows

    # -- the rest of the account -------------------------------------------------------------

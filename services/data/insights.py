"""Year in review and all-time insights (README "Insights"), computed once per data load.

`InsightsCollector` is fed one row at a time while the dataset is built (the watched collections
first, then the history and the ratings) and adds each play to its year's sums at once, keeping no
object per play (a 200,000-play history would otherwise leave its memory fragmented); `result()`
then computes every year with plays and all time. Everything is in the configured time zone: each play's UTC time is turned
into a local date and hour on its own (a per-UTC-hour table of offsets does it for the common case,
and an hour in which the offset changes, a daylight-saving switch, is converted play by play), so
half-hour zones and DST days come out right.

Minutes per play: the movie's runtime, else the episode's, else the show's (the history carries
what the watched collections do not, and the other way round, joined by Trakt id); a play with none
counts 0 minutes and is counted in `unknown_runtime_plays`. Nothing is guessed.
"""

from __future__ import annotations

import sys
from array import array
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any, Callable

import ujson

from services import times
from services.data.upnext import UpNextView, up_next

YEAR_MIN = 1900
YEAR_MAX = 2100
TOP = 10
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_HOUR = timedelta(hours=1)
_LAST_SECOND = timedelta(seconds=3599)
_MISSING = object()



@dataclass(eq=False, slots=True)  # a dictionary key by identity, small
class _Title:
    """What is known of one movie or show: its object (minimal) and the details that count."""

    kind: str
    obj: str | dict  # `_brief` of its object, as JSON text (see `_kept`)
    key: Any = None
    index: int = 0  # in the collector's list: plays refer to their title by it
    runtime: int | None = None
    genres: tuple[str, ...] = ()
    year: int | None = None
    country: str | None = None
    language: str | None = None
    name: Any = None  # its title, for ordering

    @property
    def brief(self) -> dict:
        return self.obj if type(self.obj) is dict else ujson.loads(self.obj)

    def learn(self, obj: dict) -> None:
        """Fill what is still unknown from another copy of the object (history or watched)."""
        if self.runtime is None and _positive(obj.get("runtime")):
            self.runtime = obj["runtime"]
        if not self.genres and isinstance(obj.get("genres"), list):
            self.genres = tuple(sys.intern(g) for g in obj["genres"] if isinstance(g, str) and g)
        if self.year is None and type(obj.get("year")) is int:
            self.year = obj["year"]
        if self.country is None and isinstance(obj.get("country"), str) and obj["country"]:
            self.country = sys.intern(obj["country"])
        if self.language is None and isinstance(obj.get("language"), str) and obj["language"]:
            self.language = sys.intern(obj["language"])


def _positive(value: Any) -> bool:
    return type(value) is int and value > 0


def _title_key(obj: Any) -> Any:
    if type(obj) is not dict:
        return None
    ids = obj.get("ids")
    trakt = ids.get("trakt") if type(ids) is dict else None
    return trakt if trakt is not None else (obj.get("title"), obj.get("year"))


@dataclass
class _Period:
    """Sums over the plays of one period; years are merged into all time."""

    days: dict[int, list[int]] = field(default_factory=dict)  # ordinal -> [plays, minutes]
    hours: list[list[int]] = field(default_factory=lambda: [[0, 0] for _ in range(24)])
    plays: int = 0
    movie_plays: int = 0
    unknown: int = 0
    # title -> [plays, minutes, last ordinal, the episodes played (shows) or None (movies)]; while
    # counting, the episodes are an array of keys (no object per play), a set once counted
    titles: dict[_Title, list] = field(default_factory=dict)
    first_items: int = 0  # movies and episodes whose first play ever falls in this period
    first_play: Any = None  # watched_at while counting, then the history row
    last_play: Any = None

    def merge(self, other: _Period) -> None:
        self.days.update(other.days)  # years never share a day
        for hour, (plays, minutes) in enumerate(other.hours):
            self.hours[hour][0] += plays
            self.hours[hour][1] += minutes
        self.plays += other.plays
        self.movie_plays += other.movie_plays
        self.unknown += other.unknown
        for key, (plays, minutes, last, episodes) in other.titles.items():
            mine = self.titles.get(key)
            if mine is None:
                self.titles[key] = [plays, minutes, last, None if episodes is None else set(episodes)]
            else:
                mine[0] += plays
                mine[1] += minutes
                mine[2] = max(mine[2], last)
                if episodes is not None:
                    mine[3] |= episodes
        self.first_items += other.first_items
        if other.first_play and (self.first_play is None or other.first_play < self.first_play):
            self.first_play = other.first_play
        if other.last_play and (self.last_play is None or other.last_play > self.last_play):
            self.last_play = other.last_play


class InsightsCollector:
    """Collects plays, title details and ratings while a data folder loads."""

    def __init__(self, zone: tzinfo, zone_name: str) -> None:
        self.zone = zone
        self.zone_name = zone_name
        self._buckets: dict[str, Any] = {}  # "YYYY-MM-DDTHH" (UTC) -> (low slot, high slot, split) or None
        self._periods: dict[int, _Period] = {}
        self._year: int | None = None  # the period plays were last added to (files are in date order)
        self._period = _Period()
        self._episode_keys: dict[Any, int] = {}  # an episode without a Trakt id -> a negative key
        self._titles: list[_Title] = []
        self.movies: dict[Any, _Title] = {}
        self.shows: dict[Any, _Title] = {}
        # (local year, rating, rated_at, the `highest` entry as JSON bytes: one object per rating kept)
        self.ratings: list[tuple[int, int, str, bytes]] = []

    # --- local time -----------------------------------------------------------------------
    def local_slot(self, stamp: Any) -> tuple[int, int, int] | None:
        """(local year, date ordinal, hour) of a timestamp, or None when it cannot be read."""
        if type(stamp) is not str:
            return None
        if len(stamp) >= 17 and stamp[-1] == "Z" and stamp[13] == ":":
            bucket = self._buckets.get(stamp[:13], _MISSING)
            if bucket is _MISSING:
                bucket = self._buckets[stamp[:13]] = self._bucket(stamp[:13])
            if bucket is not None:
                low, high, split = bucket
                if split == 60:
                    return low
                minute = stamp[14:16]
                if minute.isdigit():
                    return low if int(minute) < split else high
        try:
            local = times.parse_iso(stamp).astimezone(self.zone)
        except (ValueError, OverflowError):
            return None
        return local.year, local.toordinal(), local.hour

    def _bucket(self, key: str) -> tuple | None:
        """How the UTC hour `key` maps to local time: one offset for the whole hour, split where the
        local clock passes a full hour (half-hour zones). None: convert each play on its own (the
        offset changes inside this hour, or the zone's offset has seconds)."""
        try:
            start = datetime(int(key[0:4]), int(key[5:7]), int(key[8:10]), int(key[11:13]), tzinfo=UTC)
            low = start.astimezone(self.zone)
            last = (start + _LAST_SECOND).astimezone(self.zone)
        except (ValueError, OverflowError):
            return None
        if low.utcoffset() != last.utcoffset() or low.second:
            return None
        split = 60 - low.minute if low.minute else 60
        high = low + _HOUR - timedelta(minutes=low.minute) if low.minute else low
        return ((low.year, low.toordinal(), low.hour), (high.year, high.toordinal(), high.hour), split)

    # --- feeding ----------------------------------------------------------------------------
    def add_play(self, row: dict) -> None:
        """One history row (a movie or an episode play)."""
        if row.get("movie") is not None:
            self.add_movie_play(row.get("watched_at"), row["movie"])
        else:
            self.add_episode_play(row.get("watched_at"), row.get("show"), row.get("episode"))

    # The next three run once per row of the largest files: plain lookups and additions only. The
    # minutes of a play without its own runtime are its title's, known by then: the watched
    # collections are fed before the history (dataset._derive_order).
    def _title(self, titles: dict, kind: str, item: dict) -> Any:
        """The title a play is of, by Trakt id (else by its title key), made on first sight."""
        ids = item.get("ids")
        key = ids.get("trakt") if type(ids) is dict else None
        title = titles.get(key)
        if title is None:
            if key is None:
                key = _title_key(item)
            title = titles.get(key) or self._new_title(titles, kind, key, item)
        return title

    def add_movie_play(self, watched_at: Any, movie: Any) -> None:
        if type(watched_at) is not str or type(movie) is not dict:
            return
        title = self._title(self.movies, "movie", movie)
        runtime = movie.get("runtime")
        self._add(watched_at, title, None, runtime if type(runtime) is int and 0 < runtime < 100_000 else 0)

    def add_episode_play(self, watched_at: Any, show: Any, episode: Any) -> None:
        if type(watched_at) is not str or type(show) is not dict:
            return
        title = self._title(self.shows, "show", show)
        runtime = episode_key = None
        if type(episode) is dict:
            ids = episode.get("ids")
            episode_key = ids.get("trakt") if type(ids) is dict else None
            if type(episode_key) is not int or episode_key < 0:
                episode_key = self._episode_key((episode_key, episode.get("season"), episode.get("number")))
            runtime = episode.get("runtime")
        else:
            episode_key = self._episode_key(None)
        self._add(watched_at, title, episode_key, runtime if type(runtime) is int and 0 < runtime < 100_000 else 0)

    def _episode_key(self, key: Any) -> int:
        number = self._episode_keys.get(key)
        if number is None:
            number = self._episode_keys[key] = -1 - len(self._episode_keys)
        return number

    def _add(self, stamp: str, title: _Title, episode_key: int | None, runtime: int) -> None:
        """Place one play on its local day and hour and add it to its year's sums."""
        slot = None
        if stamp[-1] == "Z" and len(stamp) >= 17 and stamp[13] == ":":
            bucket = self._buckets.get(stamp[:13], _MISSING)
            if bucket is _MISSING:
                bucket = self._buckets[stamp[:13]] = self._bucket(stamp[:13])
            if bucket is not None:
                if bucket[2] == 60:
                    slot = bucket[0]
                elif stamp[14:16].isdigit():
                    slot = bucket[0] if int(stamp[14:16]) < bucket[2] else bucket[1]
        if slot is None:
            slot = self.local_slot(stamp)
            if slot is None:
                return
        year, ordinal, hour = slot
        period = self._period
        if year != self._year:
            period = self._periods.get(year)
            if period is None:
                period = self._periods[year] = _Period()
            self._year, self._period = year, period
        if period.first_play is None or stamp < period.first_play:
            period.first_play = stamp
        if period.last_play is None or stamp > period.last_play:
            period.last_play = stamp
        period.plays += 1
        minutes = runtime or title.runtime or 0
        if not minutes:
            period.unknown += 1
        day = period.days.get(ordinal)
        if day is None:
            period.days[ordinal] = [1, minutes]
        else:
            day[0] += 1
            day[1] += minutes
        cell = period.hours[hour]
        cell[0] += 1
        cell[1] += minutes
        sums = period.titles.get(title)
        if sums is None:
            sums = period.titles[title] = [0, 0, ordinal, None if episode_key is None else array("q")]
        sums[0] += 1
        sums[1] += minutes
        if ordinal > sums[2]:
            sums[2] = ordinal
        if episode_key is None:
            period.movie_plays += 1
        else:
            sums[3].append(episode_key)

    def _new_title(self, titles: dict, kind: str, key: Any, obj: dict) -> _Title:
        # Only what the answers show is kept of the object: the row it came from can be freed.
        title = titles[key] = _Title(kind, _kept(obj), key=key, index=len(self._titles), name=obj.get("title"))
        self._titles.append(title)
        title.learn(obj)
        return title

    def add_watched(self, row: dict) -> None:
        """One row of the watched collections: the title's runtime, genres, country and language
        (the sync asks for them with extended=full)."""
        for kind, titles in (("movie", self.movies), ("show", self.shows)):
            obj = row.get(kind)
            if type(obj) is dict:
                key = _title_key(obj)
                title = titles.get(key)
                if title is None:
                    title = self._new_title(titles, kind, key, obj)
                title.learn(obj)
                return

    def add_rating(self, row: dict) -> None:
        rating = row.get("rating")
        slot = self.local_slot(row.get("rated_at"))
        if slot is not None and type(rating) is int and 1 <= rating <= 10:
            self.ratings.append((slot[0], rating, row["rated_at"], ujson.dumps(_rating_entry(row)).encode()))

    # --- results ----------------------------------------------------------------------------
    def result(self, reference: datetime, find_row: Callable[[str], dict | None]) -> Insights:
        """Every year with plays and all time. `reference` is "today" for the current streak (the
        data's own last update, so an older snapshot reads the same every time it loads);
        `find_row(watched_at)` gives back the history row of a play (first and last play), so no row
        is kept while the files load."""
        today = reference.astimezone(self.zone).date()
        periods = self._count()
        self._periods, self._year, self._period = {}, None, _Period()
        rating_years = {r[0] for r in self.ratings}
        everything = _Period()
        for period in periods.values():
            everything.merge(period)
        rows: dict[str, dict | None] = {}  # all time's first and last are also some year's
        for period in (*periods.values(), everything):
            for stamp in (period.first_play, period.last_play):
                if stamp is not None and stamp not in rows:
                    rows[stamp] = find_row(stamp)
            period.first_play, period.last_play = rows.get(period.first_play), rows.get(period.last_play)
        years = sorted(periods, reverse=True)
        documents: dict[int | None, dict] = {}
        for year in sorted(set(periods) | rating_years):
            end = today if year == today.year else date(year, 12, 31)
            documents[year] = self._document(year, years, periods.get(year) or _Period(),
                                             [r for r in self.ratings if r[0] == year], end)
        documents[None] = self._document(None, years, everything, self.ratings, today)
        day_totals = {ordinal: (plays, minutes) for ordinal, (plays, minutes) in everything.days.items()}
        return Insights(documents=documents, years=years, days=day_totals, last_play=everything.last_play,
                        zone=self.zone, zone_name=self.zone_name, today=today)

    def zero_document(self, year: int, years: list[int]) -> dict:
        """The answer for a year without plays or ratings."""
        return self._document(year, years, _Period(), [], date(year, 12, 31))

    def _count(self) -> dict[int, _Period]:
        """The years' sums with each title's episodes as a set, and what each year played first."""
        periods = self._periods
        for period in periods.values():
            for sums in period.titles.values():
                if sums[3] is not None:
                    sums[3] = set(sums[3])
        # A movie or episode played in an earlier year is a rewatch: what each year sees for the
        # first time, with set arithmetic over the years in order.
        seen: dict[_Title, set | None] = {}
        for year in sorted(periods):
            new = 0
            for title, (_, _, _, episodes) in periods[year].titles.items():
                before = seen.get(title, _MISSING)
                if episodes is None:
                    new += before is _MISSING
                    seen[title] = None
                elif before is _MISSING:
                    new += len(episodes)
                    seen[title] = set(episodes)
                else:
                    new += len(episodes - before)
                    before |= episodes
            periods[year].first_items = new
        return periods

    def _document(self, year: int | None, years: list[int], period: _Period, ratings: list, end: date) -> dict:
        days = period.days
        plays = period.plays
        minutes = sum(d[1] for d in days.values())
        months: dict[str, list[int]] = {}
        weeks: dict[str, list] = {}
        weekdays = [[0, 0] for _ in range(7)]
        for ordinal in sorted(days):
            count, spent = days[ordinal]
            day = date.fromordinal(ordinal)
            month = months.setdefault(f"{day.year:04d}-{day.month:02d}", [0, 0])
            month[0] += count
            month[1] += spent
            iso = day.isocalendar()
            week = weeks.setdefault(f"{iso.year:04d}-W{iso.week:02d}", [0, 0, day - timedelta(days=day.weekday())])
            week[0] += count
            week[1] += spent
            weekdays[day.weekday()][0] += count
            weekdays[day.weekday()][1] += spent
        if year is not None:
            month_keys = [f"{year:04d}-{m:02d}" for m in range(1, 13)]
        else:
            month_keys = _months_between(min(months), max(months)) if months else []
        busiest_day = None
        if days:
            ordinal = min(days, key=lambda o: (-days[o][0], -days[o][1], o))
            busiest_day = {"date": date.fromordinal(ordinal).isoformat(), "plays": days[ordinal][0],
                           "minutes": days[ordinal][1]}
        busiest_week = None
        if weeks:
            name = min(weeks, key=lambda k: (-weeks[k][0], -weeks[k][1], k))
            busiest_week = {"week": name, "start": weeks[name][2].isoformat(), "plays": weeks[name][0],
                            "minutes": weeks[name][1]}
        busiest_month = None
        if months:
            name = min(months, key=lambda k: (-months[k][0], -months[k][1], k))
            busiest_month = {"month": name, "plays": months[name][0], "minutes": months[name][1]}
        movies = [(t, v) for t, v in period.titles.items() if t.kind == "movie"]
        shows = [(t, v) for t, v in period.titles.items() if t.kind == "show"]
        return {
            "year": year,
            "timezone": self.zone_name,
            "years": years,
            "totals": {
                "plays": plays,
                "movie_plays": period.movie_plays,
                "episode_plays": plays - period.movie_plays,
                "minutes": minutes,
                "movies": len(movies),
                "shows": len(shows),
                "episodes": sum(len(v[3]) for _, v in shows),
                "rewatches": plays - period.first_items,
                "unknown_runtime_plays": period.unknown,
            },
            "first_play": period.first_play,
            "last_play": period.last_play,
            "streaks": _streaks(days, end),
            "busiest_day": busiest_day,
            "busiest_week": busiest_week,
            "busiest_month": busiest_month,
            "by_month": [{"month": k, "plays": months.get(k, [0, 0])[0], "minutes": months.get(k, [0, 0])[1]}
                         for k in month_keys],
            "by_weekday": [{"weekday": WEEKDAYS[n], "plays": p, "minutes": m} for n, (p, m) in enumerate(weekdays)],
            "by_hour": [{"hour": n, "plays": p, "minutes": m} for n, (p, m) in enumerate(period.hours)],
            "days": {date.fromordinal(o).isoformat(): days[o][0] for o in sorted(days)},
            "top_shows": self._top_shows(shows),
            "top_movies": self._top_movies(movies),
            **self._breakdowns(period.titles),
            "ratings": _ratings(ratings),
        }

    @staticmethod
    def _top_shows(shows: list) -> list[dict]:
        ranked = sorted(shows, key=lambda kv: (-kv[1][1], -kv[1][0], str(kv[0].name)))[:TOP]
        return [{"show": title.brief, "plays": plays, "minutes": minutes, "episodes": len(episodes)}
                for title, (plays, minutes, _, episodes) in ranked]

    @staticmethod
    def _top_movies(movies: list) -> list[dict]:
        ranked = sorted(movies, key=lambda kv: (-kv[1][0], -kv[1][2], -kv[1][1]))
        return [{"movie": title.brief, "plays": plays, "minutes": minutes,
                 "last_watched": date.fromordinal(last).isoformat()}
                for title, (plays, minutes, last, _) in ranked[:TOP]]

    @staticmethod
    def _breakdowns(titles: dict) -> dict:
        """Genres (plays and minutes), decades, countries and languages, from each title's sums."""
        genres: dict[str, list[int]] = {}
        decades: dict[int, int] = {}
        countries: dict[str, int] = {}
        languages: dict[str, int] = {}
        for title, (plays, minutes, _, _) in titles.items():
            for genre in title.genres:
                sums = genres.setdefault(genre, [0, 0])
                sums[0] += plays
                sums[1] += minutes
            if title.year is not None:
                decades[title.year // 10 * 10] = decades.get(title.year // 10 * 10, 0) + plays
            if title.country:
                countries[title.country] = countries.get(title.country, 0) + plays
            if title.language:
                languages[title.language] = languages.get(title.language, 0) + plays
        return {
            "genres": [{"genre": g, "plays": p, "minutes": m}
                       for g, (p, m) in sorted(genres.items(), key=lambda kv: (-kv[1][1], -kv[1][0], kv[0]))],
            "decades": [{"decade": d, "plays": decades[d]} for d in sorted(decades)],
            "countries": [{"country": c, "plays": p} for c, p in sorted(countries.items(), key=lambda kv: (-kv[1], kv[0]))],
            "languages": [{"language": c, "plays": p}
                          for c, p in sorted(languages.items(), key=lambda kv: (-kv[1], kv[0]))],
        }


@dataclass
class Insights:
    """The computed documents (year -> document, None for all time) and what the summary needs."""

    documents: dict[int | None, dict]
    years: list[int]
    days: dict[int, tuple[int, int]]  # local date ordinal -> (plays, minutes), all time
    last_play: dict | None
    zone: tzinfo
    zone_name: str
    today: date

    def zero_document(self, year: int) -> dict:
        """The answer for a year in range without plays or ratings (all zeros, empty lists)."""
        return InsightsCollector(self.zone, self.zone_name).zero_document(year, self.years)

    def summary(self, watching: dict, now: datetime, upnext: UpNextView | None = None) -> dict:
        """GET /api/trakt/user/summary: small and flat, for Homepage and Glance widgets. `upnext`
        (None without show data) gives `next_up`."""
        content = watching.get("content") if watching.get("isWatching") else None
        now_watching = None
        if isinstance(content, dict):
            progress = content.get("progress") or {}
            now_watching = {"type": content.get("type"), "title": content.get("title"),
                            "subtitle": content.get("subtitle") or "",
                            "percentage": round(float(progress.get("percentage") or 0), 1)}
        figures = self.summary_figures(now)
        streak = figures.pop("current_streak")
        next_up = None if upnext is None else upnext.cached(("next-up",), now, lambda moment: _next_up(upnext, moment))
        return {"timezone": self.zone_name, "now_watching": now_watching, **figures,
                "current_streak": streak["days"], "current_streak_start": streak["start"],
                "last_watched": _last_watched(self.last_play), "next_up": next_up}

    def summary_figures(self, now: datetime) -> dict:
        """Plays today, this week (ISO, Monday first) and this year, minutes this year, the
        current streak: for `now`, from the day table (a handful of lookups)."""
        today = now.astimezone(self.zone).date()
        ordinal = today.toordinal()
        days = self.days
        week_start = ordinal - today.weekday()
        year_start = date(today.year, 1, 1).toordinal()
        this_year = [v for o, v in days.items() if year_start <= o <= ordinal]
        return {
            "plays_today": days.get(ordinal, (0, 0))[0],
            "plays_this_week": sum(days.get(o, (0, 0))[0] for o in range(week_start, ordinal + 1)),
            "plays_this_year": sum(p for p, _ in this_year),
            "minutes_this_year": sum(m for _, m in this_year),
            "current_streak": _streaks(days, today)["current"],
        }


def _next_up(view: UpNextView, now: datetime) -> dict | None:
    """The next episode of the show in progress watched most recently (up next's first row)."""
    rows = up_next(view.shows, now)
    if not rows:
        return None
    row = rows[0]
    episode = row["next_episode"]
    subtitle = f"S{episode['season']}E{episode['number']}"
    if isinstance(episode.get("title"), str):
        subtitle += f" - {episode['title']}"
    return {"type": "episode", "title": row["show"].get("title"), "subtitle": subtitle,
            "season": episode["season"], "number": episode["number"], "episode_title": episode.get("title"),
            "aired_left": row["aired_left"]}


def _last_watched(row: dict | None) -> dict | None:
    if row is None:
        return None
    if type(row.get("movie")) is dict:
        movie = row["movie"]
        return {"type": "movie", "title": movie.get("title"), "subtitle": str(movie.get("year") or ""),
                "watched_at": row.get("watched_at")}
    show, episode = row.get("show") or {}, row.get("episode") or {}
    subtitle = f"S{episode.get('season')}E{episode.get('number')}"
    if isinstance(episode.get("title"), str):
        subtitle += f" - {episode['title']}"
    return {"type": "episode", "title": show.get("title"), "subtitle": subtitle, "watched_at": row.get("watched_at")}


def _months_between(first: str, last: str) -> list[str]:
    year, month = int(first[:4]), int(first[5:7])
    keys = []
    while f"{year:04d}-{month:02d}" <= last:
        keys.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return keys


def _run(days: Any, start: int, end: int) -> dict:
    return {"days": end - start + 1, "start": date.fromordinal(start).isoformat(),
            "end": date.fromordinal(end).isoformat()}


NO_STREAK = {"days": 0, "start": None, "end": None}


def _streaks(days: Any, end: date) -> dict:
    """The longest run of consecutive days with a play, and the run that reaches `end` (or the day
    before it when `end` is today and nothing was watched yet: a streak lasts until the day is over)."""
    ordinals = sorted(days)
    longest = dict(NO_STREAK)
    run_start = previous = None
    for ordinal in ordinals:
        if previous is None or ordinal != previous + 1:
            run_start = ordinal
        previous = ordinal
        if ordinal - run_start + 1 > longest["days"]:
            longest = _run(days, run_start, ordinal)
    current = dict(NO_STREAK)
    last = end.toordinal()
    if last not in days:
        last -= 1
    if last in days:
        first = last
        while first - 1 in days:
            first -= 1
        current = _run(days, first, last)
    return {"longest": longest, "current": current}


def _brief(obj: dict) -> dict:
    return {k: obj[k] for k in ("title", "year", "ids") if k in obj}


def _kept(obj: dict) -> str | dict:
    """`_brief(obj)` kept for the whole load, small: as JSON text when it reads back equal (a parsed
    object costs a kilobyte, its keys being new strings each time); otherwise (NaN, anything ujson
    cannot write) the object as it is."""
    brief = _brief(obj)
    try:
        text = ujson.dumps(brief)
    except (OverflowError, UnicodeError, TypeError, ValueError):
        return brief
    return text if ujson.loads(text) == brief else brief


def _rating_entry(row: dict) -> dict:
    entry = {"type": row.get("type"), "rating": row["rating"], "rated_at": row["rated_at"]}
    for kind in ("movie", "show", "season", "episode"):
        if type(row.get(kind)) is dict:
            entry[kind] = _brief(row[kind]) if kind in ("movie", "show") else row[kind]
    return entry


def _ratings(ratings: list) -> dict:
    distribution = {str(n): 0 for n in range(1, 11)}
    for _, rating, _, _ in ratings:
        distribution[str(rating)] += 1
    ranked = sorted(ratings, key=lambda r: r[2], reverse=True)  # newest first among equal ratings
    ranked.sort(key=lambda r: r[1], reverse=True)
    highest = [ujson.loads(entry) for _, _, _, entry in ranked[:TOP]]
    count = len(ratings)
    return {"count": count, "average": round(sum(r[1] for r in ratings) / count, 2) if count else None,
            "distribution": distribution, "highest": highest}

"""Up next and the calendar (README "Up next and the calendar"), as pure functions.

`build_shows()` turns the watched shows, each show's seasons with episodes and the hidden set into
compact `ShowProgress` records once per data load; `up_next()` and `calendar()` then answer for a
given moment. A show is in progress when it has aired episodes (season >= 1) after the furthest
episode watched since its `reset_at`; specials never count; hidden shows are left out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from typing import Any, Iterable

from services import times

# Trakt's statuses of a show that will not air again; every other one may still bring episodes.
FINISHED_STATUSES = ("ended", "canceled")
SHOW_FIELDS = ("title", "year", "ids")
MOVIE_FIELDS = ("title", "year", "ids")


@dataclass(frozen=True)
class Episode:
    season: int
    number: int
    title: str | None
    first_aired: str | None  # as Trakt sent it (UTC)
    aired_at: datetime | None
    runtime: int | None
    finale: bool  # the last episode of its season

    def as_json(self) -> dict[str, Any]:
        return {"season": self.season, "number": self.number, "title": self.title,
                "first_aired": self.first_aired, "runtime": self.runtime}


@dataclass
class ShowProgress:
    """One watched show: its episodes in order and what was watched since its reset."""

    show: dict
    status: str | None
    hidden: bool
    episodes: list[Episode] = field(default_factory=list)  # season >= 1, in (season, number) order
    watched: set[tuple[int, int]] = field(default_factory=set)  # since reset_at
    last_watched_at: str | None = None  # since reset_at (the reset itself when nothing since)
    restarted: bool = False
    aired_count: int | None = None  # Trakt's `aired_episodes`, for shows whose episodes are not all known

    @property
    def returning(self) -> bool:
        return (self.status or "").lower() not in FINISHED_STATUSES

    def furthest(self) -> tuple[int, int] | None:
        return max(self.watched) if self.watched else None

    def left(self, now: datetime) -> list[Episode]:
        """Aired episodes after the furthest one watched since the reset (all of them after a
        reset with nothing watched since); None-aired episodes have not aired."""
        furthest = self.furthest()
        if furthest is None and not self.restarted:
            return []
        return [e for e in self.episodes
                if (furthest is None or (e.season, e.number) > furthest) and (e.season, e.number) not in self.watched
                and e.aired_at is not None and e.aired_at <= now]


def _trakt_id(show: Any) -> Any:
    ids = show.get("ids") if isinstance(show, dict) else None
    return ids.get("trakt") if isinstance(ids, dict) else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _parse(value: Any) -> datetime | None:
    try:
        return times.parse_iso(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _episodes(seasons: Any, show_runtime: int | None, partial: bool = False) -> list[Episode]:
    """Episodes of season >= 1 in order; `partial`: only some of each season's episodes are known
    (the upcoming ones, from Trakt's calendar), so none is taken for a finale."""
    episodes = []
    for season in seasons if isinstance(seasons, list) else ():
        number = _int(season.get("number")) if isinstance(season, dict) else None
        rows = season.get("episodes") if isinstance(season, dict) else None
        if number is None or number < 1 or not isinstance(rows, list):
            continue  # specials (season 0) never count
        numbers = [_int(e.get("number")) for e in rows if isinstance(e, dict)]
        last = max((n for n in numbers if n is not None), default=None)
        for row in rows:
            episode_number = _int(row.get("number")) if isinstance(row, dict) else None
            if episode_number is None:
                continue
            runtime = _int(row.get("runtime")) or show_runtime
            episodes.append(Episode(number, episode_number, row.get("title"), row.get("first_aired"),
                                    _parse(row.get("first_aired")), runtime, not partial and episode_number == last))
    episodes.sort(key=lambda e: (e.season, e.number))
    return episodes


def watched_since_reset(row: Any) -> tuple[set[tuple[int, int]], str | None]:
    """A watched-show row's episodes (season >= 1) watched after its `reset_at`, and the newest
    `last_watched_at` among them (as Trakt sent it; None when none)."""
    watched: set[tuple[int, int]] = set()
    if not isinstance(row, dict):
        return watched, None
    reset_at = _parse(row.get("reset_at"))
    latest: tuple[datetime, str] | None = None
    for season in row.get("seasons") or ():
        season_number = _int(season.get("number")) if isinstance(season, dict) else None
        if season_number is None or season_number < 1:
            continue
        for episode in season.get("episodes") or ():
            if not isinstance(episode, dict) or _int(episode.get("number")) is None:
                continue
            seen = _parse(episode.get("last_watched_at"))
            if seen is None or (reset_at is not None and seen <= reset_at):
                continue  # watched before the rewatch began
            watched.add((season_number, episode["number"]))
            if latest is None or seen > latest[0]:
                latest = (seen, episode["last_watched_at"])
    return watched, latest[1] if latest else None


def build_shows(watched: Iterable[Any], show_data: Iterable[Any], hidden: Iterable[Any] = ()) -> list[ShowProgress]:
    """Watched-show rows (`seasons` of watched episodes, `reset_at`), show-data rows
    (`{"show", "status", "updated_at", "aired_episodes", "seasons": [{"number", "episodes": [...]}] or
    null, "partial"?, "reset_at"?}`) and the hidden shows (show objects or rows with a `show`) -> one
    record per watched show that has show data. `seasons` is null for a show the sync needed no
    episodes of (finished and watched to the end, or hidden); `partial` rows hold only upcoming episodes."""
    hidden_ids = set()
    for item in hidden:
        show = item.get("show", item) if isinstance(item, dict) else None
        if _trakt_id(show) is not None:
            hidden_ids.add(_trakt_id(show))
    data_by_id = {}
    for row in show_data:
        if isinstance(row, dict) and _trakt_id(row.get("show")) is not None:
            data_by_id[_trakt_id(row["show"])] = row
    shows = []
    for row in watched:
        if not isinstance(row, dict):
            continue
        trakt_id = _trakt_id(row.get("show"))
        data = data_by_id.get(trakt_id)
        if data is None:
            continue
        full = data["show"]
        # Trakt's progress endpoint (signed in) reports the reset as well; either place counts.
        reset_at = _parse(row.get("reset_at")) or _parse(data.get("reset_at"))
        reset_text = row.get("reset_at") if _parse(row.get("reset_at")) else data.get("reset_at")
        complete = isinstance(data.get("seasons"), list) and not data.get("partial")
        progress = ShowProgress(
            show={k: full.get(k, row["show"].get(k)) for k in SHOW_FIELDS},
            status=data.get("status", full.get("status")), hidden=trakt_id in hidden_ids,
            episodes=_episodes(data.get("seasons"), _int(full.get("runtime")), partial=not complete),
            restarted=reset_at is not None,
            aired_count=None if complete else _int(data.get("aired_episodes", full.get("aired_episodes"))))
        row = dict(row, reset_at=row.get("reset_at") if _parse(row.get("reset_at")) else data.get("reset_at"))
        progress.watched, latest = watched_since_reset(row)
        if latest is not None:
            progress.last_watched_at = latest
        elif reset_at is not None:
            progress.last_watched_at = reset_text
        shows.append(progress)
    return shows


def up_next(shows: Iterable[ShowProgress], now: datetime, include_completed: bool = False) -> list[dict]:
    """One row per show in progress (and per finished show with `include_completed`), newest
    `last_watched_at` first; hidden shows are left out."""
    rows = []
    for show in shows:
        if show.hidden or (not show.watched and not show.restarted):
            continue
        left = show.left(now)
        if not left and not include_completed:
            continue
        aired = sum(1 for e in show.episodes if e.aired_at is not None and e.aired_at <= now)
        if show.aired_count is not None:
            # Not every episode is known: Trakt's count as of the sync, when every aired one was
            # watched (the sync needs no seasons only then), and those aired since.
            aired = show.aired_count + len(left)
        rows.append({
            "show": show.show,
            "next_episode": left[0].as_json() if left else None,
            "aired_left": len(left),
            "aired": aired,
            "watched": len(show.watched),
            "last_watched_at": show.last_watched_at,
            "status": show.status,
        })
    rows.sort(key=lambda r: _parse(r["last_watched_at"]) or datetime.min.replace(tzinfo=now.tzinfo), reverse=True)
    return rows


def calendar(shows: Iterable[ShowProgress], movies: Iterable[Any], now: datetime, zone: tzinfo,
             days: int = 14, *, in_progress_only: bool = False, premieres_only: bool = False) -> list[dict]:
    """Episodes airing from the start of today (in `zone`) for `days` days, of the shows in
    progress or still returning (not hidden), and the watchlist movies released then, in order."""
    today = now.astimezone(zone).date()
    end = today + timedelta(days=days)
    rows: list[tuple[tuple, dict]] = []
    for show in shows:
        if show.hidden:
            continue
        in_progress = bool(show.left(now))
        if not (in_progress or (show.returning and not in_progress_only)):
            continue
        for episode in show.episodes:
            if episode.aired_at is None:
                continue
            local = episode.aired_at.astimezone(zone)
            if not today <= local.date() < end:
                continue
            premiere = episode.number == 1
            if premieres_only and not premiere:
                continue
            rows.append(((episode.aired_at, show.show.get("title") or "", episode.season, episode.number), {
                "type": "episode",
                "first_aired": episode.first_aired,
                "date": local.date().isoformat(),
                "local_time": local.strftime("%H:%M"),
                "show": show.show,
                "episode": {"season": episode.season, "number": episode.number, "title": episode.title},
                "season": episode.season,
                "number": episode.number,
                "title": episode.title,
                "runtime": episode.runtime,
                "premiere": premiere,
                "finale": episode.finale,
            }))
    if not premieres_only:
        for item in movies:
            movie = item.get("movie") if isinstance(item, dict) else None
            released = _release_date(item)
            if released is None or not today <= released < end:
                continue
            moment = datetime(released.year, released.month, released.day, tzinfo=zone)
            rows.append(((moment, movie.get("title") or "", 0, 0), {
                "type": "movie",
                "first_aired": None,  # a release is a day, not a moment
                "date": released.isoformat(),
                "local_time": None,
                "movie": {k: movie.get(k) for k in MOVIE_FIELDS},
                "title": movie.get("title"),
                "runtime": _int(movie.get("runtime")),
                "premiere": False,
                "finale": False,
            }))
    rows.sort(key=lambda pair: pair[0])
    return [row for _, row in rows]


def _release_date(item: Any) -> date | None:
    """A watchlist row's release date: the row's `released` (user/calendar/movies.json) or its movie's."""
    if not isinstance(item, dict) or not isinstance(item.get("movie"), dict):
        return None
    released = item.get("released") or item["movie"].get("released")
    if not isinstance(released, str):
        return None
    try:
        return date.fromisoformat(released[:10])
    except ValueError:
        return None


def shift_release_dates(movies: list, days: int) -> list:
    """The movie rows with every release date moved by `days` days (the demo; see shift_air_dates)."""
    shifted = []
    for row in movies:
        released = _release_date(row)
        shifted.append(dict(row, released=(released + timedelta(days=days)).isoformat()) if released and days else row)
    return shifted


def shift_air_dates(show_data: list, days: int) -> list:
    """The show data with every `first_aired` moved by `days` days: the bundled demo is static
    files, and its upcoming episodes must stay upcoming whenever it is loaded."""
    if not days:
        return show_data
    delta = timedelta(days=days)
    shifted = []
    for row in show_data:
        seasons = []
        for season in row.get("seasons") or ():
            episodes = []
            for episode in season.get("episodes") or ():
                aired = _parse(episode.get("first_aired"))
                if aired is not None:
                    episode = dict(episode, first_aired=times.iso_z(aired + delta))
                episodes.append(episode)
            seasons.append(dict(season, episodes=episodes))
        shifted.append(dict(row, seasons=seasons))
    return shifted


class UpNextView:
    """One data load's shows and watchlist movies; answers for any moment, and keeps each answer
    until the next minute (so a request is a dict lookup, and "now" never goes stale)."""

    def __init__(self, shows: list[ShowProgress], movies: list, zone: tzinfo, zone_name: str,
                 last_updated: str | None) -> None:
        self.shows = shows
        self.movies = [m for m in movies if _release_date(m)]
        self.zone = zone
        self.zone_name = zone_name
        self.last_updated = last_updated
        self._cache: dict[tuple, tuple[datetime, Any]] = {}

    def cached(self, key: tuple, now: datetime, make: Any) -> Any:
        minute = now.replace(second=0, microsecond=0)
        hit = self._cache.get(key)
        if hit is not None and hit[0] == minute:
            return hit[1]
        if len(self._cache) > 1000:  # a few keys per route; never let odd queries grow it
            self._cache.clear()
        value = make(now)
        self._cache[key] = (minute, value)
        return value

    def up_next_document(self, now: datetime, include_completed: bool) -> dict:
        rows = up_next(self.shows, now, include_completed)
        return {"metadata": {"last_updated": self.last_updated, "timezone": self.zone_name, "count": len(rows),
                             "include": "completed" if include_completed else None}, "data": rows}

    def calendar_rows(self, now: datetime, days: int, *, in_progress_only: bool = False,
                      premieres_only: bool = False) -> list[dict]:
        return calendar(self.shows, self.movies, now, self.zone, days,
                        in_progress_only=in_progress_only, premieres_only=premieres_only)

    def calendar_document(self, now: datetime, days: int) -> dict:
        rows = self.calendar_rows(now, days)
        start = now.astimezone(self.zone).date()
        return {"metadata": {"last_updated": self.last_updated, "timezone": self.zone_name, "count": len(rows),
                             "days": days, "start_date": start.isoformat(),
                             "end_date": (start + timedelta(days=days - 1)).isoformat()}, "data": rows}

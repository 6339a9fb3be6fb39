"""The scripted "now watching" of the demo account: an episode, a pause, a movie, … driven by the clock.

With the bundled demo account there is no Trakt to poll, yet the live banner and the progress
ticks should work. `DemoSchedule` turns a repeating list of phases (`DEMO_WATCHING_SCHEDULE`,
e.g. `episode:1800,idle:600,movie:3600,idle:900`) into Trakt-shaped `/watching` payloads with
real-looking `started_at`/`expires_at`, using titles and ids from the loaded demo data.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from services import times
from services.data import layout
from services.images import urls

PHASE_KINDS = ("episode", "movie", "idle")
DEFAULT_SCHEDULE = "episode:1800,idle:600,movie:3600,idle:900"
MIN_PHASE_SECONDS = 1.0
EPISODE_RUNTIME_MINUTES = 45
MOVIE_RUNTIME_MINUTES = 120
CANDIDATE_ROWS = 500  # newest rows of each file the demo picks titles from
# Backdrop sizes the dashboard asks for; the image route only uses `w` when an image proxy is set.
BACKDROP_WIDTHS = (("backdrop", None), ("backdrop_medium", 780), ("backdrop_small", 300))


@dataclass(frozen=True)
class Phase:
    """One step of the schedule: play an `episode` or a `movie`, or stay `idle`, for `seconds`."""

    kind: str
    seconds: float


def parse_schedule(text: str) -> tuple[Phase, ...]:
    """Parse `kind:seconds[,kind:seconds…]`; raises ValueError saying what is wrong."""
    phases: list[Phase] = []
    for number, part in enumerate(text.split(","), start=1):
        part = part.strip()
        if not part:
            raise ValueError(f"phase {number} is empty (expected kind:seconds, e.g. episode:1800)")
        kind, sep, raw_seconds = part.partition(":")
        kind = kind.strip().lower()
        if not sep or kind not in PHASE_KINDS:
            raise ValueError(f"phase {number} {part!r} must be kind:seconds with kind one of {', '.join(PHASE_KINDS)}")
        try:
            seconds = float(raw_seconds.strip())
        except ValueError:
            raise ValueError(f"phase {number} {part!r}: {raw_seconds.strip()!r} is not a number of seconds") from None
        if not math.isfinite(seconds) or seconds < MIN_PHASE_SECONDS:
            raise ValueError(f"phase {number} {part!r}: seconds must be at least {MIN_PHASE_SECONDS:g}")
        phases.append(Phase(kind, seconds))
    if not any(p.kind != "idle" for p in phases):
        raise ValueError("the schedule must contain at least one episode or movie phase")
    return tuple(phases)


class DemoData(Protocol):
    """What the schedule reads from the data store (duck-typed: `DataStore` fits)."""

    documents: Mapping[str, Any]
    is_demo: bool

    def first_rows(self, endpoint: str, limit: int) -> list: ...


@dataclass(frozen=True)
class DemoMoment:
    """What the demo account is watching at one instant, and when that next changes."""

    payload: dict | None  # the Trakt /watching body, None when idle
    images: dict | None  # backdrop URLs for the Watcher (no TMDB call in demo mode)
    next_change: datetime


def _runtime_seconds(*candidates: Any, default_minutes: int) -> float:
    for value in candidates:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and 5 <= value <= 600:
            return float(value) * 60
    return default_minutes * 60.0


class DemoSchedule:
    """A clock-driven schedule over the demo account's own titles (deterministic per cycle)."""

    def __init__(self, store: DemoData, phases: tuple[Phase, ...] | str = DEFAULT_SCHEDULE, *,
                 has_backdrop: Callable[[str, int], bool] | None = None,
                 anchor: float | None = None) -> None:
        """`has_backdrop(kind, tmdb_id)` ("movies"/"shows") says whether the image index can
        serve a backdrop; without it no image URLs are offered (a dead link would 404 in the page).
        `anchor` (Unix seconds) is when the first phase starts; default: now, so a fresh demo
        server is playing something at once."""
        self._store = store
        self.phases = parse_schedule(phases) if isinstance(phases, str) else tuple(phases)
        if not self.phases:
            raise ValueError("a demo schedule needs at least one phase")
        self.cycle_seconds = sum(p.seconds for p in self.phases)
        self._has_backdrop = has_backdrop
        self._anchor = time.time() if anchor is None else anchor
        # Candidate titles, recomputed only when the store loads new documents.
        self._candidates_for: Mapping[str, Any] | None = None
        self._candidates: tuple[list[tuple[dict, dict]], list[dict]] = ([], [])

    @property
    def active(self) -> bool:
        """True while the store serves the bundled demo account or a synthetic one written by
        `trakt-watch demo` (its files say `"source": "demo"`), e.g. for a benchmark."""
        if getattr(self._store, "is_demo", False):
            return True
        try:
            index = self._store.documents.get(layout.INDEX)
        except Exception:  # nothing loaded yet
            return False
        metadata = index.get("metadata") if isinstance(index, dict) else None
        return isinstance(metadata, dict) and metadata.get("source") == layout.SOURCE_DEMO

    def at(self, now: datetime) -> DemoMoment:
        """The Trakt-shaped payload for `now` (aware datetime) and when the next change is due."""
        offset = now.timestamp() - self._anchor
        cycle = math.floor(offset / self.cycle_seconds)
        position = offset - cycle * self.cycle_seconds
        index, phase_start_offset = 0, 0.0
        # The last phase also takes any floating point remainder at the very end of a cycle.
        while index < len(self.phases) - 1 and position >= phase_start_offset + self.phases[index].seconds:
            phase_start_offset += self.phases[index].seconds
            index += 1
        phase = self.phases[index]
        phase_start = datetime.fromtimestamp(self._anchor + cycle * self.cycle_seconds + phase_start_offset,
                                             UTC)
        phase_end = phase_start + timedelta(seconds=phase.seconds)
        if phase.kind == "idle":
            return DemoMoment(None, None, phase_end)
        # Which title: the n-th play of this kind over all cycles, rotating through the data.
        per_cycle = sum(1 for p in self.phases if p.kind == phase.kind)
        occurrence = sum(1 for p in self.phases[:index] if p.kind == phase.kind)
        pick = cycle * per_cycle + occurrence
        item = self._episode(pick) if phase.kind == "episode" else self._movie(pick)
        if item is None:
            return DemoMoment(None, None, phase_end)
        payload, runtime, kind, tmdb_id = item
        # Started part-way (at most a third in) so progress is visible; a phase shorter than
        # what is left ends with the viewer stopping early, a longer one with the credits.
        lead_in = min(runtime / 3, max(0.0, runtime - phase.seconds))
        started_at = phase_start - timedelta(seconds=lead_in)
        expires_at = started_at + timedelta(seconds=runtime)
        if now >= expires_at:
            return DemoMoment(None, None, phase_end)
        payload = {"expires_at": times.iso_z(expires_at.replace(microsecond=0)),
                   "started_at": times.iso_z(started_at.replace(microsecond=0)),
                   "action": "scrobble", "type": phase.kind, **payload}
        return DemoMoment(payload, self._images(kind, tmdb_id), min(phase_end, expires_at))

    # --- titles from the demo data ------------------------------------------------------
    def _data(self, endpoint: str) -> list:
        # A sample of the newest rows is plenty of variety, and stays small on a huge account.
        return [row for row in self._store.first_rows(endpoint, CANDIDATE_ROWS) if isinstance(row, dict)]

    def _titles(self) -> tuple[list[tuple[dict, dict]], list[dict]]:
        documents = self._store.documents
        if documents is not self._candidates_for:  # the store swaps in a new mapping on reload
            self._candidates = (self._episode_candidates(), self._movie_candidates())
            self._candidates_for = documents
        return self._candidates

    def _episode_candidates(self) -> list[tuple[dict, dict]]:
        """Episodes with their titles from the history, else those listed in the watched shows."""
        seen: set = set()
        candidates: list[tuple[dict, dict]] = []
        for entry in self._data(layout.HISTORY["shows"]):
            if not isinstance(entry, dict):
                continue
            show, episode = entry.get("show"), entry.get("episode")
            if not isinstance(show, dict) or not isinstance(episode, dict) or not show.get("title"):
                continue
            key = (_ids(show).get("trakt"), episode.get("season"), episode.get("number"))
            if key not in seen and isinstance(episode.get("season"), int) and isinstance(episode.get("number"), int):
                seen.add(key)
                candidates.append((show, episode))
        if not candidates:
            for entry in self._data(layout.WATCHED["shows"]):
                show = entry.get("show") if isinstance(entry, dict) else None
                if not isinstance(show, dict) or not show.get("title"):
                    continue
                for season in entry.get("seasons") or ():
                    for episode in (season.get("episodes") or ()) if isinstance(season, dict) else ():
                        if isinstance(episode, dict) and isinstance(episode.get("number"), int) \
                                and isinstance(season.get("number"), int):
                            candidates.append((show, {"season": season["number"], "number": episode["number"],
                                                      "title": None, "ids": {}}))
        return candidates

    def _episode(self, pick: int) -> tuple[dict, float, str, int | None] | None:
        candidates = self._titles()[0]
        if not candidates:
            return None
        show, episode = candidates[(pick * 7) % len(candidates)]
        payload = {
            "episode": {"season": episode["season"], "number": episode["number"],
                        "title": episode.get("title"), "ids": _ids(episode)},
            "show": {"title": show["title"], "year": show.get("year"), "ids": _ids(show)},
        }
        runtime = _runtime_seconds(episode.get("runtime"), show.get("runtime"),
                                   default_minutes=EPISODE_RUNTIME_MINUTES)
        return payload, runtime, "shows", _ids(show).get("tmdb")

    def _movie_candidates(self) -> list[dict]:
        movies: list[dict] = []
        seen: set = set()
        for endpoint in (layout.WATCHED["movies"], layout.HISTORY["movies"]):
            for entry in self._data(endpoint):
                movie = entry.get("movie") if isinstance(entry, dict) else None
                if isinstance(movie, dict) and movie.get("title"):
                    key = _ids(movie).get("trakt") or movie["title"]
                    if key not in seen:
                        seen.add(key)
                        movies.append(movie)
        return movies

    def _movie(self, pick: int) -> tuple[dict, float, str, int | None] | None:
        movies = self._titles()[1]
        if not movies:
            return None
        movie = movies[(pick * 5) % len(movies)]
        payload = {"movie": {"title": movie["title"], "year": movie.get("year"), "ids": _ids(movie)}}
        runtime = _runtime_seconds(movie.get("runtime"), default_minutes=MOVIE_RUNTIME_MINUTES)
        return payload, runtime, "movies", _ids(movie).get("tmdb")

    def _images(self, kind: str, tmdb_id: Any) -> dict | None:
        if not isinstance(tmdb_id, int) or isinstance(tmdb_id, bool) or self._has_backdrop is None:
            return None
        if not self._has_backdrop(kind, tmdb_id):
            return None
        return {name: urls.api_redirect(kind, "backdrops", tmdb_id, w=width) for name, width in BACKDROP_WIDTHS}


def _ids(item: dict) -> dict:
    ids = item.get("ids")
    return dict(ids) if isinstance(ids, dict) else {}

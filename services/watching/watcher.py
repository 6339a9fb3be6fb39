"""Now watching: one Trakt `/watching` poller for everybody, pushed to every open dashboard.

The `Watcher` polls Trakt (or plays the demo schedule), keeps the current state, enriches it
with TMDB backdrops (cached per title), and fans out JSON messages to its subscribers: a
`watching` message when what is playing changes and a `tick` with the progress every
`WATCHING_TICK_SECONDS` while something plays. Each message is serialised and encoded once and
the same bytes go to every client; a client that stops reading is dropped, never waited for, and
at most `WATCHING_MAX_CLIENTS` are connected at a time.
The Watcher knows nothing of HTTP: subscribers are anything with `send()`/`shutdown()`
(`handlers/watching.py` adapts a WebSocket connection).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from services import times
from services.config import Config
from services.watching.demo_schedule import DemoSchedule
from services.data.snapshots import dumps
from services.images import urls
from services.images.tmdb import best_image
from services.throttled_log import ThrottledLog

log = logging.getLogger("trakt_watch.watching")

# Name in `content.images` -> TMDB size and the width asked of the image proxy.
BACKDROP_SIZES = (("backdrop", "w1280", 1280), ("backdrop_medium", "w780", 780), ("backdrop_small", "w300", 300))
NO_IMAGES = {name: None for name, _, _ in BACKDROP_SIZES}
IDLE_STATE = {"isWatching": False}

DEFAULT_CLIENT_BUFFER_LIMIT = 256 * 1024  # bytes queued for one client before it is dropped
DEFAULT_CLIENT_SOCKET_BUFFER = 64 * 1024  # kernel send buffer of one client socket (SO_SNDBUF)
BACKOFF_CAP_SECONDS = 300.0
TMDB_CACHE_SIZE = 256
TMDB_RETRY_SECONDS = 600.0  # a failed backdrop lookup is retried after this long


class Outgoing:
    """One server message, serialised once: the JSON text and its UTF-8 bytes, which every
    client's WebSocket sends as they are (a text frame; no per-client compression)."""

    __slots__ = ("payload", "text")

    def __init__(self, message: dict) -> None:
        self.text = dumps(message)
        self.payload = self.text.encode("utf-8")


PONG = Outgoing({"type": "pong"})


class Subscriber(Protocol):
    """A connected client (a WebSocket in practice)."""

    def send(self, message: Outgoing) -> bool:
        """Queue `message` without waiting; False when the client is gone or too far behind."""

    def shutdown(self) -> None:
        """Close because the server is stopping (WebSocket code 1001)."""


class TraktWatching(Protocol):
    signed_in: bool

    async def watching(self, username: str) -> dict | None: ...


class TmdbImages(Protocol):
    async def images(self, kind: str, tmdb_id: int) -> dict: ...


class MalformedPayload(ValueError):
    """Trakt answered 200 with a body that is not a usable /watching payload."""


# --- pure helpers --------------------------------------------------------------------------
def parse_time(value: Any) -> datetime:
    """An ISO 8601 timestamp from Trakt (`2025-07-19T13:00:12.000Z`) as an aware UTC datetime."""
    try:
        return times.parse_iso(value)
    except ValueError:
        raise MalformedPayload(f"expected an ISO 8601 timestamp, got {value!r}") from None


def compute_progress(started_at: datetime, expires_at: datetime, now: datetime) -> dict:
    """`percentage` (int, clamped 0–100), `elapsed_seconds` and `remaining_seconds` at `now`."""
    total = (expires_at - started_at).total_seconds()
    elapsed = (now - started_at).total_seconds()
    if total <= 0:
        done = now >= expires_at
        return {"percentage": 100 if done else 0, "elapsed_seconds": 0, "remaining_seconds": 0}
    elapsed = min(max(elapsed, 0.0), total)
    return {
        "percentage": min(100, max(0, int(elapsed * 100 // total))),
        "elapsed_seconds": int(elapsed),
        "remaining_seconds": int(math.ceil(total - elapsed)),
    }


# The watcher's tests call it by this name; the URL itself is built in services/images/urls.py.
proxied_image_url = urls.proxied


def backdrop_urls(config: Config, file_path: str) -> dict:
    """The three backdrop sizes of one TMDB file, routed through the image proxy setting."""
    return {name: urls.proxied(config, urls.tmdb_file(config.tmdb_image_url, size, file_path), width)
            for name, size, width in BACKDROP_SIZES}


def _ids(item: Any) -> dict:
    ids = item.get("ids") if isinstance(item, dict) else None
    return dict(ids) if isinstance(ids, dict) else {}


def _year(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def describe(payload: Any) -> tuple[tuple, dict, str, int | None]:
    """From a Trakt /watching body: (identity key, content without progress/images/stale,
    TMDB kind, TMDB id). Raises MalformedPayload when it is not usable."""
    if not isinstance(payload, dict):
        raise MalformedPayload(f"expected a JSON object, got {type(payload).__name__}")
    kind = payload.get("type")
    action = payload.get("action") if payload.get("action") in ("scrobble", "checkin") else "scrobble"
    if kind == "movie":
        movie = payload.get("movie")
        if not isinstance(movie, dict) or not isinstance(movie.get("title"), str):
            raise MalformedPayload("a movie payload without movie.title")
        ids = _ids(movie)
        year = _year(movie.get("year"))
        content = {"type": "movie", "title": movie["title"], "subtitle": str(year) if year else "",
                   "year": year, "ids": ids, "action": action}
        key = ("movie", ids.get("trakt") or ids.get("tmdb") or movie["title"])
        return key, content, "movie", ids.get("tmdb")
    if kind == "episode":
        show, episode = payload.get("show"), payload.get("episode")
        if not isinstance(show, dict) or not isinstance(show.get("title"), str) or not isinstance(episode, dict):
            raise MalformedPayload("an episode payload without show.title or episode")
        season, number = episode.get("season"), episode.get("number")
        if not isinstance(season, int) or not isinstance(number, int):
            raise MalformedPayload("an episode payload without episode.season/number")
        title = episode.get("title") if isinstance(episode.get("title"), str) else None
        subtitle = f"S{season}E{number}" + (f" - {title}" if title else "")
        show_ids = _ids(show)
        content = {
            "type": "episode", "title": show["title"], "subtitle": subtitle, "year": _year(show.get("year")),
            # `ids` are the show's, as in the seed (the dashboard links and pictures are per show).
            "ids": show_ids, "action": action,
            "show": {"title": show["title"], "year": _year(show.get("year")), "ids": show_ids},
            "episode": {"season": season, "number": number, "title": title, "ids": _ids(episode)},
        }
        key = ("episode", show_ids.get("trakt") or show["title"], season, number)
        return key, content, "tv", show_ids.get("tmdb")
    raise MalformedPayload(f"unknown /watching type {kind!r}")


class _Playing:
    """What is playing now: the parts that only change with a new payload."""

    __slots__ = ("content", "expires_at", "expires_raw", "images", "key", "stale", "started_at", "started_raw")

    def __init__(self, key: tuple, content: dict, started_raw: str, expires_raw: str, images: dict | None) -> None:
        self.key = key
        self.content = content
        self.started_raw = started_raw
        self.expires_raw = expires_raw
        self.started_at = parse_time(started_raw)
        self.expires_at = parse_time(expires_raw)
        self.images = images
        self.stale = False

    def signature(self) -> tuple:
        """What a `watching` message shows apart from the running progress."""
        return self.key, self.started_raw, self.expires_raw, self.stale, self.images is not None, \
            self.content.get("action")


# --- the service ---------------------------------------------------------------------------
class Watcher:
    """One poller and one ticker for every client; see the module docstring."""

    def __init__(self, config: Config, trakt_client: TraktWatching | None, tmdb_client: TmdbImages | None, *,
                 demo_source: DemoSchedule | None = None,
                 client_buffer_limit: int = DEFAULT_CLIENT_BUFFER_LIMIT,
                 client_socket_buffer: int = DEFAULT_CLIENT_SOCKET_BUFFER,
                 poll_timeout: float | None = None,
                 tmdb_timeout: float = 10.0,
                 clock: Callable[[], datetime] | None = None,
                 on_playback_ended: Callable[[], Any] | None = None) -> None:
        """`poll_timeout` bounds one Trakt call (default: the larger of 10 s and the poll
        interval); `client_buffer_limit` is how many unsent bytes a client may owe before it
        is dropped, `client_socket_buffer` the SO_SNDBUF of each client socket (0: the OS
        default); `clock` returns the current aware UTC time (tests); `on_playback_ended()` is
        called when a Trakt play ends (playing → nothing, or another item starts): the server
        checks the history soon after (README "Sync")."""
        if config.watching_poll_seconds <= 0 or config.watching_tick_seconds <= 0:
            raise ValueError("watching_poll_seconds and watching_tick_seconds must be positive")
        if client_buffer_limit < 1024:
            raise ValueError(f"client_buffer_limit must be at least 1024 bytes, got {client_buffer_limit!r}")
        if poll_timeout is not None and poll_timeout <= 0:
            raise ValueError(f"poll_timeout must be positive, got {poll_timeout!r}")
        self.config = config
        self._trakt = trakt_client
        self._tmdb = tmdb_client
        self._demo = demo_source
        if client_socket_buffer < 0:
            raise ValueError(f"client_socket_buffer must be 0 or more bytes, got {client_socket_buffer!r}")
        self.client_buffer_limit = client_buffer_limit
        self.client_socket_buffer = client_socket_buffer
        self.poll_timeout = poll_timeout if poll_timeout is not None else max(10.0, config.watching_poll_seconds)
        self.tmdb_timeout = tmdb_timeout
        self._clock = clock or (lambda: datetime.now(UTC))
        self._on_playback_ended = on_playback_ended

        self._playing: _Playing | None = None
        self._playing_since: str | None = None  # when what plays (or nothing) began to show
        self._subscribers: set[Subscriber] = set()
        self._tasks: list[asyncio.Task] = []
        self._wake = asyncio.Event()
        self._backdrops: OrderedDict[tuple[str, int], tuple[dict | None, float]] = OrderedDict()
        self.closed = False
        self.mode = "disabled"  # "trakt" | "demo" | "disabled", decided at every poll

        # Counters read by /metrics and /healthz.
        self.polls = 0
        self.poll_errors = 0
        self.ticks_sent = 0
        self.messages_sent = 0
        self.clients_dropped = 0
        self.clients_refused = 0
        self._refusals = ThrottledLog(log)  # one line a minute while clients are turned away
        self.tmdb_lookups = 0
        self.last_poll_at: str | None = None
        self.last_error: str | None = None
        self._failures = 0  # consecutive failed polls
        self._outage_since: float | None = None

    # --- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        """Start the poller (first poll now) and the ticker."""
        if self._tasks:
            return
        self.closed = False
        self.mode = self._current_mode()
        self._wake = asyncio.Event()
        self._tasks = [asyncio.create_task(self._poll_loop(), name="watching-poll"),
                       asyncio.create_task(self._tick_loop(), name="watching-tick")]

    async def stop(self) -> None:
        """Stop polling and ticking, and close every client with 1001 "server shutting down"."""
        self.closed = True
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        subscribers, self._subscribers = list(self._subscribers), set()
        for subscriber in subscribers:
            try:
                subscriber.shutdown()
            except Exception:  # a half-closed socket must not stop the others from closing
                log.debug("closing a watching client failed", exc_info=True)

    def refresh(self) -> None:
        """Poll again now (e.g. the store switched between demo and synced data)."""
        self._wake.set()

    # --- state -----------------------------------------------------------------------------
    def progress(self, now: datetime | None = None) -> dict:
        """Progress of what is playing at `now`; zeros when nothing plays."""
        playing = self._playing
        if playing is None:
            return {"percentage": 0, "elapsed_seconds": 0, "remaining_seconds": 0}
        return compute_progress(playing.started_at, playing.expires_at, now or self._clock())

    def state(self, now: datetime | None = None) -> dict:
        """The body of GET /api/watching (the seed's `isWatching` shape)."""
        playing = self._playing
        if playing is None:
            return dict(IDLE_STATE)
        progress = {"started_at": playing.started_raw, "expires_at": playing.expires_raw,
                    **compute_progress(playing.started_at, playing.expires_at, now or self._clock())}
        content = {**playing.content, "progress": progress, "images": dict(playing.images or NO_IMAGES),
                   "stale": playing.stale}
        return {"isWatching": True, "content": content}

    @property
    def is_playing(self) -> bool:
        return self._playing is not None

    def stats(self) -> dict:
        """Counters for /metrics."""
        return {"polls": self.polls, "poll_errors": self.poll_errors, "ticks_sent": self.ticks_sent,
                "messages_sent": self.messages_sent, "clients": len(self._subscribers),
                "clients_dropped": self.clients_dropped, "clients_refused": self.clients_refused,
                "tmdb_lookups": self.tmdb_lookups,
                "playing": self.is_playing}

    def health(self) -> dict:
        """For /healthz: `status` ok, upstream_down (failing polls), disabled (no Trakt key) or demo;
        `upstream_ok` False only while Trakt polls fail."""
        if self.mode == "demo":
            status = "demo"
        elif self.mode == "disabled":
            status = "disabled"
        else:
            status = "upstream_down" if self._failures else "ok"
        return {"status": status, "upstream_ok": status != "upstream_down", "last_poll_at": self.last_poll_at,
                "last_error": self.last_error}

    def activity(self) -> dict:
        """What /healthz adds to `health()` for `trakt-watch status` (README "Signing in"): `polling`
        "signed_in" (`/users/me/watching`) or "username" (TRAKT_USERNAME's), None when not polling
        Trakt; `user` the path's user; `playing` what it last saw ("movie 'Heat'", None for
        nothing) and `playing_since` when that began to show; `poll_seconds`."""
        polling = user = None
        if self.mode == "trakt":  # as the next poll will: the sign-in may have come or gone since the last
            if getattr(self._trakt, "signed_in", False):
                polling, user = "signed_in", "me"
            elif self.config.trakt_username:
                polling, user = "username", self.config.trakt_username
        return {"polling": polling, "user": user,
                "playing": self._describe_for_log() if self._playing is not None else None,
                "playing_since": self._playing_since, "poll_seconds": self.config.watching_poll_seconds}

    # --- subscribers -----------------------------------------------------------------------
    @property
    def clients(self) -> int:
        return len(self._subscribers)

    @property
    def full(self) -> bool:
        """WATCHING_MAX_CLIENTS are connected: a new one is turned away."""
        return len(self._subscribers) >= self.config.watching_max_clients

    def subscribe(self, subscriber: Subscriber) -> bool:
        """Add a client and send it the current state; False when the server is stopping or is
        `full` (counted in `clients_refused`)."""
        if self.closed:
            return False
        if self.full:
            self.clients_refused += 1
            self._refusals.log("Refusing watching clients: WATCHING_MAX_CLIENTS=%d are connected",
                               self.config.watching_max_clients)
            return False
        self._subscribers.add(subscriber)
        if not self._deliver(subscriber, Outgoing({"type": "watching", "data": self.state()})):
            self.drop(subscriber)
        return subscriber in self._subscribers

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.discard(subscriber)

    def broadcast(self, message: dict) -> int:
        """Send one message to every client (serialised once); returns how many got it."""
        outgoing = Outgoing(message)
        delivered = 0
        gone = []
        for subscriber in self._subscribers:
            if self._deliver(subscriber, outgoing):
                delivered += 1
            else:
                gone.append(subscriber)
        for subscriber in gone:
            self.drop(subscriber)
        self.messages_sent += delivered
        return delivered

    def _deliver(self, subscriber: Subscriber, outgoing: Outgoing) -> bool:
        try:
            return subscriber.send(outgoing)
        except Exception:
            log.debug("sending to a watching client failed", exc_info=True)
            return False

    def drop(self, subscriber: Subscriber) -> None:
        """Forget a client that could not keep up (counted in `clients_dropped`)."""
        if subscriber in self._subscribers:
            self._subscribers.discard(subscriber)
            self.clients_dropped += 1

    def _set_playing(self, playing: _Playing | None) -> None:
        """Replace the state; tell everybody if what they see changed."""
        before = self._playing.signature() if self._playing else None
        self._playing = playing
        after = playing.signature() if playing else None
        if before != after:
            if (before and before[0]) != (after and after[0]):
                self._playing_since = times.iso_offset(self._clock())
                log.info("now watching: %s", self._describe_for_log())
                if before is not None and self.mode == "trakt" and self._on_playback_ended is not None:
                    try:
                        self._on_playback_ended()
                    except Exception:  # a listener must not stop the poller
                        log.exception("on_playback_ended listener failed")
            self.broadcast({"type": "watching", "data": self.state()})

    def publish_data_change(self, changed: list[str], last_updated: str) -> int:
        """Tell every client a sync committed a snapshot, so dashboards refresh the sections that
        changed (README "WebSocket": the `data` message); returns how many got it."""
        return self.broadcast({"type": "data", "data": {"changed": list(changed), "last_updated": last_updated}})

    def _describe_for_log(self) -> str:
        playing = self._playing
        if playing is None:
            return "nothing"
        content = playing.content
        return f"{content['type']} {content['title']!r} {content.get('subtitle') or ''}".rstrip()

    # --- polling ---------------------------------------------------------------------------
    def _current_mode(self) -> str:
        if self._demo is not None and self._demo.active:
            return "demo"
        if self._trakt is not None and (self.config.has_trakt or self._trakt.signed_in):
            return "trakt"  # signed in, the client polls the token's own account
        return "disabled"

    async def poll_once(self) -> float:
        """One poll of Trakt (or the demo schedule); returns the seconds until the next one."""
        interval = self.config.watching_poll_seconds
        self.mode = self._current_mode()
        if self.mode == "disabled":
            self._set_playing(None)
            return interval
        if self.mode == "demo":
            return self._poll_demo(interval)
        self.polls += 1
        try:
            # asyncio.timeout, not wait_for: Python 3.11's wait_for can swallow a cancellation
            # (stop()) that arrives just as the call completes.
            async with asyncio.timeout(self.poll_timeout):
                payload = await self._trakt.watching(self.config.trakt_username)
            playing = await self._playing_from(payload) if payload is not None else None
        except Exception as exc:  # any upstream failure: keep the last state, back off
            return self._poll_failed(exc)
        self.last_poll_at = times.iso_offset(self._clock())
        if self._failures:
            down_for = time.monotonic() - (self._outage_since or time.monotonic())
            log.warning("Trakt /watching is back after %d failed polls (%.0f s)", self._failures, down_for)
            self._failures = 0
            self._outage_since = None
            self.last_error = None
        self._set_playing(playing)
        return interval

    def _poll_demo(self, interval: float) -> float:
        now = self._clock()
        moment = self._demo.at(now)
        playing = None
        if moment.payload is not None:
            key, content, _, _ = describe(moment.payload)
            playing = _Playing(key, content, moment.payload["started_at"], moment.payload["expires_at"],
                               moment.images)
        self.last_poll_at = times.iso_offset(now)
        self._set_playing(playing)
        until_change = (moment.next_change - now).total_seconds()
        return max(0.01, min(interval, until_change))

    def _poll_failed(self, exc: Exception) -> float:
        self.poll_errors += 1
        self._failures += 1
        message = _describe_error(exc)
        self.last_error = message
        if self._failures == 1:
            self._outage_since = time.monotonic()
            log.warning("Trakt /watching failed (%s); keeping the last state until it expires and retrying", message)
        playing = self._playing
        if playing is not None:
            if self._clock() >= playing.expires_at:
                self._set_playing(None)
            elif not playing.stale:
                stale = _Playing(playing.key, playing.content, playing.started_raw, playing.expires_raw,
                                 playing.images)
                stale.stale = True
                self._set_playing(stale)
        interval = self.config.watching_poll_seconds
        retry_after = getattr(exc, "retry_after", None)
        if isinstance(retry_after, (int, float)) and not isinstance(retry_after, bool) and retry_after >= 0:
            return max(interval, float(retry_after))
        cap = max(interval, min(BACKOFF_CAP_SECONDS, interval * 32))
        return min(cap, interval * 2 ** (self._failures - 1))

    async def _playing_from(self, payload: dict) -> _Playing:
        key, content, tmdb_kind, tmdb_id = describe(payload)
        started_raw, expires_raw = payload.get("started_at"), payload.get("expires_at")
        parse_time(started_raw), parse_time(expires_raw)  # a malformed payload fails before TMDB is asked
        return _Playing(key, content, started_raw, expires_raw, await self._backdrop(tmdb_kind, tmdb_id))

    async def _backdrop(self, kind: str, tmdb_id: Any) -> dict | None:
        """Backdrop URLs of a title, cached per (kind, TMDB id): one TMDB call per title."""
        if self._tmdb is None or not self.config.tmdb_api_key:
            return None
        if not isinstance(tmdb_id, int) or isinstance(tmdb_id, bool) or tmdb_id <= 0:
            return None
        cache_key = (kind, tmdb_id)
        cached = self._backdrops.get(cache_key)
        if cached is not None and (cached[0] is not None or time.monotonic() < cached[1]):
            self._backdrops.move_to_end(cache_key)
            return cached[0]
        self.tmdb_lookups += 1
        images = None
        try:
            async with asyncio.timeout(self.tmdb_timeout):
                document = await self._tmdb.images(kind, tmdb_id)
            best = best_image(document.get("backdrops") if isinstance(document, dict) else None,
                              prefer=(None, "en"))
            images = backdrop_urls(self.config, best["file_path"]) if best else None
        except Exception as exc:  # no backdrop is not worth failing the poll over
            log.warning("TMDB backdrop lookup for %s %s failed: %s", kind, tmdb_id, _describe_error(exc))
        self._backdrops[cache_key] = (images, time.monotonic() + TMDB_RETRY_SECONDS)
        self._backdrops.move_to_end(cache_key)
        while len(self._backdrops) > TMDB_CACHE_SIZE:
            self._backdrops.popitem(last=False)
        return images

    async def _poll_loop(self) -> None:
        while not self.closed:
            try:
                delay = await self.poll_once()
            except Exception:
                log.exception("the watching poller failed unexpectedly; retrying")
                delay = self.config.watching_poll_seconds
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()

    # --- ticking ---------------------------------------------------------------------------
    def tick(self) -> bool:
        """Send one progress tick to every client now, if something plays; True if sent."""
        playing = self._playing
        if playing is None:
            return False
        now = self._clock()
        if playing.stale and now >= playing.expires_at:
            self._set_playing(None)  # upstream still down and the item is over
            return False
        if self._subscribers:
            self.broadcast({"type": "tick", "data": compute_progress(playing.started_at, playing.expires_at, now)})
            self.ticks_sent += 1
        return True

    async def _tick_loop(self) -> None:
        loop = asyncio.get_running_loop()
        interval = self.config.watching_tick_seconds
        deadline = loop.time() + interval
        while not self.closed:
            await asyncio.sleep(max(0.0, deadline - loop.time()))
            try:
                self.tick()
            except Exception:
                log.exception("sending a watching tick failed")
            # Fixed cadence without drift; after a stall, skip the ticks that were missed.
            deadline += interval
            if deadline < loop.time():
                deadline = loop.time() + interval


def _describe_error(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__

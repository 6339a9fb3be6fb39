"""The Watcher's pieces on their own: progress, payload parsing, image URLs, the demo schedule,
backoff and outage logging, and the fan-out (serialise once, drop what cannot keep up)."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from services.data import layout
from services.config import Config, ConfigError, load_config
from services.watching.demo_schedule import DemoSchedule, Phase, parse_schedule
from services.watching.watcher import (MalformedPayload, Outgoing, Watcher, backdrop_urls, compute_progress, describe,
                               parse_time, proxied_image_url)

T0 = datetime(2025, 7, 19, 13, 0, 0, tzinfo=UTC)


# --- progress -------------------------------------------------------------------------------------
def test_progress_is_computed_from_started_and_expires_at():
    end = T0 + timedelta(minutes=57)
    assert compute_progress(T0, end, T0 + timedelta(seconds=1539)) == {
        "percentage": 45, "elapsed_seconds": 1539, "remaining_seconds": 1881}


def test_progress_is_clamped_before_the_start_and_after_the_end():
    end = T0 + timedelta(minutes=10)
    assert compute_progress(T0, end, T0 - timedelta(minutes=5)) == {
        "percentage": 0, "elapsed_seconds": 0, "remaining_seconds": 600}
    assert compute_progress(T0, end, end + timedelta(hours=3)) == {
        "percentage": 100, "elapsed_seconds": 600, "remaining_seconds": 0}


def test_progress_of_an_empty_or_reversed_interval_does_not_divide_by_zero():
    assert compute_progress(T0, T0, T0)["percentage"] == 100
    assert compute_progress(T0, T0 - timedelta(seconds=5), T0 - timedelta(seconds=10))["percentage"] == 0


def test_trakt_timestamps_parse_as_utc():
    assert parse_time("2025-07-19T13:00:12.000Z") == T0 + timedelta(seconds=12)
    assert parse_time("2025-07-19T15:00:12+02:00") == T0 + timedelta(seconds=12)
    with pytest.raises(MalformedPayload, match="ISO 8601"):
        parse_time("yesterday")
    with pytest.raises(MalformedPayload):
        parse_time(None)


# --- payloads ---------------------------------------------------------------------------------------
def test_episode_payload_becomes_title_subtitle_and_show_ids():
    key, content, kind, tmdb_id = describe({
        "type": "episode", "action": "checkin",
        "episode": {"season": 3, "number": 10, "title": "Chapter 36", "ids": {"trakt": 74}},
        "show": {"title": "House of Cards", "year": 2013, "ids": {"trakt": 1416, "tmdb": 1425, "imdb": "tt1856010"}},
    })
    assert content["title"] == "House of Cards" and content["subtitle"] == "S3E10 - Chapter 36"
    assert content["year"] == 2013 and content["action"] == "checkin"
    assert content["ids"] == {"trakt": 1416, "tmdb": 1425, "imdb": "tt1856010"}
    assert (kind, tmdb_id) == ("tv", 1425)
    next_key = describe({"type": "episode", "episode": {"season": 3, "number": 11},
                         "show": {"title": "House of Cards", "ids": {"trakt": 1416}}})[0]
    assert next_key != key  # the next episode is a change


def test_episode_without_a_title_has_a_short_subtitle():
    content = describe({"type": "episode", "episode": {"season": 1, "number": 2, "title": None},
                        "show": {"title": "X", "ids": {}}})[1]
    assert content["subtitle"] == "S1E2" and content["action"] == "scrobble"


def test_movie_payload():
    key, content, kind, tmdb_id = describe({"type": "movie", "action": "scrobble",
                                            "movie": {"title": "Heat", "year": 1995, "ids": {"trakt": 5, "tmdb": 949}}})
    assert content == {"type": "movie", "title": "Heat", "subtitle": "1995", "year": 1995,
                       "ids": {"trakt": 5, "tmdb": 949}, "action": "scrobble"}
    assert (kind, tmdb_id) == ("movie", 949)


@pytest.mark.parametrize("payload, message", [
    ([], "JSON object"),
    ({"type": "show"}, "unknown /watching type"),
    ({"type": "movie", "movie": {"year": 1995}}, "movie.title"),
    ({"type": "episode", "show": {"title": "X"}, "episode": {"season": "1", "number": 2}}, "season/number"),
])
def test_malformed_payloads_are_rejected_with_a_reason(payload, message):
    with pytest.raises(MalformedPayload, match=message):
        describe(payload)


def test_backdrops_in_three_sizes_and_through_wsrv():
    config = replace(Config(), tmdb_image_url="https://image.tmdb.org/t/p")
    assert backdrop_urls(config, "/abc.jpg") == {
        "backdrop": "https://image.tmdb.org/t/p/w1280/abc.jpg",
        "backdrop_medium": "https://image.tmdb.org/t/p/w780/abc.jpg",
        "backdrop_small": "https://image.tmdb.org/t/p/w300/abc.jpg"}
    wsrv = replace(config, image_proxy="wsrv")
    assert proxied_image_url(wsrv, "https://image.tmdb.org/t/p/w780/abc.jpg", 780) == (
        "https://wsrv.nl/?url=https%3A%2F%2Fimage.tmdb.org%2Ft%2Fp%2Fw780%2Fabc.jpg&w=780&output=webp&q=85&maxage=7d")


# --- messages -------------------------------------------------------------------------------------
def test_outgoing_is_serialised_once_as_utf8_json():
    message = Outgoing({"type": "watching", "data": {"content": {"title": "Amélie"}}})
    assert message.payload == message.text.encode("utf-8")
    assert json.loads(message.payload) == {"type": "watching", "data": {"content": {"title": "Amélie"}}}


# --- demo schedule ----------------------------------------------------------------------------------
def test_schedule_parsing():
    assert parse_schedule("episode:20, idle:10,MOVIE:30.5") == (
        Phase("episode", 20.0), Phase("idle", 10.0), Phase("movie", 30.5))
    for text, message in (("", "phase 1 is empty"), ("play:20", "kind one of episode, movie, idle"),
                          ("episode:soon", "not a number"), ("episode:0.5", "at least 1"),
                          ("episode:nan", "at least 1"), ("idle:10", "at least one episode or movie"),
                          ("episode:5,,idle:5", "phase 2 is empty")):
        with pytest.raises(ValueError, match=message):
            parse_schedule(text)


@pytest.fixture
def env_file(tmp_path):
    path = tmp_path / ".env"
    path.write_text("")
    return path


def test_schedule_setting_is_validated_with_the_variable_name(env_file):
    config = load_config(environ={"DEMO_WATCHING_SCHEDULE": "episode:20,idle:10"}, env_file=env_file)
    assert config.demo_watching_schedule == "episode:20,idle:10"
    with pytest.raises(ConfigError, match="DEMO_WATCHING_SCHEDULE"):
        load_config(environ={"DEMO_WATCHING_SCHEDULE": "episode:20,dance:5"}, env_file=env_file)


def test_poll_interval_may_be_short_for_tests_but_not_zero(env_file):
    assert load_config(environ={"WATCHING_POLL_SECONDS": "0.05"}, env_file=env_file).watching_poll_seconds == 0.05
    with pytest.raises(ConfigError, match="WATCHING_POLL_SECONDS"):
        load_config(environ={"WATCHING_POLL_SECONDS": "0"}, env_file=env_file)


class DemoStore:
    """What DemoSchedule reads from a DataStore."""

    def __init__(self, documents: dict, is_demo: bool = True) -> None:
        self.documents = documents
        self.is_demo = is_demo

    def first_rows(self, endpoint: str, limit: int) -> list:
        return (self.documents.get(endpoint) or {}).get("data", [])[:limit]


def demo_documents() -> dict:
    shows = [{"type": "episode",
              "episode": {"season": 1, "number": n, "title": f"Pilot {n}", "ids": {"trakt": 100 + n}, "runtime": 45},
              "show": {"title": "Demo Show", "year": 2020, "ids": {"trakt": 7, "tmdb": 77}}} for n in (1, 2)]
    movies = [{"movie": {"title": f"Demo Movie {n}", "year": 2001, "ids": {"trakt": n, "tmdb": 900 + n},
                         "runtime": 120}} for n in (1, 2, 3)]
    return {layout.HISTORY["shows"]: {"data": shows}, layout.WATCHED["movies"]: {"data": movies},
            layout.INDEX: {"metadata": {"source": "demo"}, "data": {}}}


def test_demo_schedule_plays_an_episode_then_pauses_then_a_movie():
    start = T0.timestamp()
    schedule = DemoSchedule(DemoStore(demo_documents()), "episode:600,idle:60,movie:1800", anchor=start)
    assert schedule.cycle_seconds == 2460

    episode = schedule.at(T0 + timedelta(seconds=10))
    assert episode.payload["type"] == "episode" and episode.payload["show"]["title"] == "Demo Show"
    started, expires = parse_time(episode.payload["started_at"]), parse_time(episode.payload["expires_at"])
    assert expires - started == timedelta(minutes=45)  # the episode's runtime
    assert started == T0 - timedelta(minutes=15)  # a third in when the phase starts: progress is visible
    assert episode.next_change == T0 + timedelta(seconds=600)
    assert compute_progress(started, expires, T0 + timedelta(seconds=10))["percentage"] == 33

    pause = schedule.at(T0 + timedelta(seconds=630))
    assert pause.payload is None and pause.next_change == T0 + timedelta(seconds=660)

    movie = schedule.at(T0 + timedelta(seconds=700))
    assert movie.payload["type"] == "movie" and movie.payload["movie"]["title"].startswith("Demo Movie")
    assert parse_time(movie.payload["expires_at"]) - parse_time(movie.payload["started_at"]) == timedelta(hours=2)

    # The next cycle plays another title.
    assert schedule.at(T0 + timedelta(seconds=2460 + 700)).payload["movie"] != movie.payload["movie"]


def test_demo_phase_longer_than_the_runtime_ends_with_the_credits():
    schedule = DemoSchedule(DemoStore(demo_documents()), "episode:3600,idle:60", anchor=T0.timestamp())
    moment = schedule.at(T0)
    expires = parse_time(moment.payload["expires_at"])
    assert parse_time(moment.payload["started_at"]) == T0 and expires == T0 + timedelta(minutes=45)
    assert moment.next_change == expires
    assert schedule.at(expires + timedelta(seconds=1)).payload is None


def test_demo_images_only_when_the_backdrop_exists():
    documents = demo_documents()
    without = DemoSchedule(DemoStore(documents), "episode:60,idle:60", anchor=T0.timestamp())
    assert without.at(T0).images is None
    seen = []
    with_index = DemoSchedule(DemoStore(documents), "episode:60,idle:60", anchor=T0.timestamp(),
                              has_backdrop=lambda kind, tmdb_id: seen.append((kind, tmdb_id)) or True)
    assert with_index.at(T0).images == {
        "backdrop": "/api/images?type=shows&category=backdrops&tmdb_id=77",
        "backdrop_medium": "/api/images?type=shows&category=backdrops&tmdb_id=77&w=780",
        "backdrop_small": "/api/images?type=shows&category=backdrops&tmdb_id=77&w=300"}
    assert seen == [("shows", 77)]


def test_demo_schedule_uses_watched_shows_without_history_and_idles_without_titles():
    watched = {layout.WATCHED["shows"]: {"data": [
        {"show": {"title": "Only Watched", "year": 2011, "ids": {"trakt": 3}},
         "seasons": [{"number": 2, "episodes": [{"number": 5}]}]}]}}
    moment = DemoSchedule(DemoStore(watched), "episode:60,movie:60", anchor=T0.timestamp()).at(T0)
    assert moment.payload["episode"]["season"] == 2 and moment.payload["episode"]["number"] == 5
    empty = DemoSchedule(DemoStore({}), "episode:60,movie:60", anchor=T0.timestamp())
    assert empty.at(T0).payload is None and empty.at(T0 + timedelta(seconds=61)).payload is None


def test_demo_schedule_is_active_for_the_bundled_or_a_generated_demo_account():
    assert DemoSchedule(DemoStore({}, is_demo=True)).active
    assert DemoSchedule(DemoStore(demo_documents(), is_demo=False)).active  # source "demo"
    synced = {layout.INDEX: {"metadata": {"source": layout.SOURCE_TRAKT}, "data": {}}}
    assert not DemoSchedule(DemoStore(synced, is_demo=False)).active


# --- the Watcher with in-process collaborators --------------------------------------------------------
class ScriptedTrakt:
    """Answers `watching()` from a list: a payload, None (204) or an exception to raise."""

    def __init__(self, *answers) -> None:
        self.answers = list(answers)
        self.calls = 0

    async def watching(self, username: str):
        self.calls += 1
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, BaseException):
            raise answer
        return answer


class RateLimited(Exception):
    def __init__(self, retry_after: float) -> None:
        super().__init__(f"429, retry after {retry_after}")
        self.retry_after = retry_after


class Recorder:
    """A subscriber that keeps what it was sent, or refuses/raises."""

    def __init__(self, behaviour: str = "ok") -> None:
        self.behaviour = behaviour
        self.received: list[Outgoing] = []
        self.shut = False

    def send(self, message: Outgoing) -> bool:
        if self.behaviour == "raise":
            raise ConnectionResetError("gone")
        self.received.append(message)
        return self.behaviour == "ok"

    def shutdown(self) -> None:
        self.shut = True


def movie(now: datetime, elapsed: float = 60, total: float = 3600) -> dict:
    fmt = "%Y-%m-%dT%H:%M:%S.000Z"
    return {"type": "movie", "action": "scrobble", "started_at": (now - timedelta(seconds=elapsed)).strftime(fmt),
            "expires_at": (now + timedelta(seconds=total - elapsed)).strftime(fmt),
            "movie": {"title": "Heat", "year": 1995, "ids": {"trakt": 5}}}


def watcher_for(trakt, **kwargs) -> Watcher:
    config = replace(Config(), trakt_api_key="k", trakt_username="me", watching_poll_seconds=0.5,
                     watching_tick_seconds=0.1)
    return Watcher(config, trakt, None, **kwargs)


def test_backoff_doubles_to_a_cap_and_honours_retry_after(caplog):
    now = datetime.now(UTC)
    trakt = ScriptedTrakt(movie(now), *[ConnectionError("refused")] * 8, RateLimited(42), movie(now))
    watcher = watcher_for(trakt)
    loop = asyncio.new_event_loop()
    try:
        with caplog.at_level(logging.INFO, logger="trakt_watch.watching"):
            delays = [loop.run_until_complete(watcher.poll_once()) for _ in range(11)]
    finally:
        loop.close()
    assert delays[0] == 0.5
    assert delays[1:9] == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 16.0, 16.0]  # capped at 32 intervals (at most 5 min)
    assert delays[9] == 42  # Retry-After wins
    assert delays[10] == 0.5  # recovered
    assert watcher.poll_errors == 9 and watcher.polls == 11
    failed = [r for r in caplog.records if "keeping the last state" in r.getMessage()]
    back = [r for r in caplog.records if "is back" in r.getMessage()]
    assert len(failed) == 1 and len(back) == 1  # the outage is logged once when it starts and once at its end
    assert "9 failed polls" in back[0].getMessage()


def test_backoff_stops_at_5_minutes_with_the_default_15_s_interval():
    # README: doubling from the interval up to 32 intervals, at most 5 minutes.
    trakt = ScriptedTrakt(ConnectionError("refused"))
    config = replace(Config(), trakt_api_key="k", trakt_username="me")
    assert config.watching_poll_seconds == 15
    watcher = Watcher(config, trakt, None)
    loop = asyncio.new_event_loop()
    try:
        delays = [loop.run_until_complete(watcher.poll_once()) for _ in range(8)]
    finally:
        loop.close()
    assert delays == [15, 30, 60, 120, 240, 300, 300, 300]


def test_upstream_errors_keep_the_state_as_stale_until_it_expires():
    now = datetime.now(UTC)
    clock = [now]
    trakt = ScriptedTrakt(movie(now, elapsed=60, total=120), TimeoutError())
    watcher = watcher_for(trakt, clock=lambda: clock[0])
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(watcher.poll_once())
        assert watcher.state()["content"]["stale"] is False
        loop.run_until_complete(watcher.poll_once())
        state = watcher.state()
        assert state["isWatching"] is True and state["content"]["stale"] is True
        assert watcher.health() == {"status": "upstream_down", "upstream_ok": False,
                                    "last_poll_at": watcher.last_poll_at, "last_error": "timed out"}
        clock[0] = now + timedelta(seconds=61)  # past expires_at
        assert watcher.tick() is False
        assert watcher.state() == {"isWatching": False}
    finally:
        loop.close()


def test_a_malformed_payload_counts_as_an_upstream_error():
    trakt = ScriptedTrakt({"type": "movie", "started_at": "soon", "expires_at": "later",
                           "movie": {"title": "Heat"}})
    watcher = watcher_for(trakt)
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(watcher.poll_once())
    finally:
        loop.close()
    assert watcher.poll_errors == 1 and "ISO 8601" in watcher.health()["last_error"]
    assert watcher.state() == {"isWatching": False}


def test_broadcast_serialises_once_and_drops_clients_that_fail():
    watcher = watcher_for(ScriptedTrakt(None))
    good = [Recorder() for _ in range(3)]
    full, broken = Recorder("full"), Recorder("raise")
    for subscriber in (*good, full, broken):
        watcher.subscribe(subscriber)
    # Subscribing sent each client the current state; the two failing ones are already gone.
    assert all(json.loads(r.received[0].text) == {"type": "watching", "data": {"isWatching": False}} for r in good)
    assert watcher.clients == 3 and watcher.clients_dropped == 2
    assert watcher.broadcast({"type": "tick", "data": {"percentage": 1}}) == 3
    sent = {id(r.received[-1]) for r in good}
    assert len(sent) == 1  # one Outgoing (one serialisation) for every client
    assert watcher.messages_sent == 3


def test_beyond_watching_max_clients_subscribers_are_refused_and_logged_once(caplog):
    config = replace(Config(), watching_max_clients=2)
    watcher = Watcher(config, None, None)
    assert watcher.subscribe(Recorder()) and watcher.subscribe(Recorder())
    with caplog.at_level(logging.WARNING, logger="trakt_watch.watching"):
        refused = [watcher.subscribe(Recorder()) for _ in range(50)]
    assert refused == [False] * 50
    assert watcher.clients == 2 and watcher.clients_refused == 50 and watcher.stats()["clients_refused"] == 50
    assert [r.getMessage() for r in caplog.records] == [
        "Refusing watching clients: WATCHING_MAX_CLIENTS=2 are connected"]


def test_stop_shuts_every_client_and_refuses_new_ones():
    watcher = watcher_for(ScriptedTrakt(None))
    clients = [Recorder() for _ in range(2)]
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(watcher.start())
        for client in clients:
            watcher.subscribe(client)
        loop.run_until_complete(watcher.stop())
    finally:
        loop.close()
    assert all(c.shut for c in clients) and watcher.clients == 0
    assert watcher.subscribe(Recorder()) is False


def test_without_a_trakt_key_the_watcher_is_disabled():
    watcher = Watcher(Config(), None, None)
    loop = asyncio.new_event_loop()
    try:
        delay = loop.run_until_complete(watcher.poll_once())
    finally:
        loop.close()
    assert delay == Config().watching_poll_seconds
    assert watcher.health()["status"] == "disabled" and watcher.state() == {"isWatching": False}
    assert watcher.polls == 0


def test_invalid_watcher_settings_are_refused():
    with pytest.raises(ValueError, match="client_buffer_limit"):
        Watcher(Config(), None, None, client_buffer_limit=10)
    with pytest.raises(ValueError, match="poll_timeout"):
        Watcher(Config(), None, None, poll_timeout=0)

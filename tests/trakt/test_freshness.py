"""Fresh within a minute (README "Sync"): a play that ends on the fake Trakt reaches the served
history and every open dashboard's WebSocket (`data` message) without waiting for the daily sync;
the SYNC_CHECK_MINUTES schedule; the watcher's playback-end signal."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import tornado.httpclient
import tornado.websocket

from services.config import Config
from services.data.snapshots import DataFolder
from services.trakt.client import RetryPolicy
from services.trakt.service import SyncService
from services.watching.watcher import Watcher
from tests.fakes.trakt import FakeAccount, FakeTrakt

USER = "fakeuser"
FAST_RETRY = RetryPolicy(retries=1, base_delay=0.01, max_delay=0.02, rate_limit_retries=1,
                         default_retry_after=0.05)
WINDOW = 60.0  # README: in the served history within 60 s of Trakt recording the play


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def movie_payload(movie: dict, *, elapsed: float = 60, total: float = 6000) -> dict:
    now = datetime.now(UTC)
    return {"expires_at": iso(now + timedelta(seconds=total - elapsed)),
            "started_at": iso(now - timedelta(seconds=elapsed)),
            "action": "scrobble", "type": "movie", "movie": movie}


@pytest.fixture
def fake_trakt(io_loop):
    fake = FakeTrakt(FakeAccount.build(history=30, watched_movies=8, shows=2, lists=1, watchlist=4))
    io_loop.run_sync(fake.start)
    yield fake
    io_loop.run_sync(fake.stop)


@pytest.fixture
def trakt_config(fake_trakt, tmp_path) -> Config:
    return replace(Config(), trakt_api_key="test-key", trakt_username=USER, trakt_api_url=fake_trakt.url,
                   data_dir=tmp_path / "data", timezone="UTC", sync_interval_hours=0, sync_check_minutes=0,
                   watching_poll_seconds=0.1, watching_tick_seconds=0.5, data_check_seconds=60)


@pytest.fixture
def data_dir(io_loop, trakt_config):
    """A data folder with one full sync of the fake account in it."""
    sync = SyncService(trakt_config, DataFolder(trakt_config.data_dir), retry=FAST_RETRY)
    report = io_loop.run_sync(lambda: sync.run_once(full=True))
    assert report.outcome == "success", report.error
    return trakt_config.data_dir


@pytest.fixture
def config(trakt_config, data_dir) -> Config:
    return trakt_config


async def receive_type(conn, kind: str, timeout: float, where=lambda data: True) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        raw = await asyncio.wait_for(conn.read_message(), max(0.01, deadline - time.monotonic()))
        assert raw is not None, "the server closed the WebSocket"
        message = json.loads(raw)
        if message["type"] == kind and where(message.get("data")):
            return message


async def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


# --- end to end -------------------------------------------------------------------------------
@pytest.mark.gen_test(timeout=90)
async def test_a_play_that_ends_reaches_the_served_history_and_the_websocket_within_the_window(
        http_server, http_client, base_url, services, fake_trakt):
    services.sync.playback_check_delays = (0.3, 1.0, 3.0)  # the server's are 20, 60, 180, 600 s
    request = tornado.httpclient.HTTPRequest(base_url.replace("http://", "ws://") + "/ws/watching")
    conn = await tornado.websocket.websocket_connect(request)
    await receive_type(conn, "watching", 5)
    movie = fake_trakt.account.watched_movies[0]["movie"]
    fake_trakt.watching = movie_payload(movie)
    await receive_type(conn, "watching", 5, where=lambda data: data["isWatching"])

    ended = time.monotonic()
    fake_trakt.watching = None
    row = fake_trakt.add_play("movie", index=0)  # Trakt records the scrobble as it stops
    message = await receive_type(conn, "data", WINDOW, where=lambda data: "history" in data["changed"])
    assert time.monotonic() - ended < WINDOW
    assert set(message["data"]["changed"]) == {"history", "watched", "stats"}
    assert message["data"]["last_updated"]

    response = await http_client.fetch(f"{base_url}/api/trakt/user/history?type=movies")
    assert json.loads(response.body)["data"][0]["id"] == row["id"]
    assert message["data"]["last_updated"] == json.loads(response.body)["metadata"]["last_updated"]
    conn.close()


# --- the schedule and the follow-up checks --------------------------------------------------------
@pytest.mark.gen_test(timeout=30)
async def test_sync_check_minutes_runs_the_check_on_a_schedule(config, data_dir, fake_trakt):
    messages: list[tuple[list, str]] = []
    sync = SyncService(replace(config, sync_check_minutes=0.005), DataFolder(data_dir), retry=FAST_RETRY,
                       on_data_changed=lambda changed, last_updated: messages.append((changed, last_updated)))
    assert sync.checks_scheduled
    await sync.start()
    try:
        fake_trakt.add_play("episode", index=0)
        await wait_until(lambda: messages, 15, "a committed check")
        assert "history" in messages[0][0]
        assert sync.last_report["trigger"] == "check" and sync.last_report["mode"] == "incremental"
    finally:
        await sync.stop()


@pytest.mark.gen_test(timeout=30)
async def test_checks_after_playback_stop_once_the_play_is_in_the_history(config, data_dir, fake_trakt):
    reports: list[dict] = []
    sync = SyncService(config, DataFolder(data_dir), retry=FAST_RETRY, on_finished=reports.append,
                       playback_check_delays=(0.1, 0.3, 0.6))
    fake_trakt.add_play("movie", index=1)
    sync.follow_playback()
    await asyncio.sleep(1.2)
    assert [r["trigger"] for r in reports] == ["playback"]
    assert "history" in reports[0]["changed"]

    reports.clear()
    sync.follow_playback()  # a play Trakt never records: every follow-up check runs, then no more
    await asyncio.sleep(1.2)
    assert [r["trigger"] for r in reports] == ["playback"] * 3
    assert all(r["changed"] == [] for r in reports)
    await sync.stop()


@pytest.mark.gen_test(timeout=30)
async def test_no_check_schedule_without_a_trakt_key_or_with_sync_check_minutes_0(config):
    assert not SyncService(replace(config, sync_check_minutes=0), DataFolder(config.data_dir)).checks_scheduled
    assert not SyncService(replace(config, trakt_api_key=""), DataFolder(config.data_dir)).checks_scheduled
    assert SyncService(config.__class__(), DataFolder(config.data_dir)).config.sync_check_minutes == 15
    assert config.__class__().sync_full_interval_hours == 168


# --- the watcher's signal -------------------------------------------------------------------------
class ScriptedTrakt:
    """What `/watching` answers at each poll."""

    def __init__(self, answers: list) -> None:
        self.answers = list(answers)

    async def watching(self, username: str) -> dict | None:
        return self.answers.pop(0) if self.answers else None


@pytest.mark.gen_test(timeout=10)
async def test_the_watcher_signals_playback_end_when_play_stops_or_another_item_starts(config):
    movie = {"title": "A", "year": 2000, "ids": {"trakt": 1, "slug": "a-2000", "imdb": None, "tmdb": None}}
    other = {"title": "B", "year": 2001, "ids": {"trakt": 2, "slug": "b-2001", "imdb": None, "tmdb": None}}
    ended: list[int] = []
    trakt = ScriptedTrakt([None, movie_payload(movie), movie_payload(movie), movie_payload(other), None, None])
    watcher = Watcher(config, trakt, None, on_playback_ended=lambda: ended.append(1))
    for expected in (0, 0, 0, 1, 2, 2):  # idle, start, same, another item, stop, idle
        await watcher.poll_once()
        assert len(ended) == expected


class Collecting:
    def __init__(self) -> None:
        self.sent: list[dict] = []

    def send(self, message) -> bool:
        self.sent.append(json.loads(message.text))
        return True

    def shutdown(self) -> None:
        pass


@pytest.mark.gen_test(timeout=10)
async def test_publish_data_change_sends_the_data_message_to_every_subscriber(config):
    watcher = Watcher(config, None, None)
    clients = [Collecting(), Collecting()]
    for client in clients:
        watcher.subscribe(client)
    assert watcher.publish_data_change(["history", "stats"], "2026-12-01T10:00:00.000000+00:00") == 2
    for client in clients:
        assert client.sent[-1] == {"type": "data", "data": {"changed": ["history", "stats"],
                                                            "last_updated": "2026-12-01T10:00:00.000000+00:00"}}

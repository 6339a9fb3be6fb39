"""Now watching against the real app: GET /api/watching and WS /ws/watching (README "Now watching and the WebSocket protocol").

The real server (`make_app` + `build_services`) polls a fake Trakt and a fake TMDB, both real
HTTP servers on 127.0.0.1, with short intervals; real WebSocket clients talk to it.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import tornado.httpclient

from services.config import Config
from tests.fakes.tmdb import FakeTmdb
from tests.fakes.trakt import FakeAccount, FakeTrakt
from tests.helpers.websockets import (PING, connect, masked_frame, raw_websocket, read_until_closed, receive,
                                      send_ignoring_reset)

POLL = 0.1
TICK = 0.05
USERNAME = "fakeuser"
WATCHING_PATH = f"/users/{USERNAME}/watching"


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def episode_payload(number: int = 10, title: str = "Chapter 36", *, elapsed: float = 5, total: float = 10,
                    action: str = "scrobble") -> dict:
    """House of Cards S3E<number> as Trakt sends it, `elapsed` seconds into `total`."""
    now = datetime.now(UTC)
    return {
        "expires_at": iso(now + timedelta(seconds=total - elapsed)),
        "started_at": iso(now - timedelta(seconds=elapsed)),
        "action": action, "type": "episode",
        "episode": {"season": 3, "number": number, "title": title,
                    "ids": {"trakt": 1900000 + number, "tvdb": 5000000 + number, "imdb": None, "tmdb": 1000 + number}},
        "show": {"title": "House of Cards", "year": 2013,
                 "ids": {"trakt": 1416, "slug": "house-of-cards", "tvdb": 262980, "imdb": "tt1856010", "tmdb": 1425}},
    }


def movie_payload(*, elapsed: float = 5, total: float = 10) -> dict:
    now = datetime.now(UTC)
    return {
        "expires_at": iso(now + timedelta(seconds=total - elapsed)),
        "started_at": iso(now - timedelta(seconds=elapsed)),
        "action": "checkin", "type": "movie",
        "movie": {"title": "Guardians of the Galaxy", "year": 2014,
                  "ids": {"trakt": 28, "slug": "guardians-of-the-galaxy-2014", "imdb": "tt2015381", "tmdb": 118340}},
    }


# --- fixtures: the fakes and a config pointing at them ----------------------------------------
@pytest.fixture
def fake_trakt(io_loop):
    fake = FakeTrakt(FakeAccount.build(username=USERNAME, history=3, watched_movies=1, shows=1, lists=0),
                     api_key="test-key")
    io_loop.run_sync(fake.start)
    yield fake
    io_loop.run_sync(fake.stop)


@pytest.fixture
def fake_tmdb(io_loop):
    fake = FakeTmdb()
    io_loop.run_sync(fake.start)
    yield fake
    io_loop.run_sync(fake.stop)


@pytest.fixture
def config(request, data_dir, fake_trakt, fake_tmdb) -> Config:
    """The conftest config plus Trakt/TMDB keys for the fakes and short intervals;
    `@pytest.mark.parametrize("config", [{...}], indirect=True)` overrides fields."""
    overrides = getattr(request, "param", {})
    return replace(Config(), data_dir=data_dir, timezone="UTC", data_check_seconds=60,
                   trakt_api_key=fake_trakt.api_key, trakt_username=USERNAME, trakt_api_url=fake_trakt.url,
                   tmdb_api_key=fake_tmdb.api_key, tmdb_api_url=fake_tmdb.api_url,
                   tmdb_image_url=fake_tmdb.image_url,
                   watching_poll_seconds=POLL, watching_tick_seconds=TICK, **overrides)


# --- helpers ----------------------------------------------------------------------------------
async def receive_type(conn, kind: str, timeout: float = 5.0, where=lambda data: True) -> dict:
    """The next message of type `kind` whose data satisfies `where` (others are skipped)."""
    deadline = time.monotonic() + timeout
    while True:
        message = await receive(conn, max(0.01, deadline - time.monotonic()))
        assert message is not None, "the server closed the WebSocket"
        if message["type"] == kind and where(message.get("data")):
            return message


async def wait_until(predicate, timeout: float = 5.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


def assert_one_request_per_poll(watcher, fake_trakt) -> None:
    """Trakt saw exactly one /watching request per poll; the poll counter goes up just before
    its request is sent, so the latest poll's request may still be on its way."""
    assert watcher.polls - fake_trakt.count(WATCHING_PATH) in (0, 1)


def playing(title: str | None = None, subtitle: str | None = None):
    def check(data: dict) -> bool:
        if not data.get("isWatching"):
            return False
        content = data["content"]
        return (title is None or content["title"] == title) and (subtitle is None or content["subtitle"] == subtitle)
    return check


def idle(data: dict) -> bool:
    return data == {"isWatching": False}


# --- snapshot, start, ticks, stop, changes --------------------------------------------------------
@pytest.mark.gen_test(timeout=20)
async def test_snapshot_on_connect_is_idle_when_nothing_plays(http_server, base_url, services, fake_trakt):
    await wait_until(lambda: services.watcher.polls >= 1, what="the first poll")
    conn = await connect(base_url)
    assert await receive(conn) == {"type": "watching", "data": {"isWatching": False}}
    conn.close()


@pytest.mark.gen_test(timeout=20)
async def test_snapshot_on_connect_shows_what_is_playing(http_server, base_url, services, fake_trakt):
    fake_trakt.watching = episode_payload()
    await wait_until(lambda: services.watcher.is_playing, what="the watcher to see the episode")
    conn = await connect(base_url)
    first = await receive(conn)
    assert first["type"] == "watching" and first["data"]["isWatching"] is True
    assert first["data"]["content"]["subtitle"] == "S3E10 - Chapter 36"
    conn.close()


@pytest.mark.gen_test(timeout=20)
async def test_start_sends_watching_with_the_seed_shape_and_tmdb_backdrops(http_server, base_url, fake_trakt,
                                                                         fake_tmdb):
    conn = await connect(base_url)
    await receive_type(conn, "watching", where=idle)
    fake_trakt.watching = episode_payload(elapsed=300, total=3420)
    message = await receive_type(conn, "watching", where=playing())
    content = message["data"]["content"]
    assert content["type"] == "episode"
    assert content["title"] == "House of Cards"
    assert content["subtitle"] == "S3E10 - Chapter 36"
    assert content["year"] == 2013
    assert content["action"] == "scrobble"
    assert content["stale"] is False
    assert content["ids"]["tmdb"] == 1425 and content["ids"]["imdb"] == "tt1856010"
    assert content["show"]["title"] == "House of Cards"
    assert content["episode"] == {"season": 3, "number": 10, "title": "Chapter 36",
                                  "ids": fake_trakt.watching["episode"]["ids"]}
    progress = content["progress"]
    assert progress["started_at"] == fake_trakt.watching["started_at"]
    assert progress["expires_at"] == fake_trakt.watching["expires_at"]
    assert 8 <= progress["percentage"] <= 10  # 300 s of 3420 s
    assert 299 <= progress["elapsed_seconds"] <= 305
    assert progress["elapsed_seconds"] + progress["remaining_seconds"] in (3420, 3421)
    images = content["images"]
    assert set(images) == {"backdrop", "backdrop_medium", "backdrop_small"}
    file_name = images["backdrop"].rsplit("/", 1)[1]
    assert images["backdrop"] == f"{fake_tmdb.image_url}/w1280/{file_name}"
    assert images["backdrop_medium"] == f"{fake_tmdb.image_url}/w780/{file_name}"
    assert images["backdrop_small"] == f"{fake_tmdb.image_url}/w300/{file_name}"
    conn.close()


@pytest.mark.gen_test(timeout=20)
async def test_ticks_carry_increasing_percentage_while_playing(http_server, base_url, fake_trakt):
    fake_trakt.watching = episode_payload(elapsed=2, total=6)  # ~1 % every 60 ms
    conn = await connect(base_url)
    await receive_type(conn, "watching", where=playing())
    ticks = []
    while len(ticks) < 4 or ticks[-1]["percentage"] <= ticks[0]["percentage"]:
        ticks.append((await receive_type(conn, "tick"))["data"])
        assert len(ticks) < 200, "percentage never increased"
    for tick in ticks:
        assert set(tick) == {"percentage", "elapsed_seconds", "remaining_seconds"}
        assert all(isinstance(v, int) for v in tick.values())
        assert 0 <= tick["percentage"] <= 100
    percentages = [t["percentage"] for t in ticks]
    assert percentages == sorted(percentages)
    assert ticks[-1]["elapsed_seconds"] >= ticks[0]["elapsed_seconds"]
    assert ticks[-1]["remaining_seconds"] <= ticks[0]["remaining_seconds"]
    conn.close()


@pytest.mark.gen_test(timeout=20)
async def test_stop_sends_is_watching_false_and_ticks_stop(http_server, base_url, services, fake_trakt):
    fake_trakt.watching = movie_payload()
    conn = await connect(base_url)
    await receive_type(conn, "watching", where=playing("Guardians of the Galaxy"))
    await receive_type(conn, "tick")
    fake_trakt.watching = None
    await receive_type(conn, "watching", where=idle)
    polls = services.watcher.polls
    await wait_until(lambda: services.watcher.polls >= polls + 3, what="three more polls")
    with pytest.raises(asyncio.TimeoutError):
        await receive(conn, timeout=5 * TICK)  # nothing after the stop: no ticks, no repeats
    conn.close()


@pytest.mark.gen_test(timeout=20)
async def test_next_episode_then_movie_are_announced(http_server, base_url, fake_trakt):
    fake_trakt.watching = episode_payload(10, "Chapter 36")
    conn = await connect(base_url)
    await receive_type(conn, "watching", where=playing(subtitle="S3E10 - Chapter 36"))
    fake_trakt.watching = episode_payload(11, "Chapter 37")
    await receive_type(conn, "watching", where=playing(subtitle="S3E11 - Chapter 37"))
    fake_trakt.watching = movie_payload()
    message = await receive_type(conn, "watching", where=playing("Guardians of the Galaxy"))
    content = message["data"]["content"]
    assert content["type"] == "movie" and content["year"] == 2014 and content["action"] == "checkin"
    assert "show" not in content and "episode" not in content
    assert content["images"]["backdrop"].endswith(".jpg") or content["images"]["backdrop"].endswith(".png")
    conn.close()


@pytest.mark.gen_test(timeout=20)
async def test_a_title_costs_one_tmdb_call(http_server, base_url, services, fake_trakt, fake_tmdb):
    fake_trakt.watching = movie_payload(elapsed=60, total=7200)
    await wait_until(lambda: services.watcher.is_playing, what="the movie to play")
    polls = services.watcher.polls
    await wait_until(lambda: services.watcher.polls >= polls + 5, what="five more polls")
    image_requests = [r for r in fake_tmdb.requests if "/images" in str(r)]
    assert len(image_requests) == 1
    assert services.watcher.stats()["tmdb_lookups"] == 1


# --- GET /api/watching --------------------------------------------------------------------------
@pytest.mark.gen_test(timeout=20)
async def test_get_api_watching_answers_from_state_without_calling_trakt(http_client, base_url, services,
                                                                         fake_trakt):
    fake_trakt.watching = episode_payload()
    await wait_until(lambda: services.watcher.is_playing, what="the episode to play")
    for _ in range(30):
        response = await http_client.fetch(base_url + "/api/watching")
        assert response.code == 200
    body = json.loads(response.body)
    assert body["isWatching"] is True and body["content"]["subtitle"] == "S3E10 - Chapter 36"
    assert response.headers["Content-Type"] == "application/json; charset=UTF-8"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    # Every request to Trakt's /watching came from a poll, none from the 30 GETs.
    assert_one_request_per_poll(services.watcher, fake_trakt)


@pytest.mark.gen_test(timeout=20)
async def test_get_api_watching_idle_and_etag(http_client, base_url, services):
    await wait_until(lambda: services.watcher.polls >= 1, what="the first poll")
    response = await http_client.fetch(base_url + "/api/watching")
    assert json.loads(response.body) == {"isWatching": False}
    etag = response.headers["ETag"]
    again = await http_client.fetch(base_url + "/api/watching", headers={"If-None-Match": etag},
                                    raise_error=False)
    assert again.code == 304


# --- fan-out ------------------------------------------------------------------------------------
@pytest.mark.gen_test(timeout=90)
async def test_200_clients_cause_one_trakt_poll_per_interval(http_server, base_url, services, fake_trakt):
    clients = []
    for _ in range(200):
        clients.append(await connect(base_url))
    for conn in clients:
        await receive_type(conn, "watching")
    await wait_until(lambda: services.watcher.clients == 200, what="200 subscribers")
    fake_trakt.watching = movie_payload(elapsed=60, total=7200)
    for conn in clients:
        message = await receive_type(conn, "watching", where=playing("Guardians of the Galaxy"))
        assert message["data"]["content"]["type"] == "movie"

    start_polls, started = services.watcher.polls, time.monotonic()
    await wait_until(lambda: services.watcher.polls >= start_polls + 5, timeout=30, what="five polls")
    elapsed = time.monotonic() - started
    assert services.watcher.polls - start_polls <= elapsed / POLL + 2  # never more than one poll per interval
    assert_one_request_per_poll(services.watcher, fake_trakt)
    for conn in clients:
        conn.close()


@pytest.mark.gen_test(timeout=60)
async def test_a_client_that_never_reads_does_not_delay_the_others(http_server, http_port, base_url, services,
                                                                  fake_trakt):
    watcher = services.watcher
    fake_trakt.watching = episode_payload(elapsed=1, total=60)
    await wait_until(lambda: watcher.is_playing, what="the episode to play")
    readers, first_tick = [], []
    for _ in range(3):
        # A tick sent while connecting may or may not reach this reader: note both counts.
        before = watcher.ticks_sent
        readers.append(await connect(base_url))
        first_tick.append((before, watcher.ticks_sent))
    for conn in readers:
        await receive_type(conn, "watching", where=playing())
    silent = await asyncio.to_thread(raw_websocket, http_port)  # never reads, never writes
    flooder = await asyncio.to_thread(raw_websocket, http_port)  # never reads; asks for pongs it won't read
    await wait_until(lambda: watcher.clients == 5, what="five subscribers")
    dropped = watcher.clients_dropped

    flood = masked_frame('{"type":"ping"}') * 10000 + masked_frame(b"", PING) * 10000
    await asyncio.to_thread(send_ignoring_reset, flooder, flood)
    await wait_until(lambda: watcher.clients_dropped > dropped, timeout=20, what="the flooder to be dropped")
    # The flooder's connection is closed, not left open for a closing handshake it won't answer.
    await asyncio.to_thread(read_until_closed, flooder)
    sent_after_drop = watcher.ticks_sent
    await wait_until(lambda: watcher.ticks_sent >= sent_after_drop + 5, what="five more ticks")
    fake_trakt.watching = None
    counts = [0] * len(readers)
    for index, conn in enumerate(readers):
        while True:
            message = await receive(conn)
            assert message is not None
            if message["type"] == "tick":
                counts[index] += 1
            elif message["type"] == "watching" and idle(message["data"]):
                break
            else:
                assert message["type"] == "watching" and message["data"]["isWatching"] is True
    # Every tick the watcher produced after a reader connected reached it, in order, before the stop.
    for count, (before, after) in zip(counts, first_tick):
        assert watcher.ticks_sent - after <= count <= watcher.ticks_sent - before
    assert watcher.clients_dropped == dropped + 1
    assert watcher.clients == 4  # the three readers and the silent one (its small backlog is allowed)
    for conn in readers:
        conn.close()
    silent.close()
    flooder.close()


# --- origin, client frames, ping/pong, shutdown --------------------------------------------------
@pytest.mark.gen_test(timeout=20)
async def test_wrong_origin_is_refused(http_server, base_url):
    with pytest.raises(tornado.httpclient.HTTPClientError) as refused:
        await connect(base_url, Origin="http://evil.example")
    assert refused.value.code == 403
    conn = await connect(base_url, Origin=base_url)  # the server's own origin (same host and port)
    assert (await receive(conn))["type"] == "watching"
    conn.close()


@pytest.mark.parametrize("config", [{"allowed_origins": ("https://tv.example.org",)}], indirect=True)
@pytest.mark.gen_test(timeout=20)
async def test_configured_origin_is_accepted(http_server, base_url, config):
    conn = await connect(base_url, Origin="https://tv.example.org")
    assert (await receive(conn))["type"] == "watching"
    conn.close()
    with pytest.raises(tornado.httpclient.HTTPClientError) as refused:
        await connect(base_url, Origin="https://other.example.org")
    assert refused.value.code == 403


@pytest.mark.gen_test(timeout=20)
async def test_bad_frames_are_ignored_and_ping_gets_pong(http_server, base_url):
    conn = await connect(base_url)
    await receive_type(conn, "watching")
    for frame in ("not json", "{", "[1, 2]", '"ping"', '{"type": "subscribe"}', '{"type": 5}', "", "null"):
        await conn.write_message(frame)
    await conn.write_message(b"\x00\xff binary", binary=True)
    await conn.write_message(json.dumps({"type": "ping"}))
    assert await receive_type(conn, "pong") == {"type": "pong"}
    await conn.write_message(json.dumps({"type": "ping"}))
    assert await receive_type(conn, "pong") == {"type": "pong"}
    assert conn.close_code is None
    conn.close()


@pytest.mark.gen_test(timeout=20)
async def test_an_oversized_client_message_closes_only_that_connection(http_server, base_url):
    other = await connect(base_url)
    await receive_type(other, "watching")
    conn = await connect(base_url)
    await receive_type(conn, "watching")
    await conn.write_message(json.dumps({"type": "ping", "padding": "x" * 10_000}))
    assert await receive(conn) is None
    assert conn.close_code == 1009
    await other.write_message(json.dumps({"type": "ping"}))
    assert await receive_type(other, "pong") == {"type": "pong"}
    other.close()


@pytest.mark.gen_test(timeout=20)
async def test_shutdown_closes_clients_with_1001(http_server, base_url, services):
    clients = [await connect(base_url) for _ in range(3)]
    for conn in clients:
        await receive_type(conn, "watching")
    await services.watcher.stop()
    for conn in clients:
        assert await receive(conn) is None
        assert conn.close_code == 1001
        assert conn.close_reason == "server shutting down"
    late = await connect(base_url)  # a client arriving while the server stops is turned away too
    assert await receive(late) is None
    assert late.close_code == 1001


# --- upstream failures ----------------------------------------------------------------------------
@pytest.mark.gen_test(timeout=30)
async def test_trakt_500_keeps_stale_state_and_recovers(http_server, http_client, base_url, services, fake_trakt):
    fake_trakt.watching = episode_payload(elapsed=60, total=3600)
    conn = await connect(base_url)
    await receive_type(conn, "watching", where=playing())
    fake_trakt.inject("status", times=3, status=500, path="/watching")
    stale = await receive_type(conn, "watching", where=lambda d: d.get("isWatching") and d["content"]["stale"])
    assert stale["data"]["content"]["subtitle"] == "S3E10 - Chapter 36"
    response = await http_client.fetch(base_url + "/api/watching")  # answered while Trakt fails
    assert response.code == 200
    assert json.loads(response.body)["content"]["stale"] is True
    await receive_type(conn, "tick")  # progress keeps ticking from the last known times
    recovered = await receive_type(conn, "watching", timeout=10,
                                   where=lambda d: d.get("isWatching") and not d["content"]["stale"])
    assert recovered["data"]["content"]["subtitle"] == "S3E10 - Chapter 36"
    assert services.watcher.poll_errors >= 3
    assert services.watcher.health()["status"] == "ok"
    assert services.watcher.health()["last_error"] is None
    conn.close()


@pytest.mark.gen_test(timeout=30)
async def test_trakt_down_is_reported_in_health_while_it_lasts(http_server, services, fake_trakt):
    fake_trakt.watching = movie_payload(elapsed=60, total=3600)
    await wait_until(lambda: services.watcher.is_playing, what="the movie to play")
    fake_trakt.inject("status", times=1000, status=503, path="/watching")
    await wait_until(lambda: services.watcher.health()["status"] == "upstream_down", what="upstream_down")
    health = services.watcher.health()
    assert health["upstream_ok"] is False and "503" in health["last_error"]
    assert services.watcher.state()["content"]["stale"] is True
    fake_trakt.clear_faults()
    await wait_until(lambda: services.watcher.health()["status"] == "ok", timeout=15, what="recovery")
    assert services.watcher.state()["content"]["stale"] is False


@pytest.mark.gen_test(timeout=30)
async def test_trakt_429_honours_retry_after(http_server, base_url, services, fake_trakt):
    fake_trakt.watching = movie_payload(elapsed=60, total=3600)
    conn = await connect(base_url)
    await receive_type(conn, "watching", where=playing())
    fake_trakt.inject("rate_limit", times=1, retry_after=1, path="/watching")
    await receive_type(conn, "watching", where=lambda d: d.get("isWatching") and d["content"]["stale"])
    limited_at = fake_trakt.count(WATCHING_PATH)
    await asyncio.sleep(0.3)  # three poll intervals, all well inside Retry-After
    assert fake_trakt.count(WATCHING_PATH) == limited_at
    await receive_type(conn, "watching", timeout=10, where=lambda d: d.get("isWatching") and not d["content"]["stale"])
    assert fake_trakt.count(WATCHING_PATH) > limited_at  # polling resumed by itself after Retry-After
    assert services.watcher.health()["status"] == "ok"
    conn.close()


@pytest.mark.gen_test(timeout=30)
async def test_trakt_timeouts_and_dropped_connections_recover(http_server, base_url, services, fake_trakt):
    services.watcher.poll_timeout = 0.3
    fake_trakt.watching = episode_payload(elapsed=60, total=3600)
    conn = await connect(base_url)
    await receive_type(conn, "watching", where=playing())
    fake_trakt.inject("slow", times=2, delay=1.0, path="/watching")
    fake_trakt.inject("drop", times=1, path="/watching")
    await receive_type(conn, "watching", where=lambda d: d.get("isWatching") and d["content"]["stale"])
    await receive_type(conn, "watching", timeout=15,
                       where=lambda d: d.get("isWatching") and not d["content"]["stale"])
    assert services.watcher.poll_errors >= 2
    conn.close()


@pytest.mark.gen_test(timeout=30)
async def test_stale_state_ends_at_expires_at_while_trakt_is_down(http_server, base_url, services, fake_trakt):
    # Ends in about three seconds: time to see the stale state (a busy machine may be slow to
    # poll), short enough to see it expire.
    fake_trakt.watching = episode_payload(elapsed=5, total=8)
    conn = await connect(base_url)
    await receive_type(conn, "watching", where=playing())
    fake_trakt.inject("status", times=1000, status=502, path="/watching")
    await receive_type(conn, "watching", where=lambda d: d.get("isWatching") and d["content"]["stale"])
    await receive_type(conn, "watching", timeout=10, where=idle)
    assert services.watcher.state() == {"isWatching": False}
    fake_trakt.clear_faults()
    conn.close()

"""Demo mode: with the demo account and no Trakt key the watcher plays its scripted schedule
(an episode, a pause, a movie) over the real WebSocket, with titles from the demo data."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import replace
from urllib.parse import parse_qs, urlsplit

import pytest
import tornado.websocket

from services.config import Config
from services.watching.watcher import parse_time
from tests.helpers.files import copy_demo


@pytest.fixture
def data_dir(demo_account, tmp_path):
    return copy_demo(demo_account, tmp_path / "demo")


@pytest.fixture
def config(data_dir) -> Config:
    # The poll interval stays long: demo changes are scheduled at the phase boundaries.
    return replace(Config(), data_dir=data_dir, timezone="UTC", data_check_seconds=60,
                   watching_poll_seconds=15, watching_tick_seconds=0.1,
                   demo_watching_schedule="episode:2,idle:1,movie:2")


@pytest.mark.gen_test(timeout=60)
async def test_demo_schedule_plays_episode_pause_movie_with_ticks(http_server, http_client, base_url, services,
                                                                  data_dir):
    assert not services.config.has_trakt
    conn = await tornado.websocket.websocket_connect(base_url.replace("http://", "ws://") + "/ws/watching")
    seen: dict[str, dict] = {}
    ticks_while_playing = 0
    deadline = time.monotonic() + 30
    while not ({"episode", "movie", "idle"} <= set(seen) and ticks_while_playing >= 3):
        assert time.monotonic() < deadline, f"saw only {sorted(seen)} and {ticks_while_playing} ticks"
        raw = await asyncio.wait_for(conn.read_message(), 10)
        assert raw is not None
        message = json.loads(raw)
        if message["type"] == "tick":
            assert set(message["data"]) == {"percentage", "elapsed_seconds", "remaining_seconds"}
            ticks_while_playing += 1
        elif message["data"]["isWatching"]:
            seen[message["data"]["content"]["type"]] = message["data"]["content"]
        else:
            seen["idle"] = message["data"]
    conn.close()

    episode, movie = seen["episode"], seen["movie"]
    assert services.watcher.health()["status"] == "demo"
    assert episode["subtitle"].startswith("S") and " - " in episode["subtitle"]
    assert episode["show"]["title"] == episode["title"]
    # The titles come from the demo account's own data.
    history = json.loads((data_dir / "user/history/shows.json").read_text())["data"]
    assert any(row["show"]["ids"]["trakt"] == episode["ids"]["trakt"] for row in history)
    watched = json.loads((data_dir / "user/watched/movies.json").read_text())["data"]
    assert any(row["movie"]["ids"]["trakt"] == movie["ids"]["trakt"] for row in watched)
    # Real-looking times: a whole episode / movie runtime, started part-way.
    for content in (episode, movie):
        progress = content["progress"]
        runtime = parse_time(progress["expires_at"]) - parse_time(progress["started_at"])
        assert runtime.total_seconds() >= 20 * 60
        assert 20 <= progress["percentage"] <= 40
    # Backdrops point at the local image route, only for images it can serve (never a 404).
    offered = 0
    for content, kind in ((episode, "shows"), (movie, "movies")):
        for url in content["images"].values():
            if url is None:
                continue
            offered += 1
            query = parse_qs(urlsplit(url).query)
            assert urlsplit(url).path == "/api/images"
            assert query["type"] == [kind] and query["category"] == ["backdrops"]
            response = await http_client.fetch(base_url + url, follow_redirects=False, raise_error=False)
            assert response.code == 302, url
    assert offered >= 3  # the demo account ships backdrops for (nearly) every title
    # No Trakt was involved: nothing to poll, nothing failed.
    assert services.watcher.polls == 0 and services.watcher.poll_errors == 0

"""The show data of up next and the calendar, fetched by the sync (services/trakt/shows.py)."""

from __future__ import annotations

import dataclasses

import json
from dataclasses import replace
from datetime import timedelta

import pytest

from services.config import Config
from services.data import layout
from services.data.snapshots import DataFolder
from services.trakt.client import RetryPolicy
from services.trakt.service import SyncService
from tests.fakes.trakt import FakeAccount, FakeTrakt

USER = "fakeuser"
FAST_RETRY = RetryPolicy(retries=2, base_delay=0.01, max_delay=0.02, rate_limit_retries=2, default_retry_after=0.05)


@pytest.fixture
def account() -> FakeAccount:
    return FakeAccount.build(history=60, watched_movies=5, shows=6, lists=1, list_items=2, watchlist=3)


@pytest.fixture
def fake(io_loop, account):
    server = FakeTrakt(account)
    io_loop.run_sync(server.start)
    yield server
    io_loop.run_sync(server.stop)


def config_for(url: str, tmp_path) -> Config:
    return replace(Config(), trakt_api_key="test-key", trakt_username=USER, trakt_api_url=url,
                   data_dir=tmp_path / "data", sync_interval_hours=0)


async def sync(config: Config):
    """A full mirror: the show data is fetched with every commit (an incremental check that finds
    nothing new commits nothing, and so asks for no show data either)."""
    report = await SyncService(config, DataFolder(config.data_dir), retry=FAST_RETRY,
                               request_timeout=5.0).run_once(full=True)
    assert report.outcome == "success", report.error
    return report


def show_data(config: Config) -> list:
    root = DataFolder(config.data_dir).served_root()
    return json.loads((root / layout.SHOW_SEASONS).read_text())["data"]


def show_requests(fake: FakeTrakt) -> list[str]:
    return [path for _, path, _ in fake.requests if path.startswith("/shows/")]


@pytest.mark.gen_test(timeout=30)
async def test_the_first_sync_writes_each_watched_shows_seasons_status_and_updated_at(fake, account, tmp_path):
    config = config_for(fake.url, tmp_path)
    report = await sync(config)
    rows = show_data(config)
    ids = [row["show"]["ids"]["trakt"] for row in account.watched_shows]
    assert [row["show"]["ids"]["trakt"] for row in rows] == ids
    assert sorted(show_requests(fake)) == sorted(f"/shows/{i}/seasons" for i in ids)
    assert {q["extended"] for _, p, q in fake.requests if p.startswith("/shows/")} == {"full,episodes"}
    first = rows[0]
    trakt_id = first["show"]["ids"]["trakt"]
    assert first["status"] == ("returning series" if trakt_id % 2 else "ended")
    assert first["updated_at"] == FakeTrakt.SHOW_UPDATED_AT
    assert [s["number"] for s in first["seasons"]] == [s["number"] for s in account.watched_shows[0]["seasons"]]
    episode = first["seasons"][0]["episodes"][0]
    assert set(episode) == {"season", "number", "title", "first_aired", "runtime", "ids"}  # no overview, no rating
    assert report.endpoints["shows/seasons"].requests == len(ids) == report.endpoints["shows/seasons"].items
    assert report.endpoints["shows/updated"].requests == 1
    assert report.totals()["requests"] == fake.count()


@pytest.mark.gen_test(timeout=30)
async def test_the_watchlist_movies_are_kept_with_their_release_dates(fake, account, tmp_path):
    config = config_for(fake.url, tmp_path)
    report = await sync(config)
    root = DataFolder(config.data_dir).served_root()
    movies = json.loads((root / layout.CALENDAR_MOVIES).read_text())["data"]
    watchlist = [item["movie"] for item in account.watchlist_of("movies")]
    assert [row["movie"]["ids"] for row in movies] == [m["ids"] for m in watchlist]
    first = watchlist[0]
    released = (fake.show_clock.date() + timedelta(days=first["ids"]["trakt"] % 20 - 5)).isoformat()
    assert movies[0] == {"movie": {"title": first["title"], "year": first["year"], "ids": first["ids"], "runtime": 100},
                         "released": released}
    assert [q for _, p, q in fake.requests if p == f"/users/{USER}/watchlist/movies"] == [
        {"page": "1", "limit": "250"}, {"extended": "full", "page": "1", "limit": "250"}]
    assert report.endpoints["calendar/movies"].items == len(watchlist)


@pytest.mark.gen_test(timeout=30)
async def test_a_second_sync_of_an_unchanged_account_asks_for_no_shows_seasons(fake, account, tmp_path):
    config = config_for(fake.url, tmp_path)
    await sync(config)
    before = show_data(config)
    fake.reset_counts()
    report = await sync(config)
    assert show_requests(fake) == []
    assert report.endpoints["shows/seasons"].requests == 0 and report.endpoints["shows/seasons"].items == 0
    assert show_data(config) == before

    changed = account.watched_shows[2]["show"]["ids"]["trakt"]
    fake.show_updated_at[changed] = "2026-06-02T00:00:00.000Z"  # Trakt added an episode, say
    fake.reset_counts()
    await sync(config)
    assert show_requests(fake) == [f"/shows/{changed}/seasons"]
    assert show_data(config)[2]["updated_at"] == "2026-06-02T00:00:00.000Z"


@pytest.mark.gen_test(timeout=30)
async def test_a_show_gone_from_trakt_is_left_out_with_a_warning(fake, account, tmp_path):
    gone = account.watched_shows[1]["show"]["ids"]["trakt"]
    fake.inject("status", status=404, path=f"/shows/{gone}/seasons")
    config = config_for(fake.url, tmp_path)
    report = await sync(config)
    assert gone not in [row["show"]["ids"]["trakt"] for row in show_data(config)]
    assert any(str(gone) in warning for warning in report.warnings)


@pytest.mark.gen_test(timeout=30)
async def test_a_failing_seasons_request_fails_the_sync_and_changes_nothing(fake, account, tmp_path):
    config = config_for(fake.url, tmp_path)
    await sync(config)
    served = DataFolder(config.data_dir).served_root()
    fake.show_updated_at[account.watched_shows[0]["show"]["ids"]["trakt"]] = "2026-07-01T00:00:00.000Z"
    fake.inject("status", status=500, times=10, path="/shows/")
    report = await SyncService(config, DataFolder(config.data_dir), retry=FAST_RETRY,
                               request_timeout=5.0).run_once(full=True)
    assert report.outcome == "failed" and "/shows/" in report.error
    assert DataFolder(config.data_dir).served_root() == served


@pytest.mark.gen_test(timeout=120)
async def test_show_data_requests_of_a_first_and_a_second_sync_of_the_large_account(tmp_path):
    account = FakeAccount.build(history=10_000, watched_movies=3_000, shows=600, lists=40, watchlist=300,
                                comments=120, ratings=700)
    fake = FakeTrakt(account)
    url = await fake.start()
    try:
        # 700-odd requests: more than TRAKT_RATE_LIMIT's 5 minutes allow, which this test is not about
        config = dataclasses.replace(config_for(url, tmp_path), trakt_rate_limit=5000)
        first = await sync(config)
        second = await sync(config)
    finally:
        await fake.stop()
    names = ("shows/updated", "shows/seasons", "calendar/movies")
    spent = [{name: r.endpoints[name].requests for name in names} for r in (first, second)]
    assert spent == [{"shows/updated": 3, "shows/seasons": 600, "calendar/movies": 1},
                     {"shows/updated": 3, "shows/seasons": 0, "calendar/movies": 1}]
    assert account.show_data_requests() == 604

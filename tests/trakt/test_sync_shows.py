"""The show data of up next and the calendar, fetched by the sync without a token
(services/trakt/shows.py): seasons only for the shows that need them, cached by `updated_at`,
refreshed once a day, never damaging served data."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import replace
from datetime import timedelta

import pytest

from services import times
from services.config import Config
from services.data import layout
from services.data.snapshots import DataFolder
from services.trakt import shows as shows_module
from services.trakt.client import RetryPolicy
from services.trakt.report import read_last_attempt
from services.trakt.service import SyncService
from tests.fakes.trakt import FakeAccount, FakeTrakt

USER = "fakeuser"
FAST_RETRY = RetryPolicy(retries=2, base_delay=0.01, max_delay=0.02, rate_limit_retries=2, default_retry_after=0.05)


@pytest.fixture
def account() -> FakeAccount:
    return FakeAccount.build(history=60, watched_movies=5, shows=12, lists=1, list_items=2, watchlist=3)


@pytest.fixture
def fake(io_loop, account):
    server = FakeTrakt(account)
    io_loop.run_sync(server.start)
    yield server
    io_loop.run_sync(server.stop)


def config_for(url: str, tmp_path) -> Config:
    return replace(Config(), trakt_api_key="test-key", trakt_username=USER, trakt_api_url=url,
                   data_dir=tmp_path / "data", sync_interval_hours=0)


async def sync(config: Config, *, full: bool = True):
    report = await SyncService(config, DataFolder(config.data_dir), retry=FAST_RETRY,
                               request_timeout=5.0).run_once(full=full)
    assert report.outcome == "success", report.error
    return report


def show_data(config: Config) -> list:
    root = DataFolder(config.data_dir).served_root()
    return json.loads((root / layout.SHOW_SEASONS).read_text())["data"]


def show_requests(fake: FakeTrakt) -> list[str]:
    return [path for _, path, _ in fake.requests if path.startswith("/shows/")]


def show_data_requests(fake: FakeTrakt) -> int:
    """Requests beyond the main fetch: seasons, the watched shows re-read, the watchlist's releases."""
    return len(show_requests(fake)) + sum(1 for _, path, query in fake.requests
                                          if query.get("extended") == "full" and "/watched/shows" in path
                                          or query.get("extended") == "full" and path.endswith("/watchlist/movies"))


# By construction of the fake: every third show has an aired episode not watched, odd ids are
# returning, even ids ended; every watched show has watched all its other episodes.
def in_progress(trakt_id: int) -> bool:
    return trakt_id % 3 == 0


def returning(trakt_id: int) -> bool:
    return trakt_id % 2 == 1


@pytest.mark.gen_test(timeout=30)
async def test_the_first_sync_asks_for_seasons_only_of_shows_in_progress_or_returning(fake, account, tmp_path):
    config = config_for(fake.url, tmp_path)
    report = await sync(config)
    rows = show_data(config)
    ids = [row["show"]["ids"]["trakt"] for row in account.watched_shows]
    needing = sorted(i for i in ids if in_progress(i) or returning(i))
    finished = [i for i in ids if not in_progress(i) and not returning(i)]
    assert finished and len(needing) < len(ids)
    assert [row["show"]["ids"]["trakt"] for row in rows] == ids  # every watched show keeps a row
    assert sorted(show_requests(fake)) == sorted(f"/shows/{i}/seasons" for i in needing)
    assert {q["extended"] for _, p, q in fake.requests if p.startswith("/shows/")} == {"full,episodes"}
    # the main fetch's watched shows (progress,full) are used: they are never read again
    assert [q.get("extended") for _, p, q in fake.requests if p.endswith("/watched/shows")] == ["progress,full"]

    by_id = {row["show"]["ids"]["trakt"]: row for row in rows}
    done = by_id[finished[0]]
    assert done["seasons"] is None and done["status"] == "ended"
    assert done["aired_episodes"] == sum(len(s["episodes"]) for s in account.watched_shows[ids.index(finished[0])]["seasons"])
    first = by_id[needing[0]]
    assert first["updated_at"] == FakeTrakt.SHOW_UPDATED_AT
    episode = first["seasons"][0]["episodes"][0]
    assert set(episode) == {"season", "number", "title", "first_aired", "runtime", "ids"}  # no overview, no rating

    assert report.endpoints["shows/seasons"].requests == len(needing) == report.endpoints["shows/seasons"].items
    assert "shows/updated" not in report.endpoints
    assert report.show_data["requests"] == len(needing) + 1  # and the watchlist's releases
    assert report.show_data["reasons"] == {
        "aired episodes not watched": sum(map(in_progress, ids)),
        "watched to the end, ended": len(finished),
        "watched to the end, returning": sum(1 for i in ids if returning(i) and not in_progress(i))}
    assert report.totals()["requests"] == fake.count()
    assert account.show_data_requests() == show_data_requests(fake)
    on_disk = read_last_attempt(DataFolder(config.data_dir))["show_data"]  # the report as saved
    assert on_disk["reasons"] == report.show_data["reasons"] and on_disk["requests"] == len(needing) + 1


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
async def test_a_second_full_sync_of_unchanged_shows_asks_for_no_seasons(fake, account, tmp_path):
    config = config_for(fake.url, tmp_path)
    await sync(config)
    before = show_data(config)
    fake.reset_counts()
    report = await sync(config)
    assert show_requests(fake) == []
    assert report.endpoints["shows/seasons"].requests == 0 and report.endpoints["shows/seasons"].items == 0
    assert show_data(config) == before

    changed = next(r["show"]["ids"]["trakt"] for r in account.watched_shows if in_progress(r["show"]["ids"]["trakt"]))
    finished = next(r["show"]["ids"]["trakt"] for r in account.watched_shows
                    if not in_progress(r["show"]["ids"]["trakt"]) and not returning(r["show"]["ids"]["trakt"]))
    fake.show_updated_at[changed] = fake.show_updated_at[finished] = "2026-06-02T00:00:00.000Z"
    fake.reset_counts()
    await sync(config)
    assert show_requests(fake) == [f"/shows/{changed}/seasons"]  # a finished show needs none, moved or not
    rows = {row["show"]["ids"]["trakt"]: row for row in show_data(config)}
    assert rows[changed]["updated_at"] == "2026-06-02T00:00:00.000Z"


@pytest.mark.gen_test(timeout=30)
async def test_an_unchanged_check_spends_nothing_and_a_day_later_the_show_data_is_refreshed(
        fake, account, tmp_path, monkeypatch):
    config = config_for(fake.url, tmp_path)
    await sync(config)
    folder = DataFolder(config.data_dir)
    served = folder.served_root()
    fake.reset_counts()
    report = await sync(config, full=False)
    assert report.mode == "incremental" and not report.committed
    assert show_data_requests(fake) == 0 and report.show_data["requests"] == 0
    assert folder.served_root() == served

    # A new episode is announced: Trakt moves the show's updated_at, the watched plays stay the same.
    moved = next(r for r in account.watched_shows if returning(r["show"]["ids"]["trakt"]))
    moved_id = moved["show"]["ids"]["trakt"]
    fake.show_updated_at[moved_id] = "2026-06-05T00:00:00.000Z"
    fake.reset_counts()
    assert (await sync(config, full=False)).committed is False  # not due yet: still nothing spent
    assert show_data_requests(fake) == 0

    later = times.now() + timedelta(hours=shows_module.SHOW_REFRESH_HOURS, minutes=1)
    monkeypatch.setattr(times, "now", lambda: later)
    fake.reset_counts()
    report = await sync(config, full=False)
    assert report.committed and report.mode == "incremental"
    # the watched shows once with extended=full (250 a page), the moved show's seasons, the releases
    assert [q.get("extended") for _, p, q in fake.requests if p.endswith("/watched/shows")] == ["full"]
    assert show_requests(fake) == [f"/shows/{moved_id}/seasons"]
    assert report.show_data["requests"] == 3 and report.show_data["why"].startswith("refresh due")
    assert {r["show"]["ids"]["trakt"]: r for r in show_data(config)}[moved_id]["updated_at"] == "2026-06-05T00:00:00.000Z"
    root = folder.served_root()
    assert root != served
    for file in (layout.HISTORY["movies"], layout.WATCHED["shows"]):  # everything else carried over
        assert (root / file).read_bytes() == (served / file).read_bytes()

    fake.reset_counts()
    report = await sync(config, full=False)
    assert not report.committed and show_data_requests(fake) == 0  # refreshed: not due again for a day


@pytest.mark.gen_test(timeout=30)
async def test_a_failed_refresh_fails_the_check_and_changes_nothing_served(fake, account, tmp_path, monkeypatch):
    config = config_for(fake.url, tmp_path)
    await sync(config)
    folder = DataFolder(config.data_dir)
    served = folder.served_root()
    before = {p: p.read_bytes() for p in sorted(served.rglob("*")) if p.is_file()}
    fake.show_updated_at[account.watched_shows[0]["show"]["ids"]["trakt"]] = "2026-07-01T00:00:00.000Z"
    fake.show_updated_at[account.watched_shows[2]["show"]["ids"]["trakt"]] = "2026-07-01T00:00:00.000Z"
    later = times.now() + timedelta(hours=shows_module.SHOW_REFRESH_HOURS + 1)
    monkeypatch.setattr(times, "now", lambda: later)
    fake.inject("status", status=500, times=10, path="/shows/")
    report = await SyncService(config, folder, retry=FAST_RETRY, request_timeout=5.0).run_once()
    assert report.outcome == "failed" and "/shows/" in report.error
    assert folder.served_root() == served
    assert {p: p.read_bytes() for p in sorted(served.rglob("*")) if p.is_file()} == before


@pytest.mark.gen_test(timeout=30)
async def test_a_show_gone_from_trakt_is_left_out_with_a_warning(fake, account, tmp_path):
    gone = next(r["show"]["ids"]["trakt"] for r in account.watched_shows if in_progress(r["show"]["ids"]["trakt"]))
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
    fake.show_updated_at[account.watched_shows[2]["show"]["ids"]["trakt"]] = "2026-07-01T00:00:00.000Z"
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
        # 500-odd requests: more than TRAKT_RATE_LIMIT's 5 minutes allow, which this test is not about
        config = dataclasses.replace(config_for(url, tmp_path), trakt_rate_limit=5000)
        first = await sync(config)
        second = await sync(config)
    finally:
        await fake.stop()
    ids = [row["show"]["ids"]["trakt"] for row in account.watched_shows]
    needing = sum(1 for i in ids if in_progress(i) or returning(i))
    assert needing == 400  # of 600: a third of them ended and watched to the end
    spent = [{name: r.endpoints[name].requests for name in ("shows/seasons", "calendar/movies")} for r in (first, second)]
    assert spent == [{"shows/seasons": 400, "calendar/movies": 1}, {"shows/seasons": 0, "calendar/movies": 1}]
    assert "shows/updated" not in first.endpoints and "shows/updated" not in second.endpoints
    assert account.show_data_requests() == 401  # was 604: 3 watched pages re-read, 600 seasons, 1


@pytest.mark.gen_test(timeout=30)
async def test_a_new_play_reuses_every_shows_seasons_and_the_releases(fake, account, tmp_path):
    config = config_for(fake.url, tmp_path)
    await sync(config)
    before = show_data(config)
    fake.add_play("episode", index=0)
    fake.reset_counts()
    report = await sync(config, full=False)
    assert report.committed and "watched" in report.changed
    assert show_data_requests(fake) == 0 and report.show_data["requests"] == 0
    assert report.show_data["why"] == "the watched shows were fetched"
    assert show_data(config) == before  # the same shows, the same seasons


@pytest.mark.gen_test(timeout=30)
async def test_calendar_only_seasons_wait_for_the_next_check_when_the_budget_window_is_spent(tmp_path):
    account = FakeAccount.build(history=60, watched_movies=5, shows=60, lists=1, list_items=2, watchlist=3)
    fake = FakeTrakt(account)
    url = await fake.start()
    try:
        limit, reserve = 60, 20  # TRAKT_RATE_LIMIT, and the 20 requests (at least) kept free
        config = dataclasses.replace(config_for(url, tmp_path), trakt_rate_limit=limit)
        ids = [row["show"]["ids"]["trakt"] for row in account.watched_shows]
        caught_up = {i for i in ids if returning(i) and not in_progress(i)}
        report = await sync(config)
        assert fake.count() == limit - reserve  # the first sync stays inside one budget window
        left = account.minimum_requests() - (limit - reserve)
        assert 0 < left < len(caught_up) and report.show_data["left_for_later"] == left
        pending = {row["show"]["ids"]["trakt"] for row in show_data(config) if row.get("pending")}
        assert len(pending) == left and pending <= caught_up
        assert all(row["seasons"] is None for row in show_data(config) if row.get("pending"))
        asked = {int(p.split("/")[2]) for p in show_requests(fake)}
        assert {i for i in ids if in_progress(i)} <= asked  # up next's shows never wait

        fake.reset_counts()
        report = await sync(config, full=False)  # the next check, in a new window: the rest
        assert report.committed and sorted(show_requests(fake)) == sorted(f"/shows/{i}/seasons" for i in pending)
        assert not [row for row in show_data(config) if row.get("pending")]
        assert report.show_data["left_for_later"] == 0

        fake.reset_counts()
        report = await sync(config, full=False)
        assert not report.committed and show_requests(fake) == []
    finally:
        await fake.stop()

"""The incremental sync against the fake Trakt (README "Sync", Incremental): after any change its
served answers equal a full sync's, an unchanged check costs at most 2 requests signed in and 4
without, new history comes through `start_at` and is merged by history id, a failed check changes
nothing, and `sync --full` re-mirrors everything."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import time
from dataclasses import replace
from pathlib import Path

import pytest

from services import resources
from services.config import Config
from services.data import layout
from services.data.snapshots import DataFolder
from services.data.store import DataStore
from services.trakt.cli import run_sync_command
from services.trakt.client import RetryPolicy
from services.trakt.incremental import STATE_FILE
from services.trakt.report import read_last_attempt
from services.trakt.service import SyncService
from tests.fakes.trakt import FakeAccount, FakeTrakt

USER = "fakeuser"
FAST_RETRY = RetryPolicy(retries=1, base_delay=0.01, max_delay=0.02, rate_limit_retries=1,
                         default_retry_after=0.05)


@pytest.fixture
def account() -> FakeAccount:
    return FakeAccount.build(history=45, watched_movies=12, shows=3, lists=3, list_items=4, watchlist=8,
                             comments=3, ratings=9)


@pytest.fixture
def fake(io_loop, account):
    server = FakeTrakt(account)
    io_loop.run_sync(server.start)
    yield server
    io_loop.run_sync(server.stop)


@pytest.fixture
def config(fake, tmp_path) -> Config:
    return replace(Config(), trakt_api_key="test-key", trakt_username=USER, trakt_api_url=fake.url,
                   data_dir=tmp_path / "incremental", sync_interval_hours=0, sync_check_minutes=0,
                   timezone="UTC")


@pytest.fixture(params=["signed_in", "public"])
def signed_in(request) -> bool:
    return request.param == "signed_in"


def service(config: Config, signed_in: bool, **kwargs) -> SyncService:
    return SyncService(config, DataFolder(config.data_dir), retry=FAST_RETRY, request_timeout=5.0,
                       signed_in=lambda: signed_in, **kwargs)


async def served_answers(config: Config) -> dict[str, tuple[bytes, str]]:
    """Every file the server answers with: the bytes it writes, `last_updated` included, and the ETag."""
    store = DataStore(config, DataFolder(config.data_dir), resources.demo_data_dir())
    assert await store.reload()

    def sent(body) -> tuple[bytes, str]:
        return b"".join(body.chunks), body.etag

    answers = {layout.INDEX: sent(store.index())}
    for endpoint in json.loads(answers[layout.INDEX][0])["data"]["files"]:
        if endpoint != layout.INDEX:
            answers[endpoint] = sent(store.file(endpoint))
    answers["history both"] = sent(store.both(layout.HISTORY))
    return answers


async def full_answers(config: Config, tmp_path: Path, name: str, signed_in: bool = False) -> dict[str, tuple]:
    """What a full re-mirror (`sync --full`) of the fake's current state serves when it runs on
    the same data folder (a copy of it, so the incremental sequence goes on undisturbed)."""
    copy = tmp_path / f"full-{name}"
    shutil.copytree(config.data_dir, copy, symlinks=True)
    fresh = replace(config, data_dir=copy)
    report = await service(fresh, signed_in).run_once(full=True)
    assert report.outcome == "success" and report.mode == "full", report.error
    return await served_answers(fresh)


def served_state(config: Config) -> dict[str, str]:
    folder = DataFolder(config.data_dir)
    root = folder.served_root()
    state = {"<current>": os.readlink(folder.current_link)}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            state[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return state


def a_movie(account: FakeAccount, n: int) -> dict:
    """A catalogue movie (from a list item, so it is a real one of the account's shapes)."""
    return account.watchlist_of("movies")[n]["movie"]


# --- equal to a full sync ---------------------------------------------------------------------
CHANGES = {
    "a new movie play": lambda fake: fake.add_play("movie", index=2),
    "a new episode play": lambda fake: fake.add_play("episode", index=1),
    "a removed play": lambda fake: fake.remove_play(fake.account.history_movies[5]["id"]),
    "a back-dated play": lambda fake: fake.add_play("movie", index=3, watched_at="2020-05-05T10:00:00.000Z"),
    "a rating": lambda fake: fake.rate(fake.account.watched_movies[0]["movie"], 10),
    "a watchlist item": lambda fake: fake.add_to_watchlist(fake.account.watched_movies[1]["movie"]),
    "a list item": lambda fake: fake.add_list_item(1, fake.account.watched_movies[2]["movie"]),
}


@pytest.mark.gen_test(timeout=60)
async def test_incremental_serves_what_a_full_sync_serves_after_each_kind_of_change(fake, config, signed_in,
                                                                                      tmp_path):
    sync = service(config, signed_in)
    assert (await sync.run_once()).mode == "full"
    for name, change in CHANGES.items():
        change(fake)
        report = await sync.run_once()
        assert report.outcome == "success", (name, report.error)
        assert report.mode == "incremental", name
        assert report.committed, name
        full = await full_answers(config, tmp_path, name.replace(" ", "-"), signed_in)
        assert await served_answers(config) == full, name


@pytest.mark.gen_test(timeout=60)
async def test_several_changes_between_two_checks_still_equal_a_full_sync(fake, config, signed_in, tmp_path):
    sync = service(config, signed_in)
    await sync.run_once()
    for change in CHANGES.values():
        change(fake)
    report = await sync.run_once()
    assert report.outcome == "success" and report.mode == "incremental"
    assert set(report.changed) == {"history", "watched", "stats", "ratings", "watchlist", "lists"}
    assert await served_answers(config) == await full_answers(config, tmp_path, "all", signed_in)


@pytest.mark.gen_test(timeout=60)
async def test_last_updated_is_when_a_file_last_changed_and_a_full_re_mirror_of_nothing_new_keeps_every_byte(
        fake, config, signed_in, tmp_path):
    sync = service(config, signed_in)
    await sync.run_once()
    first = await served_answers(config)
    first_stamp = json.loads(first[layout.INDEX][0])["metadata"]["last_updated"]
    time.sleep(0.01)  # the next commit's time differs from the first's
    fake.add_play("movie", index=2)
    report = await sync.run_once()
    second = await served_answers(config)
    stamp_of = {name: json.loads(body)["metadata"]["last_updated"] for name, (body, _) in second.items()
                if name != "history both"}
    assert stamp_of[layout.INDEX] == report.last_updated != first_stamp
    assert stamp_of[layout.HISTORY["movies"]] == report.last_updated
    for endpoint in (layout.RATINGS, layout.COMMENTS, layout.WATCHLIST["all"], layout.HISTORY["shows"]):
        assert stamp_of[endpoint] == first_stamp, endpoint  # unchanged: the first sync's time, its bytes
        assert second[endpoint] == first[endpoint], endpoint
    # A full re-mirror that finds nothing new commits a snapshot that serves the very same bytes.
    report = await sync.run_once(full=True)
    assert report.committed and report.mode == "full" and report.changed == []
    assert report.last_updated == stamp_of[layout.INDEX]
    assert await served_answers(config) == second


@pytest.mark.gen_test(timeout=30)
async def test_the_report_says_per_collection_what_was_fetched_and_why(fake, config):
    sync = service(config, True)
    await sync.run_once()
    fake.add_play("movie", index=0)
    report = await sync.run_once()
    collections = report.collections
    assert collections["ratings"].startswith("unchanged since 2026-01-01T00:00:00.000Z")
    assert "history/movies: moved: movies.watched_at 2026-01-01T00:00:00.000Z → " in collections["history"]
    assert "1 new play(s) since" in collections["history"]
    assert "history/shows: unchanged since" in collections["history"]
    assert collections["stats"].startswith("fetched whole: moved: all ")
    stored = read_last_attempt(DataFolder(config.data_dir))
    assert stored["mode"] == "incremental" and stored["collections"] == collections
    assert stored["changed"] == ["stats", "history", "watched"]


@pytest.mark.gen_test(timeout=30)
async def test_a_removed_play_is_fetched_whole_and_the_report_says_why(fake, config, signed_in):
    sync = service(config, signed_in)
    await sync.run_once()
    fake.remove_play(fake.account.history_shows[3]["id"])
    report = await sync.run_once()
    assert "history/shows: fetched whole:" in report.collections["history"]
    assert "a removed or back-dated play" in report.collections["history"]
    served = json.loads((DataFolder(config.data_dir).served_root() / layout.HISTORY["shows"]).read_text())
    assert [row["id"] for row in served["data"]] == [row["id"] for row in fake.account.history_shows]


# --- costs ------------------------------------------------------------------------------------
@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("signed, most", [(True, 2), (False, 4)])
async def test_an_unchanged_check_costs_at_most_2_requests_signed_in_and_4_without(fake, config, signed, most):
    sync = service(config, signed)
    await sync.run_once()
    before = served_state(config)
    fake.reset_counts()
    report = await sync.run_once()
    assert report.outcome == "success" and report.mode == "incremental"
    assert not report.committed and report.changed == []
    assert len(fake.requests) <= most, fake.requests
    assert report.totals()["requests"] == len(fake.requests)
    assert served_state(config) == before  # no new snapshot: the served files are untouched
    for text in report.collections.values():
        assert "unchanged since" in text and "moved" not in text and "fetched" not in text, report.collections


@pytest.mark.gen_test(timeout=60)
async def test_a_watchlist_longer_than_a_page_is_checked_with_one_request_and_a_removal_is_seen(
        fake, config, tmp_path):
    big = FakeAccount.build(history=20, watched_movies=5, shows=2, lists=1, watchlist=260)
    fake.account = big
    sync = service(config, False)
    await sync.run_once()
    fake.reset_counts()
    report = await sync.run_once()
    assert not report.committed and len(fake.requests) <= 4, fake.requests
    assert [query for _, path, query in fake.requests if path.endswith("/watchlist")] == [{"page": "2", "limit": "250"}]
    fake.remove_from_watchlist(3)  # on the first page: every later rank moves up one
    report = await sync.run_once()
    assert report.collections["watchlist"] == "; ".join(f"watchlist/{kind}: fetched whole: the watchlist changed"
                                                        for kind in ("movies", "shows", "all"))
    assert await served_answers(config) == await full_answers(config, tmp_path, "big")


@pytest.mark.gen_test(timeout=30)
async def test_a_signed_in_unchanged_check_asks_only_last_activities(fake, config):
    sync = service(config, True)
    await sync.run_once()
    fake.reset_counts()
    await sync.run_once()
    assert [path for _, path, _ in fake.requests] == ["/sync/last_activities"]


@pytest.mark.gen_test(timeout=30)
async def test_unchanged_files_are_hard_links_into_the_previous_snapshot(fake, config, signed_in):
    sync = service(config, signed_in)
    await sync.run_once()
    first = DataFolder(config.data_dir).served_root()
    fake.add_play("movie", index=0)
    await sync.run_once()
    second = DataFolder(config.data_dir).served_root()
    assert first != second
    for endpoint in (layout.COMMENTS, layout.RATINGS, layout.WATCHLIST["all"], layout.PROFILE):
        assert os.stat(first / endpoint).st_ino == os.stat(second / endpoint).st_ino, endpoint
    assert (first / layout.HISTORY["movies"]).read_bytes() != (second / layout.HISTORY["movies"]).read_bytes()
    # the incremental state is in the snapshot, beside the report, and is not one of the served files
    index = json.loads((second / layout.INDEX).read_text())
    assert (second / STATE_FILE).is_file() and STATE_FILE not in index["data"]["files"]


# --- history through start_at -------------------------------------------------------------------
@pytest.mark.gen_test(timeout=30)
async def test_new_plays_come_through_start_at_with_an_overlap_and_each_history_id_once(fake, config):
    fake.add_play("movie", index=0)
    fake.add_play("movie", index=1)  # both within the overlap of the next check
    sync = service(config, True)
    await sync.run_once()
    newest = fake.account.history_movies[0]["watched_at"]
    fake.add_play("movie", index=2)
    fake.reset_counts()
    report = await sync.run_once()
    windows = [query for _, path, query in fake.requests if path.endswith("/history/movies") and "start_at" in query]
    assert len(windows) == 1
    assert windows[0]["start_at"] < newest  # from the newest mirrored play, minus the overlap
    assert "3 plays on Trakt" not in report.collections["history"]
    served = json.loads((DataFolder(config.data_dir).served_root() / layout.HISTORY["movies"]).read_text())["data"]
    ids = [row["id"] for row in served]
    assert len(ids) == len(set(ids))
    assert ids == [row["id"] for row in fake.account.history_movies]
    assert "1 new play(s) since" in report.collections["history"]


@pytest.mark.gen_test(timeout=30)
async def test_the_fake_history_honours_start_at_and_end_at(fake, config):
    from services.trakt.client import TraktClient

    rows = fake.account.history_movies
    start, end = rows[8]["watched_at"], rows[3]["watched_at"]
    async with TraktClient(config) as client:
        result = await client.get_all_pages(f"/users/{USER}/history/movies", {"start_at": start, "end_at": end})
    assert [row["id"] for row in result.items] == [row["id"] for row in rows[3:9]]


# --- failures, the full re-mirror ------------------------------------------------------------------
@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("signed, path", [(True, "/sync/last_activities"), (True, "/history/movies"),
                                          (False, "/stats"), (False, "/history")])
async def test_a_failed_check_changes_nothing_served(fake, config, signed, path):
    sync = service(config, signed)
    await sync.run_once()
    before = served_state(config)
    fake.add_play("movie", index=0)
    fake.inject("status", status=503, times=10, path=path)
    report = await sync.run_once()
    assert report.outcome == "failed" and "the served data is unchanged" in report.error
    assert served_state(config) == before
    fake.clear_faults()
    report = await sync.run_once()
    assert report.outcome == "success" and "history" in report.changed


@pytest.mark.gen_test(timeout=30)
async def test_sync_full_re_mirrors_everything_and_says_so(fake, config):
    out = io.StringIO()
    assert await run_sync_command(config, images=False, stdout=out, retry=FAST_RETRY) == 0
    fake.reset_counts()
    assert await run_sync_command(config, images=False, stdout=out, retry=FAST_RETRY, full=True) == 0
    # every collection again; only up next's seasons of unchanged shows are reused (one per show)
    assert len(fake.requests) >= fake.account.minimum_requests() - len(fake.account.watched_shows)
    report = read_last_attempt(DataFolder(config.data_dir))
    assert report["mode"] == "full"
    assert set(report["collections"].values()) == {"fetched whole: a full re-mirror was asked for (--full)"}
    fake.reset_counts()
    assert await run_sync_command(config, images=False, stdout=out, retry=FAST_RETRY) == 0
    assert len(fake.requests) <= 4
    assert "sync check: nothing changed, no new snapshot" in out.getvalue()


@pytest.mark.gen_test(timeout=30)
async def test_the_full_re_mirror_comes_back_after_sync_full_interval_hours(fake, config):
    config = replace(config, sync_full_interval_hours=0.0002)  # 0.72 s
    sync = service(config, True)
    await sync.run_once()
    assert (await sync.run_once()).mode == "incremental"
    time.sleep(0.8)
    report = await sync.run_once()
    assert report.mode == "full"
    assert "SYNC_FULL_INTERVAL_HOURS=0.0002" in report.collections["history"]


@pytest.mark.gen_test(timeout=30)
async def test_signing_in_after_a_public_sync_starts_with_a_full_mirror(fake, config):
    await service(config, False).run_once()
    report = await service(config, True).run_once()
    assert report.mode == "full"
    assert report.collections["stats"] == "fetched whole: signed in since the last snapshot"


@pytest.mark.gen_test(timeout=30)
async def test_last_activities_moves_with_each_kind_of_change(fake):
    before = fake.last_activities()
    fake.add_play("movie")
    fake.add_play("episode")
    fake.rate(fake.account.watched_movies[0]["movie"], 3)
    fake.add_to_watchlist(fake.account.watched_movies[0]["movie"])
    fake.add_list_item(0, fake.account.watched_movies[0]["movie"])
    after = fake.last_activities()
    for area, key in (("movies", "watched_at"), ("episodes", "watched_at"), ("movies", "rated_at"),
                      ("movies", "watchlisted_at"), ("watchlist", "updated_at"), ("lists", "updated_at")):
        assert after[area][key] > before[area][key], (area, key)
    assert after["shows"] == before["shows"] and after["account"] == before["account"]
    assert after["all"] == max(v for area in after.values() if isinstance(area, dict) for v in area.values())
    moved = fake.last_activities()["movies"]["watched_at"]
    fake.remove_play(fake.account.history_movies[0]["id"])
    assert fake.last_activities()["movies"]["watched_at"] > moved


@pytest.mark.gen_test(timeout=30)
async def test_an_account_without_plays_is_checked_cheaply_and_its_first_play_arrives(fake, config, signed_in,
                                                                                        tmp_path):
    fake.account = FakeAccount.build(history=0, watched_movies=3, shows=1, lists=1, watchlist=2)
    sync = service(config, signed_in)
    await sync.run_once()
    fake.reset_counts()
    assert not (await sync.run_once()).committed
    assert len(fake.requests) <= (2 if signed_in else 4)
    fake.add_play("movie", index=0)
    report = await sync.run_once()
    assert "history" in report.changed
    assert await served_answers(config) == await full_answers(config, tmp_path, "first", signed_in)


@pytest.mark.gen_test(timeout=30)
async def test_every_request_of_a_check_goes_through_the_shared_budget(fake, config, signed_in):
    from services.trakt.client import RequestBudget

    budget = RequestBudget(1000)
    sync = service(config, signed_in, budget=budget)
    await sync.run_once()
    fake.add_play("movie", index=0)
    fake.reset_counts()
    used = budget.used()
    report = await sync.run_once()
    assert report.committed
    assert budget.used() - used == len(fake.requests) == report.totals()["requests"]


# --- what one new play costs (README "Incremental sync and freshness", python -m bench) ------------
@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("signed", [True, False])
async def test_one_new_play_costs_what_the_readme_says_on_the_bench_account(tmp_path, signed):
    """10 requests signed in and 12 without, on the bench's 10,000-play account with 600 shows: the
    check itself (signed in: last_activities and the stats; without: the stats, the watchlist's last
    page, the lists, the history since the newest play), the first page of the new play's history
    (signed in also its window since the newest play), the watched shows again (100 a page with
    extended=progress) and, without a token, the profile."""
    account = FakeAccount.build(history=10_000, watched_movies=3_000, shows=600, lists=40, watchlist=300,
                                comments=120, ratings=700)
    fake = FakeTrakt(account)
    await fake.start()
    try:
        config = replace(Config(), trakt_api_key="test-key", trakt_username=USER, trakt_api_url=fake.url,
                         data_dir=tmp_path / "bench-account", sync_interval_hours=0, sync_check_minutes=0,
                         trakt_rate_limit=100_000, timezone="UTC")
        sync = service(config, signed)
        await sync.run_once(full=True)
        fake.add_play("episode", index=0)
        fake.reset_counts()
        report = await sync.run_once()
    finally:
        await fake.stop()
    assert report.outcome == "success" and report.committed
    watched_show_pages = 600 // 100
    expected = (2 + 1 + 1 + watched_show_pages) if signed else (4 + 1 + watched_show_pages + 1)
    assert expected == (10 if signed else 12)
    assert fake.count() == expected, [path for _, path, _ in fake.requests]

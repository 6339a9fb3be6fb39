"""The sync against the fake Trakt: completeness, request counts, faults, atomicity, reports, schedule."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import logging
import math
import os
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest

from services.data import layout
from services.config import Config
from services.data.snapshots import DataFolder
from services.trakt import fetch as sync_fetch
from services.trakt import schedule
from services.trakt.cli import run_sync_command
from services.trakt.lock import ProcessLock
from services.trakt.service import SyncAlreadyRunning, SyncService
from services.trakt.report import HISTORY_LENGTH, SyncReport, read_history, read_last_attempt, read_sync_status
from services.redact import REDACTED
from services.trakt.client import RetryPolicy
from tests.fakes.trakt import FakeAccount, FakeTrakt, at_level

USER = "fakeuser"
# README "Sync": what every snapshot mirrors, one report entry each (list items come on top).
FIXED_NAMES = ("profile", "stats", "history/movies", "history/shows", "watched/movies", "watched/shows",
               "watchlist/movies", "watchlist/shows", "watchlist/all", "lists", "comments", "ratings")
LONG_KEY = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"  # 64 characters, like a real client id
FAST_RETRY = RetryPolicy(retries=2, base_delay=0.01, max_delay=0.02, rate_limit_retries=2,
                         default_retry_after=0.05)


# --- fixtures and helpers ------------------------------------------------------------------------
@pytest.fixture
def account() -> FakeAccount:
    return FakeAccount.build(history=90, watched_movies=25, shows=5, lists=3, list_items=4, watchlist=9)


@pytest.fixture
def fake(io_loop, account):
    server = FakeTrakt(account)
    io_loop.run_sync(server.start)
    yield server
    io_loop.run_sync(server.stop)


@pytest.fixture
def sync_config(fake, tmp_path) -> Config:
    return replace(Config(), trakt_api_key="test-key", trakt_username=USER, trakt_api_url=fake.url,
                   data_dir=tmp_path / "data", sync_interval_hours=0)


def make_service(config: Config, **kwargs) -> SyncService:
    kwargs.setdefault("retry", FAST_RETRY)
    kwargs.setdefault("request_timeout", 5.0)
    return SyncService(config, DataFolder(config.data_dir), **kwargs)


def read_json(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))


def served_state(config: Config) -> dict[str, str]:
    """Every served file's hash plus where `current` points: equal means byte-for-byte unchanged."""
    folder = DataFolder(config.data_dir)
    root = folder.served_root()
    if root is None:
        return {}
    state = {"<current>": os.readlink(folder.current_link) if folder.current_link.is_symlink() else ""}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            state[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return state


def partials(config: Config) -> list[str]:
    snapshots = Path(config.data_dir) / "snapshots"
    return [p.name for p in snapshots.iterdir() if p.name.startswith(".")] if snapshots.is_dir() else []


def expected_files(account: FakeAccount) -> dict[str, list | dict]:
    files = {
        layout.PROFILE: account.profile,
        layout.STATS: account.stats,
        layout.HISTORY["movies"]: account.history_movies,
        layout.HISTORY["shows"]: account.history_shows,
        layout.WATCHED["movies"]: at_level(account.watched_movies, "movie", {"full"}),
        layout.WATCHED["shows"]: at_level(account.watched_shows, "show", {"full"}),
        layout.WATCHLIST["movies"]: account.watchlist_of("movies"),
        layout.WATCHLIST["shows"]: account.watchlist_of("shows"),
        layout.WATCHLIST["all"]: account.watchlist_of("all"),
        layout.LISTS: account.lists,
        layout.COMMENTS: account.comments,
        layout.RATINGS: account.ratings,
    }
    for lst in account.lists:
        files[layout.list_items_endpoint(lst["ids"]["slug"])] = account.list_items[lst["ids"]["trakt"]]
    return files


def assert_mirrors(config: Config, account: FakeAccount) -> Path:
    root = DataFolder(config.data_dir).served_root()
    assert root is not None and root.parent.name == "snapshots"
    expected = expected_files(account)
    for endpoint, data in expected.items():
        document = read_json(root / endpoint)
        assert document["data"] == data, endpoint
        assert document["metadata"]["count"] == layout.item_count(data)
        assert document["metadata"]["endpoint"] == endpoint
        assert document["metadata"]["source"] == layout.SOURCE_TRAKT
        assert document["metadata"]["username"] == USER
    index = read_json(root / layout.INDEX)["data"]
    show_data = {layout.SHOW_SEASONS: len(account.watched_shows),  # up next: services/trakt/shows.py
                 layout.CALENDAR_MOVIES: len(account.watchlist_of("movies"))}
    assert index["files"] == {**{endpoint: layout.item_count(data) for endpoint, data in expected.items()}, **show_data}
    on_disk = {str(p.relative_to(root)) for p in (root / "user").rglob("*.json")}
    assert on_disk == set(expected) | set(show_data)
    return root


# --- completeness ------------------------------------------------------------------------------
PAGE = 250  # README "Sync": every call asks for limit=250
PROGRESS_PAGE = 100  # Trakt since mid-2026: extended=progress caps a page of watched shows at 100


def pages(rows: int, size: int) -> int:
    """Requests for one endpoint: one per page, at least one."""
    return max(1, math.ceil(rows / size))


# + the show data of up next: the seasons of the 400 shows in progress or returning (every third show has
# an aired episode left, odd ids are returning; the other 200 ended and were watched to the end) and the
# watchlist movies with extended=full (1 page); the main fetch's watched shows are not read again
@pytest.mark.parametrize("variant, expected_total", [("2026", 110 + 400 + 1), ("legacy", 94 + 400 + 1)])
@pytest.mark.gen_test(timeout=60)
async def test_large_account_is_mirrored_completely_in_the_minimum_number_of_requests(
        tmp_path, variant, expected_total):
    account = FakeAccount.build(history=10_000, watched_movies=3_000, shows=600, lists=40, watchlist=300,
                                comments=120, ratings=700)
    fake = FakeTrakt(account)
    fake.watched_variant = variant  # 2026: watched lists paginated; legacy: each sent whole, no headers
    url = await fake.start()
    try:
        # ~700 requests: more than TRAKT_RATE_LIMIT allows in 5 minutes, which this test is not about
        config = replace(Config(), trakt_api_key="test-key", trakt_username=USER, trakt_api_url=url,
                         data_dir=tmp_path / "data", sync_interval_hours=0, trakt_rate_limit=5000)
        report = await make_service(config).run_once(full=True)
    finally:
        await fake.stop()
    assert report.outcome == "success", report.error
    assert_mirrors(config, account)  # watched shows with their seasons, in both variants
    sizes = {"history/movies": len(account.history_movies), "history/shows": len(account.history_shows),
             "watched/movies": len(account.watched_movies), "watched/shows": len(account.watched_shows),
             "watchlist/movies": sum(1 for item in account.watchlist if item["type"] == "movie"),
             "watchlist/shows": sum(1 for item in account.watchlist if item["type"] == "show"),
             "watchlist/all": len(account.watchlist), "lists": len(account.lists),
             "comments": len(account.comments), "ratings": len(account.ratings)}
    assert sizes == {"history/movies": 3333, "history/shows": 6667, "watched/movies": 3000, "watched/shows": 600,
                     "watchlist/movies": 200, "watchlist/shows": 100, "watchlist/all": 300, "lists": 40,
                     "comments": 120, "ratings": 700}
    expected = {name: pages(rows, PAGE) for name, rows in sizes.items()}
    if variant == "2026":
        expected["watched/shows"] = pages(sizes["watched/shows"], PROGRESS_PAGE)
    else:
        expected["watched/movies"] = expected["watched/shows"] = 1
    needing = sum(1 for row in account.watched_shows if row["show"]["ids"]["trakt"] % 3 == 0
                  or row["show"]["ids"]["trakt"] % 2 == 1)
    expected.update({"profile": 1, "stats": 1, "shows/seasons": needing, "calendar/movies": 1})
    expected.update({f"lists/{lst['ids']['slug']}": pages(len(account.list_items[lst["ids"]["trakt"]]), PAGE)
                     for lst in account.lists})
    assert {name: entry.requests for name, entry in report.endpoints.items()} == expected
    assert fake.count() == report.totals()["requests"] == sum(expected.values()) == expected_total
    assert account.minimum_requests(PAGE, variant) == expected_total  # what bench/sync.py compares with
    assert fake.count("/watched/shows") == (6 if variant == "2026" else 1)
    assert report.totals()["retries"] == 0 and report.warnings == []
    assert report.endpoints["history/shows"].item_count_reported == report.endpoints["history/shows"].items == 6667


@pytest.mark.gen_test(timeout=20)
async def test_watched_shows_are_asked_for_with_extended_progress_and_keep_their_seasons(fake, account, sync_config):
    report = await make_service(sync_config).run_once(full=True)
    assert report.outcome == "success", report.error
    queries = [query for _, path, query in fake.requests if path == f"/users/{USER}/watched/shows"]
    assert queries == [{"extended": "progress,full", "page": "1", "limit": "250"}]  # up next's show data too
    root = DataFolder(sync_config.data_dir).served_root()
    shows = read_json(root / layout.WATCHED["shows"])["data"]
    assert [len(show["seasons"]) for show in shows] == [len(show["seasons"]) for show in account.watched_shows]
    assert all(show["seasons"] for show in shows)


def test_the_fake_sends_watched_seasons_only_with_extended_progress_at_100_a_page(account):
    fake = FakeTrakt(account)
    assert fake.page_limit("watched/shows", {"extended": "progress", "limit": "250"}) == PROGRESS_PAGE
    assert fake.page_limit("watched/shows", {"limit": "250"}) == PAGE
    assert fake.page_limit("history/movies", {}) == 100  # the 2026 default without `limit`
    assert fake.page_limit("comments", {}) == 10
    _, plain = fake.resolve(f"/users/{USER}/watched/shows", {})
    _, full = fake.resolve(f"/users/{USER}/watched/shows", {"extended": "full"})
    _, progress = fake.resolve(f"/users/{USER}/watched/shows", {"extended": "progress"})
    assert all("seasons" not in row for row in plain + full)
    assert progress == account.watched_shows and all("seasons" in row for row in progress)
    assert fake.paginates("watched/shows")
    fake.watched_variant = "legacy"
    assert not fake.paginates("watched/shows") and not fake.paginates("watched/movies")
    _, legacy = fake.resolve(f"/users/{USER}/watched/shows", {})
    _, noseasons = fake.resolve(f"/users/{USER}/watched/shows", {"extended": "noseasons"})
    assert legacy == account.watched_shows
    assert all("seasons" not in row for row in noseasons)


@pytest.mark.gen_test(timeout=20)
async def test_every_request_asks_for_pages_of_250_and_the_full_profile(fake, account, sync_config):
    report = await make_service(sync_config).run_once(full=True)
    assert report.outcome == "success"
    for _, path, query in fake.requests:
        if path in (f"/users/{USER}", f"/users/{USER}/stats") or path.startswith("/shows/"):
            continue  # objects, and each show's seasons (one list, not paginated)
        assert query["limit"] == "250" and query["page"] == "1", path
    profile_queries = [q for _, p, q in fake.requests if p == f"/users/{USER}"]
    assert profile_queries == [{"extended": "full"}]
    assert {p for _, p, _ in fake.requests} >= {f"/users/{USER}/lists/{lst['ids']['trakt']}/items"
                                               for lst in account.lists}


@pytest.mark.gen_test(timeout=20)
async def test_a_server_that_clamps_or_ignores_limit_is_still_mirrored_completely(fake, account, sync_config):
    fake.max_limit = 20
    report = await make_service(sync_config).run_once(full=True)
    assert report.outcome == "success", report.error
    assert_mirrors(sync_config, account)
    assert report.endpoints["history/shows"].pages == 3  # 60 rows at 20 a page

    fake.max_limit, fake.fixed_page_size = 250, 4
    report = await make_service(sync_config).run_once(full=True)
    assert report.outcome == "success", report.error
    assert_mirrors(sync_config, account)
    assert report.endpoints["history/movies"].pages == 8  # 30 rows at 4 a page


@pytest.mark.gen_test(timeout=20)
async def test_snapshot_carries_its_report_and_the_status_files_are_written(fake, sync_config):
    report = await make_service(sync_config).run_once(full=True)
    root = assert_mirrors(sync_config, fake.account)
    inside = read_json(root / "sync_report.json")
    assert inside["outcome"] == "success" and inside["snapshot"] == root.name == report.snapshot
    assert set(inside["endpoints"]) == {*FIXED_NAMES, *(f"lists/{lst['ids']['slug']}" for lst in fake.account.lists),
                                        "shows/seasons", "calendar/movies"}
    last = read_last_attempt(DataFolder(sync_config.data_dir))
    assert last["outcome"] == "success" and last["finished_at"] and last["totals"]["requests"] == fake.count()
    status = read_sync_status(DataFolder(sync_config.data_dir))
    assert status == {"last_success_at": last["finished_at"], "last_attempt_at": last["finished_at"],
                      "last_attempt_outcome": "success", "last_error": None, "running": False}


@pytest.mark.gen_test(timeout=30)
async def test_deleted_lists_disappear_and_three_snapshots_are_kept(fake, account, sync_config):
    for _ in range(3):
        assert (await make_service(sync_config).run_once(full=True)).outcome == "success"
    gone = account.lists.pop(0)
    report = await make_service(sync_config).run_once(full=True)
    assert report.outcome == "success"
    root = assert_mirrors(sync_config, account)
    assert not (root / layout.list_items_endpoint(gone["ids"]["slug"])).exists()
    assert len(DataFolder(sync_config.data_dir).snapshots()) == 3
    assert len(read_history(DataFolder(sync_config.data_dir))) == 4


@pytest.mark.gen_test(timeout=20)
async def test_a_list_with_an_unsafe_slug_is_skipped_with_a_warning(fake, account, sync_config):
    bad = account.lists[0]
    bad["ids"]["slug"] = "../../etc"
    report = await make_service(sync_config).run_once(full=True)
    assert report.outcome == "success"
    assert any("not safe as a file name" in w and "../../etc" in w for w in report.warnings)
    assert fake.count(f"/lists/{bad['ids']['trakt']}/items") == 0
    root = DataFolder(sync_config.data_dir).served_root()
    assert sorted(p.name for p in (root / "user/lists").iterdir()) == sorted(
        ["user_lists.json"] + [f"{lst['ids']['slug']}_items.json" for lst in account.lists[1:]])


@pytest.mark.gen_test(timeout=20)
async def test_a_list_slug_with_a_trailing_newline_is_skipped_and_never_a_file_name(fake, account, sync_config):
    bad = account.lists[0]
    bad["ids"]["slug"] = "best\n"
    report = await make_service(sync_config).run_once(full=True)
    assert report.outcome == "success"
    assert report.warnings == [f"list {bad['name']!r} (id {bad['ids']['trakt']}) has a slug that is not safe "
                               "as a file name ('best\\n'): its items were skipped"]
    assert read_last_attempt(DataFolder(sync_config.data_dir))["warnings"] == report.warnings
    root = DataFolder(sync_config.data_dir).served_root()
    assert sorted(p.name for p in (root / "user/lists").iterdir()) == sorted(
        ["user_lists.json"] + [f"{lst['ids']['slug']}_items.json" for lst in account.lists[1:]])
    assert "lists/best\n" not in report.endpoints


@pytest.mark.gen_test(timeout=20)
async def test_item_count_mismatch_is_recorded_as_a_warning(fake, account, sync_config):
    fake.item_count_override["ratings"] = 999
    report = await make_service(sync_config).run_once(full=True)
    assert report.outcome == "success"
    assert report.endpoints["ratings"].item_count_reported == 999
    assert report.endpoints["ratings"].items == len(account.ratings)
    assert [w for w in report.warnings if "ratings" in w] == [
        f"ratings: Trakt reported 999 items (X-Pagination-Item-Count) but {len(account.ratings)} came back"]
    assert read_last_attempt(DataFolder(sync_config.data_dir))["warnings"] == report.warnings


# --- faults the sync recovers from -------------------------------------------------------------
@pytest.mark.parametrize("kind, options, counter", [
    ("rate_limit", {"retry_after": "0.1"}, "rate_limited"),
    ("rate_limit_html", {"retry_after": "0.1"}, "rate_limited"),
    ("status", {"status": 500}, "retries"),
    ("status", {"status": 502}, "retries"),
    ("status", {"status": 522}, "retries"),
    ("slow", {"delay": 4.0}, "retries"),
    ("malformed", {}, "retries"),
])
@pytest.mark.gen_test(timeout=20)
async def test_sync_recovers_from_one_fault(fake, account, sync_config, kind, options, counter):
    fake.inject(kind, path="/history/movies", **options)
    report = await make_service(sync_config, request_timeout=1.5).run_once(full=True)
    assert report.outcome == "success", report.error
    assert getattr(report.endpoints["history/movies"], counter) == 1
    assert fake.pending_faults() == 0
    assert_mirrors(sync_config, account)


@pytest.mark.gen_test(timeout=20)
async def test_sync_recovers_from_dropped_connections(fake, account, sync_config):
    fake.inject("drop", times=2, path="/watched/shows")
    report = await make_service(sync_config).run_once(full=True)
    assert report.outcome == "success", report.error
    assert fake.pending_faults() == 0
    assert_mirrors(sync_config, account)


# --- faults that end the sync: exit 1, served files unchanged ------------------------------------
@pytest.mark.parametrize("kind, options, message", [
    ("status", {"status": 503, "times": 1000}, "503, giving up after 3 attempts"),
    ("status", {"status": 524, "times": 1000}, "524, giving up"),
    ("drop", {"times": 1000}, "closed the connection"),
    ("malformed", {"times": 1000}, "malformed JSON"),
    ("rate_limit", {"times": 1000, "retry_after": "0.01"}, "rate limit reached"),
    ("private", {"times": 1000}, "profile is private"),
    ("forbidden", {"times": 1000}, "TRAKT_API_KEY"),
])
@pytest.mark.gen_test(timeout=30)
async def test_failed_sync_exits_1_and_leaves_served_files_byte_for_byte_unchanged(
        fake, sync_config, kind, options, message):
    assert await run_sync_command(sync_config, full=True, images=False, stdout=io.StringIO(), retry=FAST_RETRY) == 0
    before = served_state(sync_config)
    fake.account.history_movies.pop()  # a change that must not reach the served files
    fake.inject(kind, path="/history/movies", **options)
    out, err = io.StringIO(), io.StringIO()
    code = await run_sync_command(sync_config, full=True, images=False, stdout=out, stderr=err, retry=FAST_RETRY)
    assert code == 1
    assert message in err.getvalue()
    assert "the served data is unchanged" in err.getvalue()
    assert out.getvalue() == ""
    assert served_state(sync_config) == before
    assert partials(sync_config) == []
    status = read_sync_status(DataFolder(sync_config.data_dir))
    assert status["last_attempt_outcome"] == "failed" and message in status["last_error"]
    assert status["last_success_at"] is not None
    assert [h["outcome"] for h in read_history(DataFolder(sync_config.data_dir))] == ["failed", "success"]


@pytest.mark.gen_test(timeout=20)
async def test_private_profile_ends_the_first_sync_with_a_clear_message(fake, sync_config):
    fake.account.private = True
    err = io.StringIO()
    assert await run_sync_command(sync_config, full=True, images=False, stderr=err, retry=FAST_RETRY) == 1
    assert "the Trakt profile is private" in err.getvalue() and "trakt-watch login" in err.getvalue()
    assert DataFolder(sync_config.data_dir).served_root() is None


@pytest.mark.gen_test(timeout=20)
async def test_wrong_key_ends_the_sync_and_never_shows_the_key(fake, sync_config):
    config = replace(sync_config, trakt_api_key="wrong-secret-key")
    err = io.StringIO()
    assert await run_sync_command(config, full=True, images=False, stderr=err, retry=FAST_RETRY) == 1
    assert "API key (TRAKT_API_KEY) is wrong" in err.getvalue()
    assert "wrong-secret-key" not in err.getvalue()
    assert "wrong-secret-key" not in (Path(config.data_dir) / "sync" / "last_attempt.json").read_text()


@pytest.mark.gen_test(timeout=20)
async def test_overall_time_limit_stops_the_sync(fake, sync_config):
    assert (await make_service(sync_config).run_once(full=True)).outcome == "success"
    before = served_state(sync_config)
    fake.latency = 0.25
    config = replace(sync_config, sync_timeout_minutes=0.01)  # 0.6 s for ~20 requests at 0.25 s, 4 at a time
    report = await make_service(config).run_once(full=True)
    assert report.outcome == "failed"
    assert "SYNC_TIMEOUT_MINUTES=0.01" in report.error
    assert served_state(sync_config) == before
    assert partials(sync_config) == []


# --- configuration -------------------------------------------------------------------------------
@pytest.mark.gen_test(timeout=10)
async def test_missing_configuration_exits_2(tmp_path):
    err = io.StringIO()
    config = replace(Config(), data_dir=tmp_path / "data")
    assert await run_sync_command(config, full=True, images=False, stderr=err) == 2
    assert "TRAKT_API_KEY and TRAKT_USERNAME must be set" in err.getvalue()
    err = io.StringIO()
    config = replace(config, trakt_api_key="k", trakt_username="someone")
    assert await run_sync_command(config, full=True, images=True, stderr=err) == 2
    assert "--images needs TMDB_API_KEY" in err.getvalue()
    assert not (tmp_path / "data" / "sync").exists()


# --- running, cancelling, scheduling ---------------------------------------------------------------
@pytest.mark.gen_test(timeout=20)
async def test_stop_cancels_a_running_sync_without_committing(fake, sync_config):
    fake.latency = 0.2
    service = make_service(sync_config)
    service.start_now()
    assert service.running
    with pytest.raises(SyncAlreadyRunning, match="^A sync is already running$"):
        service.start_now()
    with pytest.raises(SyncAlreadyRunning):
        await service.run_once(full=True)
    while fake.count() < 3:
        await asyncio.sleep(0.02)
    await service.stop()
    assert not service.running
    assert DataFolder(sync_config.data_dir).served_root() is None
    assert partials(sync_config) == []
    last = read_last_attempt(DataFolder(sync_config.data_dir))
    assert last["outcome"] == "cancelled"
    assert service.last_report["outcome"] == "cancelled"


@pytest.mark.gen_test(timeout=20)
async def test_callbacks_get_the_committed_snapshot_and_every_report(fake, sync_config):
    committed: list[Path] = []
    finished: list[dict] = []

    async def on_committed(path: Path) -> None:
        committed.append(path)

    service = make_service(sync_config, on_committed=on_committed, on_finished=finished.append)
    await service.run_once(full=True)
    fake.inject("status", status=500, times=100)
    await service.run_once(full=True)
    assert committed == [DataFolder(sync_config.data_dir).served_root()]
    assert [r["outcome"] for r in finished] == ["success", "failed"]


@pytest.mark.gen_test(timeout=20)
async def test_schedule_syncs_at_once_when_there_is_no_data(fake, sync_config):
    done = asyncio.Event()
    service = make_service(replace(sync_config, sync_interval_hours=24), on_committed=lambda _: done.set())
    assert service.scheduled
    await service.start()
    try:
        await asyncio.wait_for(done.wait(), 10)
    finally:
        await service.stop()
    assert service.last_report["trigger"] == "schedule"
    assert service.last_report["outcome"] == "success"


@pytest.mark.gen_test(timeout=20)
async def test_schedule_waits_for_the_interval_after_a_recent_success(fake, sync_config):
    config = replace(sync_config, sync_interval_hours=24)
    await make_service(config).run_once(full=True)
    service = make_service(config)
    delay = schedule.first_delay(service.folder, 24 * 3600)
    assert 24 * 3600 - 60 < delay <= 24 * 3600 + 120
    await service.start()
    await asyncio.sleep(0.2)
    await service.stop()
    # only the first sync ran: the fixed files and 3 lists, one page each, and up next's show data
    assert fake.count() == 12 + 3 + fake.account.show_data_requests()


# README "Sync", Schedule: "plus 10–120 s of jitter", "a failed run is retried within the hour".
README_JITTER_SECONDS = (10.0, 120.0)
README_RETRY_AFTER_FAILURE_SECONDS = 3600.0


@pytest.mark.gen_test(timeout=20)
async def test_the_first_scheduled_sync_waits_the_interval_plus_10_to_120_s_of_jitter(fake, sync_config):
    folder = DataFolder(sync_config.data_dir)
    interval = 24 * 3600
    assert schedule.first_delay(folder, interval) == 0.0  # no data at all: at once
    await make_service(sync_config).run_once(full=True)
    finished = datetime.fromisoformat(read_sync_status(folder)["last_success_at"].replace("Z", "+00:00"))
    asked = []

    def lowest(a: float, b: float) -> float:
        asked.append((a, b))
        return a

    def highest(a: float, b: float) -> float:
        return b

    at_finish = finished.timestamp
    assert schedule.first_delay(folder, interval, uniform=lowest, now=at_finish) == interval + 10.0
    assert schedule.first_delay(folder, interval, uniform=highest, now=at_finish) == interval + 120.0
    assert asked == [README_JITTER_SECONDS]
    # A day late: at once, plus the jitter; the jitter never exceeds a short interval.
    late = finished.timestamp() + 2 * interval
    assert schedule.first_delay(folder, interval, uniform=highest, now=lambda: late) == 120.0
    assert schedule.first_delay(folder, 60.0, uniform=highest, now=lambda: late) == 60.0


def test_after_a_failure_the_schedule_tries_again_within_the_hour():
    assert schedule.delay_after(True, 24 * 3600) == 24 * 3600
    assert schedule.delay_after(False, 24 * 3600) == README_RETRY_AFTER_FAILURE_SECONDS
    assert schedule.delay_after(False, 1800) == 1800  # never later than the next regular run


@pytest.mark.parametrize("hours, fails, next_in", [(24, True, "3600"), (24, False, "86400"), (0.5, True, "1800")])
@pytest.mark.gen_test(timeout=20)
async def test_the_schedule_waits_the_readme_delay_after_each_run(fake, sync_config, caplog, hours, fails, next_in):
    if fails:
        fake.inject("forbidden", times=1000)
    service = make_service(replace(sync_config, sync_interval_hours=hours))
    caplog.set_level(logging.INFO, logger="trakt_watch.sync")
    await service.start()  # no data yet: the first run starts at once
    try:
        for _ in range(500):
            if any(r.getMessage().startswith("next scheduled sync in") for r in caplog.records):
                break
            await asyncio.sleep(0.02)
    finally:
        await service.stop()
    assert service.last_report["outcome"] == ("failed" if fails else "success")
    assert [r.getMessage() for r in caplog.records if r.getMessage().startswith("next scheduled sync in")] == [
        f"next scheduled sync in {next_in} s"]


def test_no_schedule_without_trakt_or_with_interval_zero(tmp_path):
    folder = DataFolder(tmp_path)
    assert not SyncService(replace(Config(), sync_interval_hours=24), folder).scheduled
    assert not SyncService(replace(Config(), trakt_api_key="k", trakt_username="u", sync_interval_hours=0),
                           folder).scheduled
    assert SyncService(replace(Config(), trakt_api_key="k", trakt_username="u"), folder).scheduled


@pytest.mark.gen_test(timeout=10)
async def test_start_removes_partial_snapshots_left_by_a_killed_sync(tmp_path):
    folder = DataFolder(tmp_path / "data")
    leftover = folder.snapshots_dir / ".partial-20260101T000000000000Z-abcdef"
    (leftover / "user").mkdir(parents=True)
    (leftover / "user" / "half.json").write_text("{")
    service = SyncService(replace(Config(), data_dir=folder.root), folder)
    await service.start()
    await service.stop()
    assert not leftover.exists()


@pytest.mark.gen_test(timeout=10)
async def test_a_sync_in_another_process_blocks_this_one_and_is_named(fake, sync_config):
    folder = DataFolder(sync_config.data_dir)
    lock = ProcessLock(folder.sync_dir / "sync.lock")  # another open file: flock refuses it like another process
    assert lock.acquire("cli")
    try:
        report = await make_service(sync_config).run_once(full=True)
    finally:
        lock.release()
    assert report.outcome == "failed"
    assert report.error.startswith("Another sync of this data folder is already running in another process: "
                                   f"pid {os.getpid()} (trakt-watch sync) since 20")
    assert fake.count() == 0
    assert read_last_attempt(folder) is None  # the running sync writes its own report


def test_the_lock_file_says_who_holds_it_and_is_emptied_on_release(tmp_path):
    lock = ProcessLock(tmp_path / "sync" / "sync.lock")
    assert lock.acquire("schedule")
    try:
        written = read_json(tmp_path / "sync" / "sync.lock")
        assert set(written) == {"pid", "since", "trigger"}
        assert written["pid"] == os.getpid() and written["trigger"] == "schedule"
        assert written["since"].endswith("Z") and written["since"][:4] >= "2026"
        other = ProcessLock(tmp_path / "sync" / "sync.lock")
        assert other.acquire() is False
        assert other.holder().describe() == f"pid {os.getpid()} (the server's schedule) since {written['since']}"
    finally:
        lock.release()
    assert (tmp_path / "sync" / "sync.lock").read_text() == ""
    (tmp_path / "sync" / "sync.lock").write_text("4242\n")  # what an older version wrote
    assert ProcessLock(tmp_path / "sync" / "sync.lock").holder().describe() == "pid 4242"


@pytest.mark.gen_test(timeout=10)
async def test_start_now_is_refused_at_once_while_another_process_holds_the_lock(fake, sync_config):
    lock = ProcessLock(DataFolder(sync_config.data_dir).sync_dir / "sync.lock")
    assert lock.acquire("cli")
    service = make_service(sync_config)
    try:
        with pytest.raises(SyncAlreadyRunning, match=rf"^A sync is already running in another process: "
                                                     rf"pid {os.getpid()} \(trakt-watch sync\) since 20"):
            service.start_now()
    finally:
        lock.release()
    assert not service.running
    assert fake.count() == 0
    service.start_now()  # free again: this one runs
    while service.running:
        await asyncio.sleep(0.02)
    assert service.last_report["outcome"] == "success"


# --- images ----------------------------------------------------------------------------------------
@pytest.mark.gen_test(timeout=20)
async def test_image_step_runs_after_commit_and_its_failure_is_only_a_warning(fake, sync_config):
    calls = []

    async def downloader(config, snapshot_root, images_dir, progress=None):
        calls.append((snapshot_root, images_dir))
        return {"downloaded": 3}

    async def broken(config, snapshot_root, images_dir, progress=None):
        raise RuntimeError("TMDB exploded")

    config = replace(sync_config, tmdb_api_key="tmdb-key")
    report = await make_service(config, images=downloader).run_once(full=True)
    folder = DataFolder(config.data_dir)
    assert report.outcome == "success" and report.images == {"downloaded": 3}
    assert calls == [(folder.served_root(), folder.images_dir)]
    assert read_last_attempt(folder)["images"] == {"downloaded": 3}
    assert report.one_line().endswith("; images: 3 downloaded")

    report = await make_service(config, images=broken).run_once(full=True)
    assert report.outcome == "success"
    assert report.warnings == ["image download failed: RuntimeError: TMDB exploded"]
    assert folder.served_root().name == report.snapshot


def test_the_summary_line_counts_images_leaving_out_zeros():
    report = SyncReport(username=USER, trigger="cli")
    report.images = {"downloaded": 1080, "skipped_existing": 0, "not_found": 3, "missing_tmdb_id": 2, "failed": 1}
    report.finish("success")
    assert report.one_line().endswith("; images: 1,080 downloaded, 3 not on TMDB, 2 without a TMDB id, 1 failed")


@pytest.mark.gen_test(timeout=20)
async def test_no_image_step_without_a_tmdb_key(fake, sync_config):
    calls = []

    async def downloader(*args, **kwargs):
        calls.append(args)
        return {}

    report = await make_service(sync_config, images=downloader).run_once(full=True)
    assert report.outcome == "success" and report.images is None and calls == []


def test_read_sync_status_without_any_sync(tmp_path):
    assert read_sync_status(DataFolder(tmp_path)) == {
        "last_success_at": None, "last_attempt_at": None, "last_attempt_outcome": None,
        "last_error": None, "running": False}


@pytest.mark.gen_test(timeout=30)
async def test_history_keeps_the_last_20_attempts(fake, sync_config):
    fake.inject("forbidden", times=1000)
    service = make_service(sync_config)
    for _ in range(HISTORY_LENGTH + 2):
        await service.run_once(full=True)
    history = read_history(DataFolder(sync_config.data_dir))
    assert len(history) == HISTORY_LENGTH
    assert {h["outcome"] for h in history} == {"failed"}


# --- the command's output ----------------------------------------------------------------------------
class TerminalStream(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.gen_test(timeout=20)
async def test_cli_draws_a_progress_bar_on_a_terminal_removes_it_and_prints_one_summary_line(fake, account,
                                                                                             sync_config):
    out, err = io.StringIO(), TerminalStream()
    assert await run_sync_command(sync_config, full=True, images=False, stdout=out, stderr=err, retry=FAST_RETRY) == 0
    frames = err.getvalue().split("\r")
    assert frames[1].startswith("sync   0%|")  # drawn as soon as the sync starts
    assert frames[-1] == "" and frames[-2].strip() == ""  # and wiped at the end
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sync committed snapshot ")
    assert f"{fake.count()} requests" in lines[0]


@pytest.mark.gen_test(timeout=20)
async def test_cli_prints_no_progress_bar_when_not_on_a_terminal(fake, sync_config):
    out, err = io.StringIO(), io.StringIO()
    assert await run_sync_command(sync_config, full=True, images=False, stdout=out, stderr=err, retry=FAST_RETRY) == 0
    assert err.getvalue() == ""
    assert len(out.getvalue().splitlines()) == 1


@pytest.mark.gen_test(timeout=20)
async def test_lists_without_usable_ids_are_skipped_with_warnings(fake, account, sync_config):
    account.lists[0] = "not a list object"
    account.lists[1]["ids"] = None
    report = await make_service(sync_config).run_once(full=True)
    assert report.outcome == "success"
    assert [w for w in report.warnings if "skipped" in w] == [
        "list number 1 has no numeric Trakt id: its items were skipped",
        f"list {account.lists[1]['name']!r} has no numeric Trakt id: its items were skipped"]
    assert fake.count("/items") == len(account.lists) - 2


@pytest.mark.gen_test(timeout=20)
async def test_a_failing_store_reload_is_a_warning_not_a_failure(fake, sync_config):
    async def explode(_path):
        raise RuntimeError("store exploded")

    report = await make_service(sync_config, on_committed=explode).run_once(full=True)
    assert report.outcome == "success"
    assert report.warnings == ["reloading the served data failed: store exploded"]


@pytest.mark.gen_test(timeout=20)
async def test_an_unexpected_error_is_a_recorded_failure(fake, sync_config, monkeypatch):
    assert (await make_service(sync_config).run_once(full=True)).outcome == "success"
    before = served_state(sync_config)

    def broken(lists, warn):
        raise KeyError("ids")

    monkeypatch.setattr(sync_fetch, "list_item_endpoints", broken)
    report = await make_service(sync_config).run_once(full=True)
    assert report.outcome == "failed"
    assert report.error.startswith("Unexpected error: KeyError: 'ids'")
    assert read_last_attempt(DataFolder(sync_config.data_dir))["outcome"] == "failed"
    assert served_state(sync_config) == before
    assert partials(sync_config) == []


@pytest.mark.gen_test(timeout=10)
async def test_an_unusable_data_folder_is_exit_2_for_the_cli_and_a_failed_run_for_the_service(
        fake, sync_config, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the data folder should be")
    err = io.StringIO()
    config = replace(sync_config, data_dir=blocker / "data")
    assert await run_sync_command(config, full=True, images=False, stderr=err, retry=FAST_RETRY) == 2
    assert "cannot use DATA_DIR" in err.getvalue()
    report = await make_service(config).run_once(full=True)
    assert report.outcome == "failed" and "Cannot use the data folder" in report.error
    assert fake.count() == 0


@pytest.mark.gen_test(timeout=10)
async def test_start_creates_nothing_in_a_folder_that_was_never_synced(tmp_path):
    service = SyncService(replace(Config(), data_dir=tmp_path), DataFolder(tmp_path))
    await service.start()
    await service.stop()
    assert list(tmp_path.iterdir()) == []


def test_start_now_without_trakt_settings_is_not_ready(tmp_path):
    from services.errors import NotReady

    service = SyncService(replace(Config(), data_dir=tmp_path), DataFolder(tmp_path))
    with pytest.raises(NotReady, match="TRAKT_API_KEY and TRAKT_USERNAME"):
        service.start_now()
    assert not service.running


@pytest.mark.gen_test(timeout=20)
async def test_status_falls_back_to_the_served_snapshots_report(fake, sync_config):
    await make_service(sync_config).run_once(full=True)
    folder = DataFolder(sync_config.data_dir)
    for name in ("last_attempt.json", "history.json"):
        (folder.sync_dir / name).unlink()
    status = read_sync_status(folder)
    inside = read_json(folder.served_root() / "sync_report.json")
    assert status["last_success_at"] == inside["finished_at"] is not None
    assert status["last_attempt_outcome"] is None


# --- secrets echoed by an upstream -------------------------------------------------------------------
def stored_sync_texts(config: Config) -> str:
    """Every report file the sync keeps (sync/*.json and the served snapshot's own report)."""
    folder = DataFolder(config.data_dir)
    texts = [p.read_text(encoding="utf-8") for p in sorted(folder.sync_dir.glob("*.json"))]
    root = folder.served_root()
    if root is not None:
        texts.append((root / "sync_report.json").read_text(encoding="utf-8"))
    return "\n".join(texts)


@pytest.mark.gen_test(timeout=30)
async def test_an_api_key_echoed_by_trakt_is_redacted_from_the_reports_and_the_cli(account, tmp_path):
    fake = FakeTrakt(account, api_key=LONG_KEY)
    url = await fake.start()
    config = replace(Config(), trakt_api_key=LONG_KEY, trakt_username=USER, trakt_api_url=url,
                     data_dir=tmp_path / "data", sync_interval_hours=0)
    # In a body: a list named after the key, with a slug that is the key plus a character that is not
    # plain (the warning quotes the slug's first 60 characters).
    account.lists[0]["name"] = f"echo {LONG_KEY}"
    account.lists[0]["ids"]["slug"] = f"{LONG_KEY}!"
    outputs = []
    try:
        out, err = io.StringIO(), io.StringIO()
        assert await run_sync_command(config, full=True, images=False, stdout=out, stderr=err, retry=FAST_RETRY) == 0
        outputs += [out.getvalue(), err.getvalue()]
        warnings = read_last_attempt(DataFolder(config.data_dir))["warnings"]
        assert warnings == [f"list 'echo {REDACTED}' (id {account.lists[0]['ids']['trakt']}) has a slug that is "
                            f"not safe as a file name ('{REDACTED}'): its items were skipped"]
        # In a header: the key comes back as X-Pagination-Item-Count (the client quotes 40 characters).
        fake.inject("echo_key", times=1000, path="/ratings")
        out, err = io.StringIO(), io.StringIO()
        assert await run_sync_command(config, full=True, images=False, stdout=out, stderr=err, retry=FAST_RETRY) == 1
        outputs += [out.getvalue(), err.getvalue()]
    finally:
        await fake.stop()
    error = read_last_attempt(DataFolder(config.data_dir))["error"]
    assert error.startswith(f"/users/{USER}/ratings: header X-Pagination-Item-Count is not a number: '{REDACTED}'")
    assert f"'{REDACTED}'" in outputs[3]
    everything = "\n".join(outputs) + stored_sync_texts(config)
    for piece in (LONG_KEY[:12], LONG_KEY[-12:]):
        assert piece not in everything


@pytest.mark.gen_test(timeout=20)
async def test_a_tmdb_key_in_an_image_failure_is_redacted_from_the_warning(fake, sync_config):
    tmdb_key = "tmdb-secret-value"

    async def leaky(config, snapshot_root, images_dir, progress=None):
        raise RuntimeError(f"401 for https://api.themoviedb.org/3/movie/1/images?api_key={tmdb_key}")

    config = replace(sync_config, tmdb_api_key=tmdb_key)
    report = await make_service(config, images=leaky).run_once(full=True)
    assert report.warnings == ["image download failed: RuntimeError: 401 for "
                               f"https://api.themoviedb.org/3/movie/1/images?api_key={REDACTED}"]
    assert tmdb_key not in stored_sync_texts(config)

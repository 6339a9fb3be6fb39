"""`trakt-watch sync --images` end to end: the fake Trakt account, the fake TMDB, the real sync."""

from __future__ import annotations

import io
from dataclasses import replace

import pytest

from services.config import Config
from services.data.snapshots import DataFolder
from services.trakt.sync import run_sync_command
from services.trakt.report import read_last_attempt
from services.trakt.client import RetryPolicy
from tests.fakes.tmdb import FakeTmdb
from tests.fakes.trakt import FakeAccount, FakeTrakt

FAST_RETRY = RetryPolicy(retries=2, base_delay=0.01, max_delay=0.02, rate_limit_retries=2,
                         default_retry_after=0.05)


@pytest.fixture
def trakt(io_loop):
    server = FakeTrakt(FakeAccount.build(history=40, watched_movies=12, shows=3, lists=2, list_items=3,
                                         watchlist=6))
    io_loop.run_sync(server.start)
    yield server
    io_loop.run_sync(server.stop)


@pytest.fixture
def tmdb(io_loop):
    server = FakeTmdb()
    io_loop.run_sync(server.start)
    yield server
    io_loop.run_sync(server.stop)


@pytest.fixture
def config(trakt, tmdb, tmp_path) -> Config:
    return replace(Config(), trakt_api_key="test-key", trakt_username="fakeuser", trakt_api_url=trakt.url,
                   tmdb_api_key=tmdb.api_key, tmdb_api_url=tmdb.api_url, tmdb_image_url=tmdb.image_url,
                   data_dir=tmp_path / "data", sync_interval_hours=0)


def expected_files(account: FakeAccount) -> set[str]:
    """What a complete run writes, from the fake account itself (what Trakt holds, not what the
    sync mirrored): a poster and a backdrop of every movie and show in the watched, history,
    watchlist and list rows, and a poster of every watched season. The fake's English posters are
    .jpg, its text-free backdrops too."""
    rows = [*account.watched_movies, *account.watched_shows, *account.history_movies, *account.history_shows,
            *account.watchlist, *(row for items in account.list_items.values() for row in items)]
    files = set()
    for row in rows:
        for key, folder in (("movie", "movies"), ("show", "shows")):
            if key in row:
                tmdb_id = row[key]["ids"]["tmdb"]
                files |= {f"{folder}/posters/{tmdb_id}_poster.jpg", f"{folder}/backdrops/{tmdb_id}_backdrop.jpg"}
    for row in account.watched_shows:
        tmdb_id = row["show"]["ids"]["tmdb"]
        files |= {f"shows/posters/{tmdb_id}/{s['number']}/season_{s['number']}_poster.jpg" for s in row["seasons"]}
    return files


def image_files(folder: DataFolder) -> set[str]:
    root = folder.images_dir
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


@pytest.mark.gen_test(timeout=60)
async def test_sync_with_images_downloads_exactly_the_expected_files_then_skips_them(config, trakt, tmdb):
    out, err = io.StringIO(), io.StringIO()
    assert await run_sync_command(config, images=True, stdout=out, stderr=err, retry=FAST_RETRY) == 0, err.getvalue()
    folder = DataFolder(config.data_dir)
    expected = expected_files(trakt.account)
    for part in ("movies/posters/", "movies/backdrops/", "shows/posters/", "shows/backdrops/", "/season_"):
        assert any(part in path for path in expected)  # the account exercises every category
    assert image_files(folder) == expected
    counts = read_last_attempt(folder)["images"]  # the sync report carries the image counts
    assert counts["downloaded"] == len(expected) and counts["failed"] == 0 and counts["not_found"] == 0

    requests_before = tmdb.count()
    assert await run_sync_command(config, images=True, full=True, stdout=io.StringIO(), stderr=io.StringIO(),
                                  retry=FAST_RETRY) == 0
    assert image_files(folder) == expected
    assert read_last_attempt(folder)["images"]["skipped_existing"] == len(expected)
    assert tmdb.count() == requests_before  # every file was already there: TMDB never asked


@pytest.mark.gen_test(timeout=60)
async def test_sync_with_a_bad_tmdb_key_keeps_the_data_and_warns(config, tmdb):
    config = replace(config, tmdb_api_key="not-the-key")
    out, err = io.StringIO(), io.StringIO()
    assert await run_sync_command(config, images=True, stdout=out, stderr=err, retry=FAST_RETRY) == 0
    folder = DataFolder(config.data_dir)
    assert folder.served_root() is not None  # the synced data is served anyway
    assert image_files(folder) == set()
    assert "TMDB rejected the API key" in err.getvalue()
    assert "not-the-key" not in err.getvalue() + out.getvalue()

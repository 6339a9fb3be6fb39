"""The image download step against the fake TMDB: exactly the expected files, skips, failures."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from services.data import layout
from services.config import Config
from services.images.downloads import collect_references, download_images
from services.data.snapshots import write_flat_folder
from services.images.tmdb import TmdbAuthError, TmdbClient
from services.retry import RetryPolicy
from tests.fakes.tmdb import FakeTmdb


def movie(title: str, tmdb: int | None, trakt: int) -> dict:
    ids = {"trakt": trakt, "slug": title.lower().replace(" ", "-")}
    if tmdb is not None:
        ids["tmdb"] = tmdb
    return {"title": title, "year": 2010, "ids": ids}


show = movie


def account_files() -> dict:
    """A small account: movies 27205, 603 (twice), 155 and one without TMDB id; shows 1399
    (seasons 1 and 2 watched), 1396 (season 0 and 5), 60059 (watchlist, via an episode item) and
    one without TMDB id; a list with movie 680 and season item of show 1400."""
    inception, matrix, dark_knight = movie("Inception", 27205, 1), movie("The Matrix", 603, 2), movie("Dark Knight", 155, 3)
    got, bb = show("Game of Thrones", 1399, 10), show("Breaking Bad", 1396, 11)
    return {
        layout.WATCHED["movies"]: [{"plays": 2, "movie": inception}, {"plays": 1, "movie": matrix}],
        layout.WATCHED["shows"]: [
            {"plays": 3, "show": got, "seasons": [{"number": 1, "episodes": []}, {"number": 2, "episodes": []}]},
            {"plays": 1, "show": bb, "seasons": [{"number": 0, "episodes": []}, {"number": 5, "episodes": []}]},
            {"plays": 1, "show": show("No Id Show", None, 12), "seasons": [{"number": 1}]},
        ],
        layout.HISTORY["movies"]: [
            {"id": 1, "type": "movie", "movie": matrix},
            {"id": 2, "type": "movie", "movie": movie("Unknown Film", None, 4)},
        ],
        layout.HISTORY["shows"]: [
            {"id": 3, "type": "episode", "show": got, "episode": {"season": 1, "number": 1}},
        ],
        layout.WATCHLIST["movies"]: [{"type": "movie", "movie": dark_knight}],
        layout.WATCHLIST["shows"]: [{"type": "show", "show": show("Better Call Saul", 60059, 13)}],
        layout.WATCHLIST["all"]: [{"type": "movie", "movie": dark_knight},
                                  {"type": "episode", "show": show("Better Call Saul", 60059, 13), "episode": {}}],
        layout.LISTS: [{"name": "Faves", "ids": {"slug": "faves", "trakt": 7}}],
        layout.list_items_endpoint("faves"): [
            {"type": "movie", "movie": movie("Pulp Fiction", 680, 5)},
            {"type": "season", "season": {"number": 3}, "show": show("Severance", 95396, 14)},
        ],
    }


EXPECTED = {
    "movies/posters/27205_poster.jpg", "movies/backdrops/27205_backdrop.jpg",
    "movies/posters/603_poster.jpg", "movies/backdrops/603_backdrop.jpg",
    "movies/posters/155_poster.jpg", "movies/backdrops/155_backdrop.jpg",
    "movies/posters/680_poster.jpg", "movies/backdrops/680_backdrop.jpg",
    "shows/posters/1399_poster.jpg", "shows/backdrops/1399_backdrop.jpg",
    "shows/posters/1396_poster.jpg", "shows/backdrops/1396_backdrop.jpg",
    "shows/posters/60059_poster.jpg", "shows/backdrops/60059_backdrop.jpg",
    "shows/posters/95396_poster.jpg", "shows/backdrops/95396_backdrop.jpg",
    "shows/posters/1399/1/season_1_poster.jpg", "shows/posters/1399/2/season_2_poster.jpg",
    "shows/posters/1396/0/season_0_poster.jpg", "shows/posters/1396/5/season_5_poster.jpg",
}


@pytest.fixture
def snapshot(tmp_path: Path) -> Path:
    root = tmp_path / "snapshot"
    write_flat_folder(root, account_files(), username="tester", source=layout.SOURCE_TRAKT,
                      last_updated="2026-01-01T00:00:00+00:00")
    return root


@pytest.fixture
def fake():
    with FakeTmdb().running_in_thread() as running:
        yield running


def config_for(fake: FakeTmdb, key: str | None = None) -> Config:
    return replace(Config(), tmdb_api_key=fake.api_key if key is None else key,
                   tmdb_api_url=fake.api_url, tmdb_image_url=fake.image_url)


def fast_client(fake: FakeTmdb, key: str | None = None, retries: int = 3) -> TmdbClient:
    """A client with `retries` retries of each kind and a short backoff; use it as `async with`."""
    retry = RetryPolicy(retries=retries, base_delay=0.01, max_delay=0.02, rate_limit_retries=retries,
                        default_retry_after=0.01)
    return TmdbClient(config_for(fake, key), retry=retry)


async def run_download(fake: FakeTmdb, snapshot: Path, images: Path, key: str | None = None,
                       client_options: dict | None = None, **kwargs) -> dict:
    async with fast_client(fake, key, **(client_options or {})) as client:
        return await download_images(config_for(fake, key), snapshot, images, client=client, **kwargs)


def files_under(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def test_references_cover_every_file_kind(snapshot: Path):
    refs = collect_references(snapshot)
    assert refs.movies == {27205, 603, 155, 680}
    assert refs.shows == {1399, 1396, 60059, 95396}
    assert refs.seasons == {1399: {1, 2}, 1396: {0, 5}}
    assert refs.movies_without_id == {"trakt:4"}
    assert refs.shows_without_id == {"trakt:12"}


@pytest.mark.gen_test(timeout=30)
async def test_download_fetches_exactly_the_expected_files(fake, snapshot: Path, tmp_path: Path):
    images = tmp_path / "images"
    progress: list[tuple[int, int]] = []
    report = await run_download(fake, snapshot, images,
                                progress=lambda done, total: progress.append((done, total)))
    assert files_under(images) == EXPECTED
    assert report["downloaded"] == len(EXPECTED) == 20
    assert report["skipped_existing"] == 0 and report["failed"] == 0 and report["not_found"] == 0
    assert report["missing_tmdb_id"] == 2
    assert report["by_category"]["season_posters"]["downloaded"] == 4
    assert report["bytes"] == sum((images / p).stat().st_size for p in EXPECTED)
    assert progress[0] == (0, 20) and progress[-1] == (20, 20)
    # Posters prefer English, backdrops prefer no text; only w780/w1280 were requested.
    image_requests = [path for path, _ in fake.requests if path.startswith("/t/p/")]
    assert "/t/p/w780/m27205p_en.jpg" in image_requests
    assert "/t/p/w1280/m27205b_none.jpg" in image_requests
    assert "/t/p/w780/t1399s2p_en.jpg" in image_requests
    assert {p.split("/")[3] for p in image_requests} == {"w780", "w1280"}


@pytest.mark.gen_test(timeout=30)
async def test_second_run_skips_existing_files_without_calling_tmdb(fake, snapshot: Path, tmp_path: Path):
    images = tmp_path / "images"
    await run_download(fake, snapshot, images)
    requests_before = fake.count()
    report = await run_download(fake, snapshot, images)
    assert report["downloaded"] == 0
    assert report["skipped_existing"] == 20
    assert fake.count() == requests_before


@pytest.mark.gen_test(timeout=30)
async def test_existing_file_with_other_extension_is_skipped(fake, snapshot: Path, tmp_path: Path):
    images = tmp_path / "images"
    (images / "movies" / "posters").mkdir(parents=True)
    (images / "movies" / "posters" / "27205_poster.webp").write_bytes(b"RIFF....WEBP")
    report = await run_download(fake, snapshot, images)
    assert report["skipped_existing"] == 1 and report["downloaded"] == 19
    assert not (images / "movies" / "posters" / "27205_poster.jpg").exists()


@pytest.mark.gen_test(timeout=30)
async def test_survives_rate_limits_server_errors_and_unknown_titles(fake, snapshot: Path, tmp_path: Path):
    images = tmp_path / "images"
    fake.forget("movie", 155)
    fake.forget("tv", 1396)  # its seasons are unknown too
    fake.add_title("movie", 680, posters=[FakeTmdb.entry("/only_fr.jpg", "fr")], backdrops=[])
    fake.rate_limit_next(3, retry_after=0)
    fake.fail_next(2, 503)
    report = await run_download(fake, snapshot, images)
    gone = {"movies/posters/155_poster.jpg", "movies/backdrops/155_backdrop.jpg",
            "shows/posters/1396_poster.jpg", "shows/backdrops/1396_backdrop.jpg",
            "shows/posters/1396/0/season_0_poster.jpg", "shows/posters/1396/5/season_5_poster.jpg",
            "movies/backdrops/680_backdrop.jpg", "movies/posters/680_poster.jpg"}
    expected = EXPECTED - gone  # 680 has only a French poster, which TMDB filters out
    assert files_under(images) == expected
    assert report["downloaded"] == len(expected)
    assert report["not_found"] == 8  # 155 x2, 1396 x2 + 2 seasons, 680 x2
    assert report["failed"] == 0


@pytest.mark.gen_test(timeout=30)
async def test_persistent_failures_are_counted_not_fatal(fake, snapshot: Path, tmp_path: Path):
    images = tmp_path / "images"
    fake.fail_next(500, 500)
    report = await run_download(fake, snapshot, images, client_options={"retries": 0}, concurrency=2)
    assert report["failed"] == 20 and report["downloaded"] == 0
    assert files_under(images) == set()


@pytest.mark.gen_test(timeout=30)
async def test_bad_key_stops_the_step_with_a_clear_error(fake, snapshot: Path, tmp_path: Path):
    with pytest.raises(TmdbAuthError) as info:
        await run_download(fake, snapshot, tmp_path / "images", key="bad-key")
    assert "API key" in str(info.value) and "bad-key" not in str(info.value)
    assert files_under(tmp_path / "images") == set()
    assert fake.count("/t/p/") == 0


@pytest.mark.gen_test(timeout=30)
async def test_missing_key_is_refused_before_any_request(fake, snapshot: Path, tmp_path: Path):
    with pytest.raises(TmdbAuthError):
        await download_images(config_for(fake, ""), snapshot, tmp_path / "images")
    assert fake.count() == 0


@pytest.mark.gen_test(timeout=30)
async def test_stale_partial_files_are_removed_and_never_count_as_present(fake, snapshot: Path, tmp_path: Path):
    images = tmp_path / "images"
    posters = images / "movies" / "posters"
    posters.mkdir(parents=True)
    (posters / ".27205_poster.jpg.abcd.part").write_bytes(b"half")
    report = await run_download(fake, snapshot, images)
    assert report["downloaded"] == 20
    assert not (posters / ".27205_poster.jpg.abcd.part").exists()


@pytest.mark.gen_test(timeout=30)
async def test_invalid_arguments(fake, snapshot: Path, tmp_path: Path):
    with pytest.raises(ValueError, match="concurrency"):
        await download_images(config_for(fake), snapshot, tmp_path, concurrency=0)
    with pytest.raises(ValueError, match="does not exist"):
        await download_images(config_for(fake), tmp_path / "nope", tmp_path)


@pytest.mark.gen_test(timeout=30)
async def test_8_downloads_run_at_once_by_default(fake, snapshot: Path, tmp_path: Path):
    fake.latency = 0.05  # every answer takes a moment, so the workers overlap
    async with TmdbClient(config_for(fake)) as client:  # the default client and concurrency
        report = await download_images(config_for(fake), snapshot, tmp_path / "images", client=client)
    assert report["downloaded"] == 20
    assert fake.max_in_flight == 8  # README "Images": "8 downloads run at once"

"""The in-memory image index on its own: scanning, the manifest, lookups, URLs, reloads, the timer."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from pathlib import Path

import pytest

from services.config import Config
from services.images.index import ImageIndex, build_index
from tests.helpers.files import touch


@pytest.fixture
def images(tmp_path: Path) -> Path:
    root = tmp_path / "images"
    for relative in (
        "movies/posters/27205_poster.jpg", "movies/posters/603_poster.png",
        "movies/backdrops/27205_backdrop.jpg",
        "shows/posters/1399_poster.jpg", "shows/backdrops/1399_backdrop.webp",
        "shows/posters/1399/1/season_1_poster.jpg", "shows/posters/1399/2/season_2_poster.png",
        "shows/posters/1396/0/season_0_poster.jpg",
        # ignored: temp files, hidden files, wrong names, wrong categories, non-images, mismatches
        "movies/posters/.27205_poster.jpg.1a2b.part", "movies/posters/.hidden_poster.jpg",
        "movies/posters/abc_poster.jpg", "movies/posters/42_backdrop.jpg", "movies/posters/43_poster.txt",
        "movies/posters/44_poster", "shows/posters/1399/3/season_4_poster.jpg",
        "shows/posters/x/1/season_1_poster.jpg",
    ):
        touch(root, relative)
    (root / "movies" / "posters" / "45_poster.jpg").mkdir()  # a folder with an image's name
    return root


def config(**overrides) -> Config:
    return replace(Config(), **overrides)


def test_scan_indexes_every_category_and_ignores_everything_else(images: Path):
    data = build_index(images)
    assert data.stats() == {"moviePosters": 2, "movieBackdrops": 1, "showPosters": 1, "showBackdrops": 1,
                            "seasonPosters": 3}
    assert data.problems == []


def test_missing_folder_is_an_empty_index(tmp_path: Path):
    assert build_index(tmp_path / "nope").stats() == dict.fromkeys(
        ("moviePosters", "movieBackdrops", "showPosters", "showBackdrops", "seasonPosters"), 0)


@pytest.mark.gen_test(timeout=10)
async def test_lookup_every_kind_and_the_season_fallback(images: Path):
    index = ImageIndex(config(), images)
    await index.reload()
    assert index.lookup("movies", "posters", 27205) == "movies/posters/27205_poster.jpg"
    assert index.lookup("movies", "posters", 603) == "movies/posters/603_poster.png"
    assert index.lookup("movies", "backdrops", 27205) == "movies/backdrops/27205_backdrop.jpg"
    assert index.lookup("shows", "posters", 1399) == "shows/posters/1399_poster.jpg"
    assert index.lookup("shows", "backdrops", 1399) == "shows/backdrops/1399_backdrop.webp"
    assert index.lookup("shows", "posters", 1399, 2) == "shows/posters/1399/2/season_2_poster.png"
    assert index.lookup("shows", "posters", 1396, 0) == "shows/posters/1396/0/season_0_poster.jpg"
    # season 7 has no poster: the show poster; show 1396 has no poster at all: nothing
    assert index.lookup("shows", "posters", 1399, 7) == "shows/posters/1399_poster.jpg"
    assert index.lookup("shows", "posters", 1396, 7) is None
    assert index.lookup("movies", "backdrops", 603) is None
    with pytest.raises(ValueError):
        index.lookup("people", "posters", 1)
    with pytest.raises(ValueError):
        index.lookup("movies", "posters", 1, season=1)


@pytest.mark.gen_test(timeout=10)
async def test_one_title_with_several_files_picks_by_extension_not_directory_order(images: Path):
    touch(images, "movies/posters/27205_poster.svg")
    touch(images, "movies/backdrops/1_backdrop.svg")
    touch(images, "movies/backdrops/1_backdrop.png")
    index = ImageIndex(config(), images)
    await index.reload()
    assert index.lookup("movies", "posters", 27205) == "movies/posters/27205_poster.jpg"
    assert index.lookup("movies", "backdrops", 1) == "movies/backdrops/1_backdrop.png"


@pytest.mark.gen_test(timeout=10)
async def test_manifest_entries_join_the_files_on_disk(images: Path):
    manifest = {
        "last_updated": "2025-07-19T09:00:13Z",
        "movies": {"posters": ["27205_poster.jpg", "550_poster.jpg", "../../etc/passwd", "551_backdrop.jpg", 12],
                   "backdrops": ["550_backdrop.jpg"]},
        "shows": {"posters": ["1396_poster.jpg"], "backdrops": [],
                  "season_posters": {"1399": {"3": ["season_3_poster.jpg"], "4": ["season_5_poster.jpg"]},
                                     "../x": {"1": ["season_1_poster.jpg"]}}},
    }
    (images / "manifest.json").write_text(json.dumps(manifest))
    index = ImageIndex(config(), images)
    stats = await index.reload()
    assert stats == {"moviePosters": 3, "movieBackdrops": 2, "showPosters": 2, "showBackdrops": 1,
                     "seasonPosters": 4}
    assert index.lookup("movies", "posters", 550) == "movies/posters/550_poster.jpg"
    assert index.lookup("shows", "posters", 1399, 3) == "shows/posters/1399/3/season_3_poster.jpg"
    assert index.lookup("shows", "posters", 1399, 4) == "shows/posters/1399_poster.jpg"
    assert index.status()["problems"] == [f"{images / 'manifest.json'}: skipped 5 malformed entries"]


@pytest.mark.gen_test(timeout=10)
async def test_broken_manifest_is_reported_and_files_still_served(images: Path):
    (images / "manifest.json").write_text("{not json")
    index = ImageIndex(config(), images)
    stats = await index.reload()
    assert stats["moviePosters"] == 2
    assert "cannot be read" in index.status()["problems"][0]


def test_url_for_local_cdn_and_proxy(images: Path):
    relative = "movies/posters/27205_poster.jpg"
    assert ImageIndex(config(), images).url_for(relative, w=400) == "/images/movies/posters/27205_poster.jpg"
    # the proxy needs an absolute URL: without IMAGE_BASE_URL local files are not proxied
    assert ImageIndex(config(image_proxy="wsrv"), images).url_for(relative) == f"/images/{relative}"
    cdn = config(image_base_url="https://cdn.example.org/watch")
    assert ImageIndex(cdn, images).url_for(relative, w=400) == f"https://cdn.example.org/watch/{relative}"
    proxied = ImageIndex(replace(cdn, image_proxy="wsrv"), images)
    assert proxied.url_for(relative) == (
        "https://wsrv.nl/?url=https%3A%2F%2Fcdn.example.org%2Fwatch%2Fmovies%2Fposters%2F27205_poster.jpg"
        "&output=webp&q=85&maxage=7d")
    assert proxied.url_for(relative, w=400, q=70, output="png", maxage="24h") == (
        "https://wsrv.nl/?url=https%3A%2F%2Fcdn.example.org%2Fwatch%2Fmovies%2Fposters%2F27205_poster.jpg"
        "&w=400&output=png&q=70&maxage=24h")


@pytest.mark.gen_test(timeout=10)
async def test_random_backdrop_comes_from_the_index(images: Path, tmp_path: Path):
    index = ImageIndex(config(), images)
    await index.reload()
    seen = {json.dumps(index.random_backdrop(), sort_keys=True) for _ in range(60)}
    assert seen == {
        json.dumps({"url": "/images/movies/backdrops/27205_backdrop.jpg", "tmdbId": 27205, "type": "movies"},
                   sort_keys=True),
        json.dumps({"url": "/images/shows/backdrops/1399_backdrop.webp", "tmdbId": 1399, "type": "shows"},
                   sort_keys=True),
    }
    empty = ImageIndex(config(), tmp_path / "empty")
    await empty.reload()
    assert empty.random_backdrop() is None


@pytest.mark.gen_test(timeout=10)
async def test_reload_picks_up_new_and_removed_files(images: Path):
    index = ImageIndex(config(), images)
    await index.reload()
    assert index.lookup("movies", "posters", 680) is None
    touch(images, "movies/posters/680_poster.jpg")
    (images / "movies" / "posters" / "603_poster.png").unlink()
    stats = await index.reload()
    assert index.lookup("movies", "posters", 680) == "movies/posters/680_poster.jpg"
    assert index.lookup("movies", "posters", 603) is None
    assert stats["moviePosters"] == 2


@pytest.mark.gen_test(timeout=10)
async def test_the_provider_decides_which_folder_is_scanned(images: Path, tmp_path: Path):
    other = tmp_path / "demo-images"
    touch(other, "movies/posters/1_poster.svg")
    current = {"dir": images}
    index = ImageIndex(config(image_index_refresh_hours=0), lambda: current["dir"])
    await index.on_data_reloaded(object())  # before start(): start() will build
    assert index.reloads == 0
    await index.start()
    assert index.stats()["moviePosters"] == 2
    current["dir"] = other
    await index.on_data_reloaded(object())
    assert index.stats()["moviePosters"] == 1
    assert index.lookup("movies", "posters", 1) == "movies/posters/1_poster.svg"
    await index.stop()


@pytest.mark.gen_test(timeout=10)
async def test_start_builds_at_once_and_the_periodic_refresh_runs(images: Path):
    # 0.00002 h = 72 ms between refreshes
    index = ImageIndex(config(image_index_refresh_hours=0.00002), images)
    await index.start()
    try:
        assert index.reloads == 1 and index.stats()["moviePosters"] == 2  # built before the first tick
        touch(images, "movies/posters/77_poster.jpg")
        for _ in range(200):  # bounded: at most ~10 s, normally a few ticks
            if index.lookup("movies", "posters", 77):
                break
            await asyncio.sleep(0.05)
        assert index.lookup("movies", "posters", 77) == "movies/posters/77_poster.jpg"
        assert index.reloads >= 2
    finally:
        await index.stop()
    assert index._timer is None


@pytest.mark.gen_test(timeout=10)
async def test_refresh_zero_means_no_timer(images: Path):
    index = ImageIndex(config(image_index_refresh_hours=0), images)
    await index.start()
    assert index._timer is None and index.reloads == 1
    await index.stop()


@pytest.mark.gen_test(timeout=10)
async def test_an_unreadable_folder_keeps_the_previous_index(images: Path, tmp_path: Path):
    from services.images.index import ImageIndexError

    current = {"dir": images}
    index = ImageIndex(config(), lambda: current["dir"])
    await index.reload()
    broken = tmp_path / "file-not-folder"
    broken.write_text("x")
    current["dir"] = broken / "sub"  # NotADirectoryError deep inside is treated as empty
    await index.reload()
    assert index.stats()["moviePosters"] == 0

    def explode() -> Path:
        raise PermissionError("denied")

    current["dir"] = images
    await index.reload()
    index._images_dir = explode
    with pytest.raises(ImageIndexError):
        await index.reload()
    assert index.stats()["moviePosters"] == 2

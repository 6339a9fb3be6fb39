"""The image routes inside the real application (server.make_app + build_services): wiring, the
store deciding the folder, the index following data reloads and syncs."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from services.config import Config
from tests.fakes.tmdb import jpeg_bytes


@pytest.fixture
def config(data_dir: Path) -> Config:
    return replace(Config(), data_dir=data_dir, timezone="UTC", data_check_seconds=0.1,
                   image_index_refresh_hours=0)


async def get(http_client, url: str, **kwargs):
    return await http_client.fetch(url, follow_redirects=False, raise_error=False, **kwargs)


@pytest.mark.gen_test(timeout=15)
async def test_real_app_serves_images_of_data_dir_after_reload_cache(http_client, base_url, data_dir: Path,
                                                                      services):
    assert services.images is not None and services.images.images_dir() == data_dir / "images"
    url = f"{base_url}/api/images?type=movies&category=posters&tmdb_id=10001"
    assert (await get(http_client, url)).code == 404
    poster = data_dir / "images" / "movies" / "posters" / "10001_poster.jpg"
    poster.parent.mkdir(parents=True)
    poster.write_bytes(jpeg_bytes(8, 16, 100))
    reload = await get(http_client, f"{base_url}/api/images/reload-cache", method="POST", body=b"")
    assert reload.code == 200 and json.loads(reload.body)["stats"]["moviePosters"] == 1
    redirect = await get(http_client, url)
    assert redirect.code == 302 and redirect.headers["Location"] == "/images/movies/posters/10001_poster.jpg"
    image = await get(http_client, base_url + redirect.headers["Location"])
    assert image.code == 200 and image.body == poster.read_bytes()
    assert image.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    backdrop = await get(http_client, f"{base_url}/api/images/random-backdrop")
    assert backdrop.code == 404 and json.loads(backdrop.body) == {"error": "No backdrops indexed"}


@pytest.mark.gen_test(timeout=15)
async def test_a_store_reload_rescans_the_images(http_client, base_url, data_dir: Path, services):
    folder = data_dir / "images" / "shows" / "backdrops"
    folder.mkdir(parents=True)
    (folder / "20101_backdrop.jpg").write_bytes(jpeg_bytes(16, 8, 50))
    await services.store.reload()  # POST /api/trakt or a new snapshot does this
    response = await get(http_client, f"{base_url}/api/images/random-backdrop")
    assert response.code == 200
    assert json.loads(response.body) == {"url": "/images/shows/backdrops/20101_backdrop.jpg", "tmdbId": 20101,
                                         "type": "shows"}


@pytest.mark.gen_test(timeout=15)
async def test_a_finished_sync_rescans_the_images(data_dir: Path, services):
    poster = data_dir / "images" / "shows" / "posters" / "20101" / "1" / "season_1_poster.jpg"
    poster.parent.mkdir(parents=True)
    poster.write_bytes(jpeg_bytes(8, 8, 20))
    await services.sync.on_finished({"outcome": "success", "committed": True})
    assert services.images.lookup("shows", "posters", 20101, 1) == "shows/posters/20101/1/season_1_poster.jpg"

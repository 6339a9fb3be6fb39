"""TmdbClient against the fake TMDB on loopback: images, seasons, downloads, errors, retries."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from services.config import Config
from services.images.tmdb import (
    TmdbAuthError,
    TmdbClient,
    TmdbNotFound,
    TmdbRateLimited,
    TmdbUnavailable,
    best_image,
)
from tests.fakes.tmdb import FakeTmdb


@pytest.fixture
def fake():
    with FakeTmdb().running_in_thread() as running:
        yield running


def make_client(fake: FakeTmdb, key: str | None = None, **kwargs) -> TmdbClient:
    config = replace(Config(), tmdb_api_key=fake.api_key if key is None else key,
                     tmdb_api_url=fake.api_url, tmdb_image_url=fake.image_url)
    kwargs.setdefault("backoff_base", 0.01)
    kwargs.setdefault("max_retries", 3)
    return TmdbClient(config, **kwargs)


@pytest.mark.gen_test(timeout=20)
async def test_movie_images_are_english_or_language_less(fake):
    async with make_client(fake) as client:
        images = await client.images("movie", 27205)
    assert set(images) == {"posters", "backdrops"}
    languages = {e["iso_639_1"] for e in images["posters"] + images["backdrops"]}
    assert languages == {"en", None}
    assert all(e["file_path"].startswith("/m27205") for e in images["posters"])
    path, query = fake.requests[-1]
    assert path == "/3/movie/27205/images"
    assert "include_image_language=en%2Cnull" in query or "include_image_language=en,null" in query


@pytest.mark.gen_test(timeout=20)
async def test_show_and_season_images(fake):
    async with make_client(fake) as client:
        show = await client.images("tv", 1399)
        season = await client.season_images(1399, 2)
    assert show["backdrops"] and show["posters"]
    assert set(season) == {"posters"}
    assert all(e["file_path"].startswith("/t1399s2") for e in season["posters"])


@pytest.mark.gen_test(timeout=20)
async def test_unknown_id_raises_not_found(fake):
    fake.forget("movie", 999)
    async with make_client(fake) as client:
        with pytest.raises(TmdbNotFound):
            await client.images("movie", 999)


@pytest.mark.gen_test(timeout=20)
async def test_bad_key_raises_auth_error_without_leaking_key(fake):
    async with make_client(fake, key="wrong-secret-key") as client:
        with pytest.raises(TmdbAuthError) as info:
            await client.images("movie", 1)
    assert "wrong-secret-key" not in str(info.value)
    assert fake.count("/3/movie/1/images") == 1  # a 401 is never retried


@pytest.mark.gen_test(timeout=20)
async def test_missing_key_raises_auth_error_without_a_request(fake):
    async with make_client(fake, key="") as client:
        with pytest.raises(TmdbAuthError):
            await client.images("movie", 1)
    assert fake.count() == 0


@pytest.mark.gen_test(timeout=20)
async def test_rate_limit_and_server_errors_are_retried(fake):
    fake.rate_limit_next(2, retry_after=0)
    fake.fail_next(1, 502)
    async with make_client(fake) as client:
        images = await client.images("tv", 1396)
    assert images["posters"]
    assert fake.count("/3/tv/1396/images") == 4


@pytest.mark.gen_test(timeout=20)
async def test_persistent_rate_limit_raises_with_retry_after(fake):
    fake.rate_limit_next(10, retry_after=0)
    async with make_client(fake, max_retries=2) as client:
        with pytest.raises(TmdbRateLimited) as info:
            await client.images("movie", 5)
    assert info.value.retry_after == 0
    assert fake.count("/3/movie/5/images") == 3


@pytest.mark.gen_test(timeout=20)
async def test_persistent_5xx_raises_unavailable(fake):
    fake.fail_next(10, 500)
    async with make_client(fake, max_retries=1) as client:
        with pytest.raises(TmdbUnavailable):
            await client.images("movie", 5)
    assert fake.count() == 2


@pytest.mark.gen_test(timeout=20)
async def test_connection_refused_raises_unavailable():
    config = replace(Config(), tmdb_api_key="k", tmdb_api_url="http://127.0.0.1:9/3")
    async with TmdbClient(config, max_retries=1, backoff_base=0.01) as client:
        with pytest.raises(TmdbUnavailable):
            await client.images("movie", 5)


@pytest.mark.gen_test(timeout=20)
async def test_download_writes_the_file_atomically(fake, tmp_path: Path):
    dest = tmp_path / "movies" / "posters" / "27205_poster.jpg"
    async with make_client(fake) as client:
        size = await client.download("w780", "/m27205p_en.jpg", dest)
    data = dest.read_bytes()
    assert size == len(data) > 0
    assert data[:2] == b"\xff\xd8" and data[-2:] == b"\xff\xd9"
    assert [p.name for p in dest.parent.iterdir()] == ["27205_poster.jpg"]
    assert fake.requests[-1][0] == "/t/p/w780/m27205p_en.jpg"


@pytest.mark.gen_test(timeout=20)
async def test_failed_download_leaves_no_file(fake, tmp_path: Path):
    dest = tmp_path / "x.jpg"
    async with make_client(fake) as client:
        with pytest.raises(TmdbNotFound):
            await client.download("w92", "/does-not-exist.gif", dest)  # the fake has no gif files
    assert list(tmp_path.iterdir()) == []


def test_image_url_and_validation(fake):
    client = make_client(fake)
    assert client.image_url("w1280", "/abc.jpg") == f"{fake.image_url}/w1280/abc.jpg"
    for size, path in [("w780", "../etc/passwd"), ("w780", "/a/b.jpg"), ("big", "/a.jpg"), ("w780", "abc.jpg")]:
        with pytest.raises(ValueError):
            client.image_url(size, path)


@pytest.mark.gen_test(timeout=20)
async def test_invalid_arguments_are_refused_before_any_request(fake):
    async with make_client(fake) as client:
        for kind, tmdb_id in [("film", 1), ("movie", 0), ("movie", -3), ("tv", True), ("tv", "12")]:
            with pytest.raises(ValueError):
                await client.images(kind, tmdb_id)
        with pytest.raises(ValueError):
            await client.season_images(1, -1)
    assert fake.count() == 0


def test_best_image_prefers_language_then_votes_then_width():
    entries = [
        FakeTmdb.entry("/fr.jpg", "fr", 9.9, 4000),
        FakeTmdb.entry("/none.jpg", None, 9.0, 4000),
        FakeTmdb.entry("/en_small.jpg", "en", 6.0, 500),
        FakeTmdb.entry("/en_big.jpg", "en", 6.0, 2000),
        FakeTmdb.entry("/en_low.jpg", "en", 2.0, 4000),
    ]
    assert best_image(entries)["file_path"] == "/en_big.jpg"
    assert best_image(entries, prefer=(None, "en"))["file_path"] == "/none.jpg"
    assert best_image([entries[0]])["file_path"] == "/fr.jpg"  # any language beats nothing
    assert best_image([]) is None
    assert best_image([{"file_path": "../../x.jpg", "iso_639_1": "en"}, {"nope": 1}]) is None

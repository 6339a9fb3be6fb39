"""TmdbClient against the fake TMDB on loopback: images, seasons, downloads, errors, retries."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from services.config import Config
from services.retry import RetryPolicy
from services.images.tmdb import (
    TmdbAuthError,
    TmdbClient,
    TmdbError,
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


def fast_retry(retries: int = 3) -> RetryPolicy:
    """`retries` retries of each kind (5xx/transport and 429) with millisecond waits."""
    return RetryPolicy(retries=retries, base_delay=0.01, max_delay=0.02, rate_limit_retries=retries,
                       default_retry_after=0.01, max_retry_after=5.0)


def make_client(fake: FakeTmdb, key: str | None = None, retries: int = 3, **kwargs) -> TmdbClient:
    config = replace(Config(), tmdb_api_key=fake.api_key if key is None else key,
                     tmdb_api_url=fake.api_url, tmdb_image_url=fake.image_url)
    kwargs.setdefault("retry", fast_retry(retries))
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
    async with make_client(fake, retries=2) as client:
        with pytest.raises(TmdbRateLimited) as info:
            await client.images("movie", 5)
    assert info.value.retry_after == 0
    assert fake.count("/3/movie/5/images") == 3


@pytest.mark.gen_test(timeout=20)
async def test_persistent_5xx_raises_unavailable(fake):
    fake.fail_next(10, 500)
    async with make_client(fake, retries=1) as client:
        with pytest.raises(TmdbUnavailable):
            await client.images("movie", 5)
    assert fake.count() == 2


@pytest.mark.gen_test(timeout=20)
async def test_connection_refused_raises_unavailable():
    config = replace(Config(), tmdb_api_key="k", tmdb_api_url="http://127.0.0.1:9/3")
    async with TmdbClient(config, retry=fast_retry(1)) as client:
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


# --- the numbers README "Images" promises ------------------------------------------------------
# Expected values are the README's words, never the code's constants.
README_RETRIES = 4  # "5xx, timeouts … and dropped connections are retried 4 times"
README_429_WAITS = 4  # "a 429 waits for its Retry-After … up to 4 times per request"
README_TIMEOUT_SECONDS = 30  # "(30 s per request)"


class VirtualSleep:
    """Records the client's waits instead of waiting."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.sleeps.append(seconds)


def default_client(fake: FakeTmdb, sleep: VirtualSleep) -> TmdbClient:
    """The client the image step builds (default policy), its waits recorded, not slept."""
    config = replace(Config(), tmdb_api_key=fake.api_key, tmdb_api_url=fake.api_url, tmdb_image_url=fake.image_url)
    return TmdbClient(config, sleep=sleep)


@pytest.mark.gen_test(timeout=20)
async def test_a_non_zero_retry_after_in_seconds_is_waited_exactly(fake):
    fake.rate_limit_next(2, retry_after=7)
    sleep = VirtualSleep()
    async with default_client(fake, sleep) as client:
        images = await client.images("movie", 603)
    assert images["posters"]
    assert sleep.sleeps == [7.0, 7.0]
    assert fake.count("/3/movie/603/images") == 3


@pytest.mark.gen_test(timeout=20)
async def test_a_retry_after_http_date_is_waited_until_that_date(fake):
    import email.utils
    import time

    fake.rate_limit_next(1, retry_after=email.utils.formatdate(time.time() + 20, usegmt=True))
    sleep = VirtualSleep()
    async with default_client(fake, sleep) as client:
        assert (await client.images("movie", 603))["posters"]
    [waited] = sleep.sleeps
    assert 15 <= waited <= 20  # whole seconds in the date; the request took a moment


@pytest.mark.gen_test(timeout=20)
async def test_a_retry_after_longer_than_30_s_waits_30_s(fake):
    fake.rate_limit_next(1, retry_after=3600)
    sleep = VirtualSleep()
    async with default_client(fake, sleep) as client:
        await client.images("movie", 603)
    assert sleep.sleeps == [30.0]  # README "Images": "never more than 30 s"


@pytest.mark.gen_test(timeout=20)
async def test_server_errors_are_retried_4_times_by_default(fake):
    fake.fail_next(100, 503)
    sleep = VirtualSleep()
    async with default_client(fake, sleep) as client:
        with pytest.raises(TmdbUnavailable):
            await client.images("movie", 603)
    assert fake.count() == README_RETRIES + 1
    assert len(sleep.sleeps) == README_RETRIES


@pytest.mark.gen_test(timeout=20)
async def test_a_429_is_waited_out_4_times_by_default_then_it_fails(fake):
    fake.rate_limit_next(100, retry_after=2)
    sleep = VirtualSleep()
    async with default_client(fake, sleep) as client:
        with pytest.raises(TmdbRateLimited) as caught:
            await client.images("movie", 603)
    assert fake.count() == README_429_WAITS + 1
    assert sleep.sleeps == [2.0] * README_429_WAITS
    assert caught.value.retry_after == 2.0


def test_a_request_times_out_after_30_s_by_default(fake):
    client = default_client(fake, VirtualSleep())
    assert client.timeout.total == README_TIMEOUT_SECONDS


# --- answers bounded after decompression (README "Images") ---------------------------------------
@pytest.mark.gen_test(timeout=60)
async def test_a_gzip_bomb_as_json_is_refused_at_the_limit_without_retrying(fake):
    fake.gzip_bomb_next(1)
    async with make_client(fake) as client:
        with pytest.raises(TmdbError) as caught:
            await client.images("movie", 603)
    assert str(caught.value) == ("TMDB's answer for /movie/603/images is larger than 2 MiB after decompression, "
                                 "the limit per answer; refused")
    assert fake.count() == 1


@pytest.mark.gen_test(timeout=60)
async def test_a_gzip_bomb_as_an_image_is_refused_and_leaves_no_file(fake, tmp_path: Path):
    fake.gzip_bomb_next(1)
    dest = tmp_path / "movies" / "posters" / "603_poster.jpg"
    async with make_client(fake) as client:
        with pytest.raises(TmdbError) as caught:
            await client.download("w780", "/m603p_en.jpg", dest)
    assert str(caught.value) == ("TMDB's image /t/p/w780/m603p_en.jpg is larger than 16 MiB after decompression, "
                                 "the limit per image; refused")
    assert list(dest.parent.iterdir()) == []  # the partial temp file is gone too
    assert fake.count() == 1

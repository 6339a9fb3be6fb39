"""HEAD on every GET route, a NUL in a static path, and an image
swapped for a symlink while it is served."""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path

import pytest

from tests.fakes.tmdb import jpeg_bytes
from tests.helpers.files import touch

GET_ROUTES = [
    "/api/trakt",
    "/api/trakt/user/profile",
    "/api/trakt/user/stats",
    "/api/trakt/user/history",  # two files in one answer, written after the headers
    "/api/trakt/user/watched?type=movies&page=1&limit=2",
    "/api/trakt/user/lists/best-movies",
    "/api/trakt/user/activity",
    "/api/trakt/search?q=star",
    "/api/trakt/sync",
    "/api/watching",
    "/api/images/available",
    "/api/openapi.json",
    "/api/trakt/user/lists/no-such-list",  # an error answers HEAD with the same status
    "/healthz",
    "/metrics",
    "/",
    "/static/style.css",
]


async def fetch(http_client, url, **kwargs):
    response = await http_client.fetch(url, raise_error=False, follow_redirects=False, **kwargs)
    assert response.code != 599, response.error
    return response


@pytest.mark.parametrize("encoding", ["identity", "gzip"])
@pytest.mark.parametrize("path", GET_ROUTES)
@pytest.mark.gen_test
async def test_head_answers_every_get_route_with_its_headers_and_no_body(http_client, base_url, path, encoding):
    # The bytes as sent: a gzip answer's Content-Length counts the compressed body.
    ask = {"headers": {"Accept-Encoding": encoding}, "decompress_response": False}
    got = await fetch(http_client, base_url + path, **ask)
    head = await fetch(http_client, base_url + path, method="HEAD", **ask)
    assert head.code == got.code
    assert head.body == b""
    assert head.headers["Content-Type"] == got.headers["Content-Type"]
    assert head.headers.get("Content-Encoding") == got.headers.get("Content-Encoding")
    if path not in ("/healthz", "/metrics", "/api/trakt/sync", "/api/watching"):  # these change by the second
        assert head.headers.get("Content-Length") == got.headers.get("Content-Length") == str(len(got.body))
        assert head.headers.get("Etag") == got.headers.get("Etag")


@pytest.mark.gen_test
async def test_head_on_a_post_only_route_is_405_and_allow_says_so(http_client, base_url):
    head = await fetch(http_client, base_url + "/api/images/reload-cache", method="HEAD")
    assert head.code == 405
    assert "HEAD" not in head.headers["Allow"] and "POST" in head.headers["Allow"]
    wrong = await fetch(http_client, base_url + "/healthz", method="DELETE")
    assert wrong.code == 405 and wrong.headers["Allow"] == "GET, HEAD"


@pytest.mark.gen_test
async def test_the_preflight_advertises_only_what_is_answered(http_client, base_url):
    preflight = await fetch(http_client, base_url + "/api/trakt/user/stats", method="OPTIONS")
    advertised = [m.strip() for m in preflight.headers["Access-Control-Allow-Methods"].split(",")]
    for method in advertised:
        answer = await fetch(http_client, base_url + "/api/trakt/user/stats", method=method,
                             allow_nonstandard_methods=True)
        assert answer.code in (200, 204), method


@pytest.mark.parametrize("path", [
    "/static/style.css%00",
    "/static/%00",
    "/static/js/app.js%00.map",
    "/static/..%00/etc/passwd",
])
@pytest.mark.gen_test
async def test_a_nul_in_a_static_path_is_404_without_a_traceback(http_client, base_url, path, caplog):
    with caplog.at_level(logging.ERROR):
        response = await fetch(http_client, base_url + path)
    assert response.code == 404
    assert b"Traceback" not in response.body
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


# --- /images/: the opened file is checked, not the path ---------------------------------------
@pytest.fixture
def planted(data_dir: Path, tmp_path: Path) -> dict:
    """A real poster, an outside secret, a symlinked folder and a symlinked file inside the images."""
    images = data_dir / "images"
    poster = jpeg_bytes(16, 24, 90)
    touch(images, "movies/posters/1_poster.jpg", poster)
    outside = tmp_path / "outside"
    touch(outside, "2_poster.jpg", b"outside secret")
    os.symlink(outside, images / "movies" / "backdrops")  # a whole folder leading out
    os.symlink(images / "movies" / "posters" / "1_poster.jpg", images / "movies" / "posters" / "3_poster.jpg")
    return {"images": images, "poster": poster, "outside": outside / "2_poster.jpg"}


@pytest.mark.parametrize("path", [
    "movies/backdrops/2_poster.jpg",   # through a symlinked folder
    "movies/posters/3_poster.jpg",     # a symlink, even to a file inside: never followed
])
@pytest.mark.gen_test
async def test_a_symlink_anywhere_on_the_way_is_404(http_client, base_url, planted, path):
    response = await fetch(http_client, f"{base_url}/images/{path}")
    assert response.code == 404
    assert json.loads(response.body)["error"] == "Image not found"


@pytest.mark.gen_test
async def test_a_fifo_in_place_of_an_image_is_404_not_a_hang(http_client, base_url, planted):
    os.mkfifo(planted["images"] / "movies" / "posters" / "4_poster.jpg")
    response = await fetch(http_client, f"{base_url}/images/movies/posters/4_poster.jpg", request_timeout=5)
    assert response.code == 404


@pytest.mark.gen_test
async def test_an_images_folder_that_is_itself_a_symlink_is_served(http_client, base_url, data_dir, tmp_path,
                                                                   services):
    elsewhere = tmp_path / "nas-images"
    touch(elsewhere, "movies/posters/5_poster.jpg", jpeg_bytes(8, 8, 10))
    os.symlink(elsewhere, data_dir / "images")
    response = await fetch(http_client, f"{base_url}/images/movies/posters/5_poster.jpg")
    assert response.code == 200 and response.body == (elsewhere / "movies/posters/5_poster.jpg").read_bytes()
    head = await fetch(http_client, f"{base_url}/images/movies/posters/5_poster.jpg", method="HEAD")
    assert head.code == 200 and head.body == b"" and head.headers["Content-Length"] == str(len(response.body))
    again = await fetch(http_client, f"{base_url}/images/movies/posters/5_poster.jpg",
                        headers={"If-None-Match": response.headers["Etag"]})
    assert again.code == 304


@pytest.mark.gen_test(timeout=60)
async def test_a_symlink_swapped_over_an_image_is_never_served(http_client, base_url, planted):
    """A local writer swaps, as fast as it can, a symlink to an outside file over a served image
    and the image back (both with rename). Every answer is the image or a 404; never the outside
    file, never a 500 (before: the outside file on 39 of ~10,300 requests and two 500s)."""
    target = planted["images"] / "movies" / "posters" / "1_poster.jpg"
    stop = threading.Event()

    def swapping() -> None:
        link, copy = target.with_name(".link.tmp"), target.with_name(".copy.tmp")
        while not stop.is_set():
            os.symlink(planted["outside"], link)
            os.replace(link, target)
            copy.write_bytes(planted["poster"])
            os.replace(copy, target)

    writer = threading.Thread(target=swapping, daemon=True)
    writer.start()
    answers: dict[int, int] = {}
    try:
        for _ in range(1500):
            response = await fetch(http_client, f"{base_url}/images/movies/posters/1_poster.jpg")
            answers[response.code] = answers.get(response.code, 0) + 1
            assert b"outside secret" not in response.body
            if response.code == 200:
                assert response.body == planted["poster"]
    finally:
        stop.set()
        writer.join()
    print("answers", answers)
    assert set(answers) <= {200, 404}, answers

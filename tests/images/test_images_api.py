"""The image routes over real HTTP: /api/images redirects and errors, random backdrop, the admin
reload and the /images/ file server (headers, 304, traversal)."""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlencode

import pytest
import tornado.web

from handlers.base import NotFoundHandler
from handlers.images import (AvailableImagesHandler, ImageFileHandler, ImageRedirectHandler, ImageReloadHandler,
                             RandomBackdropHandler)
from services.config import Config
from services.images.index import ImageIndex
from tests.fakes.tmdb import jpeg_bytes, png_bytes
from tests.helpers.files import touch

SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="2" height="3"><rect width="2" height="3"/></svg>'


@pytest.fixture
def images(tmp_path: Path) -> Path:
    root = tmp_path / "data" / "images"
    touch(root, "movies/posters/27205_poster.jpg", jpeg_bytes(16, 24, 90))
    touch(root, "movies/backdrops/27205_backdrop.png", png_bytes(4, 3, (1, 2, 3)))
    touch(root, "shows/posters/1399_poster.svg", SVG)
    touch(root, "shows/backdrops/1399_backdrop.jpg", jpeg_bytes(16, 8, 30))
    touch(root, "shows/posters/1399/1/season_1_poster.jpg", jpeg_bytes(8, 8, 200))
    touch(root, "movies/posters/.603_poster.jpg.ab12.part", b"half")
    touch(root, "manifest.json", b'{"movies": {"posters": ["550_poster.jpg"]}}')
    (tmp_path / "secret.txt").write_text("top secret")
    (tmp_path / "secret.jpg").write_bytes(b"outside jpg")
    os.symlink(tmp_path / "secret.jpg", root / "movies" / "posters" / "666_poster.jpg")
    return root


@pytest.fixture
def admin_token() -> str:
    return ""  # loopback clients may reload; a test parametrizes a token


@pytest.fixture
def image_config(images: Path, admin_token: str) -> Config:
    return replace(Config(), data_dir=images.parent, image_index_refresh_hours=0, admin_token=admin_token)


@pytest.fixture
def index(io_loop, image_config: Config, images: Path):
    built = ImageIndex(image_config, images)
    io_loop.run_sync(built.start)
    yield built
    io_loop.run_sync(built.stop)


@pytest.fixture
def app(image_config: Config, index: ImageIndex):
    """The image routes exactly as server.make_app wires them."""
    kwargs = {"config": image_config, "index": index}
    return tornado.web.Application([
        (r"/api/images/?", ImageRedirectHandler, kwargs),
        (r"/api/images/random-backdrop/?", RandomBackdropHandler, kwargs),
        (r"/api/images/available/?", AvailableImagesHandler, kwargs),
        (r"/api/images/reload-cache/?", ImageReloadHandler, kwargs),
        (r"/images/(.*)", ImageFileHandler, kwargs),
    ], default_handler_class=NotFoundHandler, default_handler_args={"config": image_config})


def images_url(base_url: str, **params) -> str:
    return f"{base_url}/api/images?{urlencode(params)}"


async def get(http_client, url: str, **kwargs):
    return await http_client.fetch(url, follow_redirects=False, raise_error=False, **kwargs)


def error_of(response) -> str:
    assert response.headers["Content-Type"].startswith("application/json")
    return json.loads(response.body)["error"]


# --- redirects ---------------------------------------------------------------------------
@pytest.mark.parametrize("params, location", [
    ({"type": "movies", "category": "posters", "tmdb_id": "27205"}, "/images/movies/posters/27205_poster.jpg"),
    ({"type": "movies", "category": "backdrops", "tmdb_id": "27205"}, "/images/movies/backdrops/27205_backdrop.png"),
    ({"type": "shows", "category": "posters", "tmdb_id": "1399"}, "/images/shows/posters/1399_poster.svg"),
    ({"type": "shows", "category": "backdrops", "tmdb_id": "1399"}, "/images/shows/backdrops/1399_backdrop.jpg"),
    ({"type": "shows", "category": "posters", "tmdb_id": "1399", "season": "1"},
     "/images/shows/posters/1399/1/season_1_poster.jpg"),
    # season 2 has no poster: the show poster
    ({"type": "shows", "category": "posters", "tmdb_id": "1399", "season": "2"}, "/images/shows/posters/1399_poster.svg"),
    # from the manifest only (the CDN has it)
    ({"type": "movies", "category": "posters", "tmdb_id": "550"}, "/images/movies/posters/550_poster.jpg"),
])
@pytest.mark.gen_test(timeout=10)
async def test_redirects_for_every_type_category_and_season(http_client, base_url, params, location):
    response = await get(http_client, images_url(base_url, **params))
    assert response.code == 302
    assert response.headers["Location"] == location
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "max-age" in response.headers["Cache-Control"]


@pytest.mark.gen_test(timeout=10)
async def test_redirect_answers_head_too(http_client, base_url):
    response = await get(http_client, images_url(base_url, type="movies", category="posters", tmdb_id=27205),
                         method="HEAD")
    assert response.code == 302 and response.headers["Location"].endswith("27205_poster.jpg")


@pytest.mark.parametrize("params, message", [
    ({"type": "movies", "category": "posters", "tmdb_id": "1"}, "Image not found"),
    ({"type": "movies", "category": "backdrops", "tmdb_id": "0"}, "Image not found"),
    ({"type": "shows", "category": "posters", "tmdb_id": "1396", "season": "1"}, "Image not found"),
    ({"type": "shows", "category": "backdrops", "tmdb_id": "27205"}, "Image not found"),
    ({"type": "movies", "category": "posters", "tmdb_id": "603"}, "Image not found"),  # only a .part file
])
@pytest.mark.gen_test(timeout=10)
async def test_not_indexed_is_404_json(http_client, base_url, params, message):
    response = await get(http_client, images_url(base_url, **params))
    assert response.code == 404
    assert error_of(response) == message
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("params, message", [
    ({}, "Missing required parameters: type, category, tmdb_id"),
    ({"type": "movies"}, "Missing required parameters: category, tmdb_id"),
    ({"type": "movies", "category": "posters"}, "Missing required parameters: tmdb_id"),
    ({"category": "posters", "tmdb_id": "1"}, "Missing required parameters: type"),
    ({"type": "movies", "category": "posters", "tmdb_id": ""}, "Missing required parameters: tmdb_id"),
    ({"type": "people", "category": "posters", "tmdb_id": "1"},
     "Invalid type parameter 'people': must be one of movies, shows"),
    ({"type": "movies", "category": "logos", "tmdb_id": "1"},
     "Invalid category parameter 'logos': must be one of posters, backdrops"),
    ({"type": "../../etc", "category": "posters", "tmdb_id": "1"},
     "Invalid type parameter '../../etc': must be one of movies, shows"),
    ({"type": "movies", "category": "posters", "tmdb_id": "abc"},
     "Invalid tmdb_id parameter 'abc': must be a whole number"),
    ({"type": "movies", "category": "posters", "tmdb_id": "-1"},
     "Invalid tmdb_id parameter '-1': must be a whole number"),
    ({"type": "movies", "category": "posters", "tmdb_id": "1.5"},
     "Invalid tmdb_id parameter '1.5': must be a whole number"),
    ({"type": "movies", "category": "posters", "tmdb_id": "1e3"},
     "Invalid tmdb_id parameter '1e3': must be a whole number"),
    ({"type": "movies", "category": "posters", "tmdb_id": " 12"},
     "Invalid tmdb_id parameter ' 12': must be a whole number"),
    ({"type": "movies", "category": "posters", "tmdb_id": "\uff11\uff12"},
     "Invalid tmdb_id parameter '\uff11\uff12': must be a whole number"),
    ({"type": "movies", "category": "posters", "tmdb_id": "../27205_poster.jpg"},
     "Invalid tmdb_id parameter '../27205_poster.jpg': must be a whole number"),
    ({"type": "movies", "category": "posters", "tmdb_id": "\x00"},
     "Invalid tmdb_id parameter '\\x00': must be a whole number"),  # the value as sent, never rewritten
    ({"type": "movies", "category": "posters", "tmdb_id": "12 "},
     "Invalid tmdb_id parameter '12 ': must be a whole number"),
    ({"type": "movies ", "category": "posters", "tmdb_id": "1"},
     "Invalid type parameter 'movies ': must be one of movies, shows"),
    ({"type": "movies", "category": "posters", "tmdb_id": "1", "maxage": " 7d"},
     "Invalid maxage parameter ' 7d': use a duration like 7d, 24h or 3600 (seconds)"),
    ({"type": "movies", "category": "posters", "tmdb_id": "1234567890"},
     "Invalid tmdb_id parameter '1234567890': must be a whole number"),
    ({"type": "movies", "category": "posters", "tmdb_id": "1", "season": "1"},
     "Invalid season parameter: season is only valid with type=shows&category=posters"),
    ({"type": "shows", "category": "backdrops", "tmdb_id": "1", "season": "1"},
     "Invalid season parameter: season is only valid with type=shows&category=posters"),
    ({"type": "shows", "category": "posters", "tmdb_id": "1", "season": "one"},
     "Invalid season parameter 'one': must be a whole number"),
    ({"type": "shows", "category": "posters", "tmdb_id": "1", "season": "10000"},
     "Invalid season parameter '10000': must be between 0 and 9999"),
    ({"type": "movies", "category": "posters", "tmdb_id": "1", "w": "15"},
     "Invalid w parameter '15': must be between 16 and 2000"),
    ({"type": "movies", "category": "posters", "tmdb_id": "1", "w": "2001"},
     "Invalid w parameter '2001': must be between 16 and 2000"),
    ({"type": "movies", "category": "posters", "tmdb_id": "1", "q": "0"},
     "Invalid q parameter '0': must be between 1 and 100"),
    ({"type": "movies", "category": "posters", "tmdb_id": "1", "q": "101"},
     "Invalid q parameter '101': must be between 1 and 100"),
    ({"type": "movies", "category": "posters", "tmdb_id": "1", "output": "gif"},
     "Invalid output parameter 'gif': must be one of webp, jpg, png"),
    ({"type": "movies", "category": "posters", "tmdb_id": "1", "maxage": "forever"},
     "Invalid maxage parameter 'forever': use a duration like 7d, 24h or 3600 (seconds)"),
    ({"type": "movies", "category": "posters", "tmdb_id": "1", "maxage": "7d&evil=1"},
     "Invalid maxage parameter '7d&evil=1': use a duration like 7d, 24h or 3600 (seconds)"),
])
@pytest.mark.gen_test(timeout=10)
async def test_bad_parameters_are_400_with_a_message(http_client, base_url, params, message):
    response = await get(http_client, images_url(base_url, **params))
    assert response.code == 400
    assert error_of(response) == message


@pytest.mark.gen_test(timeout=10)
async def test_proxy_parameters_reach_the_wsrv_url(http_client, base_url, index):
    index.config = replace(index.config, image_base_url="https://cdn.example.org/watch", image_proxy="wsrv")
    response = await get(http_client, images_url(base_url, type="shows", category="posters", tmdb_id=1399,
                                                 season=1, w=400, q=80, output="jpg", maxage="24h"))
    assert response.code == 302
    assert response.headers["Location"] == (
        "https://wsrv.nl/?url=https%3A%2F%2Fcdn.example.org%2Fwatch%2Fshows%2Fposters%2F1399%2F1%2F"
        "season_1_poster.jpg&w=400&output=jpg&q=80&maxage=24h")
    response = await get(http_client, images_url(base_url, type="movies", category="posters", tmdb_id=27205))
    assert response.headers["Location"] == (
        "https://wsrv.nl/?url=https%3A%2F%2Fcdn.example.org%2Fwatch%2Fmovies%2Fposters%2F27205_poster.jpg"
        "&output=webp&q=85&maxage=7d")


@pytest.mark.gen_test(timeout=10)
async def test_cdn_without_proxy_redirects_to_the_cdn(http_client, base_url, index):
    index.config = replace(index.config, image_base_url="https://cdn.example.org/watch")
    response = await get(http_client, images_url(base_url, type="movies", category="posters", tmdb_id=27205, w=400))
    assert response.headers["Location"] == "https://cdn.example.org/watch/movies/posters/27205_poster.jpg"


# --- random backdrop -------------------------------------------------------------------------
@pytest.mark.gen_test(timeout=10)
async def test_random_backdrop(http_client, base_url):
    seen = set()
    for _ in range(30):
        response = await get(http_client, f"{base_url}/api/images/random-backdrop")
        assert response.code == 200
        assert response.headers["Cache-Control"] == "no-store"
        body = json.loads(response.body)
        seen.add((body["type"], body["tmdbId"], body["url"]))
    assert seen == {("movies", 27205, "/images/movies/backdrops/27205_backdrop.png"),
                    ("shows", 1399, "/images/shows/backdrops/1399_backdrop.jpg")}


@pytest.mark.gen_test(timeout=10)
async def test_random_backdrop_is_404_when_none_is_indexed(http_client, base_url, images, index):
    for path in images.glob("*/backdrops/*"):
        path.unlink()
    await index.reload()
    response = await get(http_client, f"{base_url}/api/images/random-backdrop")
    assert response.code == 404 and error_of(response) == "No backdrops indexed"


# --- reload-cache ------------------------------------------------------------------------------
@pytest.mark.gen_test(timeout=10)
async def test_reload_cache_picks_up_a_new_file(http_client, base_url, images):
    url = images_url(base_url, type="movies", category="posters", tmdb_id=680)
    assert (await get(http_client, url)).code == 404
    touch(images, "movies/posters/680_poster.jpg", jpeg_bytes(8, 8, 10))
    assert (await get(http_client, url)).code == 404  # no disk access per request
    response = await get(http_client, f"{base_url}/api/images/reload-cache", method="POST", body=b"")
    assert response.code == 200
    assert json.loads(response.body) == {
        "success": True, "message": "Image index reloaded successfully",
        "stats": {"moviePosters": 4, "movieBackdrops": 1, "showPosters": 1, "showBackdrops": 1, "seasonPosters": 1},
    }
    response = await get(http_client, url)
    assert response.code == 302 and response.headers["Location"] == "/images/movies/posters/680_poster.jpg"


@pytest.mark.parametrize("admin_token", ["s3cret-token"])
@pytest.mark.gen_test(timeout=10)
async def test_reload_cache_needs_the_admin_token_when_one_is_set(http_client, base_url, admin_token):
    url = f"{base_url}/api/images/reload-cache"
    missing = await get(http_client, url, method="POST", body=b"")
    wrong = await get(http_client, url, method="POST", body=b"", headers={"Authorization": "Bearer nope"})
    right = await get(http_client, url, method="POST", body=b"", headers={"Authorization": f"Bearer {admin_token}"})
    assert missing.code == 401 and "Missing admin token" in error_of(missing)
    assert wrong.code == 403 and error_of(wrong) == "Invalid admin token"
    assert right.code == 200 and json.loads(right.body)["success"] is True


@pytest.mark.gen_test(timeout=10)
async def test_reload_cache_refuses_get(http_client, base_url):
    response = await get(http_client, f"{base_url}/api/images/reload-cache")
    assert response.code == 405


# --- /images/ files ----------------------------------------------------------------------------
@pytest.mark.parametrize("path, content_type", [
    ("movies/posters/27205_poster.jpg", "image/jpeg"),
    ("movies/backdrops/27205_backdrop.png", "image/png"),
    ("shows/posters/1399_poster.svg", "image/svg+xml"),
    ("shows/posters/1399/1/season_1_poster.jpg", "image/jpeg"),
])
@pytest.mark.gen_test(timeout=10)
async def test_image_files_are_served_with_long_cache_headers(http_client, base_url, images, path, content_type):
    response = await get(http_client, f"{base_url}/images/{path}")
    assert response.code == 200
    assert response.body == (images / path).read_bytes()
    assert response.headers["Content-Type"] == content_type
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert "sandbox" in response.headers["Content-Security-Policy"]
    again = await get(http_client, f"{base_url}/images/{path}", headers={"If-None-Match": response.headers["Etag"]})
    assert again.code == 304


@pytest.mark.gen_test(timeout=10)
async def test_redirect_target_is_served(http_client, base_url):
    response = await http_client.fetch(images_url(base_url, type="shows", category="posters", tmdb_id=1399, season=1))
    assert response.code == 200 and response.headers["Content-Type"] == "image/jpeg"


@pytest.mark.parametrize("path", [
    "movies/posters/603_poster.jpg",                # not there
    "movies/posters/.603_poster.jpg.ab12.part",     # a half-written download
    "manifest.json",                                # not an image
    "movies/posters",                               # a folder
    "movies/posters/",
    "",
    "movies/posters/666_poster.jpg",                # a symlink that leads outside
    "..%2fsecret.jpg",
    "%2e%2e/secret.jpg",
    "%2e%2e/%2e%2e/secret.txt",
    "movies/..%2f..%2f..%2fsecret.jpg",
    "movies/%2e%2e/%2e%2e/%2e%2e/secret.jpg",
    "..%5c..%5csecret.jpg",
    "movies/posters/27205_poster.jpg%00.png",
    "%2fetc%2fpasswd",
    "/etc/passwd",
])
@pytest.mark.gen_test(timeout=10)
async def test_nothing_outside_the_image_folder_or_not_an_image_is_served(http_client, base_url, path):
    response = await get(http_client, f"{base_url}/images/{path}")
    assert response.code in (403, 404)
    assert b"secret" not in response.body
    assert json.loads(response.body)["error"]


@pytest.mark.parametrize("raw_path", [
    "/images/../../secret.jpg",
    "/images/movies/../../../secret.txt",
    "/images/./../secret.jpg",
    "/images/..\\..\\secret.jpg",
])
@pytest.mark.gen_test(timeout=10)
async def test_raw_dot_dot_requests_are_refused(http_server, http_port, raw_path):
    reader, writer = await asyncio.open_connection("127.0.0.1", http_port)
    writer.write(f"GET {raw_path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    status_line = raw.split(b"\r\n", 1)[0]
    assert status_line.split()[1] in (b"400", b"403", b"404")
    assert b"secret" not in raw.split(b"\r\n\r\n", 1)[1]



@pytest.mark.gen_test(timeout=10)
async def test_available_lists_every_indexed_id_and_follows_reloads(http_client, base_url, images):
    response = await get(http_client, f"{base_url}/api/images/available")
    assert response.code == 200
    available = json.loads(response.body)
    assert 27205 in available["movies"]["posters"] and 550 in available["movies"]["posters"]  # disk + manifest
    assert available["movies"]["backdrops"] == [27205]
    assert available["shows"] == {"posters": [1399], "backdrops": [1399], "seasons": {"1399": [1]}}
    again = await get(http_client, f"{base_url}/api/images/available",
                      headers={"If-None-Match": response.headers["Etag"]})
    assert again.code == 304
    touch(images, "shows/posters/1399/2/season_2_poster.jpg", jpeg_bytes(8, 8, 10))
    assert (await get(http_client, f"{base_url}/api/images/reload-cache", method="POST", body=b"")).code == 200
    reloaded = json.loads((await get(http_client, f"{base_url}/api/images/available")).body)
    assert reloaded["shows"]["seasons"] == {"1399": [1, 2]}

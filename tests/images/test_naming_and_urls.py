"""services/images/naming.py and urls.py: the README's file names and image URLs, in one place each."""

from __future__ import annotations

from dataclasses import replace

import pytest

from services.config import Config
from services.images import naming, urls


def test_paths_follow_the_readme_data_folder():
    assert naming.title_path("movies", "posters", 27205, "jpg") == "movies/posters/27205_poster.jpg"
    assert naming.title_path("movies", "backdrops", 27205, "png") == "movies/backdrops/27205_backdrop.png"
    assert naming.title_path("shows", "posters", 1399, "webp") == "shows/posters/1399_poster.webp"
    assert naming.title_path("shows", "backdrops", 1399, "svg") == "shows/backdrops/1399_backdrop.svg"
    assert naming.season_path(1399, 1, "jpg") == "shows/posters/1399/1/season_1_poster.jpg"
    assert naming.season_folder(1399, 0) == "shows/posters/1399/0"
    assert (naming.title_stem("posters", 603), naming.season_stem(5)) == ("603_poster", "season_5_poster")


@pytest.mark.parametrize("name, category, parsed", [
    ("27205_poster.jpg", "posters", (27205, "jpg")),
    ("27205_poster.JPEG", "posters", (27205, "jpeg")),
    ("27205_backdrop.avif", "backdrops", (27205, "avif")),
    ("27205_backdrop.jpg", "posters", None),   # a backdrop is not a poster
    ("27205_poster.jpg\n", "posters", None),   # a trailing newline is not a file name we wrote
    ("27205_poster.exe", "posters", None),
    ("x27205_poster.jpg", "posters", None),
    ("../27205_poster.jpg", "posters", None),
    (None, "posters", None),
])
def test_title_file_names_are_read_strictly(name, category, parsed):
    assert naming.parse_title_file(name, category) == parsed


def test_season_file_names_must_match_their_season():
    assert naming.parse_season_file("season_2_poster.png", 2) == "png"
    assert naming.parse_season_file("season_2_poster.png", 3) is None
    assert naming.parse_season_file("season_2_poster.png\n", 2) is None
    assert naming.parse_season_file("season_2_backdrop.png", 2) is None


def config(**changes) -> Config:
    return replace(Config(), **changes)


def test_served_urls_local_cdn_and_proxy():
    path = "movies/posters/27205_poster.jpg"
    assert urls.served(config(), path, w=400) == "/images/movies/posters/27205_poster.jpg"
    assert urls.served(config(image_proxy="wsrv"), path) == "/images/movies/posters/27205_poster.jpg"  # never local
    cdn = config(image_base_url="https://cdn.example.org/img")
    assert urls.served(cdn, path, w=400) == "https://cdn.example.org/img/movies/posters/27205_poster.jpg"
    proxied = replace(cdn, image_proxy="wsrv")
    assert urls.served(proxied, path) == ("https://wsrv.nl/?url=https%3A%2F%2Fcdn.example.org%2Fimg%2Fmovies%2F"
                                          "posters%2F27205_poster.jpg&output=webp&q=85&maxage=7d")
    assert urls.served(proxied, path, w=300, q=70, output="png", maxage="24h").endswith(
        "27205_poster.jpg&w=300&output=png&q=70&maxage=24h")


def test_tmdb_urls_and_the_proxy_for_them():
    tmdb = urls.tmdb_file("https://image.tmdb.org/t/p/", "w1280", "/abc.jpg")
    assert tmdb == "https://image.tmdb.org/t/p/w1280/abc.jpg"
    assert urls.proxied(config(), tmdb, 1280) == tmdb
    assert urls.proxied(config(image_proxy="wsrv"), tmdb, 1280) == (
        "https://wsrv.nl/?url=https%3A%2F%2Fimage.tmdb.org%2Ft%2Fp%2Fw1280%2Fabc.jpg&w=1280&output=webp&q=85&maxage=7d")


def test_the_redirect_route_url():
    assert urls.api_redirect("shows", "backdrops", 1399) == "/api/images?type=shows&category=backdrops&tmdb_id=1399"
    assert urls.api_redirect("movies", "backdrops", 603, w=780) == (
        "/api/images?type=movies&category=backdrops&tmdb_id=603&w=780")

"""Query parameters: one declaration (services/query.py) gives one behaviour, and input with a
trailing newline never slips past a pattern anchored with `$`."""

from __future__ import annotations

import json
from dataclasses import replace
from urllib.parse import quote

import pytest

from services.data import layout
from services.errors import InvalidRequest
from services.query import Param, Query, Requires
from tests.helpers.files import touch

PICTURE = Query(
    (Param("type", "", required=True, choices=("movies", "shows")),
     Param("season", "", type="integer", minimum=0, maximum=99),
     Param("maxage", "", pattern=r"[1-9][0-9]{0,5}[mhdwy]?", pattern_hint="use a duration like 7d")),
    rules=(Requires("season", {"type": "shows"}, group="picture"),),
)


def parse(query: Query, **arguments: str | list[str]) -> dict:
    return query.parse({name: [v.encode() for v in (value if isinstance(value, list) else [value])]
                        for name, value in arguments.items()})


def error(query: Query, **arguments: str | list[str]) -> str:
    with pytest.raises(InvalidRequest) as raised:
        parse(query, **arguments)
    return str(raised.value)


def test_blank_optional_parameters_are_the_same_as_absent():
    assert parse(PICTURE, type="movies", season="", maxage="") == {"type": "movies", "season": None, "maxage": None}
    assert parse(PICTURE, type="movies") == {"type": "movies", "season": None, "maxage": None}


def test_a_blank_required_parameter_is_missing():
    assert error(PICTURE, type="") == "Missing required parameters: type"


def test_a_parameter_sent_twice_is_refused_not_guessed():
    assert error(PICTURE, type="shows", season=["1", ""]) == "Invalid season parameter: sent 2 times, send it once"


def test_a_rule_between_parameters_is_checked_after_each_value():
    assert parse(PICTURE, type="shows", season="3")["season"] == 3
    assert error(PICTURE, type="movies", season="3") == "Invalid season parameter: season is only valid with type=shows"
    assert error(PICTURE, type="movies", season="x") == "Invalid season parameter 'x': must be a whole number"


@pytest.mark.parametrize("value", ["7d\n", "7d\r\n", "\n7d", "7d\x00"])
def test_a_pattern_matches_the_whole_value_not_up_to_a_trailing_newline(value):
    assert error(PICTURE, type="movies", maxage=value) == f"Invalid maxage parameter {value!r}: use a duration like 7d"


@pytest.mark.parametrize("slug", ["best\n", "a\n", "best\r", "\nbest", "best\x00"])
def test_a_list_slug_with_a_newline_is_not_safe(slug):
    assert not layout.is_safe_slug(slug)
    with pytest.raises(ValueError):
        layout.list_items_endpoint(slug)  # so a slug from Trakt never becomes a file name


# --- over HTTP, the real app ---------------------------------------------------------------------

@pytest.fixture
def data_dir(account_dir):
    """The hand-written account plus a list file whose name holds a newline (`a\\n_items.json`)."""
    lists = account_dir / layout.LISTS_DIR
    (lists / f"a\n{layout.LIST_ITEMS_SUFFIX}").write_text(json.dumps(
        {"metadata": {"endpoint": "user/lists/a_items.json", "count": 0}, "data": []}))
    return account_dir


@pytest.fixture
def config(config):
    """The hand-written account with one image, served through the wsrv proxy."""
    touch(config.data_dir / "images", "movies/posters/27205_poster.jpg")
    return replace(config, image_base_url="https://cdn.example.org/watch", image_proxy="wsrv")


async def fetch(http_client, base_url: str, path: str):
    response = await http_client.fetch(base_url + path, raise_error=False, follow_redirects=False)
    body = json.loads(response.body) if response.body and response.code != 302 else None
    return response, body


@pytest.mark.gen_test(timeout=10)
async def test_wsrv_maxage_with_a_trailing_newline_is_400_not_500(http_client, base_url):
    image = "/api/images?type=movies&category=posters&tmdb_id=27205"
    response, body = await fetch(http_client, base_url, image + "&maxage=7d%0a")
    assert response.code == 400
    assert body == {"error": "Invalid maxage parameter '7d\\n': use a duration like 7d, 24h or 3600 (seconds)"}
    response, _ = await fetch(http_client, base_url, image + "&maxage=7d")
    assert response.code == 302 and response.headers["Location"].endswith("&maxage=7d")


@pytest.mark.gen_test(timeout=10)
async def test_a_list_id_with_a_trailing_newline_is_400_and_no_file_is_read(http_client, base_url):
    """A file named `a\\n_items.json` lies in the lists folder: were the slug check fooled by the
    newline, the data load would take it and the route would serve it (200)."""
    response, body = await fetch(http_client, base_url, "/api/trakt/user/lists/a%0a")
    assert response.code == 400
    assert body == {"error": "Invalid list id 'a\\n': use a list slug or numeric Trakt id"}


@pytest.mark.parametrize("path, expected", [
    # blank optional parameters mean "not given": the same answer as without them
    ("/api/trakt/user/watchlist?type=", "/api/trakt/user/watchlist"),
    ("/api/trakt/search?q=star&limit=", "/api/trakt/search?q=star"),
    ("/api/trakt/user/history?type=movies&page=&limit=", "/api/trakt/user/history?type=movies"),
])
@pytest.mark.gen_test(timeout=10)
async def test_blank_is_answered_as_absent(http_client, base_url, path, expected):
    response, body = await fetch(http_client, base_url, path)
    _, plain = await fetch(http_client, base_url, expected)
    assert response.code == 200 and body == plain


@pytest.mark.parametrize("path, message", [
    ("/api/trakt/user/watchlist?type=movies&type=shows", "Invalid type parameter: sent 2 times, send it once"),
    ("/api/trakt/search?q=star&limit=" + quote("\x85") + "&limit=", "Invalid limit parameter: sent 2 times, send it once"),
    ("/api/images?type=movies&category=posters&tmdb_id=0&season=0",
     "Invalid season parameter: season is only valid with type=shows&category=posters"),
    ("/api/trakt/search?q=%20%0a", "Missing search query: q must not be empty"),
])
@pytest.mark.gen_test(timeout=10)
async def test_wrong_input_is_a_400_that_says_what_is_wrong(http_client, base_url, path, message):
    response, body = await fetch(http_client, base_url, path)
    assert response.code == 400 and body == {"error": message}

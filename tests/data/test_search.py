"""Search: ranking, accent folding, sources, filters and validation."""

from __future__ import annotations

import json

import pytest
from tornado.httpclient import HTTPClientError

from services.data.search import Catalogue, SearchIndex, normalize
from services.data.snapshots import dumps


async def search(http_client, base_url, query: str):
    try:
        response = await http_client.fetch(f"{base_url}/api/trakt/search?{query}")
    except HTTPClientError as exc:
        response = exc.response
    return response.code, json.loads(response.body)


def titles(document, kind="movies"):
    return [row[row["type"]]["title"] for row in document["results"][kind]]


def test_normalize_folds_case_accents_and_punctuation():
    assert normalize("Amélie") == "amelie"
    assert normalize("Spider-Man: No Way Home") == "spider man no way home"
    assert normalize("  ÉCOLE  ") == "ecole"
    assert normalize("Ça") == "ca"


@pytest.mark.gen_test
async def test_ranking_is_exact_then_prefix_then_word_then_substring(http_client, base_url):
    code, document = await search(http_client, base_url, "q=star&type=movies")
    assert code == 200
    assert titles(document) == ["Star", "Star Wars", "Lone Star", "Mustard Seed"]
    assert [row["score"] for row in document["results"]["movies"]] == ["exact", "prefix", "word", "substring"]
    assert document["total_results"] == 4
    assert document["query"] == "star" and document["type"] == "movies"


@pytest.mark.gen_test
async def test_accents_and_case_are_ignored(http_client, base_url):
    for query in ("amelie", "AMELIE", "Amélie", "am%C3%A9lie"):
        code, document = await search(http_client, base_url, f"q={query}")
        assert code == 200
        assert titles(document) == ["Amélie"], query
    code, document = await search(http_client, base_url, "q=spider%20man")
    assert titles(document) == ["Spider-Man"]


@pytest.mark.gen_test
async def test_one_row_per_title_with_every_source(http_client, base_url):
    _, document = await search(http_client, base_url, "q=amelie")
    [row] = document["results"]["movies"]
    assert row["sources"] == ["watched", "history", "list"]
    assert row["source"] == "watched"
    assert row["lists"] == [{"name": "Best Movies", "slug": "best-movies"}]
    assert row["plays"] == 2
    assert row["last_watched_at"] == "2026-10-31T21:00:00.000Z"
    assert row["rating"] == 9
    assert row["movie"]["ids"]["tmdb"] == 10001
    _, document = await search(http_client, base_url, "q=spider")
    [row] = document["results"]["movies"]
    assert row["sources"] == ["watchlist"] and row["rank"] == 1 and row["listed_at"].startswith("2026-09-01")


@pytest.mark.gen_test
async def test_type_filter_and_shows(http_client, base_url):
    _, everything = await search(http_client, base_url, "q=dark")
    assert titles(everything, "shows") == ["Dark"] and everything["results"]["movies"] == []
    _, movies_only = await search(http_client, base_url, "q=dark&type=movies")
    assert movies_only["results"] == {"movies": [], "shows": []} and movies_only["total_results"] == 0
    _, bad = await search(http_client, base_url, "q=breaking&type=shows")
    [row] = bad["results"]["shows"]
    assert row["type"] == "show" and row["sources"] == ["watched", "history"]


@pytest.mark.gen_test
async def test_limit_caps_rows_but_total_counts_all(http_client, base_url):
    _, document = await search(http_client, base_url, "q=star&limit=2")
    assert titles(document) == ["Star", "Star Wars"]
    assert document["total_results"] == 4


@pytest.mark.parametrize("query,message", [
    ("", "q must not be empty"), ("q=", "q must not be empty"), ("q=%20%20", "q must not be empty"),
    ("q=star&type=episodes", "must be one of movies, shows, all"),
    ("q=star&limit=0", "between 1 and 500"), ("q=star&limit=501", "between 1 and 500"),
    ("q=star&limit=ten", "whole number"), ("q=" + "a" * 201, "too long"),
])
@pytest.mark.gen_test
async def test_bad_search_parameters_are_400(http_client, base_url, query, message):
    code, document = await search(http_client, base_url, query)
    assert code == 400
    assert message in document["error"]


@pytest.mark.gen_test
async def test_no_match_is_an_empty_answer(http_client, base_url):
    code, document = await search(http_client, base_url, "q=zzzz")
    assert code == 200
    assert document["results"] == {"movies": [], "shows": []} and document["total_results"] == 0


def test_index_on_a_large_generated_catalogue_finds_every_class():
    catalogue = Catalogue()
    for i in range(20000):
        catalogue.entry("movie", {"title": f"Film {i} of the Night", "year": 2000, "ids": {"trakt": i}}).add_source("watched")
    catalogue.entry("movie", {"title": "Night", "year": 1990, "ids": {"trakt": -1}}).add_source("history")
    index = SearchIndex(catalogue)
    result = index.search("night", "movies", 3)
    assert result["total_results"] == 20001
    rows = result["results"]["movies"]
    assert rows[0]["movie"]["title"] == "Night" and rows[0]["score"] == "exact"
    assert [r["score"] for r in rows[1:]] == ["word", "word"]
    assert index.search("ilm 1999", "movies", 5)["total_results"] == 11  # 1999 and 19990-19999
    assert index.search("ilm 1999 of", "movies", 5)["total_results"] == 1


@pytest.mark.gen_test
async def test_a_title_only_rated_is_not_a_result_and_never_breaks_search(http_client, base_url, data_dir,
                                                                          services):
    from services.data import layout
    from services.data.snapshots import dumps

    ratings = json.loads((data_dir / layout.RATINGS).read_text())
    ratings["data"].append({"rated_at": "2026-01-01T00:00:00.000Z", "rating": 4, "type": "movie",
                            "movie": {"title": "Starfish Only Rated", "year": 2003, "ids": {"trakt": 999}}})
    ratings["data"].append({"rating": 7, "type": "movie", "movie": {"title": "Broken Ids", "ids": ["x"]}})
    (data_dir / layout.RATINGS).write_text(dumps(ratings))
    await services.store.reload()
    code, document = await search(http_client, base_url, "q=star")
    assert code == 200
    assert "Starfish Only Rated" not in titles(document)
    assert titles(document) == ["Star", "Star Wars", "Lone Star", "Mustard Seed"]


@pytest.mark.gen_test
async def test_control_characters_are_searched_not_dropped(http_client, base_url):
    # Tornado would silently drop them (turning "\x10" into a blank query); they are text that
    # matches nothing. White space alone, including the separators \x1c-\x1f, is blank: 400.
    code, document = await search(http_client, base_url, "q=%10")
    assert code == 200 and document["total_results"] == 0 and document["query"] == "\x10"
    code, document = await search(http_client, base_url, "q=%1F%20")
    assert code == 400 and "must not be empty" in document["error"]


def test_the_served_bytes_are_the_answer_objects_written_as_json():
    """The handler writes `search_json`, joined from text each title keeps; it must say exactly
    what the objects say, whatever a title holds, and each row must carry this query's score."""
    catalogue = Catalogue()
    odd_titles = ['Quote " and \\ back', "Slash / Amélie", "Tab\tand NUL\x00score\x00", "Emoji 🎬 film",
                  "日本 映画", "Plain film"]
    for number, title in enumerate(odd_titles, 1):
        entry = catalogue.entry("movie", {"title": title, "year": 2000 + number, "ids": {"trakt": number}})
        entry.add_source("watched")
        entry.plays, entry.last_watched_at = number, "2025-01-02T03:04:05.000Z"
    show = catalogue.entry("show", {"title": "Film Club", "year": None, "ids": {"trakt": 99, "slug": "film-club"}})
    show.add_source("list")
    show.add_list({"name": 'My "best"', "slug": "best"})
    show.rating = 8
    odd = catalogue.entry("movie", {"title": "Odd film", "year": float("nan"), "ids": {"trakt": 100}})
    odd.add_source("history")
    index = SearchIndex(catalogue)
    # "film" is exact for nobody, a prefix of "Film Club", a word of three movies and inside no
    # other; asking twice shows a title's kept text takes each query's score.
    for query, kind, limit in (("film", "all", 50), ("film", "movies", 2), ("plain", "movies", 5),
                               ("plain film", "all", 5), ("ilm", "all", 50), ("club", "shows", 5), ("zzz", "all", 5)):
        served = index.search_json(query, kind, limit)
        assert served == dumps(index.search(query, kind, limit)).encode()
        parsed = json.loads(served)
        assert parsed["query"] == query and parsed["type"] == kind
    first = json.loads(index.search_json("plain film", "movies", 1))["results"]["movies"][0]
    again = json.loads(index.search_json("film", "movies", 50))["results"]["movies"]
    assert first["score"] == "exact" and first["movie"]["title"] == "Plain film"
    assert {row["movie"]["title"]: row["score"] for row in again}["Plain film"] == "word"
    [club] = json.loads(index.search_json("film", "shows", 5))["results"]["shows"]
    assert club == {"type": "show", "show": {"title": "Film Club", "year": None, "ids": {"trakt": 99, "slug": "film-club"}},
                    "source": "list", "sources": ["list"], "score": "prefix",
                    "lists": [{"name": 'My "best"', "slug": "best"}], "rating": 8}
    titles_found = {row["movie"]["title"] for row in json.loads(index.search_json("film", "movies", 50))["results"]["movies"]}
    assert titles_found == {"Emoji 🎬 film", "Plain film", "Odd film"}
    assert b'"year":NaN' in index.search_json("odd", "movies", 5)  # kept as read, as the objects keep it

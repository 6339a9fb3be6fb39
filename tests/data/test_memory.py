"""What a load keeps for every title and every item is kept small (README "Performance"), and
the smaller forms answer exactly what the objects did, including objects JSON text cannot carry
through ujson unchanged."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from services.data import layout
from services.data.dataset import build_dataset
from services.data.search import Catalogue, SearchIndex
from services.data.snapshots import dumps

PLAIN = {"title": "Amélie / Le Fabuleux Destin", "year": 2001,
         "ids": {"trakt": 7, "slug": "amelie-2001", "imdb": "tt0211915", "tmdb": 194, "tvrage": None}}
HUGE_ID = {"title": "Huge Id", "year": 1999, "ids": {"trakt": 2**70, "slug": "huge-id"}}
# NaN does not read back equal from JSON text: this object must be kept as it is.
ODD = {"title": "Odd Year", "year": float("nan"), "ids": {"trakt": 9}}


def test_a_search_row_carries_the_title_object_exactly_as_read():
    catalogue = Catalogue()
    for media in (PLAIN, HUGE_ID, ODD):
        entry = catalogue.entry("movie", media if media is ODD else json.loads(json.dumps(media)))
        entry.add_source("watched")
        entry.add_source("history")
        entry.add_source("watched")  # once only
    index = SearchIndex(catalogue)
    [amelie] = index.search("amelie", "movies")["results"]["movies"]
    assert amelie["movie"] == PLAIN
    assert amelie["sources"] == ["watched", "history"]
    [huge] = index.search("huge id", "movies")["results"]["movies"]
    assert huge["movie"] == HUGE_ID and huge["movie"]["ids"]["trakt"] == 2**70
    # Kept as text when that reads back equal, otherwise as the object.
    kept = {entry.media_object["title"]: entry.media for entry in catalogue.entries.values()}
    assert isinstance(kept[PLAIN["title"]], str) and isinstance(kept["Huge Id"], str)
    assert kept["Odd Year"] is ODD or kept["Odd Year"] == ODD
    [odd] = index.search("odd year", "movies")["results"]["movies"]
    assert odd["movie"]["year"] is ODD["year"]  # the very object: NaN equals nothing else


def test_titles_with_the_same_sources_share_one_tuple_and_a_list_is_counted_once():
    catalogue = Catalogue()
    first = catalogue.entry("movie", {"title": "One", "ids": {"trakt": 1}})
    second = catalogue.entry("movie", {"title": "Two", "ids": {"trakt": 2}})
    info = {"name": "Best", "slug": "best"}
    for entry in (first, second):
        entry.add_source("watched")
        entry.add_source("list")
        entry.add_list(info)
        entry.add_list(info)
    assert first.sources is second.sources
    [row] = SearchIndex(catalogue).search("one", "movies")["results"]["movies"]
    assert row["sources"] == ["watched", "list"] and row["lists"] == [info]


def test_the_insights_top_titles_are_the_objects_of_the_files():
    movies = [{"id": n, "watched_at": f"2025-03-0{n}T20:00:00.000Z", "action": "watch", "type": "movie",
               "movie": media} for n, media in ((1, PLAIN), (2, HUGE_ID), (3, PLAIN))]
    files = {layout.HISTORY["movies"]: dumps({"metadata": {"endpoint": "history/movies"},
                                              "data": movies[::-1]}).encode()}
    dataset = build_dataset(None, files, is_demo=False, zone="UTC")
    top = json.loads(b"".join(dataset.insights_bodies[2025].chunks))["top_movies"]
    assert [(row["movie"], row["plays"]) for row in top] == [(PLAIN, 2), (HUGE_ID, 1)]
    assert dataset.insights.summary({}, datetime(2025, 3, 3, 21, tzinfo=timezone.utc))["plays_this_year"] == 3


def test_item_offsets_take_four_bytes_each():
    rows = [{"plays": 1, "movie": {"title": f"Film {i}", "ids": {"trakt": i}}} for i in range(50)]
    raw = dumps({"metadata": {"endpoint": "watched/movies", "count": 50}, "data": rows}).encode()
    array_file = build_dataset(None, {layout.WATCHED["movies"]: raw}, is_demo=False, zone="UTC").arrays[
        layout.WATCHED["movies"]]
    assert array_file.offsets.itemsize == 4 and array_file.count == 50
    assert json.loads(b"".join(array_file.page(2, 10).chunks))["data"] == rows[10:20]

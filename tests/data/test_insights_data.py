"""The data behind the insights: the demo account carries it, the sync asks for it once per title,
the fake Trakt serves it only when asked, and the importer keeps what the original app had."""

from __future__ import annotations

import json
from pathlib import Path

from services.data import layout
from services.data.dataset import build_dataset
from services.data.importer import import_folder
from services.data.snapshots import DataFolder
from services.trakt.endpoints import FIXED_ENDPOINTS
from tests.fakes.trakt import FakeAccount, FakeTrakt

DEMO = Path(__file__).resolve().parents[2] / "data" / "demo"


def demo(endpoint: str) -> list:
    return json.loads((DEMO / endpoint).read_text())["data"]


def test_every_demo_movie_and_show_has_runtime_genres_country_and_language():
    titles = [row["movie"] for row in demo(layout.WATCHED["movies"])] + [row["show"] for row in
                                                                          demo(layout.WATCHED["shows"])]
    for title in titles:
        assert isinstance(title["runtime"], int) and title["runtime"] > 0, title["title"]
        assert title["genres"] and all(isinstance(g, str) and g == g.lower() for g in title["genres"])
        assert len(title["country"]) == 2 and len(title["language"]) == 2
    assert len({g for t in titles for g in t["genres"]}) >= 10
    assert len({t["country"] for t in titles}) >= 5
    assert all(row["episode"]["runtime"] > 0 for row in demo(layout.HISTORY["shows"]))


def test_the_sync_asks_the_watched_collections_for_extended_full_and_the_history_for_nothing_more():
    params = {endpoint.name: dict(endpoint.params) for endpoint in FIXED_ENDPOINTS}
    assert "full" in params["watched/movies"]["extended"].split(",")
    assert set(params["watched/shows"]["extended"].split(",")) == {"full", "progress"}
    assert "extended" not in params["history/movies"] and "extended" not in params["history/shows"]


def test_the_fake_adds_runtimes_and_genres_to_watched_titles_only_with_extended_full():
    account = FakeAccount.build(history=20, watched_movies=4, shows=2)
    fake = FakeTrakt(account)
    _, plain = fake.resolve("/users/fakeuser/watched/movies", {})
    _, full = fake.resolve("/users/fakeuser/watched/movies", {"extended": "full"})
    _, shows = fake.resolve("/users/fakeuser/watched/shows", {"extended": "progress,full"})
    assert all("genres" not in row["movie"] and "runtime" not in row["movie"] for row in plain)
    assert all(row["movie"]["genres"] and row["movie"]["runtime"] > 0 for row in full)
    assert all(row["show"]["genres"] and row["show"]["runtime"] > 0 and row["seasons"] for row in shows)
    assert [row["movie"]["ids"] for row in full] == [row["movie"]["ids"] for row in plain]
    _, history = fake.resolve("/users/fakeuser/history/movies", {"extended": "full"})
    assert all("genres" not in row["movie"] for row in history)  # the history is never asked for it


def _original(src: Path, watched_movies: list) -> Path:
    files = {layout.PROFILE: {"username": "sam"}, layout.WATCHED["movies"]: watched_movies,
             layout.HISTORY["movies"]: [{"id": 1, "watched_at": "2024-05-01T20:00:00.000Z", "type": "movie",
                                         "movie": row["movie"]} for row in watched_movies]}
    for endpoint, data in files.items():
        target = src / "json" / endpoint
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps({"metadata": {"username": "sam", "fetched_at": "2024-06-01T00:00:00Z"},
                                      "data": data}))
    return src


def test_the_importer_keeps_the_original_runtimes_and_genres_and_invents_none(tmp_path):
    known = {"title": "Known", "year": 1999, "ids": {"trakt": 1}, "runtime": 95, "genres": ["drama"]}
    bare = {"title": "Bare", "year": 2003, "ids": {"trakt": 2}}
    _original(tmp_path / "src", [{"plays": 1, "movie": known}, {"plays": 1, "movie": bare}])
    folder = DataFolder(tmp_path / "data")
    report = import_folder(tmp_path / "src", folder)
    root = folder.served_root()
    watched = json.loads((root / layout.WATCHED["movies"]).read_text())["data"]
    assert [row["movie"] for row in watched] == [known, bare]
    files = {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*.json")}
    document = build_dataset(root, files, is_demo=False, zone="UTC").insights.documents[2024]
    assert document["totals"]["minutes"] == 95 and document["totals"]["unknown_runtime_plays"] == 1
    assert document["genres"] == [{"genre": "drama", "plays": 1, "minutes": 95}]
    assert report.problems == []


def test_first_and_last_play_are_the_history_rows_whatever_the_files_order():
    from services.data.snapshots import dumps

    movie = {"title": "Once", "year": 2000, "ids": {"trakt": 5}, "runtime": 90}
    stamps = ["2024-03-01T20:00:00.000Z", "2024-01-05T20:00:00.000Z", "2024-12-30T20:00:00.000Z",
              "2024-06-01T20:00:00.000Z"]  # neither newest nor oldest first
    rows = [{"id": n, "watched_at": stamp, "type": "movie", "movie": movie} for n, stamp in enumerate(stamps)]
    for ordered in (rows, sorted(rows, key=lambda r: r["watched_at"], reverse=True)):
        raw = {layout.HISTORY["movies"]: dumps(layout.wrap(layout.HISTORY["movies"], ordered, username="u", source="t",
                                                           last_updated="2025-01-01T00:00:00+00:00")).encode()}
        document = build_dataset(None, raw, is_demo=False, zone="UTC").insights.documents[2024]
        assert (document["first_play"]["id"], document["last_play"]["id"]) == (1, 2)
        assert document["totals"]["rewatches"] == 3

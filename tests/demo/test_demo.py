"""The demo account: deterministic, complete, internally consistent, and the bundled copy is current."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pytest

from services.demo import artwork as demo_images
from services.data import layout
from services.demo.account import MAX_SCALE, slugify
from services.demo.generator import build_demo_account, write_demo
from services.data.snapshots import dumps

BUNDLED = Path(__file__).resolve().parents[2] / "data" / "demo"
TRAKT_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z\Z")
SVG_NS = "{http://www.w3.org/2000/svg}"


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def bundled() -> dict[str, dict]:
    """Every JSON document of the committed data/demo folder, by endpoint."""
    return {p.relative_to(BUNDLED).as_posix(): json.loads(p.read_text(encoding="utf-8"))
            for p in sorted(BUNDLED.rglob("*.json"))}


@pytest.fixture(scope="module")
def data(bundled) -> dict[str, object]:
    return {endpoint: document["data"] for endpoint, document in bundled.items()}


def _media_objects(data: dict[str, object]):
    """(kind, object) for every movie/show/episode/season object anywhere in the account."""
    for rows in data.values():
        if not isinstance(rows, list):
            continue
        for row in rows:
            for kind in ("movie", "show", "episode", "season"):
                if isinstance(row, dict) and kind in row:
                    yield kind, row[kind]


# -- determinism and the bundled copy ----------------------------------------------------------

def test_two_builds_are_identical():
    first, second = build_demo_account(1), build_demo_account(1)
    assert first.last_updated == second.last_updated == "2026-11-01T20:00:00.000000+00:00"
    assert list(first.files) == list(second.files)
    assert dumps(first.files) == dumps(second.files)


def test_regenerating_gives_the_committed_bundle_byte_for_byte(tmp_path):
    write_demo(tmp_path / "demo", 1, images=True)
    fresh, committed = _tree(tmp_path / "demo"), _tree(BUNDLED)
    assert sorted(fresh) == sorted(committed), "file sets differ: regenerate data/demo"
    changed = [name for name in fresh if fresh[name] != committed[name]]
    assert changed == [], f"regenerate data/demo: {changed[:5]}"


def test_bundled_copy_stays_small():
    total = sum(p.stat().st_size for p in BUNDLED.rglob("*") if p.is_file())
    assert total < 5 * 1024 * 1024


# -- shape of the folder -----------------------------------------------------------------------

def test_every_contract_file_is_present_and_wrapped(bundled):
    lists = bundled[layout.LISTS]["data"]
    expected = set(layout.ALL_FIXED_FILES) | set(layout.UPNEXT_FILES) | {layout.list_items_endpoint(x["ids"]["slug"]) for x in lists}
    assert expected == set(bundled)
    for endpoint, document in bundled.items():
        assert set(document) == {"metadata", "data"}
        metadata = document["metadata"]
        assert metadata["endpoint"] == endpoint
        assert metadata["source"] == layout.SOURCE_DEMO
        assert metadata["username"] == "demo"
        assert metadata["last_updated"] == "2026-11-01T20:00:00.000000+00:00"
        body = document["data"]
        assert metadata["count"] == (len(body) if isinstance(body, list) else 1)


def test_index_lists_every_data_file_with_its_count(bundled):
    index = bundled[layout.INDEX]["data"]
    assert index["username"] == "demo"
    files = {endpoint: doc["metadata"]["count"] for endpoint, doc in bundled.items() if endpoint != layout.INDEX}
    assert index["files"] == files


def test_all_timestamps_use_trakt_format(data):
    def walk(value, key=""):
        if isinstance(value, dict):
            for k, v in value.items():
                yield from walk(v, k)
        elif isinstance(value, list):
            for v in value:
                yield from walk(v, key)
        elif key.endswith("_at") and value is not None:
            yield key, value

    stamps = [(key, value) for endpoint, body in data.items() if endpoint != layout.INDEX
              for key, value in walk(body)]
    assert len(stamps) > 1000
    assert [s for s in stamps if not TRAKT_TIME.match(s[1])] == []


def test_profile_has_the_trakt_fields(data):
    profile = data[layout.PROFILE]
    assert profile["username"] == "demo" and profile["ids"]["slug"] == "demo"
    assert profile["private"] is False and profile["vip"] is False and profile["vip_ep"] is False
    assert profile["name"] and profile["location"] and profile["about"]
    assert TRAKT_TIME.match(profile["joined_at"])
    assert profile["images"]["avatar"]["full"].startswith("data:image/svg+xml,")


# -- consistency between files -----------------------------------------------------------------

def test_the_same_title_has_the_same_ids_everywhere(data):
    by_trakt: dict[tuple[str, int], str] = {}
    mismatched = []
    for kind, obj in _media_objects(data):
        key = (kind, obj["ids"]["trakt"])
        text = json.dumps(obj, sort_keys=True)
        if by_trakt.setdefault(key, text) != text:
            mismatched.append(key)
    assert mismatched == []
    for kind in ("movie", "show"):
        objects = [json.loads(t) for (k, _), t in by_trakt.items() if k == kind]
        for id_name in ("slug", "tmdb", "imdb"):
            values = [o["ids"][id_name] for o in objects]
            assert len(values) == len(set(values)), f"duplicate {kind} {id_name}"
        assert all(o["ids"]["slug"] == f"{slugify(o['title'])}-{o['year']}" for o in objects)
        assert all(isinstance(o["runtime"], int) and o["runtime"] > 0 for o in objects)
    shows = [json.loads(t) for (k, _), t in by_trakt.items() if k == "show"]
    assert all(isinstance(s["ids"]["tvdb"], int) for s in shows)
    episodes = [json.loads(t) for (k, _), t in by_trakt.items() if k == "episode"]
    assert all({"trakt", "tvdb", "imdb", "tmdb"} <= set(e["ids"]) for e in episodes)


def test_stats_add_up_to_the_other_files(data):
    stats = data[layout.STATS]
    movie_history = data[layout.HISTORY["movies"]]
    episode_history = data[layout.HISTORY["shows"]]
    ratings = data[layout.RATINGS]
    comments = data[layout.COMMENTS]
    watched_shows = data[layout.WATCHED["shows"]]

    assert stats["movies"]["plays"] == len(movie_history)
    assert stats["movies"]["watched"] == len(data[layout.WATCHED["movies"]])
    assert stats["movies"]["minutes"] == sum(row["movie"]["runtime"] for row in movie_history)
    assert stats["episodes"]["plays"] == len(episode_history)
    assert stats["episodes"]["minutes"] == sum(row["episode"]["runtime"] for row in episode_history)
    assert stats["episodes"]["watched"] == sum(len(s["episodes"]) for show in watched_shows for s in show["seasons"])
    assert stats["shows"]["watched"] == len(watched_shows)

    rating_types = Counter(row["type"] for row in ratings)
    comment_types = Counter(row["type"] for row in comments)
    for stat_key, kind in (("movies", "movie"), ("shows", "show"), ("seasons", "season"), ("episodes", "episode")):
        assert stats[stat_key]["ratings"] == rating_types[kind]
        assert stats[stat_key]["comments"] == comment_types[kind]
    assert stats["ratings"]["total"] == len(ratings)
    distribution = Counter(str(row["rating"]) for row in ratings)
    assert stats["ratings"]["distribution"] == {str(v): distribution[str(v)] for v in range(1, 11)}


def test_watched_files_follow_the_history(data):
    movie_plays = Counter(row["movie"]["ids"]["trakt"] for row in data[layout.HISTORY["movies"]])
    last_movie = {}
    for row in data[layout.HISTORY["movies"]]:
        last_movie[row["movie"]["ids"]["trakt"]] = max(last_movie.get(row["movie"]["ids"]["trakt"], ""), row["watched_at"])
    watched = data[layout.WATCHED["movies"]]
    assert {row["movie"]["ids"]["trakt"]: row["plays"] for row in watched} == dict(movie_plays)
    assert all(row["last_watched_at"] == last_movie[row["movie"]["ids"]["trakt"]] for row in watched)

    episode_plays = Counter((row["show"]["ids"]["trakt"], row["episode"]["season"], row["episode"]["number"])
                            for row in data[layout.HISTORY["shows"]])
    from_watched = {}
    for show in data[layout.WATCHED["shows"]]:
        assert show["plays"] == sum(e["plays"] for s in show["seasons"] for e in s["episodes"])
        for season in show["seasons"]:
            for episode in season["episodes"]:
                from_watched[(show["show"]["ids"]["trakt"], season["number"], episode["number"])] = episode["plays"]
    assert from_watched == dict(episode_plays)


def test_history_has_three_years_of_movies_and_episodes_with_rewatches(data):
    movies, episodes = data[layout.HISTORY["movies"]], data[layout.HISTORY["shows"]]
    assert len(movies) > 200 and len(episodes) > 2000
    for rows, kind in ((movies, "movie"), (episodes, "episode")):
        assert all(row["type"] == kind for row in rows)
        stamps = [row["watched_at"] for row in rows]
        assert stamps == sorted(stamps, reverse=True), "history is newest first"
        assert stamps[0] < "2026-11-01T20:00:00" and stamps[-1] < "2024-03-01"
    assert all({"episode", "show"} <= set(row) for row in episodes)
    ids = [row["id"] for row in movies + episodes]
    assert len(ids) == len(set(ids))
    assert max(row["plays"] for row in data[layout.WATCHED["movies"]]) >= 2
    assert max(e["plays"] for show in data[layout.WATCHED["shows"]] for s in show["seasons"]
               for e in s["episodes"]) >= 2


def test_watchlist_all_is_movies_and_shows_by_rank(data):
    movies, shows, everything = (data[layout.WATCHLIST[k]] for k in ("movies", "shows", "all"))
    assert movies and shows
    assert all(row["type"] == "movie" and "movie" in row for row in movies)
    assert all(row["type"] == "show" and "show" in row for row in shows)
    assert everything == sorted(movies + shows, key=lambda row: row["rank"])
    assert [row["rank"] for row in everything] == list(range(1, len(everything) + 1))
    assert any(row["notes"] for row in everything) and any(row["notes"] is None for row in everything)


def test_lists_have_matching_item_files_of_mixed_types(data):
    lists = data[layout.LISTS]
    assert len(lists) >= 4
    kinds = set()
    trakt_ids = [x["ids"]["trakt"] for x in lists]
    assert len(set(trakt_ids)) == len(lists) and all(isinstance(i, int) for i in trakt_ids)
    for entry in lists:
        assert layout.is_safe_slug(entry["ids"]["slug"])
        items = data[layout.list_items_endpoint(entry["ids"]["slug"])]
        assert entry["item_count"] == len(items) > 0
        assert [item["rank"] for item in items] == list(range(1, len(items) + 1))
        for item in items:
            kinds.add(item["type"])
            assert item["type"] in item
            if item["type"] in ("season", "episode"):
                assert "show" in item
    assert {"movie", "show", "episode"} <= kinds
    assert any({i["type"] for i in data[layout.list_items_endpoint(x["ids"]["slug"])]} >= {"movie", "show"}
               for x in lists)


def test_comments_include_spoilers_reviews_movies_and_shows(data):
    comments = data[layout.COMMENTS]
    assert {"movie", "show"} <= {row["type"] for row in comments}
    bodies = [row["comment"] for row in comments]
    assert any(c["spoiler"] for c in bodies) and any(not c["spoiler"] for c in bodies)
    assert any(c["review"] for c in bodies) and any(not c["review"] for c in bodies)
    assert len({c["id"] for c in bodies}) == len(bodies)
    ratings = {(r["type"], r[r["type"]]["ids"]["trakt"]): r["rating"] for r in data[layout.RATINGS]}
    for row in comments:
        expected = ratings.get((row["type"], row[row["type"]]["ids"]["trakt"]))
        assert row["comment"]["user_stats"]["rating"] == expected


def test_ratings_cover_movies_shows_and_episodes_from_1_to_10(data):
    ratings = data[layout.RATINGS]
    assert {"movie", "show", "episode"} <= {row["type"] for row in ratings}
    assert all(1 <= row["rating"] <= 10 and isinstance(row["rating"], int) for row in ratings)
    watched = {row["movie"]["ids"]["trakt"] for row in data[layout.WATCHED["movies"]]}
    assert all(row["movie"]["ids"]["trakt"] in watched for row in ratings if row["type"] == "movie")


def test_titles_include_accents_hyphens_and_shared_words(data):
    titles = {obj["title"] for kind, obj in _media_objects(data) if kind in ("movie", "show")}
    assert "Amélie of the Rooftops" in titles
    assert any(not t.isascii() for t in titles if t != "Amélie of the Rooftops")
    assert any(re.search(r"\w-\w", t) for t in titles)
    assert {"The Last Harbor", "Last Harbor Rising", "The Harbor"} <= titles
    assert "Salt & Smoke" in titles
    years = {obj["title"]: obj["year"] for kind, obj in _media_objects(data) if kind in ("movie", "show")}
    sequels = [(t, t.rsplit(" ", 1)[0]) for t in years if t.endswith((" II", " III", " IV"))]
    assert sequels and all(years[t] >= years[original] for t, original in sequels if original in years)


# -- scale ------------------------------------------------------------------------------------

def test_scale_multiplies_titles_and_history_and_keeps_ids_unique():
    small, large = build_demo_account(1), build_demo_account(5)

    def catalogue(account):
        found = {}
        for kind, obj in _media_objects(account.files):
            if kind in ("movie", "show"):
                found[(kind, obj["ids"]["trakt"])] = obj
        return found

    small_titles, large_titles = catalogue(small), catalogue(large)
    assert 4.5 <= len(large_titles) / len(small_titles) <= 5.5
    for kind in ("movie", "show"):
        objects = [o for (k, _), o in large_titles.items() if k == kind]
        for id_name in ("slug", "tmdb", "imdb"):
            assert len({o["ids"][id_name] for o in objects}) == len(objects)
    imdb = [o["ids"]["imdb"] for kind, o in _media_objects(large.files) if kind != "season"]
    assert len(set(imdb)) == len({(kind, o["ids"]["trakt"]) for kind, o in _media_objects(large.files)
                                  if kind != "season"}), "IMDb ids are shared by movies, shows and episodes"
    rows = lambda a: len(a.files[layout.HISTORY["movies"]]) + len(a.files[layout.HISTORY["shows"]])  # noqa: E731
    assert 4 <= rows(large) / rows(small) <= 6
    lists = large.files[layout.LISTS]
    assert all(x["item_count"] == len(large.files[layout.list_items_endpoint(x["ids"]["slug"])]) for x in lists)


@pytest.mark.parametrize("scale", [0, -1, MAX_SCALE + 1, 1.5, "2", True, None])
def test_bad_scale_is_refused_with_a_clear_message(scale, tmp_path):
    with pytest.raises(ValueError, match="scale"):
        build_demo_account(scale)
    with pytest.raises(ValueError, match="scale"):
        write_demo(tmp_path / "out", scale)
    assert not (tmp_path / "out").exists()


# -- writing ----------------------------------------------------------------------------------

def test_write_demo_refuses_a_folder_that_is_not_a_demo_account(tmp_path):
    target = tmp_path / "data"
    target.mkdir()
    (target / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="refusing to overwrite"):
        write_demo(target, 1)
    assert [p.name for p in target.iterdir()] == ["notes.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def test_write_demo_replaces_a_previous_demo_folder(tmp_path):
    target = tmp_path / "demo"
    first = write_demo(target, 1, images=True)
    assert first["images"]["moviePosters"] > 0 and (target / "images").is_dir()
    second = write_demo(target, 1, images=False)
    assert second["images"] == {}
    assert not (target / "images").exists()
    assert second["files"] == first["files"]
    assert second["history_rows"] == first["files"][layout.HISTORY["movies"]] + first["files"][layout.HISTORY["shows"]]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo"], "no staging folders left behind"


# -- artwork ----------------------------------------------------------------------------------

def _svg_files() -> list[Path]:
    return sorted((BUNDLED / "images").rglob("*.svg"))


def test_svgs_are_well_formed_with_explicit_size_and_small():
    files = _svg_files()
    assert len(files) > 400
    for path in files:
        root = ET.parse(path).getroot()
        assert root.tag == f"{SVG_NS}svg"
        expected = ("1280", "720") if "backdrops" in path.parts else ("500", "750")
        assert (root.get("width"), root.get("height")) == expected, path
        assert path.stat().st_size < 2048, path


@pytest.mark.parametrize("title", ['Salt & Smoke', 'Tom <& "Jerry\'s"> Café', "Amélie of the Rooftops",
                                   "A Very Long Title That Certainly Will Not Fit On Three Poster Lines At All"])
def test_titles_are_escaped_inside_the_artwork(title):
    poster = ET.fromstring(demo_images.poster_svg(title, 2001, 1234, "FILM"))
    backdrop = ET.fromstring(demo_images.backdrop_svg(title, 2001, 1234))
    for root, size in ((poster, demo_images.POSTER_SIZE), (backdrop, demo_images.BACKDROP_SIZE)):
        assert (root.get("width"), root.get("height")) == tuple(str(n) for n in size)
        lines = []
        for element in root.iter(f"{SVG_NS}text"):
            spans = list(element.iter(f"{SVG_NS}tspan"))
            lines += [span.text for span in spans] if spans else [element.text]
        heading = " ".join(lines)
        if len(title) < 30:
            assert heading.startswith(title)
        else:  # cut with an ellipsis, never overflowing
            assert "…" in heading and len(heading) < len(title) + 12


def test_about_a_tenth_of_titles_have_no_artwork_and_paths_follow_the_contract(data):
    movies = {obj["ids"]["tmdb"] for kind, obj in _media_objects(data) if kind == "movie"}
    shows = {obj["ids"]["tmdb"] for kind, obj in _media_objects(data) if kind == "show"}
    images = BUNDLED / "images"
    movie_posters = {int(p.name.split("_")[0]) for p in (images / "movies" / "posters").glob("*_poster.svg")}
    movie_backdrops = {int(p.name.split("_")[0]) for p in (images / "movies" / "backdrops").glob("*_backdrop.svg")}
    show_posters = {int(p.name.split("_")[0]) for p in (images / "shows" / "posters").glob("*_poster.svg")}
    assert movie_posters <= movies and movie_backdrops <= movie_posters and show_posters <= shows
    missing = (len(movies - movie_posters) + len(shows - show_posters)) / (len(movies) + len(shows))
    assert 0.05 <= missing <= 0.2

    watched_seasons = {(row["show"]["ids"]["tmdb"], s["number"])
                       for row in data[layout.WATCHED["shows"]] for s in row["seasons"]}
    season_posters = list((images / "shows" / "posters").glob("*/*/season_*_poster.svg"))
    assert season_posters
    for path in season_posters:
        tmdb, season = int(path.parts[-3]), int(path.parts[-2])
        assert path.name == f"season_{season}_poster.svg"
        assert (tmdb, season) in watched_seasons and tmdb in show_posters


def test_a_failed_write_leaves_the_previous_folder_untouched(tmp_path, monkeypatch):
    from services.demo import generator as demo

    target = tmp_path / "demo"
    write_demo(target, 1, images=False)
    before = _tree(target)

    def broken_disk(account, images_dir):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(demo, "write_images", broken_disk)
    with pytest.raises(OSError, match="No space left"):
        write_demo(target, 1, images=True)
    assert _tree(target) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo"], "the staging folder is removed"

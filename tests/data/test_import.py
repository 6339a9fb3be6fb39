"""`trakt-watch import SRC`: the original Next.js dashboard's folder becomes our data folder."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from services.data import layout
from services.config import Config
from services.data.snapshots import DataFolder
from tests.helpers import accounts

ROOT = Path(__file__).resolve().parents[2]
FETCHED_AT = "2025-07-19T09:00:13.041000+00:00"


def write_original(src: Path) -> Path:
    """The original app's layout: json/..., `fetched_at` metadata, no watchlist/shows.json."""
    files = accounts.files()
    del files[layout.WATCHLIST["shows"]]
    del files[layout.RATINGS]
    for endpoint, data in files.items():
        target = src / "json" / endpoint
        target.parent.mkdir(parents=True, exist_ok=True)
        metadata = {"fetched_at": FETCHED_AT, "source": "trakt_api_user_data", "username": "sam",
                    "endpoint": endpoint}
        target.write_text(json.dumps({"metadata": metadata, "data": data}, indent=2))
    index = {"metadata": {"fetched_at": FETCHED_AT, "username": "sam"}, "data": {"username": "sam"}}
    (src / "json" / "index.json").write_text(json.dumps(index))
    (src / "json" / "user" / "extra").mkdir(parents=True)
    (src / "json" / "user" / "extra" / "notes.json").write_text("{}")
    (src / "media_index.json").write_text(json.dumps({
        "last_updated": FETCHED_AT,
        "movies": {"posters": ["10001_poster.jpg", "../../etc_poster.jpg"], "backdrops": ["10001_backdrop.jpg"]},
        "shows": {"posters": ["20101_poster.jpg"], "backdrops": [],
                  "season_posters": {"20101": {"1": ["season_1_poster.jpg"]}, "../x": {"1": ["a.jpg"]}}},
    }))
    return src


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "server.py"), *args], capture_output=True, text=True,
                          timeout=60, cwd=ROOT)


def test_import_turns_the_original_layout_into_a_snapshot(tmp_path):
    src = write_original(tmp_path / "original")
    data_dir = tmp_path / "data"
    result = run_cli("import", str(src), "--data-dir", str(data_dir))
    assert result.returncode == 0, result.stderr
    assert "Skipped unknown file: user/extra/notes.json" in result.stdout
    assert "derived from the watchlist's all.json" in result.stdout

    served = DataFolder(data_dir).served_root()
    assert served is not None and served.parent.name == "snapshots"
    history = json.loads((served / layout.HISTORY["movies"]).read_text())
    assert history["metadata"]["last_updated"] == FETCHED_AT
    assert history["metadata"]["endpoint"] == layout.HISTORY["movies"]
    assert history["data"] == accounts.files()[layout.HISTORY["movies"]]
    shows = json.loads((served / layout.WATCHLIST["shows"]).read_text())
    assert [row["show"]["title"] for row in shows["data"]] == ["Dark"]
    index = json.loads((served / layout.INDEX).read_text())
    assert index["data"]["username"] == "sam"
    assert index["data"]["files"][layout.list_items_endpoint("best-movies")] == 2

    manifest = json.loads((data_dir / "images" / "manifest.json").read_text())
    assert manifest["movies"]["posters"] == ["10001_poster.jpg"]  # the traversal name is dropped
    assert manifest["shows"]["season_posters"] == {"20101": {"1": ["season_1_poster.jpg"]}}


def test_import_of_a_folder_that_is_not_the_original_fails_cleanly(tmp_path):
    (tmp_path / "empty").mkdir()
    result = run_cli("import", str(tmp_path / "empty"), "--data-dir", str(tmp_path / "data"))
    assert result.returncode == 1
    assert "does not look like the original dashboard's data" in result.stderr
    assert not (tmp_path / "data" / "current").exists()
    missing = run_cli("import", str(tmp_path / "nope"), "--data-dir", str(tmp_path / "data"))
    assert missing.returncode == 1 and "is not a folder" in missing.stderr


def test_broken_file_in_the_source_is_reported_not_fatal(tmp_path):
    src = write_original(tmp_path / "original")
    (src / "json" / layout.COMMENTS).write_text("{broken")
    result = run_cli("import", str(src), "--data-dir", str(tmp_path / "data"))
    assert result.returncode == 0
    assert f"Problem: {layout.COMMENTS} could not be read" in result.stdout
    served = DataFolder(tmp_path / "data").served_root()
    assert not (served / layout.COMMENTS).exists()


@pytest.fixture
def data_dir(tmp_path):
    from services.data.importer import import_folder

    import_folder(write_original(tmp_path / "original"), DataFolder(tmp_path / "data"))
    return tmp_path / "data"


@pytest.fixture
def config(data_dir):
    return replace(Config(), data_dir=data_dir, timezone="UTC")


@pytest.mark.gen_test
async def test_imported_data_is_served(http_client, base_url):
    response = await http_client.fetch(base_url + "/api/trakt/user/lists/best-movies")
    document = json.loads(response.body)
    assert [row["movie"]["title"] for row in document["data"]] == ["Star", "Amélie"]
    index = json.loads((await http_client.fetch(base_url + "/api/trakt")).body)
    assert index["metadata"]["last_updated"] == FETCHED_AT
    assert index["metadata"]["imported_from"] == "nextjs-dashboard"

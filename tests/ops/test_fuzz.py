"""Schemathesis against a real server process: generated (valid and invalid) requests for every
documented operation never get a 5xx, and every answer matches /api/openapi.json; the CLI run
with every check over the GET operations finds nothing.

Bounded: MAX_EXAMPLES / CLI_MAX_EXAMPLES per operation and mode, no redirects followed (an image redirect points
at a CDN), no network beyond loopback (Trakt is the fake on 127.0.0.1, TMDB is not configured).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import requests
import schemathesis
from schemathesis import GenerationMode

from services.ops.openapi import openapi_document
from tests.fakes.trakt import FakeAccount, FakeTrakt
from tests.helpers.process import serve_process

MAX_EXAMPLES = 12
CLI_MAX_EXAMPLES = 20  # per operation and phase; the coverage phase adds its own boundary cases
FEED_TOKEN = "fuzz-feed-token"  # CALENDAR_TOKEN of the served demo
CLI_SEED = 1  # the same cases on every run, so a failure reproduces

SCHEMA = schemathesis.openapi.from_dict(openapi_document())
SCHEMA.config.generation.update(max_examples=MAX_EXAMPLES, modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
                                deterministic=True, database="none")
SCHEMA.config.update(max_redirects=0, request_timeout=10)


@pytest.fixture(scope="module")
def live_url(tmp_path_factory, demo_account):
    """`server.py serve` on the generated demo account (data and images), with a Trakt key that
    points at the fake Trakt, so POST /api/trakt/sync really syncs and the watcher really polls."""
    workdir = tmp_path_factory.mktemp("fuzz")
    data = shutil.copytree(demo_account, workdir / "data")
    fake = FakeTrakt(FakeAccount.build(history=30, watched_movies=10, shows=4, lists=2))
    with fake.running_in_thread() as trakt_url:
        env = {"DATA_DIR": str(data), "LOG_LEVEL": "WARNING", "TRAKT_API_KEY": fake.api_key,
               "TRAKT_USERNAME": fake.account.username, "TRAKT_API_URL": trakt_url, "WATCHING_POLL_SECONDS": "1"}
        with serve_process(workdir, env) as server:
            yield server.url
            log = server.log()
    assert "Traceback" not in log, log


@pytest.fixture(scope="module")
def session():
    with requests.Session() as http:
        yield http


@SCHEMA.parametrize()
def test_every_operation_conforms_and_never_fails(case, live_url, session):
    response = case.call(base_url=live_url, session=session, allow_redirects=False)
    assert response.status_code < 500, f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text}"
    case.validate_response(response)


def real_ids(data: Path) -> dict[str, list]:
    """Ids that exist in a data folder: list slugs and Trakt ids, image paths and their TMDB ids."""
    lists = json.loads((data / "user" / "lists" / "user_lists.json").read_text())["data"]
    images = data / "images"
    posters = sorted(images.glob("movies/posters/*_poster.*"))[:2] + sorted(images.glob("shows/posters/*/*/season_*"))[:1]
    assert lists and len(posters) == 3, "the demo account has lists and images"
    return {
        "lists": [lists[0]["ids"]["slug"], str(lists[0]["ids"]["trakt"])],  # path values are strings
        "images": [str(p.relative_to(images)) for p in posters],
        "tmdb": [int(posters[0].name.split("_")[0]), int(posters[2].parent.parent.name)],
    }


@pytest.fixture(scope="module")
def demo_data_url(tmp_path_factory, demo_account):
    """`server.py serve` on a copy of the demo account and nothing else: no sync can change its ids."""
    workdir = tmp_path_factory.mktemp("fuzz-cli")
    data = shutil.copytree(demo_account, workdir / "data")
    with serve_process(workdir, {"DATA_DIR": str(data), "LOG_LEVEL": "WARNING",
                                 "CALENDAR_TOKEN": FEED_TOKEN}) as server:
        yield server.url, data, workdir
        log = server.log()
    assert "Traceback" not in log, log


def test_schemathesis_run_with_every_check_over_get_finds_nothing(demo_data_url):
    """`st run --checks all` over the GET operations, as a user would run it against the served
    document, with real ids mixed into the generated ones so no operation only ever meets a 404.
    It finds nothing: no 5xx, no answer off the document, no valid request refused, no invalid
    one accepted, no operation the run could not reach (a warning fails too)."""
    url, data, workdir = demo_data_url
    ids = dict(real_ids(data), tokens=[FEED_TOKEN])  # so the feed is reached, not only its 404
    config = workdir / "schemathesis.toml"
    config.write_text("\n".join([
        *(f"[dictionaries.{name}]\nvalues = {json.dumps(values)}" for name, values in ids.items()),
        "[parameters]",
        '"path.id" = { dictionary = "lists", probability = 0.5 }',
        '"path.path" = { dictionary = "images", probability = 0.5 }',
        '"query.tmdb_id" = { dictionary = "tmdb", probability = 0.5 }',
        '"query.token" = { dictionary = "tokens", probability = 0.5 }',
    ]) + "\n")
    result = subprocess.run(
        [sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "run", f"{url}/api/openapi.json",
         "--checks", "all", "--include-method", "GET", "--max-examples", str(CLI_MAX_EXAMPLES),
         "--seed", str(CLI_SEED), "--max-redirects", "0", "--workers", "1", "--no-color"],
        capture_output=True, text=True, timeout=300, cwd=workdir)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "No issues found" in output and "WARNINGS" not in output, output

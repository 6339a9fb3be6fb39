"""`next_up` of GET /api/trakt/user/summary (README "Insights"): the next episode of the show in
progress watched most recently, on the hand-made account of tests/helpers/upnext_account.py.

What the account's description says at NOW (2026-06-10 12:00 UTC): Charlie was restarted on
2026-01-01 and S01E01 watched again on 2026-06-08, so S01E02 and S01E03 (aired in 2010) are left;
Alpha's S01 was watched up to 2026-06-05 and S02E01 has aired (S02E02 airs the next day); Delta,
watched on 2026-06-09, is hidden; Echo has only an unaired-for-progress special; Bravo is finished.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import pytest
from jsonschema import Draft202012Validator
from tornado.httpclient import HTTPClientError

from services.data import layout
from services.ops.openapi import openapi_document
from tests.helpers.upnext_account import ALPHA, CHARLIE, NOW, ZONE, write_upnext_account


def hide(data_dir, *shows: dict) -> None:
    """Add shows to the hidden set of the written account."""
    path = data_dir / layout.SHOW_HIDDEN
    document = json.loads(path.read_text())
    document["data"] += [{"hidden_at": "2026-06-09T22:00:00.000Z", "type": "show", "show": show} for show in shows]
    document["metadata"]["count"] = len(document["data"])
    path.write_text(json.dumps(document))


@pytest.fixture
def hidden() -> tuple[dict, ...]:
    return ()  # shows hidden on top of the account's own (Delta)


@pytest.fixture
def data_dir(tmp_path, hidden):
    folder = write_upnext_account(tmp_path / "data")
    hide(folder, *hidden)
    return folder


@pytest.fixture
def config(data_dir):
    from services.config import Config

    return replace(Config(), data_dir=data_dir, timezone=ZONE, data_check_seconds=3600)


@pytest.fixture
def app(config, services):
    from server import make_app

    services.store.clock = lambda: NOW
    return make_app(config, services)


async def summary(http_client, base_url) -> dict:
    try:
        response = await http_client.fetch(base_url + "/api/trakt/user/summary")
    except HTTPClientError as exc:
        raise AssertionError(f"summary answered {exc.code}") from exc
    document = json.loads(response.body)
    Draft202012Validator(openapi_document()["components"]["schemas"]["Summary"]).validate(document)
    return document


@pytest.mark.gen_test
async def test_next_up_is_the_next_episode_of_the_show_watched_last(http_client, base_url):
    # Delta was watched after Charlie but is hidden; Charlie (2026-06-08) is newer than Alpha (06-05).
    assert (await summary(http_client, base_url))["next_up"] == {
        "type": "episode", "title": "Charlie", "subtitle": "S1E2 - Episode 1x2", "season": 1, "number": 2,
        "episode_title": "Episode 1x2", "aired_left": 2}


@pytest.mark.gen_test
@pytest.mark.parametrize("hidden", [(CHARLIE,)])
async def test_a_hidden_show_gives_way_to_the_next_one_in_progress(http_client, base_url, hidden):
    # Alpha: S02E01 aired on 2026-06-04; S02E02 airs on 2026-06-11, after NOW, so one is left.
    assert (await summary(http_client, base_url))["next_up"] == {
        "type": "episode", "title": "Alpha", "subtitle": "S2E1 - Episode 2x1", "season": 2, "number": 1,
        "episode_title": "Episode 2x1", "aired_left": 1}


@pytest.mark.gen_test
@pytest.mark.parametrize("hidden", [(CHARLIE, ALPHA)])
async def test_next_up_is_null_when_no_show_is_in_progress(http_client, base_url, hidden):
    # Echo's only unwatched aired episode is a special, Bravo is finished: nothing is in progress.
    assert (await summary(http_client, base_url))["next_up"] is None


@pytest.mark.gen_test
@pytest.mark.parametrize("hidden", [(CHARLIE,)])
async def test_next_up_counts_an_episode_once_it_has_aired(http_client, base_url, services, hidden):
    # Alpha's S02E02 airs 2026-06-11 02:00 UTC: a day after NOW two of its episodes are left.
    services.store.clock = lambda: NOW + timedelta(days=1)
    next_up = (await summary(http_client, base_url))["next_up"]
    assert (next_up["title"], next_up["season"], next_up["number"], next_up["aired_left"]) == ("Alpha", 2, 1, 2)

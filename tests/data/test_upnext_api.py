"""GET /api/trakt/user/up-next and /api/trakt/user/calendar on the real application."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from services.data import layout
from tests.helpers.upnext_account import NOW, ZONE, write_upnext_account
from tests.helpers.serving import get


@pytest.fixture
def data_dir(tmp_path):
    return write_upnext_account(tmp_path / "data")


@pytest.fixture
def config(data_dir):
    from services.config import Config

    return replace(Config(), data_dir=data_dir, timezone=ZONE, data_check_seconds=0.1)


@pytest.fixture
def app(config, services):
    from server import make_app

    services.store.clock = lambda: NOW
    return make_app(config, services)


@pytest.mark.gen_test
async def test_up_next_lists_the_shows_in_progress(http_client, base_url):
    response = await get(http_client, base_url, "/api/trakt/user/up-next")
    assert response.code == 200 and response.headers["Content-Type"] == "application/json; charset=UTF-8"
    document = json.loads(response.body)
    assert [(r["show"]["title"], r["next_episode"]["season"], r["next_episode"]["number"], r["aired_left"])
            for r in document["data"]] == [("Charlie", 1, 2, 2), ("Alpha", 2, 1, 1)]
    assert document["metadata"]["count"] == 2 and document["metadata"]["timezone"] == ZONE
    etag = response.headers["Etag"]
    again = await get(http_client, base_url, "/api/trakt/user/up-next", headers={"If-None-Match": etag})
    assert again.code == 304


@pytest.mark.gen_test
async def test_up_next_include_completed_adds_finished_shows(http_client, base_url):
    response = await get(http_client, base_url, "/api/trakt/user/up-next?include=completed")
    assert [r["show"]["title"] for r in json.loads(response.body)["data"]] == ["Charlie", "Alpha", "Echo", "Bravo"]
    bad = await get(http_client, base_url, "/api/trakt/user/up-next?include=everything")
    assert bad.code == 400 and "include" in json.loads(bad.body)["error"]


@pytest.mark.gen_test
async def test_calendar_defaults_to_a_fortnight_in_the_configured_zone(http_client, base_url):
    document = json.loads((await get(http_client, base_url, "/api/trakt/user/calendar")).body)
    assert document["metadata"]["days"] == 14
    assert (document["metadata"]["start_date"], document["metadata"]["end_date"]) == ("2026-06-10", "2026-06-23")
    assert [(r["date"], r["local_time"], r["type"]) for r in document["data"]] == [
        ("2026-06-10", "19:00", "episode"), ("2026-06-12", "13:00", "episode"), ("2026-06-15", None, "movie"),
        ("2026-06-17", "19:00", "episode")]
    one_day = json.loads((await get(http_client, base_url, "/api/trakt/user/calendar?days=1")).body)
    assert [r["first_aired"] for r in one_day["data"]] == ["2026-06-11T02:00:00.000Z"]


@pytest.mark.parametrize("days", ["0", "91", "-1", "two", "1.5", "14&days=15"])
@pytest.mark.gen_test
async def test_calendar_days_out_of_range_is_400(http_client, base_url, days):
    response = await get(http_client, base_url, f"/api/trakt/user/calendar?days={days}")
    assert response.code == 400 and "days" in json.loads(response.body)["error"]


@pytest.mark.gen_test
async def test_index_metadata_says_whether_the_feed_is_on_without_the_token(http_client, base_url):
    document = json.loads((await get(http_client, base_url, "/api/trakt")).body)
    assert document["metadata"]["calendar_feed"] is False


@pytest.mark.gen_test
async def test_without_show_data_both_routes_are_404(http_client, base_url, data_dir, services):
    (data_dir / layout.SHOW_SEASONS).unlink()
    await services.store.reload()
    for path in ("/api/trakt/user/up-next", "/api/trakt/user/calendar"):
        response = await get(http_client, base_url, path)
        assert response.code == 404 and layout.SHOW_SEASONS in json.loads(response.body)["error"]
    assert (await get(http_client, base_url, "/api/trakt/user/profile")).code == 200

"""GET /calendar.ics: the feed read back with icalendar, event by event, and its secret."""

from __future__ import annotations

import hmac
import logging
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone

import icalendar
import pytest
from tornado.httpclient import HTTPClientError

from services.ops.logs import ACCESS_LOGGER
from tests.helpers.upnext_account import ALPHA, ECHO, NOW, PREMIERE_MOVIE, ZONE, write_upnext_account
from tests.helpers.serving import get as answer

TOKEN = "s3cret-feed-token-7f1c"


@pytest.fixture
def data_dir(tmp_path):
    return write_upnext_account(tmp_path / "data")


@pytest.fixture
def calendar_token():
    return TOKEN


@pytest.fixture
def config(data_dir, calendar_token):
    from services.config import Config

    return replace(Config(), data_dir=data_dir, timezone=ZONE, data_check_seconds=0.1, calendar_token=calendar_token)


@pytest.fixture
def app(config, services):
    from server import make_app

    services.store.clock = lambda: NOW
    return make_app(config, services)


async def get(http_client, base_url, path):
    return await answer(http_client, base_url, path)


def events(body: bytes) -> list:
    calendar = icalendar.Calendar.from_ical(body)
    assert str(calendar["VERSION"]) == "2.0" and calendar["PRODID"]
    return list(calendar.walk("VEVENT"))


@pytest.mark.gen_test
async def test_the_feed_has_one_event_per_calendar_row(http_client, base_url):
    response = await get(http_client, base_url, f"/calendar.ics?token={TOKEN}")
    assert response.code == 200 and response.headers["Content-Type"].startswith("text/calendar")
    found = events(response.body)
    assert [str(e["SUMMARY"]) for e in found] == [
        "Alpha — S02E02 Episode 2x2", "Echo — S02E01 Episode 2x1", "June Movie", "Alpha — S02E03 Episode 2x3"]
    first = found[0]
    assert first.decoded("DTSTART") == datetime(2026, 6, 11, 2, 0, tzinfo=timezone.utc)
    assert first.decoded("DTSTART").utcoffset() == timedelta(0)
    assert first.decoded("DURATION") == timedelta(minutes=50)
    assert str(first["URL"]) == f"https://trakt.tv/shows/{ALPHA['ids']['slug']}/seasons/2/episodes/2"
    assert str(first["UID"]) == f"episode-{ALPHA['ids']['trakt']}-s2e2@trakt-watch"
    echo = found[1]
    assert echo.decoded("DURATION") == timedelta(minutes=60) and str(echo["UID"]).startswith(
        f"episode-{ECHO['ids']['trakt']}-")
    movie = found[2]
    assert movie.decoded("DTSTART") == date(2026, 6, 15)  # all day
    assert not isinstance(movie.decoded("DTSTART"), datetime)
    assert movie.decoded("DTEND") == date(2026, 6, 16)
    assert str(movie["URL"]) == f"https://trakt.tv/movies/{PREMIERE_MOVIE['ids']['slug']}"


@pytest.mark.gen_test
async def test_uids_are_stable_from_one_fetch_to_the_next(http_client, base_url, services):
    first = [str(e["UID"]) for e in events((await get(http_client, base_url, f"/calendar.ics?token={TOKEN}")).body)]
    services.store.clock = lambda: NOW + timedelta(hours=3)
    second = [str(e["UID"]) for e in events((await get(http_client, base_url, f"/calendar.ics?token={TOKEN}")).body)]
    assert first == second and len(set(first)) == len(first) == 4


@pytest.mark.gen_test
async def test_filters_premieres_in_progress_and_days(http_client, base_url):
    premieres = events((await get(http_client, base_url, f"/calendar.ics?token={TOKEN}&premieres=1")).body)
    assert [str(e["SUMMARY"]) for e in premieres] == ["Echo — S02E01 Episode 2x1"]
    in_progress = events((await get(http_client, base_url, f"/calendar.ics?token={TOKEN}&shows=in-progress")).body)
    assert [str(e["SUMMARY"]) for e in in_progress] == [
        "Alpha — S02E02 Episode 2x2", "June Movie", "Alpha — S02E03 Episode 2x3"]
    one_day = events((await get(http_client, base_url, f"/calendar.ics?token={TOKEN}&days=1")).body)
    assert [str(e["SUMMARY"]) for e in one_day] == ["Alpha — S02E02 Episode 2x2"]
    assert (await get(http_client, base_url, f"/calendar.ics?token={TOKEN}&days=91")).code == 400


@pytest.mark.parametrize("query", ["", "?token=", "?token=wrong", f"?token={TOKEN}x", f"?token={TOKEN[:-1]}",
                                   f"?token={TOKEN}&token={TOKEN}"])
@pytest.mark.gen_test
async def test_a_missing_or_wrong_token_is_404(http_client, base_url, query):
    response = await get(http_client, base_url, f"/calendar.ics{query}")
    assert response.code == 404 and TOKEN.encode() not in response.body


@pytest.mark.parametrize("calendar_token", [""])
@pytest.mark.gen_test
async def test_without_calendar_token_the_feed_is_404(http_client, base_url, calendar_token):
    assert calendar_token == ""
    for query in ("", "?token=", "?token=anything"):
        assert (await get(http_client, base_url, f"/calendar.ics{query}")).code == 404


@pytest.mark.gen_test
async def test_the_token_is_compared_in_constant_time(http_client, base_url, monkeypatch):
    calls = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert (await get(http_client, base_url, "/calendar.ics?token=wrong")).code == 404
    assert (await get(http_client, base_url, f"/calendar.ics?token={TOKEN}")).code == 200
    assert calls == [(b"wrong", TOKEN.encode()), (TOKEN.encode(), TOKEN.encode())]


@pytest.mark.gen_test
async def test_the_token_never_reaches_the_access_log(http_client, base_url, caplog):
    with caplog.at_level(logging.DEBUG):
        assert (await get(http_client, base_url, f"/calendar.ics?token={TOKEN}")).code == 200
        assert (await get(http_client, base_url, f"/calendar.ics?token={TOKEN}&days=500")).code == 400
        assert (await get(http_client, base_url, "/calendar.ics?token=wrong")).code == 404
    access = [r for r in caplog.records if r.name == ACCESS_LOGGER]
    assert len(access) == 3 and all(r.path == "/calendar.ics" for r in access)
    for record in caplog.records:
        assert TOKEN not in record.getMessage() and TOKEN not in str(record.__dict__)


@pytest.mark.gen_test
async def test_index_metadata_says_the_feed_is_on_without_showing_the_token(http_client, base_url):
    response = await get(http_client, base_url, "/api/trakt")
    assert b'"calendar_feed":true' in response.body and TOKEN.encode() not in response.body


@pytest.mark.gen_test
async def test_an_unchanged_feed_answers_304_to_its_etag(http_client, base_url):
    first = await get(http_client, base_url, f"/calendar.ics?token={TOKEN}")
    etag = first.headers["Etag"]
    try:
        again = await http_client.fetch(f"{base_url}/calendar.ics?token={TOKEN}", headers={"If-None-Match": etag})
    except HTTPClientError as exc:
        again = exc.response
    assert again.code == 304
    assert all(e.decoded("DTSTAMP") == datetime(2026, 11, 1, 9, 0, 13, tzinfo=timezone.utc)
               for e in events(first.body))  # the data's last_updated to the second (RFC 5545 has no fractions)

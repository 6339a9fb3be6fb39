"""Signed in, up next's show data uses Trakt's own endpoints (services/trakt/shows.py): the shows
hidden from progress, and the calendar for returning shows watched to the end; and the fake Trakt's
up-next routes behave as Trakt's do (OAuth, pagination, 204, the calendar's 33 days)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPClientError

from services import times
from services.config import Config
from services.data import layout
from services.data.snapshots import DataFolder
from services.data.upnext import build_shows, calendar, up_next
from services.trakt.auth import TokenManager, TokenStore
from services.trakt.client import RetryPolicy
from services.trakt.oauth import Token
from services.trakt.service import SyncService
from tests.fakes.trakt import FakeAccount, FakeTrakt
from tests.fakes.trakt_oauth import CLIENT_ID, CLIENT_SECRET, FakeTraktOAuth

USER = "fakeuser"
FAST_RETRY = RetryPolicy(retries=1, base_delay=0.01, max_delay=0.02, rate_limit_retries=1, default_retry_after=0.05)
HEADERS = {"Content-Type": "application/json", "trakt-api-key": CLIENT_ID, "trakt-api-version": "2"}


@pytest.fixture
def account() -> FakeAccount:
    return FakeAccount.build(username=USER, history=60, watched_movies=5, shows=12, lists=1, watchlist=3)


@pytest.fixture
def oauth() -> FakeTraktOAuth:
    return FakeTraktOAuth(username=USER, token_expires_in=7 * 86400)


@pytest.fixture
def fake(io_loop, account, oauth):
    server = FakeTrakt(account, api_key=CLIENT_ID, oauth=oauth)
    # the air dates around the real today, where the sync's calendar window starts
    server.show_clock = times.now().replace(second=0, microsecond=0)
    io_loop.run_sync(server.start)
    yield server
    io_loop.run_sync(server.stop)


@pytest.fixture
def config(tmp_path, fake) -> Config:
    return replace(Config(), data_dir=tmp_path / "data", trakt_api_key=CLIENT_ID, trakt_client_secret=CLIENT_SECRET,
                   trakt_api_url=fake.url, trakt_auth_url=fake.url, trakt_username="", sync_interval_hours=0)


def sign_in(config: Config, oauth: FakeTraktOAuth) -> str:
    pair = oauth.issue_token()
    TokenStore(config.data_dir).save(Token.from_response(pair, "test"), username=USER, slug=USER)
    return pair["access_token"]


async def sync(config: Config, *, full: bool = True):
    report = await SyncService(config, DataFolder(config.data_dir), retry=FAST_RETRY, request_timeout=5.0,
                               auth=TokenManager(config)).run_once(full=full)
    assert report.outcome == "success", report.error
    return report


def served(config: Config, file: str) -> list:
    return json.loads((DataFolder(config.data_dir).served_root() / file).read_text())["data"]


def ids_of(account: FakeAccount, rule) -> list[int]:
    return [row["show"]["ids"]["trakt"] for row in account.watched_shows if rule(row["show"]["ids"]["trakt"])]


# By construction of the fake: every third show has an aired episode left and one airing in 7 days;
# the other returning (odd) ones are watched to the end with one episode airing in 10 days.
def in_progress(trakt_id: int) -> bool:
    return trakt_id % 3 == 0


def caught_up(trakt_id: int) -> bool:
    return trakt_id % 2 == 1 and not in_progress(trakt_id)


@pytest.mark.gen_test(timeout=30)
async def test_signed_in_hidden_shows_are_left_out_and_the_calendar_replaces_seasons_of_caught_up_shows(
        fake, account, config, oauth):
    hidden = ids_of(account, in_progress)[0]
    fake.hidden_shows = [hidden]
    sign_in(config, oauth)
    report = await sync(config)

    seasons = sorted(path for _, path, _ in fake.requests if path.endswith("/seasons"))
    assert seasons == sorted(f"/shows/{i}/seasons" for i in ids_of(account, in_progress) if i != hidden)
    assert [q for _, p, q in fake.requests if p == "/users/hidden/progress_watched"] == [
        {"type": "show", "page": "1", "limit": "250"}]
    start = (times.now() - timedelta(days=1)).date()
    assert sorted(p for _, p, _ in fake.requests if p.startswith("/calendars/")) == [
        f"/calendars/my/shows/{start + timedelta(days=33 * n)}/33" for n in range(3)]
    assert report.show_data["requests"] == len(seasons) + 1 + 3 + 1  # seasons, hidden, calendar, releases
    assert report.show_data["reasons"]["hidden from progress"] == 1
    assert report.show_data["reasons"]["watched to the end, returning: from the calendar"] == len(
        ids_of(account, caught_up))
    assert account.show_data_requests(signed_in=True, hidden=(hidden,)) == report.show_data["requests"]
    assert [row["show"]["ids"]["trakt"] for row in served(config, layout.SHOW_HIDDEN)] == [hidden]

    watched = served(config, layout.WATCHED["shows"])
    shows = build_shows(watched, served(config, layout.SHOW_SEASONS), served(config, layout.SHOW_HIDDEN))
    now = fake.show_clock + timedelta(hours=1)
    assert sorted(row["show"]["ids"]["trakt"] for row in up_next(shows, now)) == sorted(
        i for i in ids_of(account, in_progress) if i != hidden)
    rows = calendar(shows, [], now, UTC, 14)
    expected = {(i, (fake.show_clock + timedelta(days=7)).date().isoformat())
                for i in ids_of(account, in_progress) if i != hidden}
    expected |= {(i, (fake.show_clock + timedelta(days=10)).date().isoformat()) for i in ids_of(account, caught_up)}
    assert {(row["show"]["ids"]["trakt"], row["date"]) for row in rows} == expected
    assert not any(row["finale"] for row in rows if caught_up(row["show"]["ids"]["trakt"]))  # not known from a calendar


@pytest.mark.gen_test(timeout=30)
async def test_without_a_token_nothing_needs_oauth_and_hidden_shows_are_not_asked_for(fake, account, config):
    fake.hidden_shows = [ids_of(account, in_progress)[0]]
    await sync(replace(config, trakt_username=USER))
    assert not [p for _, p, _ in fake.requests if p.startswith(("/users/hidden/", "/calendars/"))]
    assert not (DataFolder(config.data_dir).served_root() / layout.SHOW_HIDDEN).exists()


@pytest.mark.gen_test(timeout=30)
async def test_a_show_hidden_later_is_left_out_at_the_next_check_without_any_seasons(fake, account, config, oauth):
    sign_in(config, oauth)
    await sync(config)
    fake.reset_counts()
    report = await sync(config, full=False)
    assert not report.committed and report.show_data["requests"] == 0  # unchanged: nothing spent

    hidden = ids_of(account, in_progress)[1]
    fake.hidden_shows = [hidden]
    fake.touch("shows.hidden_at")  # as Trakt moves it when a show is hidden
    fake.reset_counts()
    report = await sync(config, full=False)
    assert report.committed and report.show_data["why"] == "the hidden shows moved on Trakt"
    assert [p for _, p, _ in fake.requests if p.startswith("/shows/")] == []  # its seasons were kept anyway
    assert [row["show"]["ids"]["trakt"] for row in served(config, layout.SHOW_HIDDEN)] == [hidden]
    shows = build_shows(served(config, layout.WATCHED["shows"]), served(config, layout.SHOW_SEASONS),
                        served(config, layout.SHOW_HIDDEN))
    assert hidden not in [row["show"]["ids"]["trakt"] for row in up_next(shows, fake.show_clock)]


# --- the fake's up-next routes ------------------------------------------------------------------
async def get(url: str, token: str | None = None, **query) -> tuple[int, dict, object]:
    headers = dict(HEADERS, **({"Authorization": f"Bearer {token}"} if token else {}))
    target = url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")
    try:
        response = await AsyncHTTPClient().fetch(target, headers=headers)
    except HTTPClientError as exc:
        return exc.code, dict(exc.response.headers) if exc.response else {}, None
    return response.code, dict(response.headers), json.loads(response.body) if response.body else None


@pytest.mark.gen_test(timeout=20)
async def test_the_fake_answers_the_oauth_routes_only_with_a_token_and_pages_the_hidden_shows(fake, account, oauth):
    fake.hidden_shows = [row["show"]["ids"]["trakt"] for row in account.watched_shows]
    show = account.watched_shows[2]["show"]["ids"]["trakt"]
    today = fake.show_clock.date().isoformat()
    for path in ("/users/hidden/progress_watched", f"/shows/{show}/progress/watched", f"/calendars/my/shows/{today}/7",
                 f"/calendars/my/movies/{today}/7"):
        assert (await get(fake.url + path))[0] == 401, path
    token = oauth.issue_token()["access_token"]
    status, headers, body = await get(fake.url + "/users/hidden/progress_watched", token, type="show")
    assert status == 200 and len(body) == 10  # 10 a page without a limit
    assert headers["X-Pagination-Item-Count"] == "12" and headers["X-Pagination-Page-Count"] == "2"
    assert set(body[0]) == {"hidden_at", "type", "show"} and body[0]["type"] == "show"
    assert (await get(fake.url + f"/calendars/my/shows/{today}/34", token))[0] == 400  # Trakt's most is 33 days

    status, _, progress = await get(fake.url + f"/shows/{show}/progress/watched", token)
    assert status == 200 and set(progress) >= {"aired", "completed", "last_watched_at", "reset_at", "seasons",
                                               "hidden_seasons", "next_episode", "last_episode"}
    watched = sum(len(s["episodes"]) for s in account.watched_shows[2]["seasons"])
    assert progress["completed"] == watched and progress["aired"] == watched + in_progress(show)

    ended = next(i for i in ids_of(account, lambda i: i % 2 == 0 and not in_progress(i)))
    assert (await get(fake.url + f"/shows/{ended}/next_episode"))[0] == 204  # public; nothing airs later
    status, _, episode = await get(fake.url + f"/shows/{ids_of(account, caught_up)[0]}/next_episode")
    assert status == 200 and episode["first_aired"] == (fake.show_clock + timedelta(days=10)).strftime(
        "%Y-%m-%dT%H:%M:%S.000Z")
    assert datetime.fromisoformat(episode["first_aired"].replace("Z", "+00:00")) > fake.show_clock


@pytest.mark.gen_test(timeout=30)
async def test_signed_in_a_new_play_asks_for_neither_the_hidden_shows_nor_the_calendar(fake, account, config, oauth):
    sign_in(config, oauth)
    await sync(config)
    before = served(config, layout.SHOW_SEASONS)
    fake.add_play("episode", index=0)
    fake.reset_counts()
    report = await sync(config, full=False)
    assert report.committed and "watched" in report.changed
    assert not [p for _, p, _ in fake.requests if p.startswith(("/shows/", "/users/hidden/", "/calendars/"))]
    assert report.show_data["requests"] == 0
    assert served(config, layout.SHOW_SEASONS) == before
    assert served(config, layout.SHOW_HIDDEN) == []


@pytest.mark.gen_test(timeout=30)
async def test_signed_in_a_long_watchlists_releases_come_from_the_movie_calendar(fake, account, config, oauth):
    while len(account.watchlist_of("movies")) <= 3 * 250:  # more than three pages of 250
        n = 10_000 + len(account.watchlist)
        fake.add_to_watchlist({"title": f"Long list {n}", "year": 2026, "ids": {"trakt": n, "slug": f"long-list-{n}"}})
    sign_in(config, oauth)
    report = await sync(config)
    start = (times.now() - timedelta(days=1)).date()
    assert sorted(p for _, p, _ in fake.requests if p.startswith("/calendars/my/movies/")) == [
        f"/calendars/my/movies/{start + timedelta(days=33 * n)}/33" for n in range(3)]
    assert not [q for _, p, q in fake.requests if p.endswith("/watchlist/movies") and q.get("extended") == "full"]
    assert report.endpoints["calendar/movies"].requests == 3
    # released from yesterday on: the fake's dates are show_clock + trakt id % 20 - 5 days
    expected = sorted(m["movie"]["ids"]["trakt"] for m in account.watchlist_of("movies")
                      if m["movie"]["ids"]["trakt"] % 20 - 5 >= -1)
    rows = served(config, layout.CALENDAR_MOVIES)
    assert sorted(row["movie"]["ids"]["trakt"] for row in rows) == expected
    first = rows[0]
    assert first["released"] == (fake.show_clock.date() + timedelta(
        days=first["movie"]["ids"]["trakt"] % 20 - 5)).isoformat() and first["movie"]["runtime"] == 100

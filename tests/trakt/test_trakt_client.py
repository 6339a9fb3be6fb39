"""The Trakt client against the fake Trakt server: headers, pagination, retries, rate limits, errors."""

from __future__ import annotations

import math
from dataclasses import replace

import aiohttp
import pytest

from services.config import Config
from services.trakt.client import (
    USER_AGENT,
    RequestBudget,
    RetryPolicy,
    TraktBadResponse,
    TraktClient,
    TraktNotFound,
    TraktPrivate,
    TraktRateLimited,
    TraktUnavailable,
)
from tests.fakes.trakt import FakeAccount, FakeTrakt

FAST_RETRY = RetryPolicy(retries=3, base_delay=0.01, max_delay=0.02, default_retry_after=0.05)
USER = "fakeuser"


@pytest.fixture
def fake(io_loop):
    server = FakeTrakt(FakeAccount.build(history=600, watched_movies=30, shows=4, lists=2, watchlist=7))
    io_loop.run_sync(server.start)
    yield server
    io_loop.run_sync(server.stop)


def make_config(fake: FakeTrakt, **changes) -> Config:
    return replace(Config(), trakt_api_key="test-key", trakt_username=USER, trakt_api_url=fake.url, **changes)


def client_for(fake: FakeTrakt, **kwargs) -> TraktClient:
    """A client of the fake; `async with` starts and closes it."""
    kwargs.setdefault("retry", FAST_RETRY)
    return TraktClient(make_config(fake), **kwargs)


class VirtualTime:
    """A clock that only moves when the budget sleeps: budget tests without real waiting."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


# --- headers -------------------------------------------------------------------------------
@pytest.mark.gen_test(timeout=10)
async def test_client_sends_the_required_trakt_headers(fake):
    async with client_for(fake) as client:
        data, _ = await client.get_json(f"/users/{USER}/stats")
    assert data == fake.account.stats
    assert fake.last_headers["Content-Type"] == "application/json"
    assert fake.last_headers["Trakt-Api-Version"] == "2"
    assert fake.last_headers["Trakt-Api-Key"] == "test-key"
    assert fake.last_headers["User-Agent"] == USER_AGENT
    assert USER_AGENT.startswith("trakt-watch/")


@pytest.mark.gen_test(timeout=10)
async def test_fake_answers_412_without_json_content_type(fake):
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{fake.url}/users/{USER}/stats",
                               headers={"trakt-api-key": "test-key", "trakt-api-version": "2"}) as response:
            assert response.status == 412


@pytest.mark.gen_test(timeout=10)
async def test_wrong_key_is_403_and_the_message_never_contains_the_key(fake):
    async with TraktClient(replace(make_config(fake), trakt_api_key="secret-wrong-key"), retry=FAST_RETRY) as client:
        with pytest.raises(TraktPrivate) as caught:
            await client.get_json(f"/users/{USER}/stats")
    assert "403" in str(caught.value) and "TRAKT_API_KEY" in str(caught.value)
    assert "secret-wrong-key" not in str(caught.value)
    assert fake.count("/stats") == 1  # a refused key is not retried


# --- pagination ----------------------------------------------------------------------------
@pytest.mark.gen_test(timeout=10)
async def test_get_all_pages_fetches_every_page_at_limit_250(fake):
    async with client_for(fake) as client:
        result = await client.get_all_pages(f"/users/{USER}/history/shows")
    rows = fake.account.history_shows
    assert result.items == rows
    assert result.item_count == len(rows) == 400
    assert result.page_count == result.pages == math.ceil(400 / 250) == result.requests
    assert [q["limit"] for _, _, q in fake.requests] == ["250", "250"]
    assert sorted(q["page"] for _, _, q in fake.requests) == ["1", "2"]


@pytest.mark.gen_test(timeout=10)
async def test_fake_defaults_to_100_a_page_and_clamps_limit_at_250(fake):
    async with aiohttp.ClientSession(headers={"Content-Type": "application/json", "trakt-api-key": "test-key",
                                              "trakt-api-version": "2"}) as session:
        async with session.get(f"{fake.url}/users/{USER}/history/shows") as response:
            assert response.headers["X-Pagination-Limit"] == "100"
            assert response.headers["X-Pagination-Page-Count"] == "4"
            assert len(await response.json()) == 100
        async with session.get(f"{fake.url}/users/{USER}/history/shows", params={"limit": "1000"}) as response:
            assert response.headers["X-Pagination-Limit"] == "250"
            assert response.headers["X-Pagination-Item-Count"] == "400"
            assert len(await response.json()) == 250


@pytest.mark.gen_test(timeout=10)
async def test_a_server_that_clamps_limit_lower_still_yields_every_row(fake):
    fake.max_limit = 100
    async with client_for(fake) as client:
        result = await client.get_all_pages(f"/users/{USER}/history/shows")
    assert result.items == fake.account.history_shows
    assert result.pages == result.requests == 4


@pytest.mark.gen_test(timeout=10)
async def test_a_server_that_ignores_limit_still_yields_every_row(fake):
    fake.fixed_page_size = 7
    async with client_for(fake) as client:
        result = await client.get_all_pages(f"/users/{USER}/history/movies")
    assert result.items == fake.account.history_movies
    assert result.pages == math.ceil(200 / 7)


@pytest.mark.gen_test(timeout=10)
async def test_an_unpaginated_endpoint_is_one_request(fake):
    fake.unpaginated.add("watched/movies")
    async with client_for(fake) as client:
        result = await client.get_all_pages(f"/users/{USER}/watched/movies")
    assert result.items == fake.account.watched_movies
    assert (result.pages, result.page_count, result.item_count, result.requests) == (1, None, None, 1)


# --- recoverable faults ----------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["rate_limit", "rate_limit_html"])
@pytest.mark.gen_test(timeout=10)
async def test_429_is_retried_after_retry_after(fake, kind):
    fake.inject(kind, times=2, retry_after="7")
    time = VirtualTime()
    async with client_for(fake, budget=RequestBudget(1000, clock=time.clock, sleep=time.sleep)) as client:
        result = await client.get_all_pages(f"/users/{USER}/lists")
    assert result.items == fake.account.lists
    assert result.rate_limited == 2
    assert result.requests == 3
    assert time.sleeps == [7.0, 7.0]  # each retry waited exactly Retry-After


@pytest.mark.parametrize("status", [500, 502, 503, 520, 521, 522, 523, 524])
@pytest.mark.gen_test(timeout=10)
async def test_one_server_error_is_retried(fake, status):
    fake.inject("status", status=status)
    async with client_for(fake) as client:
        data, _ = await client.get_json(f"/users/{USER}/stats")
    assert data == fake.account.stats
    assert client.totals.requests == 2 and client.totals.retries == 1


@pytest.mark.gen_test(timeout=10)
async def test_a_slow_answer_times_out_and_is_retried(fake):
    fake.inject("slow", delay=3.0)
    async with client_for(fake, timeout=1.0) as client:
        data, _ = await client.get_json(f"/users/{USER}/stats")
    assert data == fake.account.stats
    assert client.totals.retries == 1


@pytest.mark.gen_test(timeout=10)
async def test_dropped_connections_are_retried(fake):
    fake.inject("drop", times=3)
    async with client_for(fake) as client:
        data, _ = await client.get_json(f"/users/{USER}/stats")
    assert data == fake.account.stats
    assert fake.pending_faults() == 0
    assert client.totals.retries >= 1  # aiohttp itself may retry a reset on a reused connection once


@pytest.mark.gen_test(timeout=10)
async def test_one_malformed_body_is_retried(fake):
    fake.inject("malformed")
    async with client_for(fake) as client:
        result = await client.get_all_pages(f"/users/{USER}/ratings")
    assert result.items == fake.account.ratings
    assert result.retries == 1


# --- giving up -----------------------------------------------------------------------------
@pytest.mark.gen_test(timeout=10)
async def test_persistent_server_errors_give_up_after_the_retries(fake):
    fake.inject("status", status=503, times=100)
    async with client_for(fake) as client:
        with pytest.raises(TraktUnavailable, match="503, giving up after 4 attempts"):
            await client.get_json(f"/users/{USER}/stats")
    assert fake.count("/stats") == FAST_RETRY.retries + 1


@pytest.mark.gen_test(timeout=10)
async def test_persistent_429_gives_up(fake):
    fake.inject("rate_limit", times=100, retry_after="0.01")
    async with client_for(fake, retry=replace(FAST_RETRY, rate_limit_retries=2)) as client:
        with pytest.raises(TraktRateLimited) as caught:
            await client.get_json(f"/users/{USER}/stats")
    assert caught.value.retry_after == pytest.approx(0.01)
    assert fake.count("/stats") == 3


@pytest.mark.gen_test(timeout=10)
async def test_persistent_malformed_json_is_a_bad_response(fake):
    fake.inject("malformed", times=100)
    async with client_for(fake) as client:
        with pytest.raises(TraktBadResponse, match="malformed JSON"):
            await client.get_all_pages(f"/users/{USER}/comments")


@pytest.mark.gen_test(timeout=10)
async def test_private_user_says_the_profile_is_private_and_how_to_sign_in(fake):
    fake.inject("private")
    async with client_for(fake) as client:
        with pytest.raises(TraktPrivate, match="profile is private.*trakt-watch login"):
            await client.get_all_pages(f"/users/{USER}/history/movies")
    assert fake.count() == 1


@pytest.mark.gen_test(timeout=10)
async def test_unknown_user_is_not_found(fake):
    async with client_for(fake) as client:
        with pytest.raises(TraktNotFound, match="TRAKT_USERNAME"):
            await client.get_json("/users/nobody/stats")


@pytest.mark.gen_test(timeout=10)
async def test_connection_refused_is_unavailable(fake):
    url = fake.url
    await fake.stop()
    async with TraktClient(replace(Config(), trakt_api_key="k", trakt_api_url=url), retry=FAST_RETRY) as client:
        with pytest.raises(TraktUnavailable, match="cannot connect"):
            await client.get_json("/users/x/stats")


# --- watching ------------------------------------------------------------------------------
@pytest.mark.gen_test(timeout=10)
async def test_watching_is_none_on_204_and_the_payload_on_200(fake):
    async with client_for(fake) as client:
        assert await client.watching(USER) is None
        fake.watching = {"type": "movie", "action": "scrobble", "movie": fake.account.watched_movies[0]["movie"]}
        assert await client.watching(USER) == fake.watching


@pytest.mark.gen_test(timeout=10)
async def test_watching_never_retries(fake):
    fake.inject("status", status=502, times=5)
    fake.inject("rate_limit", retry_after="30")
    async with client_for(fake) as client:
        with pytest.raises(TraktUnavailable):
            await client.watching(USER)
        fake.clear_faults()
        fake.inject("rate_limit", retry_after="30")
        with pytest.raises(TraktRateLimited) as caught:
            await client.watching(USER)
    assert caught.value.retry_after == 30
    assert fake.count("/watching") == 2


# --- budget --------------------------------------------------------------------------------
@pytest.mark.gen_test(timeout=10)
async def test_request_budget_holds_requests_beyond_the_limit():
    time = VirtualTime()
    budget = RequestBudget(limit=3, period=300, clock=time.clock, sleep=time.sleep)
    waits = [await budget.acquire() for _ in range(4)]
    assert waits == [0.0, 0.0, 0.0, 300.0]
    assert budget.used() == 1  # the first three left the window while the fourth waited


@pytest.mark.gen_test(timeout=10)
async def test_request_budget_pause_holds_every_caller():
    time = VirtualTime()
    budget = RequestBudget(limit=100, period=300, clock=time.clock, sleep=time.sleep)
    budget.pause(42)
    assert await budget.acquire() == 42
    assert await budget.acquire() == 0.0


@pytest.mark.gen_test(timeout=10)
async def test_client_never_exceeds_its_budget(fake):
    time = VirtualTime()
    budget = RequestBudget(limit=2, period=300, clock=time.clock, sleep=time.sleep)
    async with client_for(fake, budget=budget) as client:
        result = await client.get_all_pages(f"/users/{USER}/history/shows")  # 2 pages
        await client.get_json(f"/users/{USER}/stats")
    assert len(result.items) == 400
    assert time.sleeps == [300.0]  # the third request waited for the window to move on
    assert fake.count() == 3


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="TRAKT_API_KEY"):
        TraktClient(Config())
    with pytest.raises(ValueError, match="limit"):
        RequestBudget(0)
    with pytest.raises(ValueError, match="retry counts"):
        RetryPolicy(retries=-1)
    with pytest.raises(ValueError, match="unknown fault"):
        FakeTrakt(FakeAccount()).inject("explode")


def test_default_budget_follows_trakt_rate_limit():
    client = TraktClient(replace(Config(), trakt_api_key="k", trakt_rate_limit=7))
    assert (client.budget.limit, client.budget.period) == (7, 300.0)
    shared = RequestBudget(3)
    assert TraktClient(replace(Config(), trakt_api_key="k"), budget=shared).budget is shared


# --- the numbers README "Sync" promises ------------------------------------------------------
# Expected values are the README's words, never the code's constants: change one and its test fails.
README_RETRIES = 4  # "5xx, 520–524, timeouts … are retried 4 times"
README_429_WAITS = 5  # "waits for its Retry-After (up to 5 times per request)"
README_TIMEOUT_SECONDS = 30  # "timeouts (30 s per request)"
README_CONCURRENCY = 4  # "4 at a time"


def default_client(fake: FakeTrakt, time: VirtualTime) -> TraktClient:
    """The client as the sync builds it, its waits on a virtual clock and its backoff at zero, so
    the counts are the defaults and nothing really sleeps."""
    client = TraktClient(make_config(fake), budget=RequestBudget(1000, clock=time.clock, sleep=time.sleep))
    client.retry = replace(client.retry, base_delay=0.0, max_delay=0.0)
    return client


@pytest.mark.gen_test(timeout=10)
async def test_server_errors_are_retried_4_times_by_default(fake):
    fake.inject("status", status=502, times=100)
    async with default_client(fake, VirtualTime()) as client:
        with pytest.raises(TraktUnavailable, match=f"giving up after {README_RETRIES + 1} attempts"):
            await client.get_json(f"/users/{USER}/stats")
    assert fake.count("/stats") == README_RETRIES + 1


@pytest.mark.gen_test(timeout=10)
async def test_a_429_is_waited_out_5_times_by_default_then_it_fails(fake):
    fake.inject("rate_limit", times=100, retry_after="3")
    time = VirtualTime()
    async with default_client(fake, time) as client:
        with pytest.raises(TraktRateLimited):
            await client.get_json(f"/users/{USER}/stats")
    assert fake.count("/stats") == README_429_WAITS + 1
    assert time.sleeps == [3.0] * README_429_WAITS  # each wait is the Retry-After Trakt sent


@pytest.mark.gen_test(timeout=10)
async def test_a_429_with_an_http_date_retry_after_waits_until_that_date(fake):
    import email.utils
    import time as wall

    fake.inject("rate_limit_html", retry_after=email.utils.formatdate(wall.time() + 120, usegmt=True))
    time = VirtualTime()
    async with default_client(fake, time) as client:
        data, _ = await client.get_json(f"/users/{USER}/stats")
    assert data == fake.account.stats
    [waited] = time.sleeps
    assert 115 <= waited <= 120  # the date has whole seconds; the request took a moment


def test_a_request_times_out_after_30_s_by_default():
    client = TraktClient(replace(Config(), trakt_api_key="k"))
    assert client.timeout == README_TIMEOUT_SECONDS


@pytest.mark.gen_test(timeout=20)
async def test_at_most_4_requests_are_in_flight_by_default(io_loop):
    server = FakeTrakt(FakeAccount.build(history=4000, watched_movies=5, shows=2), latency=0.05)
    await server.start()
    try:
        async with TraktClient(make_config(server)) as client:
            result = await client.get_all_pages(f"/users/{USER}/history/shows")  # 11 pages at 250
    finally:
        await server.stop()
    assert result.pages == 11
    assert server.max_in_flight == README_CONCURRENCY


# --- answers bounded after decompression (README "Sync") ------------------------------------------
@pytest.mark.gen_test(timeout=60)
async def test_a_gzip_bomb_is_refused_at_the_limit_without_retrying(fake):
    fake.inject("gzip_bomb", path="/history/movies", times=100)
    async with client_for(fake) as client:
        with pytest.raises(TraktBadResponse) as caught:
            await client.get_all_pages(f"/users/{USER}/history/movies")
    assert str(caught.value) == (f"/users/{USER}/history/movies page 1: Trakt's answer is larger than 16 MiB "
                                 "after decompression, the limit per answer; refused without reading further")
    assert fake.count("/history/movies") == 1  # a bomb is not fetched again

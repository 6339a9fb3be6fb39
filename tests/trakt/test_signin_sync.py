"""The sign-in wired into the sync and the watcher: a private account mirrored through `/users/me`,
private profiles without a token refused without touching the served data, one refresh for the
whole process, a lost sign-in in /healthz, and no secret anywhere it could leak (README "Signing in")."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import logging
import os
import time
from dataclasses import replace
from pathlib import Path

import pytest
from tornado.httpclient import HTTPClientError

from services.config import Config
from services.data import layout
from services.data.snapshots import DataFolder
from services.trakt.auth import TokenManager, TokenStore
from services.trakt.cli import run_sync_command
from services.trakt.client import RequestBudget, RetryPolicy, TraktClient, TraktPrivate
from services.trakt.oauth import Token
from services.trakt.report import read_last_attempt
from services.trakt.service import missing_settings
from tests.fakes.trakt import PRIVATE_MODES, FakeAccount, FakeTrakt, at_level
from tests.fakes.trakt_oauth import CLIENT_ID, CLIENT_SECRET, FakeTraktOAuth
from tests.helpers.watching import watching_payload

USER = "fakeuser"
SIGN_IN_AGAIN = "sign in again: trakt-watch login"
FAST_RETRY = RetryPolicy(retries=1, base_delay=0.01, max_delay=0.02, rate_limit_retries=1,
                         default_retry_after=0.05)


# --- fixtures and helpers ------------------------------------------------------------------------
@pytest.fixture
def account() -> FakeAccount:
    return FakeAccount.build(username=USER, history=300, watched_movies=30, shows=5, lists=3, watchlist=8)


@pytest.fixture
def oauth() -> FakeTraktOAuth:
    return FakeTraktOAuth(username=USER, token_expires_in=7 * 86400)


@pytest.fixture
def fake(io_loop, account, oauth):
    server = FakeTrakt(account, api_key=CLIENT_ID, oauth=oauth)
    io_loop.run_sync(server.start)
    yield server
    io_loop.run_sync(server.stop)


@pytest.fixture
def username() -> str:
    return ""  # signed in, TRAKT_USERNAME may be left out


@pytest.fixture
def poll_seconds() -> float:
    return 60.0


@pytest.fixture
def config(data_dir, fake, username, poll_seconds) -> Config:
    """The conftest's small account "sam" is served until a sync commits; the fake is Trakt and its OAuth host."""
    return replace(Config(), data_dir=data_dir, timezone="UTC", data_check_seconds=0.1, trakt_api_key=CLIENT_ID,
                   trakt_client_secret=CLIENT_SECRET, trakt_api_url=fake.url, trakt_auth_url=fake.url,
                   trakt_username=username, sync_interval_hours=0, watching_poll_seconds=poll_seconds)


def sign_in(config: Config, oauth: FakeTraktOAuth, **issue) -> dict:
    pair = oauth.issue_token(**issue)
    TokenStore(config.data_dir).save(Token.from_response(pair, "test"), username=USER, slug=USER)
    return pair


def due_for_refresh() -> dict:
    """A one-hour token with 100 s left: inside the refresh margin (the last tenth of its life)."""
    return {"expires_in": 3600, "created_at": int(time.time()) - 3500}


def served_state(config: Config) -> dict[str, str]:
    """Every served file's hash plus where `current` points: equal means byte-for-byte unchanged."""
    folder = DataFolder(config.data_dir)
    root = folder.served_root()
    assert root is not None
    state = {"<current>": os.readlink(folder.current_link) if folder.current_link.is_symlink() else str(root)}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            state[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return state


def served(config: Config, endpoint: str):
    root = DataFolder(config.data_dir).served_root()
    return json.loads((root / endpoint).read_text(encoding="utf-8"))


def assert_mirrors_the_private_account(config: Config, account: FakeAccount) -> None:
    profile = served(config, layout.PROFILE)
    assert profile["data"] == {**account.profile, "private": True}  # the owner's full profile
    assert profile["metadata"]["username"] == USER
    assert served(config, layout.HISTORY["movies"])["data"] == account.history_movies
    assert served(config, layout.HISTORY["shows"])["data"] == account.history_shows
    # watched titles are mirrored with their details (runtime, genres...: README "Insights")
    assert served(config, layout.WATCHED["shows"])["data"] == at_level(account.watched_shows, "show", {"full"})
    assert served(config, layout.WATCHLIST["all"])["data"] == account.watchlist_of("all")
    assert served(config, layout.LISTS)["data"] == account.lists
    assert served(config, layout.RATINGS)["data"] == account.ratings
    for lst in account.lists:
        items = served(config, layout.list_items_endpoint(lst["ids"]["slug"]))["data"]
        assert items == account.list_items[lst["ids"]["trakt"]]


async def fetch(http_client, url: str, **kwargs):
    try:
        return await http_client.fetch(url, **kwargs)
    except HTTPClientError as exc:
        return exc.response


async def fetch_json(http_client, url: str, **kwargs) -> tuple[int, dict]:
    response = await fetch(http_client, url, **kwargs)
    return response.code, json.loads(response.body)


async def wait_until(check, deadline: float = 15.0, step: float = 0.05):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        value = await check()
        if value:
            return value
        await asyncio.sleep(step)
    raise AssertionError("the condition never held")


async def sync_in_server(http_client, base_url: str) -> dict:
    code, _ = await fetch_json(http_client, f"{base_url}/api/trakt/sync", method="POST", body=b"")
    assert code == 202

    async def finished():
        status = (await fetch_json(http_client, f"{base_url}/api/trakt/sync"))[1]
        return status if not status["running"] and status["last_attempt_at"] else None

    return await wait_until(finished)


# --- which account, and whether the settings allow a sync -------------------------------------------
def test_trakt_username_is_optional_once_signed_in_and_a_lost_sign_in_says_sign_in_again(tmp_path, oauth):
    config = replace(Config(), trakt_api_key=CLIENT_ID, data_dir=tmp_path / "data")
    tokens = TokenManager(config)
    assert "TRAKT_USERNAME must be set" in missing_settings(config, tokens)
    assert "trakt-watch login" in missing_settings(config, tokens)
    assert "TRAKT_API_KEY and TRAKT_USERNAME" in missing_settings(replace(config, trakt_api_key=""), tokens)

    sign_in(config, oauth)
    assert missing_settings(config, tokens) is None
    assert missing_settings(replace(config, trakt_api_key=""), tokens) == \
        "TRAKT_API_KEY must be set (environment or .env)"

    store = TokenStore(config.data_dir)
    store.mark_lost(store.load(), "Trakt refused the refresh token (400 invalid_grant)")
    assert SIGN_IN_AGAIN in missing_settings(config, tokens)
    assert missing_settings(replace(config, trakt_username="someone"), tokens) is None  # public profiles work


@pytest.mark.gen_test(timeout=20)
async def test_signed_in_the_client_reads_me_and_without_a_sign_in_the_configured_user(config, oauth):
    client = TraktClient(config, auth=TokenManager(config))
    assert not client.signed_in and client.user_id("sam") == "sam" and client.user_id("") == ""
    sign_in(config, oauth)
    assert client.signed_in and client.user_id("sam") == "me"
    assert not TraktClient(config).signed_in  # no TokenManager: the app key alone


# --- a 401 refreshes once and is retried once -------------------------------------------------------
@pytest.mark.gen_test(timeout=20)
async def test_an_access_token_expired_at_trakt_is_refreshed_once_and_the_request_retried_once(config, fake, oauth):
    sign_in(config, oauth)
    fake.expire_access_tokens()  # our side thinks it has days left; Trakt answers 401 invalid_token
    tokens = TokenManager(config, budget=RequestBudget(100))
    async with TraktClient(config, auth=tokens, retry=FAST_RETRY) as client:
        data, _ = await client.get_json("/users/me/history/movies", {"limit": 250})
        assert data == fake.account.history_movies[:250]
        assert oauth.refresh_count == 1 and fake.count("/users/me/history/movies") == 2
        assert stored_access_token(config) != ""  # the new pair is stored ...
        assert oauth.user_for(f"Bearer {stored_access_token(config)}") is not None  # ... and valid
        await client.get_json("/users/me/stats")
        assert oauth.refresh_count == 1  # the next request uses the refreshed token as it is
    await tokens.close()


@pytest.mark.gen_test(timeout=20)
async def test_a_private_user_401_with_a_token_never_refreshes(config, fake, oauth):
    sign_in(config, oauth)
    fake.inject("private")
    tokens = TokenManager(config)
    async with TraktClient(config, auth=tokens, retry=FAST_RETRY) as client:
        with pytest.raises(TraktPrivate, match="profile is private"):
            await client.get_json("/users/someone/history")
    assert oauth.refresh_count == 0 and fake.count() == 1
    await tokens.close()


@pytest.mark.gen_test(timeout=20)
async def test_a_token_trakt_refuses_even_after_the_refresh_fails_with_sign_in_again_and_no_loop(config, fake, oauth):
    sign_in(config, oauth)
    fake.inject("status", status=401, times=10, path="/users/me/stats")  # 401 whatever the token
    tokens = TokenManager(config)
    async with TraktClient(config, auth=tokens, retry=FAST_RETRY) as client:
        with pytest.raises(TraktPrivate, match=SIGN_IN_AGAIN):
            await client.get_json("/users/me/stats")
    assert oauth.refresh_count == 1 and fake.count("/users/me/stats") == 2
    await tokens.close()


def stored_access_token(config: Config) -> str:
    return json.loads(TokenStore(config.data_dir).path.read_text())["access_token"]


# --- a private account, signed in ---------------------------------------------------------------------
@pytest.mark.gen_test(timeout=60)
async def test_a_private_account_syncs_completely_from_the_command_line_when_signed_in(config, fake, oauth, account):
    fake.private_mode = "401"
    pair = sign_in(config, oauth)
    out, err = io.StringIO(), io.StringIO()
    assert await run_sync_command(config, images=False, stdout=out, stderr=err, retry=FAST_RETRY) == 0, err.getvalue()
    assert_mirrors_the_private_account(config, account)
    paths = [path for _, path, _ in fake.requests]
    # The account's own data through `me`; the incremental state comes from /sync/last_activities,
    # up next's seasons from each show's own path, the hidden shows and the calendar from the token's own.
    assert paths and all(path in ("/users/me", "/sync/last_activities") or path.startswith(
        ("/users/me/", "/shows/", "/users/hidden/", "/calendars/my/")) for path in paths)
    assert fake.last_headers["Authorization"] == f"Bearer {pair['access_token']}"
    # One request per page, nothing more: the sign-in costs no extra request while the token is fresh.
    # the minimum, and one more: the incremental state (/sync/last_activities) is read first
    assert len(paths) == account.minimum_requests(signed_in=True) + 1 and oauth.refresh_count == 0
    report = read_last_attempt(DataFolder(config.data_dir))
    assert report["outcome"] == "success" and report["username"] == USER


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("username", ["someone-else"])
async def test_signed_in_the_signed_in_account_is_mirrored_and_a_different_trakt_username_is_a_warning(
        config, fake, oauth, account):
    sign_in(config, oauth)
    err = io.StringIO()
    assert await run_sync_command(config, images=False, stdout=io.StringIO(), stderr=err, retry=FAST_RETRY) == 0
    assert "TRAKT_USERNAME=someone-else is not the signed-in account (fakeuser)" in err.getvalue()
    assert served(config, layout.HISTORY["movies"])["data"] == account.history_movies


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("poll_seconds", [0.2])
async def test_the_server_syncs_a_private_account_and_polls_me_watching_when_signed_in(
        http_client, base_url, config, fake, oauth, account):
    fake.private_mode = "401"
    sign_in(config, oauth)
    fake.watching = watching_payload()

    async def playing():
        code, body = await fetch_json(http_client, f"{base_url}/api/watching")
        return code == 200 and body.get("isWatching") and body["content"]["title"] == "Heat"

    await wait_until(playing)
    assert fake.count("/users/me/watching") >= 1 and fake.count(f"/users/{USER}/watching") == 0

    status = await sync_in_server(http_client, base_url)
    assert status["last_attempt_outcome"] == "success", status["last_error"]
    assert_mirrors_the_private_account(config, account)

    async def served_history():
        code, body = await fetch_json(http_client, f"{base_url}/api/trakt/user/history?type=movies")
        return code == 200 and body["data"] == account.history_movies and body

    body = await wait_until(served_history)
    assert body["metadata"]["username"] == USER
    code, health = await fetch_json(http_client, f"{base_url}/healthz")
    assert health["sign_in"] == {"state": "signed_in", "username": USER, "message": f"signed in as {USER}"}
    assert health["status"] == "ok", health["reasons"]


# --- a private account without a token ------------------------------------------------------------------
@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("mode", PRIVATE_MODES)
@pytest.mark.parametrize("username", [USER])
async def test_each_kind_of_private_profile_fails_without_a_token_and_keeps_the_served_snapshot(
        config, fake, mode):
    assert await run_sync_command(config, images=False, stdout=io.StringIO(), stderr=io.StringIO(),
                                  retry=FAST_RETRY) == 0  # public: a good snapshot first
    before = served_state(config)
    good_report = read_last_attempt(DataFolder(config.data_dir))

    fake.private_mode = mode
    # The cheap check first: it never commits what a private profile shows a stranger, and fails
    # like a full sync even where only the profile says so and nothing moved ("profile"), within
    # the 4 requests of an unchanged public check (Trakt's X-Private-User on the watchlist tells).
    fake.reset_counts()
    err = io.StringIO()
    assert await run_sync_command(config, images=False, stdout=io.StringIO(), stderr=err,
                                  retry=FAST_RETRY) == 1, err.getvalue()
    assert len(fake.requests) <= 4, fake.requests
    assert served_state(config) == before
    assert "private" in err.getvalue() and "trakt-watch login" in err.getvalue()
    # A full re-mirror reads the profile and fails.
    err = io.StringIO()
    assert await run_sync_command(config, full=True, images=False, stdout=io.StringIO(), stderr=err,
                                  retry=FAST_RETRY) == 1
    assert "private" in err.getvalue() and "trakt-watch login" in err.getvalue()
    assert served_state(config) == before
    report = read_last_attempt(DataFolder(config.data_dir))
    assert report["outcome"] == "failed" and report["snapshot"] is None
    assert "trakt-watch login" in report["error"] and report["error"].endswith("the served data is unchanged")
    assert good_report["outcome"] == "success"


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("username", [USER])
async def test_without_trakts_private_user_header_an_unchanged_check_asks_the_profile(config, fake):
    fake.private_user_header = False  # an answer without X-Private-User: the profile decides
    assert await run_sync_command(config, images=False, stdout=io.StringIO(), stderr=io.StringIO(),
                                  retry=FAST_RETRY) == 0
    before = served_state(config)
    fake.reset_counts()
    assert await run_sync_command(config, images=False, stdout=io.StringIO(), stderr=io.StringIO(),
                                  retry=FAST_RETRY) == 0  # public and unchanged: nothing committed
    assert fake.counter[f"/users/{USER}"] == 1
    fake.private_mode = "profile"
    err = io.StringIO()
    assert await run_sync_command(config, images=False, stdout=io.StringIO(), stderr=err,
                                  retry=FAST_RETRY) == 1
    assert "is private" in err.getvalue() and "trakt-watch login" in err.getvalue()
    assert served_state(config) == before


# --- one refresh for the whole process ---------------------------------------------------------------
@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("poll_seconds", [0.1])
async def test_the_sync_and_the_watcher_racing_for_a_due_refresh_send_exactly_one_refresh(
        http_client, base_url, config, fake, oauth, account):
    # Stored while the server runs: the watcher's next poll (0.1 s) and the sync started now both
    # find it due, and the refresh takes long enough for both to want it at the same time.
    oauth.refresh_delay = 1.0
    sign_in(config, oauth, **due_for_refresh())
    fake.watching = watching_payload()
    status = await sync_in_server(http_client, base_url)
    assert status["last_attempt_outcome"] == "success", status["last_error"]
    await asyncio.sleep(0.5)  # a few more polls with the new token
    assert oauth.refresh_count == 1 and oauth.count("/oauth/token") == 1
    assert fake.count("/users/me/watching") >= 3
    # Neither the watcher nor the sync sent a request before the one refresh had stored the new pair.
    assert set(fake.authorizations) == {f"Bearer {stored_access_token(config)}"}
    assert served(config, layout.HISTORY["shows"])["data"] == account.history_shows


@pytest.fixture
def token_kind() -> str:
    return "fresh"


@pytest.fixture
def signed_in_before_start(config, oauth, token_kind):
    """A token stored before the server's services start (list this fixture before http_client):
    fresh, due for a refresh, or due and refused by Trakt (`invalid_grant`)."""
    issue = due_for_refresh() if token_kind in ("due", "refused") else {}
    pair = sign_in(config, oauth, **issue)
    if token_kind == "refused":
        oauth.invalidate_refresh_tokens()  # the app was revoked at Trakt: the refresh gets invalid_grant
    return pair


# --- a lost sign-in ------------------------------------------------------------------------------------
@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("token_kind", ["refused"])
@pytest.mark.parametrize("poll_seconds", [0.1])
async def test_a_lost_sign_in_degrades_healthz_keeps_serving_and_never_retries(
        signed_in_before_start, http_client, base_url, fake, oauth):
    async def lost():
        code, health = await fetch_json(http_client, f"{base_url}/healthz")
        return health["sign_in"]["state"] == "lost" and (code, health)

    code, health = await wait_until(lost)
    assert code == 200 and health["status"] == "degraded"
    assert SIGN_IN_AGAIN in health["reasons"] and health["sign_in"]["message"] == SIGN_IN_AGAIN
    code, profile = await fetch_json(http_client, f"{base_url}/api/trakt/user/profile")
    assert code == 200 and profile["data"]["username"] == "sam"  # the last data stays served

    await asyncio.sleep(0.2)  # a poll in flight when the sign-in was marked lost has ended
    polls = fake.count("/watching")
    await asyncio.sleep(1.0)  # ten poll intervals
    assert oauth.refresh_count == 1 and fake.count("/watching") == polls  # nothing retries
    code, body = await fetch_json(http_client, f"{base_url}/api/trakt/sync", method="POST", body=b"")
    assert code == 503 and SIGN_IN_AGAIN in body["error"]
    assert oauth.refresh_count == 1


# --- no secret anywhere ----------------------------------------------------------------------------------
@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("token_kind", ["due"])
@pytest.mark.parametrize("poll_seconds", [0.1])
async def test_no_token_refresh_token_or_secret_in_logs_answers_metrics_or_stored_reports(
        signed_in_before_start, http_client, base_url, config, fake, oauth, caplog):
    caplog.set_level(logging.DEBUG)
    fake.private_mode = "401"
    fake.watching = watching_payload()
    status = await sync_in_server(http_client, base_url)
    assert status["last_attempt_outcome"] == "success" and oauth.refresh_count == 1
    fake.expire_access_tokens()  # one more refresh, through a 401 this time
    fake.inject("status", status=500, times=1, path="/users/me/stats")  # and a failure that is logged
    status = await sync_in_server(http_client, base_url)
    assert oauth.refresh_count == 2

    texts = [record.getMessage() for record in caplog.records]
    texts += [record.exc_text or "" for record in caplog.records]
    for path in ("/healthz", "/api/trakt", "/api/trakt/sync", "/metrics", "/api/watching",
                 "/api/trakt/user/profile", "/api/openapi.json"):
        response = await fetch(http_client, base_url + path)
        texts.append(response.body.decode("utf-8", "replace") + str(dict(response.headers)))
    data_dir = Path(config.data_dir)
    token_file = TokenStore(config.data_dir).path
    stored = [p for p in data_dir.rglob("*") if p.is_file() and not p.is_symlink() and p.parent != token_file.parent]
    assert any(p.name.endswith(".json") and p.parent.name == "sync" for p in stored)  # the reports are there
    texts += [p.read_bytes().decode("utf-8", "replace") for p in stored if p.suffix in (".json", ".txt", ".log")]
    secrets = oauth.secret_values()
    assert len(secrets) >= 5  # the client secret and three token pairs
    leaks = [(secret[:12], text[:80]) for text in texts for secret in secrets if secret in text]
    assert leaks == []


# --- a caller that gives up does not lose the sign-in ------------------------------------------------
@pytest.mark.gen_test(timeout=20)
async def test_a_caller_timing_out_during_a_refresh_leaves_the_new_pair_stored_and_the_sign_in_alive(
        config, fake, oauth):
    oauth.refresh_delay = 0.5  # Trakt spends the old refresh token; the answer comes later
    sign_in(config, oauth, **due_for_refresh())
    tokens = TokenManager(config)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.1):  # the watcher's poll timeout, say
            await tokens.authorization_header()

    async def new_pair_stored():
        return oauth.refresh_count == 1 and oauth.user_for(f"Bearer {stored_access_token(config)}") is not None

    await wait_until(new_pair_stored)  # the refresh went on without its caller
    header = await tokens.authorization_header()
    assert header == {"Authorization": f"Bearer {stored_access_token(config)}"}
    assert tokens.state()["state"] == "signed_in" and oauth.refresh_count == 1
    await tokens.close()


@pytest.mark.gen_test(timeout=60)
async def test_a_sign_in_that_recorded_no_name_takes_the_name_from_the_mirrored_profile(config, fake, oauth):
    pair = oauth.issue_token()
    TokenStore(config.data_dir).save(Token.from_response(pair, "test"), username=None, slug=None)
    assert await run_sync_command(config, images=False, stdout=io.StringIO(), stderr=io.StringIO(),
                                  retry=FAST_RETRY) == 0
    assert served(config, layout.HISTORY["movies"])["metadata"]["username"] == USER
    assert read_last_attempt(DataFolder(config.data_dir))["username"] == USER


@pytest.mark.gen_test(timeout=60)
async def test_a_sign_in_lost_when_the_sync_refreshes_fails_the_sync_with_sign_in_again(config, fake, oauth):
    fake.private_mode = "401"
    sign_in(config, oauth)
    assert await run_sync_command(config, images=False, stdout=io.StringIO(), stderr=io.StringIO(),
                                  retry=FAST_RETRY) == 0
    before = served_state(config)
    sign_in(config, oauth, **due_for_refresh())
    oauth.invalidate_refresh_tokens()
    err = io.StringIO()
    assert await run_sync_command(config, images=False, stdout=io.StringIO(), stderr=err, retry=FAST_RETRY) == 1
    assert SIGN_IN_AGAIN in err.getvalue()
    assert served_state(config) == before
    assert oauth.refresh_count == 1
    assert TokenManager(config).state()["state"] == "lost"
    err = io.StringIO()  # and now, without TRAKT_USERNAME, the sync does not even start
    assert await run_sync_command(config, images=False, stdout=io.StringIO(), stderr=err) == 1
    assert SIGN_IN_AGAIN in err.getvalue() and oauth.refresh_count == 1

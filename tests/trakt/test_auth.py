"""The Trakt sign-in as a service: settings, the token file, refresh, the device flow, OAuth hosts."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import socket
import stat
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import tornado.httpclient
import tornado.httpserver
import tornado.netutil
import tornado.web

from services.config import Config, ConfigError, load_config
from services.trakt.auth import LOST, REFUSED, SIGNED_IN, SIGNED_OUT, SignIn, TokenFileRefused, TokenManager, \
    TokenStore
from services.trakt.client import RequestBudget
from services.trakt.oauth import AuthUnavailable, DeviceFlowFailed, OAuthClient, Token, wait_for_device_token
from tests.fakes.trakt_oauth import CLIENT_ID, CLIENT_SECRET, FakeTraktOAuth
from tests.helpers.process import ROOT, free_port

REQUIRED_HEADERS = {"Content-Type": "application/json", "trakt-api-key": CLIENT_ID, "trakt-api-version": "2"}


# --- fixtures and helpers ------------------------------------------------------------------------
@pytest.fixture
def fake(io_loop):
    server = FakeTraktOAuth(interval=0.01, token_expires_in=3600)
    io_loop.run_sync(server.start)
    yield server
    io_loop.run_sync(server.stop)


def auth_config(tmp_path: Path, auth_url: str, api_url: str | None = None) -> Config:
    return replace(Config(), trakt_api_key=CLIENT_ID, trakt_client_secret=CLIENT_SECRET, trakt_auth_url=auth_url,
                   trakt_api_url=api_url or auth_url, data_dir=tmp_path / "data")


@pytest.fixture
def config(fake, tmp_path) -> Config:
    return auth_config(tmp_path, fake.base_url)


def sign_in(config: Config, pair: dict) -> SignIn:
    return TokenStore(config.data_dir).save(Token.from_response(pair, "test"), username="fakeuser", slug="fakeuser")


def stored(config: Config) -> dict:
    return json.loads(TokenStore(config.data_dir).path.read_text())


def bearer(pair: dict) -> dict:
    return {"Authorization": f"Bearer {pair['access_token']}"}


def assert_no_secret_in(text: str, fake: FakeTraktOAuth) -> None:
    for value in fake.secret_values():
        assert value not in text


# --- settings ------------------------------------------------------------------------------------
def test_client_secret_and_auth_url_are_read_validated_and_the_secret_is_redacted(tmp_path):
    empty_env_file = tmp_path / "empty.env"
    empty_env_file.write_text("")
    default = load_config(environ={}, env_file=empty_env_file)
    assert default.trakt_auth_url == "https://auth.trakt.tv" and default.trakt_client_secret == ""

    config = load_config(environ={"TRAKT_CLIENT_SECRET": " s3cr3t-value ", "TRAKT_AUTH_URL": "http://127.0.0.1:9/"},
                         env_file=empty_env_file)
    assert config.trakt_client_secret == "s3cr3t-value"
    assert config.trakt_auth_url == "http://127.0.0.1:9"
    assert "s3cr3t-value" in config.secrets()  # what log redaction replaces
    assert "s3cr3t-value" not in repr(config)
    with pytest.raises(ConfigError, match="TRAKT_AUTH_URL must be an http:// or https:// URL"):
        load_config(environ={"TRAKT_AUTH_URL": "ftp://auth.example"}, env_file=empty_env_file)


# --- the token file ------------------------------------------------------------------------------
def test_the_token_file_is_private_even_with_a_permissive_umask_and_leaves_no_temp_file(tmp_path):
    store = TokenStore(tmp_path / "data")
    old_umask = os.umask(0)
    try:
        store.save(Token("a" * 20, "r" * 20, created_at=1_000, expires_in=50), username="fakeuser", slug="fakeuser")
    finally:
        os.umask(old_umask)
    assert store.path == tmp_path / "data" / "auth" / "token.json"
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.path.parent.stat().st_mode) == 0o700
    assert sorted(p.name for p in store.path.parent.iterdir()) == ["token.json"]
    document = json.loads(store.path.read_text())
    assert document["access_token"] == "a" * 20 and document["refresh_token"] == "r" * 20
    assert document["created_at"] == 1_000 and document["expires_in"] == 50


def test_a_write_that_fails_halfway_leaves_the_previous_token_in_place(tmp_path, monkeypatch):
    store = TokenStore(tmp_path / "data")
    store.save(Token("old-access-token", "old-refresh-token", created_at=1_000, expires_in=50),
               username="fakeuser", slug="fakeuser")

    def failing_fsync(fd):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError):
        store.save(Token("new-access-token", "new-refresh-token", created_at=2_000, expires_in=50),
                   username="fakeuser", slug="fakeuser")
    monkeypatch.undo()
    assert store.load().token.access_token == "old-access-token"
    assert sorted(p.name for p in store.path.parent.iterdir()) == ["token.json"]


def test_expiry_is_created_at_plus_expires_in(tmp_path):
    store = TokenStore(tmp_path / "data")
    store.save(Token("a" * 20, "r" * 20, created_at=1_000, expires_in=50), username="fakeuser", slug="fakeuser")
    assert store.load().token.expires_at == 1_050
    assert store.load().describe() == {"state": SIGNED_IN, "username": "fakeuser", "slug": "fakeuser",
                                       "expires_at": "1970-01-01T00:17:30Z", "lost_at": None,
                                       "message": "signed in as fakeuser"}


@pytest.mark.gen_test(timeout=10)
async def test_a_token_file_readable_by_others_is_refused_with_the_chmod_fix(config, fake, caplog):
    pair = fake.issue_token()
    sign_in(config, pair)
    path = TokenStore(config.data_dir).path
    path.chmod(0o644)
    with pytest.raises(TokenFileRefused) as refused:
        TokenStore(config.data_dir).load()
    assert f"chmod 600 {path}" in str(refused.value) and "0644" in str(refused.value)
    tokens = TokenManager(config)
    # Not used, like a lost sign-in: no token in the request, public profiles still work.
    assert await tokens.authorization_header() == {} and not tokens.signed_in
    assert tokens.state()["state"] == REFUSED and f"chmod 600 {path}" in tokens.state()["message"]
    logged = [r.getMessage() for r in caplog.records if "sign-in is not used" in r.getMessage()]
    assert len(logged) == 1 and f"chmod 600 {path}" in logged[0]  # once, however often it is asked
    assert all(pair["access_token"] not in r.getMessage() for r in caplog.records)
    path.chmod(0o600)
    assert (await tokens.authorization_header())["Authorization"].startswith("Bearer ")
    assert fake.refresh_count == 0


def test_a_missing_token_file_means_signed_out_and_no_header(tmp_path):
    tokens = TokenManager(auth_config(tmp_path, "http://127.0.0.1:9"))
    assert tokens.state()["state"] == SIGNED_OUT
    assert asyncio.run(tokens.authorization_header()) == {}


# --- refresh -------------------------------------------------------------------------------------
@pytest.mark.gen_test(timeout=10)
async def test_a_token_with_more_than_a_tenth_of_its_life_left_is_used_as_it_is(config, fake):
    pair = fake.issue_token(expires_in=100, created_at=int(time.time()) - 85)
    sign_in(config, pair)
    tokens = TokenManager(config)
    assert await tokens.authorization_header() == bearer(pair)
    assert await tokens.authorization_header() == bearer(pair)
    assert fake.refresh_count == 0
    await tokens.close()


@pytest.mark.gen_test(timeout=10)
async def test_a_token_close_to_expiry_is_refreshed_first_and_the_new_pair_is_stored(config, fake):
    # 95 of 100 seconds gone: inside the refresh margin (a tenth of the lifetime).
    old = fake.issue_token(expires_in=100, created_at=int(time.time()) - 95)
    sign_in(config, old)
    tokens = TokenManager(config)
    header = await tokens.authorization_header()
    await tokens.close()
    assert fake.refresh_count == 1
    assert header != bearer(old)
    assert stored(config)["access_token"] == header["Authorization"].removeprefix("Bearer ")
    assert stored(config)["refresh_token"] not in (old["refresh_token"], "")
    assert stored(config)["username"] == "fakeuser"
    assert stat.S_IMODE(TokenStore(config.data_dir).path.stat().st_mode) == 0o600
    assert old["refresh_token"] in fake.spent_refresh


@pytest.mark.gen_test(timeout=10)
async def test_a_refreshed_token_that_cannot_be_stored_is_not_used(config, fake, monkeypatch):
    old = fake.issue_token(expires_in=100, created_at=int(time.time()) - 200)  # expired
    sign_in(config, old)
    tokens = TokenManager(config)
    real_save = TokenStore.save

    def failing_save(self, token, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(TokenStore, "save", failing_save)
    with pytest.raises(OSError):
        await tokens.authorization_header()
    monkeypatch.setattr(TokenStore, "save", real_save)
    await tokens.close()
    assert fake.refresh_count == 1
    assert stored(config)["access_token"] == old["access_token"]


@pytest.mark.gen_test(timeout=20)
async def test_concurrent_callers_in_one_process_share_exactly_one_refresh(config, fake):
    fake.refresh_delay = 0.3
    sign_in(config, fake.issue_token(expires_in=100, created_at=int(time.time()) - 200))
    tokens = TokenManager(config)
    headers = await asyncio.gather(*(tokens.authorization_header() for _ in range(6)))
    await tokens.close()
    assert fake.refresh_count == 1
    assert len({h["Authorization"] for h in headers}) == 1
    assert headers[0]["Authorization"] == f"Bearer {stored(config)['access_token']}"


@pytest.mark.gen_test(timeout=20)
async def test_two_managers_on_one_data_folder_refresh_once_through_the_file_lock(config, fake):
    # Two managers have separate asyncio locks, like the sync and the server in two processes.
    fake.refresh_delay = 0.3
    sign_in(config, fake.issue_token(expires_in=100, created_at=int(time.time()) - 200))
    first, second = TokenManager(config), TokenManager(config)
    a, b = await asyncio.gather(first.authorization_header(), second.authorization_header())
    await first.close()
    await second.close()
    assert fake.refresh_count == 1
    assert a == b == {"Authorization": f"Bearer {stored(config)['access_token']}"}


RACER = """
import asyncio, hashlib, os, sys, time
from services.config import load_config
from services.trakt.auth import TokenManager

async def main():
    tokens = TokenManager(load_config())
    while not os.path.exists(sys.argv[1]):
        time.sleep(0.01)
    header = await tokens.authorization_header()
    await tokens.close()
    print(hashlib.sha256(header["Authorization"].encode()).hexdigest())

asyncio.run(main())
"""


def test_two_processes_refreshing_at_once_send_one_refresh_request(tmp_path):
    fake = FakeTraktOAuth(token_expires_in=3600, refresh_delay=0.5)
    with fake.running_in_thread():
        config = auth_config(tmp_path, fake.base_url)
        sign_in(config, fake.issue_token(expires_in=100, created_at=int(time.time()) - 200))
        go = tmp_path / "go"
        env = {**os.environ, "PYTHONPATH": str(ROOT), "TRAKT_API_KEY": CLIENT_ID,
               "TRAKT_CLIENT_SECRET": CLIENT_SECRET, "TRAKT_AUTH_URL": fake.base_url,
               "TRAKT_API_URL": fake.base_url, "DATA_DIR": str(config.data_dir)}
        racers = [subprocess.Popen([sys.executable, "-c", RACER, str(go)], cwd=tmp_path, env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
        time.sleep(1.0)  # both imported and waiting (a late one only finds the refreshed token: still 1)
        go.touch()
        results = [racer.communicate(timeout=60) for racer in racers]
    assert [racer.returncode for racer in racers] == [0, 0], results
    assert fake.refresh_count == 1
    expected = hashlib.sha256(f"Bearer {stored(config)['access_token']}".encode()).hexdigest()
    assert [out.strip() for out, _ in results] == [expected, expected]
    for out, err in results:
        assert_no_secret_in(out + err, fake)


@pytest.mark.gen_test(timeout=10)
async def test_a_401_refreshes_once_and_a_private_user_401_never_does(config, fake):
    first = fake.issue_token()
    sign_in(config, first)
    tokens = TokenManager(config)
    assert await tokens.on_unauthorized({"X-Private-User": "true"}, bearer(first)) is False
    assert await tokens.on_unauthorized({"x-private-user": "True"}, bearer(first)) is False
    assert fake.refresh_count == 0
    assert await tokens.on_unauthorized({}, bearer(first)) is True
    assert fake.refresh_count == 1
    refreshed = await tokens.authorization_header()
    assert refreshed != bearer(first)
    # The refreshed token is refused too: that is final, no second refresh, no loop.
    assert await tokens.on_unauthorized({}, refreshed) is False
    assert fake.refresh_count == 1
    # A request that still carried the old token just retries with the new one.
    assert await tokens.on_unauthorized({}, bearer(first)) is True
    assert fake.refresh_count == 1
    await tokens.close()


@pytest.mark.parametrize("status", [400, 401])
def test_invalid_grant_marks_the_sign_in_lost_and_nothing_tries_again(tmp_path, status, caplog):
    fake = FakeTraktOAuth(invalid_grant_status=status)
    with fake.running_in_thread():
        config = auth_config(tmp_path, fake.base_url)
        sign_in(config, fake.issue_token(expires_in=100, created_at=int(time.time()) - 200))
        fake.invalidate_refresh_tokens()

        async def use_twice() -> list[dict]:
            tokens = TokenManager(config)
            headers = [await tokens.authorization_header(), await tokens.authorization_header()]
            assert await tokens.on_unauthorized({}, {}) is False
            await tokens.close()
            return headers

        with caplog.at_level(logging.INFO):
            assert asyncio.run(use_twice()) == [{}, {}]  # public profiles keep working
            assert asyncio.run(use_twice()) == [{}, {}]  # a restarted process does not try either
    assert fake.refresh_count == 1
    state = TokenManager(config).state()
    assert state["state"] == LOST and state["message"] == "sign in again: trakt-watch login"
    assert state["username"] == "fakeuser" and state["lost_at"]
    document = stored(config)
    assert document["state"] == "lost" and "access_token" not in document and "refresh_token" not in document
    assert stat.S_IMODE(TokenStore(config.data_dir).path.stat().st_mode) == 0o600
    assert "sign in again: trakt-watch login" in caplog.text
    assert_no_secret_in(caplog.text + json.dumps(state), fake)


def test_when_trakt_cannot_refresh_a_still_valid_token_is_used_and_an_expired_one_fails(tmp_path):
    config = auth_config(tmp_path, f"http://127.0.0.1:{free_port()}")  # nothing listens there
    now = int(time.time())
    store = TokenStore(config.data_dir)
    store.save(Token("still-valid-access", "refresh-1", created_at=now - 95, expires_in=100),
               username="fakeuser", slug="fakeuser")

    async def header() -> dict:
        tokens = TokenManager(config)
        try:
            return await tokens.authorization_header()
        finally:
            await tokens.close()

    assert asyncio.run(header()) == {"Authorization": "Bearer still-valid-access"}
    store.save(Token("expired-access", "refresh-2", created_at=now - 200, expires_in=100),
               username="fakeuser", slug="fakeuser")
    with pytest.raises(AuthUnavailable, match="cannot connect"):
        asyncio.run(header())
    assert TokenManager(config).state()["state"] == SIGNED_IN  # not lost: Trakt was only unreachable


# --- the device flow -----------------------------------------------------------------------------
async def device_flow(config: Config, **kwargs) -> Token:
    async with OAuthClient(config) as oauth:
        device = await oauth.device_code()
        return await wait_for_device_token(oauth, device, **kwargs)


@pytest.mark.parametrize("answer, outcome, words", [
    ("deny", "denied", "denied"),
    ("expire", "expired", "expired"),
    ("used", "already_used", "already used"),
    ("invalid", "invalid_code", "does not know this code"),
])
@pytest.mark.gen_test(timeout=10)
async def test_each_device_flow_refusal_is_its_own_outcome(config, fake, answer, outcome, words):
    fake.script = ["pending", answer]
    with pytest.raises(DeviceFlowFailed) as failed:
        await device_flow(config)
    assert failed.value.outcome == outcome and words in str(failed.value)
    assert len(fake.newest().polls) == 2
    assert_no_secret_in(str(failed.value), fake)


@pytest.mark.gen_test(timeout=10)
async def test_approval_after_pending_polls_gives_the_token(config, fake):
    fake.script = ["pending", "pending", "approve"]
    token = await device_flow(config)
    assert token.access_token in fake.tokens and len(fake.newest().polls) == 3
    assert token.expires_in == 3600


@pytest.mark.gen_test(timeout=10)
async def test_slow_down_makes_every_later_poll_five_seconds_slower(config, fake):
    waits: list[float] = []
    told: list[float] = []

    async def no_wait(seconds: float) -> None:
        waits.append(seconds)

    fake.script = ["pending", "slow_down", "pending", "approve"]
    await device_flow(config, sleep=no_wait, on_slow_down=told.append)
    assert waits == pytest.approx([0.01, 0.01, 5.01, 5.01])  # Trakt's interval of 0.01 s, then 5 s more
    assert told == pytest.approx([5.01])


@pytest.mark.gen_test(timeout=10)
async def test_a_code_nobody_approves_expires_on_our_side_too(config, fake):
    clock = [0.0]

    async def advance(seconds: float) -> None:
        clock[0] += 200

    fake.device_expires_in = 600
    with pytest.raises(DeviceFlowFailed) as failed:
        await device_flow(config, sleep=advance, clock=lambda: clock[0])
    assert failed.value.outcome == "expired"
    assert len(fake.newest().polls) == 3  # at 200, 400 and 600 s; at 800 s the code is past its 600 s


# --- hosts, headers, budget ----------------------------------------------------------------------
@pytest.mark.gen_test(timeout=10)
async def test_every_oauth_request_has_the_required_headers_and_takes_a_budget_slot(config, fake):
    budget = RequestBudget(100)
    fake.script = ["pending", "approve"]
    async with OAuthClient(config, budget=budget) as oauth:
        device = await oauth.device_code()
        token = await wait_for_device_token(oauth, device)
        account = await oauth.account(token.access_token)
        refreshed = await oauth.refresh(token.refresh_token)
        await oauth.revoke(refreshed.access_token)
    assert account.username == "fakeuser"
    assert [path for _, path, _ in fake.requests] == [
        "/oauth/device/code", "/oauth/device/token", "/oauth/device/token", "/users/settings", "/oauth/token",
        "/oauth/revoke"]
    for _, _, headers in fake.requests:
        assert {name: headers.get(name) for name in REQUIRED_HEADERS} == REQUIRED_HEADERS
        assert headers.get("User-Agent", "").startswith("trakt-watch/")
    assert budget.used() == 6
    assert fake.revoked == [refreshed.access_token]


@pytest.mark.gen_test(timeout=10)
async def test_an_unreachable_auth_host_falls_back_to_the_api_host_once_and_says_so(tmp_path, fake, caplog):
    dead = f"http://127.0.0.1:{free_port()}"
    config = auth_config(tmp_path, dead, api_url=fake.base_url)
    fake.script = ["approve"]
    with caplog.at_level(logging.WARNING, logger="trakt_watch.auth"):
        token = await device_flow(config)
    assert token.access_token in fake.tokens
    assert f"Trakt's OAuth host {dead} failed" in caplog.text and f"trying {fake.base_url} once" in caplog.text
    assert fake.count("/oauth/device/code") == 1 and fake.count("/oauth/device/token") == 1
    assert_no_secret_in(caplog.text, fake)


@pytest.mark.gen_test(timeout=10)
async def test_an_auth_host_answering_404_falls_back_for_refresh_but_a_404_code_is_not_a_wrong_host(
        tmp_path, fake, caplog):
    missing = FakeTraktOAuth(not_found=True)
    await missing.start()
    try:
        config = auth_config(tmp_path, missing.base_url, api_url=fake.base_url)
        sign_in(config, fake.issue_token(expires_in=100, created_at=int(time.time()) - 200))
        tokens = TokenManager(config)
        with caplog.at_level(logging.WARNING, logger="trakt_watch.auth"):
            header = await tokens.authorization_header()
        await tokens.close()
        assert header == {"Authorization": f"Bearer {stored(config)['access_token']}"}
        assert f"{missing.base_url} answered 404 for /oauth/token; trying {fake.base_url} once" in caplog.text
        assert missing.count("/oauth/token") == 1 and fake.refresh_count == 1

        # Once the device flow runs on a host, its 404 means "invalid code" (no second host).
        fake.script = ["invalid"]
        with pytest.raises(DeviceFlowFailed) as failed:
            await device_flow(config)
        assert failed.value.outcome == "invalid_code"
        assert missing.count("/oauth/device/token") == 0
    finally:
        await missing.stop()


def test_nothing_secret_is_in_a_repr_or_a_description(tmp_path):
    token = Token("access-value-123456", "refresh-value-654321", created_at=1_000, expires_in=50)
    store = TokenStore(tmp_path / "data")
    signin = store.save(token, username="fakeuser", slug="fakeuser")
    shown = repr(token) + repr(signin) + json.dumps(signin.describe()) + json.dumps(
        TokenManager(replace(Config(), data_dir=tmp_path / "data")).state())
    assert "access-value-123456" not in shown and "refresh-value-654321" not in shown


@pytest.mark.gen_test(timeout=10)
async def test_nothing_secret_is_logged_even_at_debug_level(config, fake, caplog):
    fake.script = ["pending", "slow_down", "approve"]
    with caplog.at_level(logging.DEBUG):
        token = await device_flow(config, sleep=lambda seconds: asyncio.sleep(0))
        sign_in(config, fake.issue_token(expires_in=100, created_at=int(time.time()) - 200))
        tokens = TokenManager(config)
        await tokens.authorization_header()  # refresh 1: expired
        await tokens.on_unauthorized({}, {})  # refresh 2: a 401
        await tokens.close()
        sign_in(config, fake.issue_token(expires_in=100, created_at=int(time.time()) - 200))
        fake.invalidate_refresh_tokens()
        tokens = TokenManager(config)
        await tokens.authorization_header()  # refresh 3: invalid_grant, the sign-in is lost
        await tokens.close()
        async with OAuthClient(config) as oauth:
            await oauth.revoke(token.access_token)
    assert fake.refresh_count == 3 and "sign in again" in caplog.text
    assert_no_secret_in(caplog.text, fake)


@pytest.mark.gen_test(timeout=10)
async def test_the_fake_oauth_routes_can_sit_in_front_of_another_fake_api(fake):
    class Api(tornado.web.RequestHandler):
        def get(self, path):
            self.write({"api": path, "signed_in": fake.is_valid(self.request.headers.get("Authorization", ""))})

    server = tornado.httpserver.HTTPServer(tornado.web.Application([*fake.routes(), (r"/(.*)", Api)]))
    [sock] = tornado.netutil.bind_sockets(0, "127.0.0.1", family=socket.AF_INET)
    server.add_sockets([sock])
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    pair = fake.issue_token()
    headers = {**REQUIRED_HEADERS, "User-Agent": "test", "Authorization": f"Bearer {pair['access_token']}"}
    client = tornado.httpclient.AsyncHTTPClient()
    try:
        settings = await client.fetch(f"{base}/users/settings", headers=headers)
        other = await client.fetch(f"{base}/users/me/history", headers=headers)
    finally:
        server.stop()
    assert json.loads(settings.body)["user"]["username"] == "fakeuser"
    assert json.loads(other.body) == {"api": "users/me/history", "signed_in": True}

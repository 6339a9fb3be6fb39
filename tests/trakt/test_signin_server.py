"""A running server and the sign-in, end to end against the fake Trakt (README "Signing in"): a
server started before `trakt-watch login` (no TRAKT_USERNAME) serves an honest "sign in" answer,
never the demo, and starts syncing the signed-in account once login (another process) stores the
token; a token file others can read degrades /healthz with what to do while the data stays served;
`trakt-watch status` shows the running server's watcher, or says the server is down."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tornado.httpclient import HTTPClientError

from services.config import Config
from services.trakt.auth import TokenStore
from services.trakt.oauth import Token
from tests.fakes.trakt import FakeAccount, FakeTrakt
from tests.fakes.trakt_oauth import CLIENT_ID, CLIENT_SECRET, FakeTraktOAuth
from tests.helpers.watching import watching_payload
from tests.helpers.process import ROOT, SECRET_VARIABLES, free_port

USER = "fakeuser"


@pytest.fixture
def account() -> FakeAccount:
    return FakeAccount.build(username=USER, history=40, watched_movies=8, shows=2, lists=1, watchlist=3)


@pytest.fixture
def oauth() -> FakeTraktOAuth:
    return FakeTraktOAuth(username=USER, interval=0.05, token_expires_in=7 * 86400)


@pytest.fixture
def fake(io_loop, account, oauth):
    server = FakeTrakt(account, api_key=CLIENT_ID, oauth=oauth)
    server.private_mode = "401"  # only its owner's token reads it
    io_loop.run_sync(server.start)
    yield server
    io_loop.run_sync(server.stop)


@pytest.fixture
def data_dir(tmp_path) -> Path:
    return tmp_path / "data"  # nothing synced yet


@pytest.fixture
def config(data_dir, fake) -> Config:
    """A Trakt key and app secret, no TRAKT_USERNAME, the schedule on (its default 24 h)."""
    return replace(Config(), data_dir=data_dir, timezone="UTC", data_check_seconds=0.1, trakt_api_key=CLIENT_ID,
                   trakt_client_secret=CLIENT_SECRET, trakt_api_url=fake.url, trakt_auth_url=fake.url,
                   trakt_username="", watching_poll_seconds=0.2, sync_check_minutes=0)


def cli_env(config: Config, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SECRET_VARIABLES and k not in ("TRAKT_API_URL", "PORT")}
    env.update({"TRAKT_API_KEY": CLIENT_ID, "TRAKT_CLIENT_SECRET": CLIENT_SECRET, "TRAKT_AUTH_URL": config.trakt_auth_url,
                "TRAKT_API_URL": config.trakt_api_url, "DATA_DIR": str(config.data_dir), "PYTHONUNBUFFERED": "1",
                "HOST": "127.0.0.1", "PORT": str(free_port())})
    env.update(extra)
    return env


async def run_cli(command: str, env: dict[str, str], cwd: Path) -> tuple[int, str, str]:
    """`python server.py COMMAND` in its own process, without blocking the loop the servers run on."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "server.py"), command, cwd=cwd, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode, out.decode(), err.decode()


async def get(http_client, url: str) -> tuple[int, dict]:
    try:
        response = await http_client.fetch(url)
    except HTTPClientError as exc:
        response = exc.response
    return response.code, json.loads(response.body)


async def wait_until(check, deadline: float = 20.0):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        value = await check()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError("the condition never held")


def no_secret_in(text: str, oauth: FakeTraktOAuth) -> None:
    for value in (*oauth.secret_values(), CLIENT_SECRET):
        assert value not in text


# --- a server started before login -------------------------------------------------------------------
@pytest.mark.gen_test(timeout=90)
async def test_a_server_started_before_login_says_sign_in_then_syncs_the_account_login_signs_in(
        http_client, base_url, config, fake, oauth, account, tmp_path):
    for path in ("/api/trakt", "/api/trakt/user/profile", "/api/trakt/user/history?type=movies"):
        code, body = await get(http_client, base_url + path)
        assert code == 503, path  # not the demo account: this server is for a real one
        assert "trakt-watch login" in body["error"] and "no restart needed" in body["error"], body
    code, health = await get(http_client, base_url + "/healthz")
    assert code == 503 and health["demo"] is False
    assert any("trakt-watch login" in reason for reason in health["reasons"]), health["reasons"]
    assert fake.requests == []  # nobody to read: nothing asked of Trakt

    oauth.script = ["pending", "approve"]
    code, out, err = await run_cli("login", cli_env(config), tmp_path)
    assert code == 0, err
    assert f"Signed in to Trakt as {USER}" in out and str(TokenStore(config.data_dir).path) in out
    no_secret_in(out + err, oauth)

    async def mirrored():
        code, body = await get(http_client, base_url + "/api/trakt/user/history?type=movies")
        return code == 200 and body

    body = await wait_until(mirrored)  # no restart: the server noticed the token file
    assert body["data"] == account.history_movies and body["metadata"]["username"] == USER
    code, profile = await get(http_client, base_url + "/api/trakt/user/profile")
    assert code == 200 and profile["data"]["username"] == USER and profile["metadata"]["source"] != "demo"
    assert fake.count("/users/me/") > 0 and fake.count(f"/users/{USER}/") == 0  # the token's own account
    code, health = await get(http_client, base_url + "/healthz")
    assert code == 200 and health["sign_in"]["state"] == "signed_in", health


# --- a token file others can read ------------------------------------------------------------------
@pytest.fixture
def synced_and_signed_in(io_loop, config, oauth, fake):
    """A token stored and a snapshot of the private account committed before the server starts
    (list it before http_client)."""
    from services.data.snapshots import DataFolder
    from services.trakt.auth import TokenManager
    from services.trakt.service import SyncService

    pair = oauth.issue_token()
    TokenStore(config.data_dir).save(Token.from_response(pair, "test"), username=USER, slug=USER)

    async def sync() -> None:
        auth = TokenManager(config)
        try:
            report = await SyncService(config, DataFolder(config.data_dir), auth=auth).run_once()
            assert report.outcome == "success", report.error
        finally:
            await auth.close()

    io_loop.run_sync(sync)
    return pair


@pytest.mark.gen_test(timeout=60)
async def test_a_token_file_others_can_read_degrades_healthz_with_the_fix_and_the_data_stays_served(
        synced_and_signed_in, http_client, base_url, config, oauth, account, caplog):
    code, health = await get(http_client, base_url + "/healthz")
    assert code == 200 and health["status"] == "ok", health["reasons"]
    path = TokenStore(config.data_dir).path
    path.chmod(0o644)

    code, health = await get(http_client, base_url + "/healthz")
    assert code == 200 and health["status"] == "degraded"
    assert health["sign_in"]["state"] == "refused"
    [reason] = [r for r in health["reasons"] if str(path) in r]
    assert f"chmod 600 {path}" in reason and "mode 0644" in reason
    raw = json.dumps(health)
    assert synced_and_signed_in["access_token"] not in raw and synced_and_signed_in["refresh_token"] not in raw
    code, body = await get(http_client, base_url + "/api/trakt/user/history?type=movies")
    assert code == 200 and body["data"] == account.history_movies  # the last data keeps being served
    await asyncio.sleep(0.5)  # polls (0.2 s) and health checks meanwhile: the log says it once
    await get(http_client, base_url + "/healthz")
    logged = [r.getMessage() for r in caplog.records if "the Trakt sign-in is not used" in r.getMessage()]
    assert len(logged) == 1 and f"chmod 600 {path}" in logged[0], logged
    assert all(synced_and_signed_in["access_token"] not in r.getMessage() for r in caplog.records)

    path.chmod(0o600)  # fixed: healthy again at the next look, no restart
    code, health = await get(http_client, base_url + "/healthz")
    assert health["status"] == "ok" and health["sign_in"]["state"] == "signed_in", health["reasons"]


# --- status and the running server's watcher ----------------------------------------------------------
@pytest.mark.gen_test(timeout=60)
async def test_status_shows_the_running_servers_watcher_and_says_when_the_server_is_down(
        synced_and_signed_in, http_client, base_url, config, fake, oauth, tmp_path):
    fake.watching = watching_payload()

    async def seen():
        code, health = await get(http_client, base_url + "/healthz")
        return health["watcher"].get("playing") and health

    await wait_until(seen)
    port = base_url.rsplit(":", 1)[1]
    code, out, err = await run_cli("status", cli_env(config, PORT=port), tmp_path)
    assert code == 0, err
    lines = dict(line.split(":", 1) for line in out.splitlines())
    assert lines["Server"].strip().startswith(f"running at http://127.0.0.1:{port}/, ok")
    watcher = lines["Watcher"].strip()
    assert watcher.startswith("polling /users/me/watching (signed in) every 0.2 s; last good poll "), watcher
    assert "playing movie 'Heat'" in watcher and "failing" not in watcher
    no_secret_in(out + err, oauth)

    fake.inject("status", status=503, times=1000, path="/watching")

    async def failing():
        code, health = await get(http_client, base_url + "/healthz")
        return health["watcher"].get("last_error")

    await wait_until(failing)
    code, out, _ = await run_cli("status", cli_env(config, PORT=port), tmp_path)
    watcher = dict(line.split(":", 1) for line in out.splitlines())["Watcher"]
    assert "failing: " in watcher and "503" in watcher, watcher  # its last error

    down = cli_env(config)  # a port nobody listens on
    code, out, err = await run_cli("status", down, tmp_path)
    assert code == 0, err
    lines = dict(line.split(":", 1) for line in out.splitlines())
    assert lines["Server"].strip().startswith(f"not running at http://127.0.0.1:{down['PORT']} (")
    assert "trakt-watch serve starts it" in lines["Server"]
    assert lines["Watcher"].strip() == "unknown while the server is down"
    assert lines["Trakt sign-in"].strip().startswith(f"signed in as {USER}")
    assert lines["Last sync"].strip().startswith("success ") and lines["Last sync"].endswith(
        "a full mirror: profile, stats, history, watched, watchlist, lists, comments, ratings changed")


def test_the_watcher_line_for_each_state_the_server_reports():
    from services.trakt.auth_cli import _watcher_line

    now = time.time()
    recent = datetime.fromtimestamp(now - 4, UTC).isoformat()
    base = {"status": "ok", "upstream_ok": True, "last_poll_at": recent, "last_error": None, "poll_seconds": 15.0,
            "playing": None, "playing_since": None}
    by_name = {**base, "polling": "username", "user": "sam"}
    assert _watcher_line({"watcher": by_name}, now) == (
        "polling /users/sam/watching (TRAKT_USERNAME, not signed in) every 15 s; last good poll 4 s ago; nothing playing")
    off = {**base, "status": "disabled", "polling": None, "user": None}
    assert _watcher_line({"watcher": off}, now).startswith("not polling Trakt (")
    assert _watcher_line({"watcher": off}, now, signed_in=True) == (
        "not polling yet: it takes up the new sign-in at its next look (every 15 s)")
    assert _watcher_line({"watcher": {**base, "status": "demo"}}, now) == "plays the demo account's schedule"
    assert _watcher_line(None, now) == "unknown while the server is down"

"""The sync inside a running server and as `trakt-watch sync` in its own process (killed mid-run too)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from tornado.httpclient import HTTPClientError

from services.config import Config
from services.data.snapshots import DataFolder
from services.redact import REDACTED
from services.trakt.report import read_last_attempt
from tests.fakes.trakt import FakeAccount, FakeTrakt

USER = "fakeuser"
LONG_KEY = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"  # 64 characters, like a real client id
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def trakt_key() -> str:
    return "test-key"


@pytest.fixture
def fake_trakt(trakt_key):
    fake = FakeTrakt(FakeAccount.build(history=80, watched_movies=20, shows=4, lists=2, watchlist=6), api_key=trakt_key)
    with fake.running_in_thread():
        yield fake


@pytest.fixture
def admin_token() -> str:
    return ""


@pytest.fixture
def config(data_dir, fake_trakt, admin_token, trakt_key) -> Config:
    """The shared account folder, plus a Trakt key pointing at the fake; no schedule, no images."""
    return replace(Config(), data_dir=data_dir, timezone="UTC", data_check_seconds=0.1,
                   trakt_api_key=trakt_key, trakt_username=USER, trakt_api_url=fake_trakt.url,
                   sync_interval_hours=0, watching_poll_seconds=60, admin_token=admin_token)


async def fetch_json(http_client, url: str, **kwargs) -> tuple[int, dict]:
    try:
        response = await http_client.fetch(url, **kwargs)
    except HTTPClientError as exc:
        response = exc.response
    return response.code, json.loads(response.body)


async def wait_for_sync_to_finish(http_client, base_url: str, deadline: float = 15.0) -> dict:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        code, status = await fetch_json(http_client, f"{base_url}/api/trakt/sync")
        assert code == 200
        if not status["running"]:
            return status
        await asyncio.sleep(0.05)
    raise AssertionError("the sync did not finish in time")


async def wait_for_username(http_client, base_url: str, username: str, deadline: float = 10.0) -> dict:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        code, body = await fetch_json(http_client, f"{base_url}/api/trakt/user/profile")
        if code == 200 and body["data"]["username"] == username:
            return body
        await asyncio.sleep(0.05)
    raise AssertionError(f"the server never served {username}'s data")


# --- in the server -------------------------------------------------------------------------------
@pytest.mark.gen_test(timeout=30)
async def test_post_sync_answers_202_and_the_server_serves_the_new_snapshot(http_client, base_url, fake_trakt):
    code, before = await fetch_json(http_client, f"{base_url}/api/trakt/user/profile")
    assert code == 200 and before["data"]["username"] == "sam"

    code, body = await fetch_json(http_client, f"{base_url}/api/trakt/sync", method="POST", body=b"")
    assert code == 202
    assert body["message"] == "Sync started"
    status = await wait_for_sync_to_finish(http_client, base_url)
    assert status["last_attempt_outcome"] == "success" and status["last_error"] is None
    assert status["history"][0]["outcome"] == "success"

    # No restart: the committed snapshot is what the API serves now.
    code, history = await fetch_json(http_client, f"{base_url}/api/trakt/user/history?type=movies")
    assert code == 200
    assert history["data"] == fake_trakt.account.history_movies
    assert history["metadata"]["username"] == USER and history["metadata"]["source"] == "trakt_api_user_data"

    code, health = await fetch_json(http_client, f"{base_url}/healthz")
    assert code == 200
    assert health["last_sync"]["outcome"] == "success"
    assert health["last_sync"]["last_success_at"] is not None


@pytest.mark.gen_test(timeout=30)
async def test_healthz_shows_a_failed_last_sync_and_the_old_data_stays_served(http_client, base_url, fake_trakt):
    fake_trakt.inject("private", times=1000)
    code, _ = await fetch_json(http_client, f"{base_url}/api/trakt/sync", method="POST", body=b"")
    assert code == 202
    status = await wait_for_sync_to_finish(http_client, base_url)
    assert status["last_attempt_outcome"] == "failed"
    assert "private" in status["last_error"]

    code, health = await fetch_json(http_client, f"{base_url}/healthz")
    assert health["status"] == "degraded"
    assert health["last_sync"]["outcome"] == "failed"
    assert "private" in health["last_sync"]["error"]

    code, profile = await fetch_json(http_client, f"{base_url}/api/trakt/user/profile")
    assert code == 200 and profile["data"]["username"] == "sam"


@pytest.mark.gen_test(timeout=30)
async def test_a_second_post_while_a_sync_runs_is_409(http_client, base_url, fake_trakt):
    fake_trakt.latency = 0.2
    first, _ = await fetch_json(http_client, f"{base_url}/api/trakt/sync", method="POST", body=b"")
    second, body = await fetch_json(http_client, f"{base_url}/api/trakt/sync", method="POST", body=b"")
    assert (first, second) == (202, 409)
    assert body == {"error": "A sync is already running"}
    code, status = await fetch_json(http_client, f"{base_url}/api/trakt/sync")
    assert status["running"] is True and status["current"]["trigger"] == "manual"
    fake_trakt.latency = 0.0
    await wait_for_sync_to_finish(http_client, base_url)


@pytest.mark.parametrize("trakt_key", [LONG_KEY])
@pytest.mark.gen_test(timeout=30)
async def test_an_api_key_echoed_by_trakt_is_served_redacted(http_client, base_url, fake_trakt, trakt_key):
    fake_trakt.inject("echo_key", times=1000, path="/ratings")  # the key comes back in a header
    code, _ = await fetch_json(http_client, f"{base_url}/api/trakt/sync", method="POST", body=b"")
    assert code == 202
    status = await wait_for_sync_to_finish(http_client, base_url)
    assert status["last_attempt_outcome"] == "failed"
    assert f"header X-Pagination-Item-Count is not a number: '{REDACTED}'" in status["last_error"]
    bodies = [json.dumps(status)]
    for path in ("/api/trakt/sync", "/healthz", "/api/trakt"):
        response = await http_client.fetch(f"{base_url}{path}", raise_error=False)
        bodies.append(response.body.decode())
    assert REDACTED in bodies[2] and REDACTED in bodies[3]  # /healthz and the /api/trakt metadata say why
    for piece in (LONG_KEY[:12], LONG_KEY[-12:]):
        assert all(piece not in body for body in bodies)


@pytest.mark.parametrize("admin_token", ["s3cret-token"])
@pytest.mark.gen_test(timeout=30)
async def test_post_sync_needs_the_admin_token_when_one_is_set(http_client, base_url, fake_trakt, admin_token):
    code, body = await fetch_json(http_client, f"{base_url}/api/trakt/sync", method="POST", body=b"")
    assert code == 401 and "admin token" in body["error"]
    code, _ = await fetch_json(http_client, f"{base_url}/api/trakt/sync", method="POST", body=b"",
                               headers={"Authorization": "Bearer wrong"})
    assert code == 403
    assert fake_trakt.count("/stats") == 0  # no sync started (the watcher may poll /watching)
    code, body = await fetch_json(http_client, f"{base_url}/api/trakt/sync", method="POST", body=b"",
                                  headers={"Authorization": f"Bearer {admin_token}"})
    assert code == 202
    await wait_for_sync_to_finish(http_client, base_url)


@pytest.mark.gen_test(timeout=30)
async def test_the_sync_and_the_watcher_draw_from_one_request_budget(fake_trakt, tmp_path):
    """README: TRAKT_RATE_LIMIT requests per 5 minutes, "shared by the sync and the watcher"."""
    from server import build_services

    # the fixed files and the account's 2 lists, one page each, then up next's show data but the seasons
    # of returning shows watched to the end (odd trakt ids, not every third), which wait for the next
    # check when the budget's window is spent
    calendar_only = sum(1 for row in fake_trakt.account.watched_shows
                        if row["show"]["ids"]["trakt"] % 2 == 1 and row["show"]["ids"]["trakt"] % 3)
    sync_requests = 12 + 2 + fake_trakt.account.show_data_requests() - calendar_only
    config = replace(Config(), data_dir=tmp_path / "data", trakt_api_key="test-key", trakt_username=USER,
                     trakt_api_url=fake_trakt.url, sync_interval_hours=0, trakt_rate_limit=sync_requests)
    services = build_services(config)
    await services.trakt.start()
    try:
        report = await services.sync.run_once()
        assert report.outcome == "success", report.error
        assert fake_trakt.count() == sync_requests == services.trakt.budget.used()
        # The sync spent the whole budget, so the watcher's poll waits for the window to pass.
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(services.watcher.poll_once(), 0.5)
        assert fake_trakt.count("/watching") == 0
    finally:
        await services.trakt.close()


# --- trakt-watch sync in its own process -------------------------------------------------------------
def sync_env(fake: FakeTrakt) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRAKT_", "TMDB_", "DATA_DIR"))}
    env.update(TRAKT_API_KEY="test-key", TRAKT_USERNAME=USER, TRAKT_API_URL=fake.url, PYTHONUNBUFFERED="1")
    return env


async def start_cli_sync(fake: FakeTrakt, data_dir: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, str(REPO / "server.py"), "sync", "--full", "--data-dir", str(data_dir), "--no-images",
        cwd=str(data_dir.parent), env=sync_env(fake),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


def served_state(data_dir: Path) -> dict[str, str]:
    folder = DataFolder(data_dir)
    root = folder.served_root()
    state = {"<current>": os.readlink(folder.current_link) if folder.current_link.is_symlink() else ""}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            state[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return state


@pytest.mark.gen_test(timeout=60)
async def test_a_sync_killed_with_sigkill_leaves_the_old_data_served_and_the_next_sync_succeeds(
        http_client, base_url, fake_trakt, data_dir):
    process = await start_cli_sync(fake_trakt, data_dir)
    out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, err.decode()
    assert out.decode().startswith("sync committed snapshot ")
    # The running server notices the snapshot the other process committed, without a restart.
    await wait_for_username(http_client, base_url, USER)
    before = served_state(data_dir)

    fake_trakt.account.history_movies.pop()
    fake_trakt.latency = 0.25
    fake_trakt.reset_counts()
    process = await start_cli_sync(fake_trakt, data_dir)
    try:
        end = time.monotonic() + 20
        while fake_trakt.count() < 5 and time.monotonic() < end:
            await asyncio.sleep(0.02)
        assert fake_trakt.count() >= 5, "the sync never reached Trakt"
        process.send_signal(signal.SIGKILL)
    finally:
        await asyncio.wait_for(process.wait(), 10)
    assert process.returncode == -signal.SIGKILL
    assert served_state(data_dir) == before
    code, history = await fetch_json(http_client, f"{base_url}/api/trakt/user/history?type=movies")
    assert code == 200 and len(history["data"]) == len(fake_trakt.account.history_movies) + 1

    fake_trakt.latency = 0.0
    process = await start_cli_sync(fake_trakt, data_dir)
    out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, err.decode()
    assert [p.name for p in (data_dir / "snapshots").iterdir() if p.name.startswith(".")] == []
    assert read_last_attempt(DataFolder(data_dir))["outcome"] == "success"
    end = time.monotonic() + 10
    while time.monotonic() < end:
        code, history = await fetch_json(http_client, f"{base_url}/api/trakt/user/history?type=movies")
        if history["data"] == fake_trakt.account.history_movies:
            break
        await asyncio.sleep(0.05)
    assert history["data"] == fake_trakt.account.history_movies


@pytest.mark.gen_test(timeout=60)
async def test_post_sync_while_a_cli_sync_holds_the_lock_is_409_naming_that_process(
        http_client, base_url, fake_trakt, data_dir):
    fake_trakt.latency = 0.25
    process = await start_cli_sync(fake_trakt, data_dir)
    try:
        end = time.monotonic() + 20
        while fake_trakt.count() < 2 and time.monotonic() < end:  # it takes the lock before asking Trakt
            await asyncio.sleep(0.02)
        assert fake_trakt.count() >= 2, "the CLI sync never reached Trakt"
        code, body = await fetch_json(http_client, f"{base_url}/api/trakt/sync", method="POST", body=b"")
        assert code == 409
        assert body["error"].startswith("A sync is already running in another process: "
                                        f"pid {process.pid} (trakt-watch sync) since 20")
        code, status = await fetch_json(http_client, f"{base_url}/api/trakt/sync")
        assert status["running"] is False  # nothing was started here to be dropped later
    finally:
        fake_trakt.latency = 0.0
        out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, err.decode()
    code, _ = await fetch_json(http_client, f"{base_url}/api/trakt/sync", method="POST", body=b"")
    assert code == 202
    status = await wait_for_sync_to_finish(http_client, base_url)
    assert status["last_attempt_outcome"] == "success" and status["history"][0]["trigger"] == "manual"


@pytest.mark.gen_test(timeout=30)
async def test_cli_sync_failure_exits_1_with_the_reason(fake_trakt, tmp_path):
    fake_trakt.inject("forbidden", times=1000)
    process = await start_cli_sync(fake_trakt, tmp_path / "data")
    out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 1
    assert "TRAKT_API_KEY" in err.decode() and "the served data is unchanged" in err.decode()
    assert "test-key" not in err.decode() + out.decode()


@pytest.mark.gen_test(timeout=30)
async def test_cli_sync_without_a_key_exits_2(fake_trakt, tmp_path):
    env = sync_env(fake_trakt)
    del env["TRAKT_API_KEY"]
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(REPO / "server.py"), "sync", "--full", "--data-dir", str(tmp_path / "data"),
        cwd=str(tmp_path), env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 2
    assert "TRAKT_API_KEY" in err.decode()
    assert fake_trakt.count() == 0

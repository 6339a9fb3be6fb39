"""Graceful shutdown of a real `python server.py serve` process on SIGTERM and SIGINT.

The process gets the signal while a WebSocket client is connected (it must see close code 1001)
or while a sync is running against the fake Trakt (nothing partial may be committed); it must
exit 0 within a few seconds either way.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import time
from pathlib import Path

import pytest
import tornado.httpclient
import tornado.netutil
import tornado.websocket

from tests.helpers import accounts
from tests.helpers.process import EXIT_BOUND_SECONDS, ROOT, ServerProcess, serve_process  # noqa: F401
from tests.fakes.trakt import FakeAccount, FakeTrakt

async def wait_exit(server: ServerProcess) -> int:
    return await asyncio.to_thread(server.wait_exit)


@pytest.fixture
def account(tmp_path) -> Path:
    return accounts.write_account(tmp_path / "data")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
@pytest.mark.gen_test(timeout=60)
async def test_signal_closes_websockets_with_1001_and_exits_0(tmp_path, account, signum):
    with serve_process(tmp_path, {"DATA_DIR": str(account)}) as server:
        ws_url = server.url.replace("http://", "ws://") + "/ws/watching"
        clients = [await tornado.websocket.websocket_connect(ws_url) for _ in range(3)]
        for client in clients:
            first = json.loads(await client.read_message())
            assert first["type"] == "watching"
        server.process.send_signal(signum)
        for client in clients:
            while await asyncio.wait_for(client.read_message(), EXIT_BOUND_SECONDS) is not None:
                pass  # a tick may still arrive before the close frame
        code = await wait_exit(server)
    assert [client.close_code for client in clients] == [1001, 1001, 1001]
    assert code == 0, server.log()
    log = server.log()
    assert "Shutting down" in log
    assert "Traceback" not in log


@pytest.mark.gen_test(timeout=60)
async def test_new_connections_are_refused_after_sigterm(tmp_path, account):
    with serve_process(tmp_path, {"DATA_DIR": str(account)}) as server:
        server.process.send_signal(signal.SIGTERM)
        code = await wait_exit(server)
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", server.port), timeout=2).close()
    assert code == 0, server.log()


def snapshot_state(data_dir: Path) -> tuple:
    """What is served and what exists under snapshots/ (partials included)."""
    current = os.readlink(data_dir / "current") if (data_dir / "current").is_symlink() else None
    snapshots = sorted(p.name for p in (data_dir / "snapshots").iterdir()) if (data_dir / "snapshots").is_dir() else []
    return current, snapshots


@pytest.mark.gen_test(timeout=90)
async def test_sigterm_during_a_sync_commits_nothing(tmp_path, account):
    fake = FakeTrakt(FakeAccount.build(history=400, watched_movies=50, shows=10, lists=3), latency=0.5)
    before = snapshot_state(account)
    served_before = (account / "user/stats/overview.json").read_bytes()
    with fake.running_in_thread() as trakt_url:
        env = {"DATA_DIR": str(account), "TRAKT_API_KEY": fake.api_key, "TRAKT_USERNAME": fake.account.username,
               "TRAKT_API_URL": trakt_url, "WATCHING_POLL_SECONDS": "60"}
        with serve_process(tmp_path, env) as server:
            client = tornado.httpclient.AsyncHTTPClient()
            started = await client.fetch(server.url + "/api/trakt/sync", method="POST", body=b"",
                                         raise_error=False)
            assert started.code == 202, started.body
            deadline = time.monotonic() + 20
            while fake.count("/users/") < 3 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)  # the sync is fetching pages now
            status = json.loads((await client.fetch(server.url + "/api/trakt/sync")).body)
            assert status["running"] is True
            server.process.send_signal(signal.SIGTERM)
            code = await wait_exit(server)
    assert code == 0, server.log()
    after = snapshot_state(account)
    assert after == before, "a cancelled sync changed the served data or left a partial snapshot"
    assert (account / "user/stats/overview.json").read_bytes() == served_before
    assert "Traceback" not in server.log()

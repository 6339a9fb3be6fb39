"""A data problem is reported, never answered "ok" or 500.

Unreadable files and folders are simulated in-process: the tests run as root, for whom mode 000
changes nothing, so `deny()` makes the operating-system calls the server uses (`os.stat`,
`os.lstat`, `os.scandir`, `os.listdir`, `open`, `aiofiles.open`) raise `PermissionError` for the
paths beneath a folder, or for one file, exactly as they do for a non-root server on mode 000.
A file replaced by a directory and a dangling symlink are real.
"""

from __future__ import annotations

import asyncio
import builtins
import errno
import json
import logging
import os
import shutil
from dataclasses import replace
from pathlib import Path

import aiofiles
import pytest

from services.data import layout


def deny(monkeypatch, target: Path, *, folder: bool) -> None:
    """Make `target` unreadable: a file (open fails) or a folder (its entries cannot even be
    looked at, and it cannot be listed), as mode 000 does for a user other than root."""
    target_text = os.fspath(target)

    def denied(path, *, listing: bool = False) -> bool:
        if isinstance(path, int):
            return False
        text = os.path.abspath(os.fsdecode(path))
        if not folder:
            return text == target_text
        return text.startswith(target_text + os.sep) or (listing and text == target_text)

    def refuse(path):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fsdecode(path))

    def wrap(original, *, listing=False, opening=False):
        def wrapper(path=".", *args, **kwargs):
            if (folder or opening) and denied(path, listing=listing):
                refuse(path)
            return original(path, *args, **kwargs)
        return wrapper

    monkeypatch.setattr(os, "stat", wrap(os.stat))
    monkeypatch.setattr(os, "lstat", wrap(os.lstat))
    monkeypatch.setattr(os, "scandir", wrap(os.scandir, listing=True))
    monkeypatch.setattr(os, "listdir", wrap(os.listdir, listing=True))
    monkeypatch.setattr(builtins, "open", wrap(builtins.open, opening=True))
    monkeypatch.setattr(aiofiles, "open", wrap(aiofiles.open, opening=True))


async def fetch(http_client, url, **kwargs):
    response = await http_client.fetch(url, raise_error=False, **kwargs)
    assert response.code != 599, response.error
    return response


async def health(http_client, base_url) -> tuple[int, dict]:
    response = await fetch(http_client, base_url + "/healthz")
    return response.code, json.loads(response.body)


async def reload(http_client, base_url) -> tuple[int, dict]:
    response = await fetch(http_client, base_url + "/api/trakt", method="POST", body=b"")
    return response.code, json.loads(response.body)


@pytest.mark.gen_test
async def test_an_unreadable_data_file_is_named_by_the_reload_and_by_healthz(http_client, base_url, data_dir,
                                                                             monkeypatch):
    deny(monkeypatch, data_dir / layout.STATS, folder=False)
    code, answer = await reload(http_client, base_url)
    assert code == 200
    assert answer["message"] != "Cache cleared successfully"
    assert answer["problems"] == [f"{layout.STATS} could not be read: Permission denied"]
    code, body = await health(http_client, base_url)
    assert code == 200 and body["status"] == "degraded"
    assert f"data problem: {layout.STATS} could not be read: Permission denied" in body["reasons"]
    stats = await fetch(http_client, base_url + "/api/trakt/user/stats")
    assert stats.code == 500 and "Permission denied" in json.loads(stats.body)["error"]
    assert (await fetch(http_client, base_url + "/api/trakt/user/profile")).code == 200


@pytest.mark.gen_test
async def test_an_unreadable_data_folder_is_reported_never_500(http_client, base_url, data_dir, monkeypatch):
    deny(monkeypatch, data_dir, folder=True)
    code, answer = await reload(http_client, base_url)
    assert code == 503
    assert answer["error"].startswith(f"Reload failed: Could not read {data_dir}: Permission denied")
    assert "still serving the data loaded" in answer["error"]
    code, body = await health(http_client, base_url)
    assert code == 200 and body["status"] == "degraded"  # the data loaded before is still served
    assert any(f"Could not read {data_dir}: Permission denied" in reason for reason in body["reasons"])
    assert (await fetch(http_client, base_url + "/api/trakt/sync")).code == 200
    assert (await fetch(http_client, base_url + "/api/trakt/user/stats")).code == 200
    monkeypatch.undo()
    assert await reload(http_client, base_url) == (200, {"message": "Cache cleared successfully"})
    assert (await health(http_client, base_url))[1]["status"] == "ok"


@pytest.mark.gen_test
async def test_a_server_started_on_an_unreadable_folder_is_503_with_the_reason(tmp_path, account_dir, monkeypatch):
    from server import build_services, make_app
    from services.config import Config
    from tornado.httpclient import AsyncHTTPClient
    from tornado.httpserver import HTTPServer
    from tornado.testing import bind_unused_port

    deny(monkeypatch, account_dir, folder=True)
    config = replace(Config(), data_dir=account_dir, timezone="UTC")  # no key: yet never the demo
    services = build_services(config)
    await services.store.start()  # the store alone: what it serves and reports
    sock, port = bind_unused_port()
    server = HTTPServer(make_app(config, services))
    server.add_sockets([sock])
    client = AsyncHTTPClient()
    try:
        url = f"http://127.0.0.1:{port}"
        code, body = await health(client, url)
        assert code == 503 and body["demo"] is False
        assert f"no data can be served: Could not read {account_dir}: Permission denied" in body["reasons"]
        assert (await fetch(client, url + "/api/trakt/sync")).code == 200
        code, answer = await reload(client, url)
        assert code == 503 and "Permission denied" in answer["error"]
    finally:
        server.stop()
        await services.store.stop()


@pytest.mark.parametrize("replacement, why", [
    ("directory", "is a directory, not a file"),
    ("dangling symlink", "is a broken symlink"),
])
@pytest.mark.gen_test
async def test_a_data_file_replaced_by_something_else_is_a_problem_not_unsynced(http_client, base_url, data_dir,
                                                                                replacement, why):
    path = data_dir / layout.STATS
    path.unlink()
    if replacement == "directory":
        path.mkdir()
    else:
        path.symlink_to(data_dir / "nowhere.json")
    code, answer = await reload(http_client, base_url)
    assert code == 200 and answer["problems"] == [f"{layout.STATS} {why}"]
    code, body = await health(http_client, base_url)
    assert body["status"] == "degraded" and f"data problem: {layout.STATS} {why}" in body["reasons"]
    stats = await fetch(http_client, base_url + "/api/trakt/user/stats")
    assert stats.code == 500 and why in json.loads(stats.body)["error"]


@pytest.mark.gen_test(timeout=15)
async def test_a_deleted_data_folder_falls_back_to_the_demo_and_says_so(http_client, base_url, data_dir, caplog):
    assert (await health(http_client, base_url))[1]["demo"] is False
    with caplog.at_level(logging.WARNING):
        shutil.rmtree(data_dir)
        for _ in range(100):  # the store looks every 0.1 s in tests
            code, body = await health(http_client, base_url)
            if body["demo"]:
                break
            await asyncio.sleep(0.05)
    assert code == 200 and body["demo"] is True and body["status"] == "degraded"
    [reason] = [r for r in body["reasons"] if "demo account" in r]
    assert str(data_dir) in reason and "no longer holds any data" in reason
    assert any(str(data_dir) in record.getMessage() and "no longer holds any data" in record.getMessage()
               and record.levelno == logging.WARNING for record in caplog.records)


@pytest.mark.gen_test
async def test_an_unreadable_folder_is_logged_once_not_on_every_check(http_client, base_url, data_dir, monkeypatch,
                                                                      caplog):
    deny(monkeypatch, data_dir, folder=True)
    with caplog.at_level(logging.ERROR):
        await asyncio.sleep(1)  # ten checks at 0.1 s
    lines = [r for r in caplog.records if "Could not read" in r.getMessage()]
    assert len(lines) == 1

"""`serve` runs on uvloop when it is installed (README "Performance", the `fast` extra) and says which
loop it runs on in its start-up line; without uvloop it runs on asyncio's own loop."""

from __future__ import annotations

import re
import time
import urllib.request
from pathlib import Path

import uvloop

from tests.helpers.process import serve_process

STARTUP = re.compile(r"Serving the demo account on http://127\.0\.0\.1:\d+/ \(event loop: (.+)\)$", re.MULTILINE)


def started_on(server) -> str:
    deadline = time.monotonic() + 20
    while not (found := STARTUP.search(server.log())):
        assert time.monotonic() < deadline, server.log()
        time.sleep(0.05)
    with urllib.request.urlopen(server.url + "/api/trakt/user/stats", timeout=10) as response:
        assert response.status == 200
    return found.group(1)


def test_serve_runs_on_uvloop_when_it_is_installed(tmp_path: Path):
    with serve_process(tmp_path, {}, ("--demo",)) as server:
        assert started_on(server) == f"uvloop {uvloop.__version__}"


def test_serve_runs_on_asyncio_without_uvloop(tmp_path: Path):
    hidden = tmp_path / "no-uvloop"
    hidden.mkdir()
    (hidden / "uvloop.py").write_text('raise ImportError("hidden by the test")\n')  # found before site-packages
    with serve_process(tmp_path, {"PYTHONPATH": str(hidden)}, ("--demo",)) as server:
        assert started_on(server) == "asyncio"

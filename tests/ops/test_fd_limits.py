"""Running out of file descriptors (README "Security and reliability"): with ~1,040 sockets under a soft limit of 1024 the
server answered no /healthz, sat at 100 % CPU and wrote 141,000 tracebacks in 25 s.

A real `server.py serve` runs with a soft and hard open-files limit of 256 (so it cannot lift
it) and WATCHING_MAX_CLIENTS=100; this test opens about 300 sockets to it.
"""

from __future__ import annotations

import http.client
import os
import resource
import shutil
import socket
import struct
import subprocess
import time

import pytest

from services.ops.listen import raise_open_files_limit
from tests.helpers.process import serve_process
from tests.helpers.websockets import raw_websocket

LIMIT = 256
MAX_CLIENTS = 100
TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def low_open_files_limit() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (LIMIT, LIMIT))


def healthz(port: int, timeout: float = 3.0) -> int | None:
    """The status of GET /healthz on a new connection, None when there is no answer in time."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", "/healthz")
        return connection.getresponse().status
    except OSError:
        return None
    finally:
        connection.close()


def cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS_PER_SECOND  # utime + stime


def open_descriptors(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def close_frame(sock: socket.socket) -> tuple[int, str]:
    """The first frame the server sent must be a close frame: (code, reason)."""
    header = sock.recv(2, socket.MSG_WAITALL)
    assert header[0] == 0x88, header  # FIN + close
    body = sock.recv(header[1], socket.MSG_WAITALL)
    return struct.unpack("!H", body[:2])[0], body[2:].decode()


@pytest.fixture
def server(tmp_path):
    # DATA_CHECK_SECONDS: the store's look for a new snapshot fails too while out of descriptors.
    with serve_process(tmp_path, {"WATCHING_MAX_CLIENTS": str(MAX_CLIENTS), "DATA_CHECK_SECONDS": "600"}, ("--demo",),
                       preexec_fn=low_open_files_limit) as running:
        yield running


def test_websockets_beyond_the_cap_are_closed_with_1013_and_healthz_keeps_answering(server):
    assert f"Open files limit: {LIMIT}" in server.log()
    sockets = []
    try:
        for _ in range(MAX_CLIENTS):
            sockets.append(raw_websocket(server.port))
        refused = []
        for _ in range(160):  # 260 WebSockets and 40 idle connections: 300 sockets
            sock = raw_websocket(server.port)
            refused.append(close_frame(sock))
            sockets.append(sock)
        assert set(refused) == {(1013, "too many clients, try again later")}
        for _ in range(40):  # keep-alive connections that made one request and stay open
            keep_alive = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
            keep_alive.request("GET", "/api/watching")
            assert keep_alive.getresponse().read()
            sockets.append(keep_alive)
        assert [healthz(server.port) for _ in range(10)] == [200] * 10
        assert open_descriptors(server.process.pid) < LIMIT
    finally:
        for sock in sockets:
            sock.close()
    log = server.log()
    assert log.count("Refusing watching clients") == 1  # once a minute, however many
    assert "Traceback" not in log


def test_out_of_descriptors_the_server_pauses_accepting_logs_once_and_recovers(server):
    pid = server.process.pid
    sockets = []
    try:
        for _ in range(MAX_CLIENTS):
            sockets.append(raw_websocket(server.port))
        # Idle connections until the server has no descriptor left, and some more waiting in the
        # listen backlog (the kernel completes those handshakes without the server).
        deadline = time.monotonic() + 30
        while open_descriptors(pid) < LIMIT:
            assert time.monotonic() < deadline, f"the server holds {open_descriptors(pid)} descriptors"
            sockets.append(socket.create_connection(("127.0.0.1", server.port)))
            time.sleep(0.002)
        sockets += [socket.create_connection(("127.0.0.1", server.port)) for _ in range(40)]
        time.sleep(0.5)
        before = cpu_seconds(pid)
        time.sleep(3)
        spent = cpu_seconds(pid) - before
        assert spent < 0.5, f"the server used {spent:.2f} s of CPU in 3 s while out of descriptors"
        assert healthz(server.port, timeout=1) is None  # no descriptor for it: it waits in the backlog
        for sock in sockets[MAX_CLIENTS:]:
            sock.close()
        del sockets[MAX_CLIENTS:]
        deadline = time.monotonic() + 20
        while healthz(server.port) != 200:
            assert time.monotonic() < deadline, "/healthz never answered again"
    finally:
        for sock in sockets:
            sock.close()
    log = server.log()
    failures = [line for line in log.splitlines() if "Too many open files" in line]
    assert len(failures) == 1 and "pausing accepts" in failures[0], log[-3000:]
    again = [line for line in log.splitlines() if "Accepting connections again after" in line]
    assert len(again) == 1 and "failed attempts" in again[0]
    assert "Traceback" not in log
    assert len(log) < 20_000


def test_the_soft_limit_is_raised_to_the_hard_limit(caplog):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard < 300:
        pytest.skip(f"needs a finite hard limit above 300, have {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
    try:
        with caplog.at_level("INFO", logger="trakt_watch.listen"):
            assert raise_open_files_limit() == hard
        assert resource.getrlimit(resource.RLIMIT_NOFILE) == (hard, hard)
        assert [r.getMessage() for r in caplog.records] == [f"Open files limit: {hard} (raised from 256)"]
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.mark.skipif(shutil.which("systemd-analyze") is None and os.environ.get("CI") != "true",
                    reason="systemd-analyze not installed (CI installs systemd)")
def test_the_unit_filter_leaves_prlimit64_which_raising_the_limit_uses():
    # trakt-watch.service filters ~@resources (setrlimit); glibc's setrlimit() is prlimit64.
    groups = {}
    for group in ("@resources", "@default"):
        listing = subprocess.run(["systemd-analyze", "syscall-filter", group], capture_output=True, text=True,
                                 timeout=30, check=True).stdout
        groups[group] = {line.strip() for line in listing.splitlines() if line.startswith("    ")}
    assert "prlimit64" not in groups["@resources"] and "prlimit64" in groups["@default"]

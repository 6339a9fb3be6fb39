"""The systemd units: they verify, their sandbox scores 2.0 or lower, and they say what the README says."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from services.config import VARIABLES

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "systemd"
SERVICES = ("trakt-watch.service", "trakt-watch-sync.service")


def find_analyze(environ=os.environ, which=shutil.which) -> str:
    """The systemd-analyze executable. Missing, it skips the test on a developer's machine but
    fails it under CI=true: .ci/run installs systemd, so a CI without it has lost these checks."""
    path = which("systemd-analyze")
    if path is None:
        if environ.get("CI", "").lower() in ("true", "1", "yes"):
            pytest.fail("systemd-analyze not found under CI=true (.ci/run installs the systemd package)")
        pytest.skip("systemd-analyze not installed (CI installs systemd)")
    return path


@pytest.fixture
def analyze() -> str:
    return find_analyze()


def test_a_missing_systemd_analyze_fails_under_ci_and_skips_elsewhere():
    def nowhere(_name):
        return None

    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        find_analyze({"CI": "true"}, nowhere)
    with pytest.raises(pytest.skip.Exception):
        find_analyze({}, nowhere)
    assert find_analyze({"CI": "true"}, lambda name: f"/usr/bin/{name}") == "/usr/bin/systemd-analyze"


def directives(unit: str) -> dict[str, list[str]]:
    """`Key=value` lines of a unit file, every value of a repeated key kept in order."""
    found: dict[str, list[str]] = {}
    for line in (UNITS / unit).read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        found.setdefault(key.strip(), []).append(value.strip())
    return found


@pytest.fixture
def unit_copies(tmp_path):
    """The units with ExecStart pointed at an executable that exists here (the real path is the
    installed console script), so `verify` checks everything else at full strictness."""
    for unit in (*SERVICES, "trakt-watch-sync.timer"):
        text = (UNITS / unit).read_text()
        if unit.endswith(".service"):
            assert "ExecStart=/usr/local/bin/trakt-watch " in text
            text = text.replace("/usr/local/bin/trakt-watch", sys.executable)
        (tmp_path / unit).write_text(text)
    return tmp_path


def test_units_pass_systemd_analyze_verify(unit_copies, analyze):
    paths = [str(unit_copies / name) for name in (*SERVICES, "trakt-watch-sync.timer")]
    result = subprocess.run([analyze, "verify", *paths], capture_output=True, text=True, timeout=60,
                            cwd=unit_copies)
    ours = [line for line in (result.stdout + result.stderr).splitlines() if "trakt-watch" in line]
    assert result.returncode == 0, result.stderr
    assert ours == []


@pytest.mark.parametrize("unit", SERVICES)
def test_exposure_score_at_most_2(unit_copies, unit, analyze):
    # --threshold counts tenths: 20 means an overall exposure of 2.0.
    result = subprocess.run([analyze, "security", "--offline=yes", "--threshold=20", "--no-pager",
                             str(unit_copies / unit)], capture_output=True, text=True, timeout=60,
                            cwd=unit_copies)
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert match, result.stdout + result.stderr
    assert float(match.group(1)) <= 2.0
    assert result.returncode == 0


def test_server_unit_is_notify_with_watchdog_and_state_directory():
    unit = directives("trakt-watch.service")
    assert unit["Type"] == ["notify"]
    assert unit["ExecStart"] == ["/usr/local/bin/trakt-watch serve"]
    assert unit["EnvironmentFile"] == ["-/etc/trakt-watch/env"]
    assert unit["StateDirectory"] == ["trakt-watch"]
    assert "DATA_DIR=/var/lib/trakt-watch" in unit["Environment"][0].split()
    assert unit["Restart"] == ["on-failure"]
    assert _seconds(unit["WatchdogSec"][0]) >= 10
    # Shutdown drains in a few seconds; systemd must not SIGKILL before that.
    assert _seconds(unit["TimeoutStopSec"][0]) >= 15
    # ~1,040 sockets under the default soft limit of 1024 took /healthz down.
    assert unit["LimitNOFILE"] == ["65536"]


@pytest.mark.parametrize("unit", SERVICES)
def test_sandbox_settings(unit):
    found = directives(unit)
    expected = {
        "DynamicUser": "yes", "User": "trakt-watch", "ProtectSystem": "strict", "ProtectHome": "yes",
        "PrivateTmp": "yes", "PrivateDevices": "yes", "NoNewPrivileges": "yes", "CapabilityBoundingSet": "",
        "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX", "SystemCallArchitectures": "native",
        "ProtectKernelTunables": "yes", "ProtectKernelModules": "yes", "ProtectKernelLogs": "yes",
        "ProtectControlGroups": "yes", "ProtectClock": "yes", "ProtectHostname": "yes",
        "RestrictNamespaces": "yes", "LockPersonality": "yes", "MemoryDenyWriteExecute": "yes",
        "RestrictRealtime": "yes", "RestrictSUIDSGID": "yes", "UMask": "0077", "ProcSubset": "pid",
        "ProtectProc": "invisible", "DevicePolicy": "closed",
    }
    for key, value in expected.items():
        assert found.get(key) == [value], key
    assert found["SystemCallFilter"][0] == "@system-service"
    # The sync has to reach api.trakt.tv and TMDB.
    assert "IPAddressDeny" not in found


def test_sync_service_and_timer():
    sync = directives("trakt-watch-sync.service")
    assert sync["Type"] == ["oneshot"]
    assert sync["ExecStart"] == ["/usr/local/bin/trakt-watch sync"]
    assert sync["StateDirectory"] == ["trakt-watch"]
    timer = directives("trakt-watch-sync.timer")
    assert timer["OnCalendar"] == ["daily"]
    assert timer["Persistent"] == ["true"]
    assert _seconds(timer["RandomizedDelaySec"][0]) > 0
    assert timer["Unit"] == ["trakt-watch-sync.service"]
    assert timer["WantedBy"] == ["timers.target"]


def test_env_example_names_only_real_variables():
    names = []
    for line in (UNITS / "env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            names.append(line.split("=", 1)[0].strip())
    assert names, "env.example sets nothing"
    assert set(names) <= set(VARIABLES), set(names) - set(VARIABLES)
    assert {"TRAKT_API_KEY", "TRAKT_USERNAME", "TMDB_API_KEY", "ADMIN_TOKEN"} <= set(names)
    assert "DATA_DIR" not in names  # the units set it to the StateDirectory


def _seconds(value: str) -> float:
    units = {"ms": 0.001, "s": 1, "sec": 1, "min": 60, "m": 60, "h": 3600, "": 1}
    total = 0.0
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", value):
        total += float(number) * units[unit]
    return total


def test_server_process_notifies_ready_watchdog_and_stopping(tmp_path):
    """`trakt-watch serve` under a fake service manager: READY=1 only once the port accepts
    connections, WATCHDOG=1 pings at half of WATCHDOG_USEC, STOPPING=1 on SIGTERM, exit 0."""
    from tests.helpers import accounts
    from tests.helpers.process import serve_process

    data = accounts.write_account(tmp_path / "data")
    manager = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    manager.bind(str(tmp_path / "notify.sock"))
    manager.settimeout(15)
    try:
        env = {"DATA_DIR": str(data), "NOTIFY_SOCKET": str(tmp_path / "notify.sock"), "WATCHDOG_USEC": "400000"}
        with serve_process(tmp_path, env) as server:
            messages = [manager.recv(4096).decode()]
            assert messages[0].startswith("READY=1\nSTATUS=Serving on 127.0.0.1:")
            # READY came after listen(): the port already answers.
            socket.create_connection(("127.0.0.1", server.port), timeout=2).close()
            while messages.count("WATCHDOG=1") < 3:
                messages.append(manager.recv(4096).decode())
            server.process.send_signal(signal.SIGTERM)
            while not messages[-1].startswith("STOPPING=1"):
                messages.append(manager.recv(4096).decode())
            assert server.wait_exit() == 0, server.log()
    finally:
        manager.close()
    assert set(messages[1:-1]) == {"WATCHDOG=1"}


PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 65, 1  # Linux 6.3+: what MemoryDenyWriteExecute=yes enforces


def test_server_tolerates_memory_deny_write_execute(tmp_path):
    """The unit sets MemoryDenyWriteExecute=yes: run the real server under the same kernel rule
    (prctl PR_SET_MDWE) and exercise the code that could need W+X memory: aiohttp sessions to
    Trakt and TMDB (a full sync with images), ujson, the data load, shutdown."""
    import json
    import time

    import tornado.httpclient

    from tests.fakes.tmdb import FakeTmdb
    from tests.fakes.trakt import FakeAccount, FakeTrakt
    from tests.helpers.process import ROOT, SECRET_VARIABLES, free_port

    probe = subprocess.run([sys.executable, "-c", "import ctypes, sys; "
                            f"sys.exit(ctypes.CDLL(None).prctl({PR_SET_MDWE}, {PR_MDWE_REFUSE_EXEC_GAIN}, 0, 0, 0))"],
                           capture_output=True, timeout=30)
    if probe.returncode != 0:
        pytest.skip("this kernel has no PR_SET_MDWE (Linux < 6.3): cannot emulate MemoryDenyWriteExecute")
    launcher = ("import ctypes, runpy, sys\n"
                f"assert ctypes.CDLL(None).prctl({PR_SET_MDWE}, {PR_MDWE_REFUSE_EXEC_GAIN}, 0, 0, 0) == 0\n"
                f"sys.path.insert(0, {str(ROOT)!r})\n"
                f"sys.argv = ['server.py', 'serve']\n"
                f"runpy.run_path({str(ROOT / 'server.py')!r}, run_name='__main__')\n")
    fake = FakeTrakt(FakeAccount.build(history=20, watched_movies=5, shows=2, lists=1))
    port = free_port()
    with fake.running_in_thread() as trakt_url, FakeTmdb().running_in_thread() as tmdb:
        env = {k: v for k, v in os.environ.items() if k not in SECRET_VARIABLES} | {
            "DATA_DIR": str(tmp_path / "data"), "HOST": "127.0.0.1", "PORT": str(port), "SYNC_INTERVAL_HOURS": "0",
            "TRAKT_API_KEY": fake.api_key, "TRAKT_USERNAME": fake.account.username, "TRAKT_API_URL": trakt_url,
            "TMDB_API_KEY": tmdb.api_key, "TMDB_API_URL": tmdb.api_url, "TMDB_IMAGE_URL": tmdb.image_url}
        log = tmp_path / "server.log"
        with open(log, "wb") as out:
            process = subprocess.Popen([sys.executable, "-c", launcher], cwd=tmp_path, env=env, stdout=out,
                                       stderr=subprocess.STDOUT)
        try:
            client = tornado.httpclient.HTTPClient()
            deadline = time.monotonic() + 30
            while True:
                assert process.poll() is None, log.read_text()
                try:
                    client.fetch(f"http://127.0.0.1:{port}/healthz", raise_error=False)
                    break
                except OSError:
                    assert time.monotonic() < deadline, log.read_text()
                    time.sleep(0.1)
            base = f"http://127.0.0.1:{port}"
            started = client.fetch(base + "/api/trakt/sync", method="POST", body=b"", raise_error=False)
            assert started.code == 202, started.body
            while json.loads(client.fetch(base + "/api/trakt/sync").body)["running"]:
                assert time.monotonic() < deadline + 60, log.read_text()
                time.sleep(0.1)
            status = json.loads(client.fetch(base + "/api/trakt/sync").body)
            stats = client.fetch(base + "/api/trakt/user/stats", raise_error=False)
            client.close()
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=15) == 0, log.read_text()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)
    assert status["last_attempt_outcome"] == "success", status
    assert stats.code == 200
    assert any((tmp_path / "data" / "images").rglob("*_poster.*")), "no image was downloaded"
    assert "Traceback" not in log.read_text()

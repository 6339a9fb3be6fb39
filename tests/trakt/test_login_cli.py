"""`trakt-watch login`, `logout` and `status` as a user runs them: `python server.py …` against the fake."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from services.data.snapshots import DataFolder
from services.trakt.report import SyncReport, save_report
from tests.fakes.trakt_oauth import CLIENT_ID, CLIENT_SECRET, FakeTraktOAuth
from tests.helpers import accounts
from tests.helpers.process import ROOT, SECRET_VARIABLES, free_port


@pytest.fixture
def fake():
    server = FakeTraktOAuth(interval=0.05, token_expires_in=7 * 86400)
    with server.running_in_thread():
        yield server


def cli_env(auth_url: str, api_url: str | None = None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SECRET_VARIABLES and k != "TRAKT_API_URL"}
    env.update({"TRAKT_API_KEY": CLIENT_ID, "TRAKT_CLIENT_SECRET": CLIENT_SECRET, "TRAKT_AUTH_URL": auth_url,
                "TRAKT_API_URL": api_url or auth_url, "PYTHONUNBUFFERED": "1"})
    env.update(extra)
    return {k: v for k, v in env.items() if v != ""}


def run(tmp_path: Path, command: str, env: dict[str, str], fake: FakeTraktOAuth | None = None,
        ) -> subprocess.CompletedProcess:
    """Run `server.py COMMAND --data-dir tmp/data`; checks nothing secret reached its output."""
    done = subprocess.run([sys.executable, str(ROOT / "server.py"), command, "--data-dir", str(tmp_path / "data")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    if fake is not None:
        for value in fake.secret_values():
            assert value not in done.stdout + done.stderr
    return done


def token_file(tmp_path: Path) -> Path:
    return tmp_path / "data" / "auth" / "token.json"


# --- login ---------------------------------------------------------------------------------------
def test_login_shows_the_url_and_code_waits_for_approval_and_stores_a_private_token(tmp_path, fake):
    fake.script = ["pending", "pending", "approve"]
    done = run(tmp_path, "login", cli_env(fake.base_url, LOG_LEVEL="DEBUG"), fake)
    assert done.returncode == 0, done.stderr
    grant = fake.newest()
    assert "https://trakt.tv/activate" in done.stdout
    assert f"\n    {grant.user_code}\n" in done.stdout
    assert "Signed in to Trakt as fakeuser" in done.stdout
    assert len(grant.polls) == 3
    path = token_file(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    stored = json.loads(path.read_text())
    [issued] = fake.tokens.values()
    assert stored["access_token"] == issued.access_token and stored["refresh_token"] == issued.refresh_token
    assert stored["created_at"] == issued.created_at and stored["expires_in"] == 7 * 86400
    assert stored["username"] == "fakeuser"
    assert sorted(p.name for p in path.parent.iterdir()) == ["token.json"]  # no temp file left

    status = run(tmp_path, "status", cli_env(fake.base_url), fake)
    assert status.returncode == 0
    expires = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(issued.created_at + 7 * 86400))
    assert f"signed in as fakeuser; the token expires {expires} (in 7 days)" in status.stdout


@pytest.mark.parametrize("answer, words", [
    ("deny", "the sign-in was denied on Trakt (418)"),
    ("expire", "the code expired before it was approved (410)"),
    ("used", "this code was already used (409)"),
    ("invalid", "Trakt does not know this code (404 invalid code)"),
])
def test_login_that_is_not_approved_exits_1_with_its_own_message_and_stores_nothing(tmp_path, fake, answer, words):
    fake.script = ["pending", answer]
    done = run(tmp_path, "login", cli_env(fake.base_url), fake)
    assert done.returncode == 1
    assert f"Not signed in: {words}; run trakt-watch login again." in done.stderr
    assert not token_file(tmp_path).exists()


def test_a_login_denied_while_signed_in_says_the_earlier_sign_in_is_kept_and_keeps_it(tmp_path, fake):
    fake.script = ["approve"]
    assert run(tmp_path, "login", cli_env(fake.base_url), fake).returncode == 0
    stored = token_file(tmp_path).read_bytes()
    fake.script = ["pending", "deny"]
    done = run(tmp_path, "login", cli_env(fake.base_url), fake)
    assert done.returncode == 1
    assert "Already signed in as fakeuser; signing in again replaces that token." in done.stdout
    assert ("Sign-in not replaced: the sign-in was denied on Trakt (418); run trakt-watch login again; you are "
            "still signed in as fakeuser (the earlier token is kept).") in done.stderr
    assert "Not signed in" not in done.stderr
    assert token_file(tmp_path).read_bytes() == stored


def test_slow_down_makes_login_poll_five_seconds_less_often(tmp_path, fake):
    fake.script = ["slow_down", "approve"]
    done = run(tmp_path, "login", cli_env(fake.base_url), fake)
    assert done.returncode == 0, done.stderr
    assert "every 5.05 s now" in done.stdout
    first, second = fake.newest().polls
    assert second - first >= 5.0  # the wait after "slow down" (a lower bound: sleeps never end early)


@pytest.mark.parametrize("missing, named", [
    ({"TRAKT_CLIENT_SECRET": ""}, "TRAKT_CLIENT_SECRET is not set"),
    ({"TRAKT_API_KEY": ""}, "TRAKT_API_KEY is not set"),
    ({"TRAKT_API_KEY": "", "TRAKT_CLIENT_SECRET": ""}, "TRAKT_API_KEY and TRAKT_CLIENT_SECRET are not set"),
])
def test_login_without_the_app_credentials_is_a_configuration_error(tmp_path, fake, missing, named):
    done = run(tmp_path, "login", cli_env(fake.base_url, **missing), fake)
    assert done.returncode == 2
    assert named in done.stderr and "configuration error" in done.stderr
    assert fake.requests == []


def test_login_with_a_wrong_client_secret_exits_1_naming_the_setting_not_its_value(tmp_path, fake):
    fake.script = ["approve"]
    done = run(tmp_path, "login", cli_env(fake.base_url, TRAKT_CLIENT_SECRET="wrong-secret-value-91"), fake)
    assert done.returncode == 1
    assert "Trakt refused the app (401 invalid_client)" in done.stderr and "TRAKT_CLIENT_SECRET" in done.stderr
    assert "wrong-secret-value-91" not in done.stdout + done.stderr
    assert not token_file(tmp_path).exists()


def test_login_falls_back_to_the_api_host_when_the_auth_host_is_down_and_says_so(tmp_path, fake):
    dead = f"http://127.0.0.1:{free_port()}"
    fake.script = ["approve"]
    done = run(tmp_path, "login", cli_env(dead, api_url=fake.base_url), fake)
    assert done.returncode == 0, done.stderr
    assert f"Trakt's OAuth host {dead} failed" in done.stderr
    assert f"trying {fake.base_url} once" in done.stderr
    assert token_file(tmp_path).exists()


def test_login_fails_with_exit_1_when_no_oauth_host_answers(tmp_path):
    dead = f"http://127.0.0.1:{free_port()}"
    done = run(tmp_path, "login", cli_env(dead))
    assert done.returncode == 1
    assert "could not start the sign-in" in done.stderr and "cannot connect" in done.stderr


def test_ctrl_c_while_waiting_cancels_the_login_and_stores_nothing(tmp_path, fake):
    process = subprocess.Popen([sys.executable, str(ROOT / "server.py"), "login", "--data-dir",
                                str(tmp_path / "data")], cwd=tmp_path, env=cli_env(fake.base_url),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        while not any("Waiting for you to approve" in line for line in lines):
            line = process.stdout.readline()
            assert line, "login ended before it waited"
            lines.append(line)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 1
    assert "Sign-in cancelled; nothing was stored." in err and "Traceback" not in err
    assert not token_file(tmp_path).exists()


# --- logout --------------------------------------------------------------------------------------
def test_logout_revokes_the_token_at_trakt_and_deletes_the_file(tmp_path, fake):
    fake.script = ["approve"]
    assert run(tmp_path, "login", cli_env(fake.base_url), fake).returncode == 0
    [issued] = fake.tokens.values()
    done = run(tmp_path, "logout", cli_env(fake.base_url), fake)
    assert done.returncode == 0, done.stderr
    assert "Signed out fakeuser" in done.stdout
    assert fake.revoked == [issued.access_token]
    assert not token_file(tmp_path).exists()
    again = run(tmp_path, "logout", cli_env(fake.base_url), fake)
    assert again.returncode == 0 and "Not signed in" in again.stdout
    assert fake.count("/oauth/revoke") == 1


def test_logout_deletes_the_token_even_when_trakt_cannot_be_reached_and_says_so(tmp_path, fake):
    fake.script = ["approve"]
    assert run(tmp_path, "login", cli_env(fake.base_url), fake).returncode == 0
    dead = f"http://127.0.0.1:{free_port()}"
    done = run(tmp_path, "logout", cli_env(dead), fake)
    assert done.returncode == 1
    assert "Could not revoke the token at Trakt" in done.stderr
    assert "https://trakt.tv/oauth/authorized_applications" in done.stderr
    assert not token_file(tmp_path).exists()


# --- status --------------------------------------------------------------------------------------
def test_status_when_not_signed_in_shows_the_data_age_and_the_last_sync(tmp_path, fake):
    folder = DataFolder(accounts.write_account(tmp_path / "data"))
    report = SyncReport(username="sam", trigger="cli")
    report.finish("failed", "/users/sam/history/movies: Trakt answered 503, giving up after 5 attempts")
    save_report(folder, report)
    done = run(tmp_path, "status", cli_env(fake.base_url), fake)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("Trakt sign-in:") and "not signed in" in lines[0] and "trakt-watch login" in lines[0]
    assert lines[1].startswith("Data:") and "account sam, last changed 2026-11-01 09:00 UTC (" in lines[1]
    assert lines[2].startswith("Last sync:") and lines[2].split(":", 1)[1].strip().startswith("failed ")
    assert "Trakt answered 503, giving up after 5 attempts; never succeeded" in lines[2]
    assert fake.requests == []  # status asks nobody


def test_status_of_a_lost_sign_in_says_to_sign_in_again_and_exits_1(tmp_path, fake):
    fake.script = ["approve"]
    assert run(tmp_path, "login", cli_env(fake.base_url), fake).returncode == 0
    stored = json.loads(token_file(tmp_path).read_text())
    stored["created_at"] -= 8 * 86400  # expired a day ago
    token_file(tmp_path).write_text(json.dumps(stored))
    fake.invalidate_refresh_tokens()
    lose = subprocess.run([sys.executable, "-c", (
        "import asyncio; from services.config import load_config; from services.trakt.auth import TokenManager\n"
        "async def main():\n"
        "    tokens = TokenManager(load_config())\n"
        "    print(await tokens.authorization_header()); await tokens.close()\n"
        "asyncio.run(main())")], cwd=tmp_path, capture_output=True, text=True, timeout=60,
        env={**cli_env(fake.base_url), "PYTHONPATH": str(ROOT), "DATA_DIR": str(tmp_path / "data")})
    assert lose.stdout.strip() == "{}", lose.stderr
    assert "sign in again: trakt-watch login" in lose.stderr
    for value in fake.secret_values():
        assert value not in lose.stdout + lose.stderr
    done = run(tmp_path, "status", cli_env(fake.base_url), fake)
    assert done.returncode == 1
    assert "sign in again: trakt-watch login" in done.stdout
    assert fake.refresh_count == 1

    fake.script = ["approve"]
    assert run(tmp_path, "login", cli_env(fake.base_url), fake).returncode == 0
    again = run(tmp_path, "status", cli_env(fake.base_url), fake)
    assert again.returncode == 0 and "signed in as fakeuser" in again.stdout


def test_status_refuses_a_token_file_others_can_read_and_says_how_to_fix_it(tmp_path, fake):
    fake.script = ["approve"]
    assert run(tmp_path, "login", cli_env(fake.base_url), fake).returncode == 0
    token_file(tmp_path).chmod(0o644)
    done = run(tmp_path, "status", cli_env(fake.base_url), fake)
    assert done.returncode == 1
    assert f"chmod 600 {token_file(tmp_path)}" in done.stdout and "mode 0644" in done.stdout

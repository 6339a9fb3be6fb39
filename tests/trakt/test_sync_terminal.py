"""`trakt-watch sync` as a user sees it: on a real terminal (a pty) log lines print above the bar,
never on its line, and the summary is the last line; through a pipe there is no bar at all."""

from __future__ import annotations

import fcntl
import os
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

from tests.fakes.trakt import FakeAccount, FakeTrakt
from tests.helpers.process import ROOT, SECRET_VARIABLES

USER = "fakeuser"
COLUMNS, ROWS = 120, 40
RATE_LIMIT_WARNING = f"WARNING trakt_watch.trakt: Trakt rate limit on /users/{USER}/ratings: waiting 0.5 s"
BAR_TEXT = re.compile(r"\d+/(\d+|\?) files")  # the bar's count, "4/12 files"
BAR_MARKS = ("\r", "%|", "█", "\x1b[")  # what tqdm draws a bar with


def fake_trakt() -> FakeTrakt:
    fake = FakeTrakt(FakeAccount.build(history=600, watched_movies=40, shows=6, lists=4, watchlist=12),
                     latency=0.05)
    fake.inject("rate_limit", path="/ratings", retry_after="0.5")  # in the middle: after the bar is up
    return fake


def sync_command(data_dir: Path) -> list[str]:
    return [sys.executable, str(ROOT / "server.py"), "sync", "--data-dir", str(data_dir), "--no-images"]


def sync_env(url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SECRET_VARIABLES}
    env.update(TRAKT_API_KEY="test-key", TRAKT_USERNAME=USER, TRAKT_API_URL=url, PYTHONUNBUFFERED="1",
               LOG_LEVEL="INFO", TERM="xterm-256color", LANG="C.UTF-8", LC_ALL="C.UTF-8")
    return env


def run_on_a_terminal(command: list[str], env: dict[str, str], cwd: Path, timeout: float = 60) -> tuple[int, str]:
    """Run `command` with stdin, stdout and stderr on a new pty of COLUMNS x ROWS; (exit code, output)."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
    process = subprocess.Popen(command, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=cwd,
                               close_fds=True, start_new_session=True)
    os.close(slave)
    chunks = []
    end = time.monotonic() + timeout
    try:
        while time.monotonic() < end:
            ready, _, _ = select.select([master], [], [], 0.5)
            if not ready:
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: every writer of the pty is gone
                break
            if not data:
                break
            chunks.append(data)
        code = process.wait(timeout=10)
    finally:
        os.close(master)
        if process.poll() is None:
            process.kill()
            process.wait()
    return code, b"".join(chunks).decode("utf-8", errors="replace")


def screen(output: str) -> list[str]:
    """The lines a terminal shows after `output`: carriage returns overwrite, newlines move down;
    the cursor-up and erase-line escapes are the only ones expected."""
    lines, row, col, i = [""], 0, 0, 0
    while i < len(output):
        char = output[i]
        if char == "\x1b":
            escape = re.match(r"\x1b\[(\d*)([A-Za-z])", output[i:])
            assert escape, f"unexpected escape sequence {output[i:i + 8]!r}"
            count, command = int(escape.group(1) or 1), escape.group(2)
            if command == "A":
                row = max(0, row - count)
            elif command == "K":
                lines[row] = lines[row][:col]
            else:
                raise AssertionError(f"unexpected escape sequence {escape.group(0)!r}")
            i += len(escape.group(0))
            continue
        if char == "\r":
            col = 0
        elif char == "\n":
            row, col = row + 1, 0
            if row == len(lines):
                lines.append("")
        else:
            line = lines[row].ljust(col)
            lines[row] = line[:col] + char + line[col + 1:]
            col += 1
        i += 1
    return [line.rstrip() for line in lines]


def test_on_a_terminal_a_warning_prints_on_its_own_line_above_the_bar_and_the_summary_is_last(tmp_path):
    fake = fake_trakt()
    with fake.running_in_thread() as url:
        code, output = run_on_a_terminal(sync_command(tmp_path / "data"), sync_env(url), tmp_path)
    assert code == 0, output
    assert BAR_TEXT.search(output)  # the bar was drawn
    shown = [line for line in screen(output) if line]
    warnings = [line for line in shown if "Trakt rate limit" in line]
    assert len(warnings) == 1, shown
    assert RATE_LIMIT_WARNING in warnings[0]
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} WARNING ", warnings[0]), warnings[0]  # from its start
    assert not any(BAR_TEXT.search(line) for line in shown), shown  # the bar is gone
    assert shown[-1].startswith("sync committed snapshot "), shown
    assert f"{fake.count()} requests (1 retries, 1 rate limited)" in shown[-1]


def test_through_a_pipe_there_is_no_bar_only_log_lines_and_the_summary(tmp_path):
    fake = fake_trakt()
    with fake.running_in_thread() as url:
        done = subprocess.run(sync_command(tmp_path / "data"), env=sync_env(url), cwd=tmp_path,
                              capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    for mark in BAR_MARKS:
        assert mark not in done.stderr + done.stdout
    assert not BAR_TEXT.search(done.stderr + done.stdout)
    log_lines = done.stderr.splitlines()
    assert all(re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ ", line) for line in log_lines), log_lines
    assert any(RATE_LIMIT_WARNING in line for line in log_lines)
    summary = done.stdout.splitlines()
    assert len(summary) == 1 and summary[0].startswith("sync committed snapshot ")

"""One sync per data folder, across processes: an exclusive `flock` on DATA_DIR/sync/sync.lock.

The kernel drops the lock when its holder dies, so a SIGKILLed sync never blocks the next one
(README "Sync": the systemd timer and the server's schedule never write one folder at once).
The holder writes its pid, when it took the lock and why into the file, so whoever finds the
lock taken can say who holds it.
"""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import dataclass
from pathlib import Path

from services.trakt.report import utc_now

LOCK_FILE = "sync.lock"

# What each trigger (SyncReport.trigger) is called when a user is told who holds the lock.
_TRIGGERS = {"cli": "trakt-watch sync", "schedule": "the server's schedule",
             "manual": "POST /api/trakt/sync", "cleanup": "a server start cleaning up"}


@dataclass(frozen=True)
class LockHolder:
    """Who holds the lock, as far as its file says (None: not written yet, or unreadable)."""

    pid: int | None = None
    since: str | None = None
    trigger: str | None = None

    def describe(self) -> str:
        """`pid 4242 (trakt-watch sync) since 2026-12-01T21:40:00.000Z`."""
        text = f"pid {self.pid}" if self.pid is not None else "pid unknown"
        if self.trigger:
            text += f" ({_TRIGGERS.get(self.trigger, self.trigger)})"
        if self.since:
            text += f" since {self.since}"
        return text


class ProcessLock:
    """The lock file's exclusive `flock`, taken without waiting."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self, trigger: str = "") -> bool:
        """Take the lock and write who holds it; False when another open file holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        holder = {"pid": os.getpid(), "since": utc_now(), "trigger": trigger or None}
        os.ftruncate(fd, 0)
        os.write(fd, (json.dumps(holder) + "\n").encode())
        self._fd = fd
        return True

    def holder(self) -> LockHolder:
        """What the file says about the process holding the lock (read when `acquire` failed)."""
        try:
            with open(self.path, encoding="utf-8") as fh:
                written = json.loads(fh.read(4096) or "{}")
        except (OSError, ValueError):
            return LockHolder()
        if isinstance(written, int) and not isinstance(written, bool):
            return LockHolder(pid=written)  # written by an older version: its pid alone
        if not isinstance(written, dict):
            return LockHolder()
        pid, since, trigger = written.get("pid"), written.get("since"), written.get("trigger")
        return LockHolder(pid=pid if isinstance(pid, int) and not isinstance(pid, bool) else None,
                          since=since[:40] if isinstance(since, str) else None,
                          trigger=trigger[:40] if isinstance(trigger, str) else None)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        """Give the lock up (again: nothing)."""
        if self._fd is not None:
            os.ftruncate(self._fd, 0)  # nobody holds it now
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

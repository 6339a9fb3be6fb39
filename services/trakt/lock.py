"""One sync per data folder, across processes: an exclusive `flock` on DATA_DIR/sync/sync.lock.

The kernel drops the lock when its holder dies, so a SIGKILLed sync never blocks the next one
(README "Sync": the systemd timer and the server's schedule never write one folder at once).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

LOCK_FILE = "sync.lock"


class ProcessLock:
    """The lock file's exclusive `flock`, taken without waiting."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

"""Where a running sync is (`SyncProgress`), and how `trakt-watch sync` shows it on a terminal."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TextIO


@dataclass(frozen=True)
class SyncProgress:
    """Where a running sync is: `files_done` of `files_total` (grows once the lists are known)."""

    stage: str  # fetch | write | images | done
    files_done: int
    files_total: int
    requests: int
    items: int
    current: str = ""


class TerminalProgress:
    """A one-line progress bar on a terminal (stderr), redrawn with `\\r`."""

    def __init__(self, stream: TextIO, width: int = 24) -> None:
        self.stream = stream
        self.width = width
        self._last = ""

    def __call__(self, p: SyncProgress) -> None:
        total = max(p.files_total, 1)
        filled = int(self.width * min(p.files_done, total) / total)
        bar = "#" * filled + "-" * (self.width - filled)
        line = (f"\r[{bar}] {p.files_done}/{p.files_total} files  {p.requests} requests  "
                f"{p.items:,} items  {p.stage}: {p.current}")[:160]
        padding = " " * max(0, len(self._last) - len(line))
        self._last = line
        self.stream.write(line + padding)
        self.stream.flush()

    def close(self) -> None:
        if self._last:
            self.stream.write("\n")
            self.stream.flush()

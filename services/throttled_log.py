"""A log line for an error that can repeat thousands of times a second: written once per interval,
with how often it happened in between (README "Deployment with systemd")."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

DEFAULT_INTERVAL_SECONDS = 60.0


class ThrottledLog:
    """`log(message)` writes the first occurrence at once; later ones within `interval` seconds
    are only counted, and the next line written says how many there were."""

    def __init__(self, logger: logging.Logger, level: int = logging.WARNING, *,
                 interval: float = DEFAULT_INTERVAL_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self.logger = logger
        self.level = level
        self.interval = interval
        self._clock = clock
        self._last_written: float | None = None
        self.suppressed = 0  # occurrences counted but not written since the last line
        self.total = 0

    def log(self, message: str, *args: object) -> bool:
        """Count one occurrence; True when it was written."""
        self.total += 1
        now = self._clock()
        if self._last_written is not None and now - self._last_written < self.interval:
            self.suppressed += 1
            return False
        if self.suppressed:
            message += " (and %d more times in the last %.0f s)"
            args = (*args, self.suppressed, now - self._last_written)
        self.logger.log(self.level, message, *args)
        self._last_written = now
        self.suppressed = 0
        return True

    def reset(self) -> int:
        """The problem is over: forget it (the next occurrence is written at once); returns how
        many occurrences there were since the last reset."""
        total, self.total, self.suppressed, self._last_written = self.total, 0, 0, None
        return total

"""When the server's own schedule syncs (README "Sync", Schedule).

At once when there is no data at all; otherwise when the last success is one interval old, plus
jitter so that a restart storm never hits Trakt at the same second; then every interval, and
within the hour after a failure.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from services import times
from services.data.snapshots import DataFolder
from services.trakt.report import read_sync_status

FIRST_RUN_JITTER_SECONDS = (10.0, 120.0)
RETRY_AFTER_FAILURE_SECONDS = 3600.0


def first_delay(folder: DataFolder, interval_seconds: float, *,
                uniform: Callable[[float, float], float] = random.uniform,
                now: Callable[[], float] = time.time) -> float:
    """Seconds until the schedule's first sync."""
    if folder.served_root() is None:
        return 0.0
    jitter = min(uniform(*FIRST_RUN_JITTER_SECONDS), interval_seconds)
    last_success = times.to_epoch(read_sync_status(folder).get("last_success_at"))
    if last_success is None:
        return jitter
    return max(0.0, last_success + interval_seconds - now()) + jitter


def delay_after(succeeded: bool, interval_seconds: float) -> float:
    """Seconds from the end of one scheduled sync (or a skipped turn) to the next."""
    return interval_seconds if succeeded else min(interval_seconds, RETRY_AFTER_FAILURE_SECONDS)



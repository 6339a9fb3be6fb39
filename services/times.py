"""Every timestamp we read or write, in one place (a bottom helper: imports nothing of ours).

Two text forms exist and stay as they are, since files, answers and the bundled demo carry them:
Trakt's `2025-07-19T13:00:12.000Z` (`iso_z`: Trakt rows, sync reports, `/healthz`) and Python's
`2026-11-01T20:00:00.000000+00:00` (`iso_offset`: the `last_updated` of the data files).
`parse` reads both, and any other ISO 8601 form, as an aware UTC datetime.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any


def now() -> datetime:
    """The current moment, aware, in UTC."""
    return datetime.now(UTC)


# --- reading ---------------------------------------------------------------------------------
def parse_iso(text: str) -> datetime:
    """An ISO 8601 string (`…Z`, `…+02:00`, or naive, taken as UTC) as an aware UTC datetime.

    Raises ValueError when `text` is not a string or not ISO 8601."""
    if not isinstance(text, str):
        raise ValueError(f"expected an ISO 8601 timestamp, got {text!r}")
    moment = datetime.fromisoformat(text.strip())  # Python 3.11 reads `Z` and fractions of any length
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def parse(value: Any) -> datetime | None:
    """An ISO 8601 string, epoch seconds or a datetime as an aware UTC datetime; None if unusable."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str) and value.strip():
        try:
            return parse_iso(value)
        except ValueError:
            return None
    return None


def to_epoch(value: Any) -> float | None:
    """Unix seconds of anything `parse` reads; None if unusable."""
    moment = parse(value)
    return None if moment is None else moment.timestamp()


# --- writing ---------------------------------------------------------------------------------
def iso_z(moment: datetime, timespec: str = "milliseconds") -> str:
    """`2025-07-19T13:00:12.000Z`: Trakt's form (naive datetimes are taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec=timespec).replace("+00:00", "Z")


def iso_offset(moment: datetime, timespec: str = "microseconds") -> str:
    """`2026-11-01T20:00:00.000000+00:00`: the form of the data files' `last_updated`."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec=timespec)


def compact(moment: datetime) -> str:
    """`20261101T200000123456Z`: sortable, and safe in a file name (snapshot ids)."""
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")


_DAY_PREFIX: dict[int, str] = {}
_CLOCK: dict[int, str] = {}


def epoch_z(seconds: int) -> str:
    """Whole Unix seconds in Trakt's form, `2026-10-31T21:14:00.000Z`, fast.

    Dates and times of day are cached apart (a few thousand days, at most 86,400 times): the
    demo generator writes several hundred thousand rows at scale 50.
    """
    day, rest = divmod(seconds, 86400)
    prefix = _DAY_PREFIX.get(day)
    if prefix is None:
        prefix = _DAY_PREFIX[day] = time.strftime("%Y-%m-%dT", time.gmtime(day * 86400))
    clock = _CLOCK.get(rest)
    if clock is None:
        hours, minutes = divmod(rest, 3600)
        clock = _CLOCK[rest] = f"{hours:02d}:{minutes // 60:02d}:{minutes % 60:02d}.000Z"
    return prefix + clock

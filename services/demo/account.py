"""What every part of the demo generator shares: the account's fixed seed, anchor date and size per
scale, the `DemoAccount` it returns, and small helpers (slugs, Trakt timestamps, ids, evenings)."""

from __future__ import annotations

import calendar
import random
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timezone

USERNAME = "demo"
ANCHOR = datetime(2026, 11, 1, 20, 0, tzinfo=timezone.utc)
SEED = 20261101
MAX_SCALE = 200
HISTORY_DAYS = 3 * 365

# Per unit of scale.
MOVIES_PER_SCALE = 250
SHOWS_PER_SCALE = 60

ANCHOR_TS = int(ANCHOR.timestamp())
WINDOW_START = ANCHOR_TS - HISTORY_DAYS * 86400
DAY = 86400

_TRANSLITERATE = str.maketrans({"ø": "o", "Ø": "O", "ł": "l", "Ł": "L", "æ": "ae", "Æ": "AE",
                                "œ": "oe", "Œ": "OE", "ß": "ss", "đ": "d", "Đ": "D"})


@dataclass
class DemoAccount:
    """A generated account: every data file's `data` keyed by its README "Data folder" endpoint."""

    username: str
    last_updated: str
    files: dict[str, object] = field(default_factory=dict)


def slugify(text: str) -> str:
    """A Trakt-style slug: accents folded, lower case, words joined by hyphens."""
    folded = unicodedata.normalize("NFKD", text.translate(_TRANSLITERATE))
    ascii_text = folded.encode("ascii", "ignore").decode("ascii").lower()
    out = []
    dash = False
    for char in ascii_text:
        if char.isalnum():
            out.append(char)
            dash = False
        elif not dash and out:
            out.append("-")
            dash = True
    return "".join(out).strip("-")


def validate_scale(scale: object) -> int:
    if isinstance(scale, bool) or not isinstance(scale, int):
        raise ValueError(f"scale must be a whole number between 1 and {MAX_SCALE}, got {scale!r}")
    if not 1 <= scale <= MAX_SCALE:
        raise ValueError(f"scale must be between 1 and {MAX_SCALE}, got {scale}")
    return scale


def spread(rng: random.Random, start: int, count: int, step: int) -> list[int]:
    """`count` distinct increasing ids: one random value inside each `step`-wide slot."""
    return [start + i * step + rng.randrange(step) for i in range(count)]


def imdb_id(number: int) -> str:
    return f"tt{number:07d}"



def release_year(rng: random.Random, oldest: int, mean_age: float = 11) -> int:
    """A release year, recent years most likely."""
    return max(oldest, 2026 - int(rng.expovariate(1 / mean_age)))


def year_start(year: int) -> int:
    return calendar.timegm((year, 1, 1, 0, 0, 0))


def evening_time(rng: random.Random, day_ts: int) -> int:
    """A time between 18:00 and 23:59 UTC on the day containing `day_ts`."""
    return day_ts - day_ts % DAY + 18 * 3600 + int(rng.random() * 360) * 60


"""What every upstream client shares: the retry/backoff policy, `Retry-After`, bounded answers.

The Trakt client (services/trakt/client.py) and the TMDB client (services/images/tmdb.py) both
decide with one `RetryPolicy` when to try again and how long to wait, read `Retry-After` the same
way (delta-seconds or an HTTP date), and read every answer through
`read_bounded`, which counts the bytes *after* decompression (README "Sync", "Images"). A bottom
helper: it imports nothing of ours.
"""

from __future__ import annotations

import asyncio
import email.utils
import math
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import aiohttp

# Failures that a later attempt may not repeat: timeouts, refused or dropped connections, cut bodies.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    asyncio.TimeoutError, aiohttp.ClientConnectionError, aiohttp.ClientPayloadError)

READ_CHUNK = 64 * 1024


def retryable_status(status: int) -> bool:
    """5xx (Cloudflare's 520–524 included): the upstream may answer on a later attempt."""
    return 500 <= status < 600


def retry_after_seconds(raw: str | None, now: Callable[[], float] = time.time) -> float | None:
    """Seconds from a `Retry-After` value (delta-seconds or an HTTP date); None if unusable.

    A date in the past gives 0; `now` is the wall clock the date is compared with.
    """
    text = (raw or "").strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        seconds = when.timestamp() - now()
    if not math.isfinite(seconds):
        return None
    return max(seconds, 0.0)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry: capped exponential backoff with jitter, bounded 429 waits."""

    retries: int = 4  # extra attempts after a 5xx / timeout / reset / malformed body
    base_delay: float = 1.0
    max_delay: float = 30.0
    rate_limit_retries: int = 5  # 429s honoured per request before giving up
    default_retry_after: float = 10.0  # a 429 without a usable Retry-After
    max_retry_after: float = 900.0  # never sleep longer than this on one 429

    def __post_init__(self) -> None:
        if self.retries < 0 or self.rate_limit_retries < 0:
            raise ValueError("retry counts must be 0 or more")
        if min(self.base_delay, self.max_delay, self.default_retry_after, self.max_retry_after) < 0:
            raise ValueError("retry delays must be 0 or more")

    def backoff(self, attempt: int) -> float:
        """Delay before retry number `attempt` (0-based): half fixed, half random, capped."""
        delay = min(self.max_delay, self.base_delay * (2 ** attempt))
        return delay / 2 + random.uniform(0, delay / 2)

    def rate_limit_delay(self, raw_retry_after: str | None, now: Callable[[], float] = time.time) -> float:
        """How long to wait after a 429: its Retry-After within [0, max_retry_after], else the default."""
        seconds = retry_after_seconds(raw_retry_after, now)
        if seconds is None:
            seconds = self.default_retry_after
        return min(seconds, self.max_retry_after)


class AnswerTooLarge(Exception):
    """An answer grew past its limit after decompression; the reading stopped there."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the answer is larger than {describe_bytes(limit)} after decompression")
        self.limit = limit


async def iter_bounded(content: aiohttp.StreamReader, limit: int,
                       chunk_size: int = READ_CHUNK) -> AsyncIterator[bytes]:
    """The decompressed body in chunks; raises AnswerTooLarge once more than `limit` bytes came.

    aiohttp inflates gzip/deflate/br in bounded steps as it is read, so memory stays near
    `limit` + one chunk whatever the compression ratio (a gzip bomb stops at the limit).
    """
    received = 0
    async for chunk in content.iter_chunked(chunk_size):
        received += len(chunk)
        if received > limit:
            raise AnswerTooLarge(limit)
        yield chunk


async def read_bounded(content: aiohttp.StreamReader, limit: int) -> bytes:
    """The whole decompressed body, at most `limit` bytes (else AnswerTooLarge)."""
    parts = [chunk async for chunk in iter_bounded(content, limit)]
    return b"".join(parts)


def describe_bytes(count: int) -> str:
    """`32 MiB`, `512 KiB`, `100 bytes`: a limit as a person would say it."""
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= size and count % size == 0:
            return f"{count // size} {unit}"
    return f"{count} bytes"

"""services/retry.py: Retry-After in both forms, the backoff, and reading bounded after decompression."""

from __future__ import annotations

import email.utils
import gzip

import aiohttp
import pytest
import tornado.web

from services.retry import (
    AnswerTooLarge,
    RetryPolicy,
    describe_bytes,
    read_bounded,
    retry_after_seconds,
    retryable_status,
)
from tests.fakes.server import LoopbackServer

NOW = 1_800_000_000.0  # a fixed wall clock: 2027-01-15T08:00:00Z


def clock() -> float:
    return NOW


def test_retry_after_in_seconds():
    assert retry_after_seconds("7", clock) == 7.0
    assert retry_after_seconds(" 2.5 ", clock) == 2.5
    assert retry_after_seconds("0", clock) == 0.0
    assert retry_after_seconds("-3", clock) == 0.0


def test_retry_after_as_an_http_date():
    in_two_minutes = email.utils.formatdate(NOW + 120, usegmt=True)  # "Fri, 15 Jan 2027 08:02:00 GMT"
    assert retry_after_seconds(in_two_minutes, clock) == 120.0
    assert retry_after_seconds("Fri, 15 Jan 2027 08:00:30 GMT", clock) == 30.0
    assert retry_after_seconds("Thu, 14 Jan 2027 08:00:00 GMT", clock) == 0.0  # in the past: at once


@pytest.mark.parametrize("raw", [None, "", "   ", "soon", "nan", "inf", "Fri, 99 Foo 2027"])
def test_an_unusable_retry_after_is_none(raw):
    assert retry_after_seconds(raw, clock) is None


def test_rate_limit_delay_uses_the_header_within_bounds_or_the_default():
    policy = RetryPolicy(default_retry_after=10.0, max_retry_after=900.0)
    assert policy.rate_limit_delay("7", clock) == 7.0
    assert policy.rate_limit_delay(email.utils.formatdate(NOW + 60, usegmt=True), clock) == 60.0
    assert policy.rate_limit_delay("86400", clock) == 900.0
    assert policy.rate_limit_delay(None, clock) == 10.0
    assert policy.rate_limit_delay("later", clock) == 10.0


def test_backoff_doubles_from_the_base_up_to_the_cap_with_half_of_it_random():
    policy = RetryPolicy(base_delay=1.0, max_delay=30.0)
    for attempt, full in enumerate([1, 2, 4, 8, 16, 30, 30]):
        for _ in range(20):
            assert full / 2 <= policy.backoff(attempt) <= full


def test_retryable_statuses_are_the_5xx():
    assert all(retryable_status(s) for s in (500, 502, 503, 504, 520, 521, 522, 523, 524, 599))
    assert not any(retryable_status(s) for s in (200, 204, 400, 401, 403, 404, 412, 429, 600))


def test_negative_policies_are_refused():
    for bad in ({"retries": -1}, {"rate_limit_retries": -1}, {"base_delay": -1}, {"max_retry_after": -1}):
        with pytest.raises(ValueError):
            RetryPolicy(**bad)


def test_describe_bytes():
    assert describe_bytes(16 * 1024 * 1024) == "16 MiB"
    assert describe_bytes(2048) == "2 KiB"
    assert describe_bytes(1000) == "1000 bytes"


# --- bounded reading ---------------------------------------------------------------------------
class _Gzipped(LoopbackServer):
    """Serves `body` gzip-compressed; records nothing else."""

    def __init__(self, body: bytes) -> None:
        self.body = gzip.compress(body, compresslevel=9)

    def make_app(self) -> tornado.web.Application:
        server = self

        class Handler(tornado.web.RequestHandler):
            def get(self) -> None:
                self.set_header("Content-Encoding", "gzip")
                self.finish(server.body)

        return tornado.web.Application([(r"/", Handler)])


@pytest.mark.gen_test(timeout=30)
async def test_read_bounded_counts_bytes_after_decompression():
    inflated = b"x" * (3 * 1024 * 1024)  # 3 MiB that gzip squeezes to a few KiB
    server = _Gzipped(inflated)
    url = await server.start()
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(url) as response:
                assert int(response.headers["Content-Length"]) < 64 * 1024
                assert await read_bounded(response.content, 3 * 1024 * 1024) == inflated
            async with session.get(url) as response:
                with pytest.raises(AnswerTooLarge) as caught:
                    await read_bounded(response.content, 1024 * 1024)
    finally:
        await server.stop()
    assert caught.value.limit == 1024 * 1024
    assert str(caught.value) == "the answer is larger than 1 MiB after decompression"

"""The HTTP server `serve` runs: how it reads from a socket and times out idle connections
(README "Performance", "Security and reliability").

Tornado's default is to zero a fresh 64 KiB buffer for every read, twice a request, and to set a
timer around every wait for a request's headers. Ours reads 4 KiB at a time (a request's headers
fit in one read, and larger ones still arrive whole) and closes connections idle for 5 minutes
with one sweep (tests/ops/test_connections.py has the rule itself).
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from urllib.parse import urlsplit

import pytest
import tornado.iostream
import tornado.web

from services.config import Config
from tests.helpers.serving import serving

READ_BYTES = 4 * 1024  # README "Performance"
IDLE_SECONDS = 300  # README "Security and reliability"
SWEEP_SECONDS = 10


async def raw_get(port: int, path: str, extra_headers: str = "") -> tuple[int, bytes]:
    """A GET over a plain asyncio connection (not a Tornado stream: only the server's reads are
    Tornado's). Returns the status and the raw head of the answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n{extra_headers}\r\n".encode())
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        return int(head.split(b" ", 2)[1]), head
    finally:
        writer.close()


@pytest.fixture
def server_reads(monkeypatch) -> list[int]:
    """The size of every buffer a Tornado stream reads a socket into, while the test runs."""
    sizes: list[int] = []
    original = tornado.iostream.IOStream.read_from_fd

    def recording(self, buf):
        sizes.append(len(buf))
        return original(self, buf)

    monkeypatch.setattr(tornado.iostream.IOStream, "read_from_fd", recording)
    return sizes


@pytest.mark.gen_test
async def test_the_server_reads_a_request_into_4_kib(data_dir, server_reads):
    config = replace(Config(), data_dir=data_dir, timezone="UTC")
    async with serving(config) as url:
        status, _ = await raw_get(urlsplit(url).port, "/api/trakt/user/stats")
    assert status == 200
    assert server_reads and set(server_reads) == {READ_BYTES}, server_reads


@pytest.mark.gen_test
async def test_headers_larger_than_one_read_are_answered(data_dir, server_reads):
    """Cookies of other apps on the same host name, a proxy's long headers: 20 KB of headers
    take several reads and get the same answer as a short request."""
    config = replace(Config(), data_dir=data_dir, timezone="UTC")
    filler = "".join(f"X-Filler-{n}: {'a' * 1000}\r\n" for n in range(20))
    async with serving(config) as url:
        port = urlsplit(url).port
        short_status, short_head = await raw_get(port, "/api/trakt/user/stats")
        long_status, long_head = await raw_get(port, "/api/trakt/user/stats", filler)
    assert short_status == long_status == 200
    etag = [line for line in short_head.split(b"\r\n") if line.lower().startswith(b"etag:")]
    assert etag and etag[0] in long_head.split(b"\r\n")
    assert len(server_reads) >= 2 + 20_000 // READ_BYTES


def test_serve_closes_connections_idle_for_five_minutes(data_dir):
    from server import make_http_server

    server = make_http_server(tornado.web.Application(), replace(Config(), data_dir=data_dir))
    assert (server.idle_seconds, server.sweep_seconds) == (IDLE_SECONDS, SWEEP_SECONDS)
    assert server.conn_params.header_timeout is None  # the sweep, not Tornado's per-request timer


@pytest.mark.gen_test
async def test_the_server_sets_no_timer_per_request(data_dir, timeouts_set):
    config = replace(Config(), data_dir=data_dir, timezone="UTC")
    async with serving(config) as url:
        reader, writer = await asyncio.open_connection("127.0.0.1", urlsplit(url).port)
        for _ in range(10):
            writer.write(b"HEAD /api/trakt/user/stats HTTP/1.1\r\nHost: localhost\r\n\r\n")
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            assert head.startswith(b"HTTP/1.1 200")
        writer.close()
    assert timeouts_set == []

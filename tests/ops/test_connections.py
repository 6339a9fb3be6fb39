"""Idle connections are closed by the server's sweep, not by a timer per request.

A small Tornado application in our HTTPServer with an idle limit of a fraction of a second;
clients are plain asyncio connections, so every timer and read on the Tornado side is the server's.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import pytest
import tornado.web
import tornado.websocket
from tornado.testing import bind_unused_port

from services.ops.connections import HTTPServer

IDLE = 0.4
SWEEP = 0.05
GONE_WITHIN = 5.0  # generous: only "closed at all, and not before IDLE" is asserted


class Quick(tornado.web.RequestHandler):
    def get(self) -> None:
        self.finish(b"quick")


class Slow(tornado.web.RequestHandler):
    async def get(self) -> None:
        await asyncio.sleep(3 * IDLE)  # busy, not idle: the sweep must leave it alone
        self.finish(b"slow")


class Echo(tornado.websocket.WebSocketHandler):
    def on_message(self, message) -> None:
        self.write_message(message)


@contextlib.asynccontextmanager
async def running() -> AsyncIterator[HTTPServer]:
    """The application in our HTTPServer on a loopback port (as `server.port`)."""
    app = tornado.web.Application([("/", Quick), ("/slow", Slow), ("/ws", Echo)])
    http_server = HTTPServer(app, idle_seconds=IDLE, sweep_seconds=SWEEP)
    sock, port = bind_unused_port()
    http_server.add_sockets([sock])
    http_server.port = port
    try:
        yield http_server
    finally:
        http_server.stop()
        await http_server.close_all_connections()


async def connect(server: HTTPServer) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", server.port)


async def request(reader, writer, path: str = "/") -> bytes:
    writer.write(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), GONE_WITHIN)
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
    return await asyncio.wait_for(reader.readexactly(length), GONE_WITHIN)


async def closed_after(reader) -> float:
    """Seconds until the server closes the connection (reads return end of stream)."""
    started = time.monotonic()
    while await asyncio.wait_for(reader.read(1024), GONE_WITHIN):
        pass
    return time.monotonic() - started


@pytest.mark.gen_test(timeout=20)
async def test_a_connection_that_sends_nothing_is_closed_once_idle():
    async with running() as server:
        reader, writer = await connect(server)
        waited = await closed_after(reader)
        assert IDLE <= waited < GONE_WITHIN
        writer.close()


@pytest.mark.gen_test(timeout=20)
async def test_a_keep_alive_connection_in_use_stays_open_then_closes_when_idle():
    async with running() as server:
        reader, writer = await connect(server)
        started = time.monotonic()
        answers = []
        while time.monotonic() - started < 3 * IDLE:  # in use for longer than the idle limit
            await asyncio.sleep(IDLE / 4)
            answers.append(await request(reader, writer))
        assert set(answers) == {b"quick"} and len(answers) >= 8
        waited = await closed_after(reader)
        # counted from the last answer (the server's wait began just before the client read it)
        assert IDLE * 0.9 <= waited < GONE_WITHIN
        writer.close()


@pytest.mark.gen_test(timeout=20)
async def test_a_request_being_handled_is_not_idle():
    async with running() as server:
        reader, writer = await connect(server)
        assert await request(reader, writer, "/slow") == b"slow"  # handled for 3x the idle limit
        assert await request(reader, writer) == b"quick"  # and the connection still serves
        writer.close()


@pytest.mark.gen_test(timeout=20)
async def test_headers_trickled_in_do_not_keep_a_connection_open():
    async with running() as server:
        reader, writer = await connect(server)
        writer.write(b"GET / HTTP/1.1\r\nHost: localhost\r\n")
        started = time.monotonic()
        with pytest.raises((ConnectionError, asyncio.IncompleteReadError, BrokenPipeError)):
            while time.monotonic() - started < GONE_WITHIN:
                writer.write(b"X")  # a byte of a header line at a time, never its end
                await writer.drain()
                if reader.at_eof():
                    raise asyncio.IncompleteReadError(b"", None)
                await asyncio.sleep(SWEEP)
        assert IDLE <= time.monotonic() - started < GONE_WITHIN
        writer.close()


@pytest.mark.gen_test(timeout=20)
async def test_a_websocket_is_not_timed_out_by_the_idle_rule():
    async with running() as server:
        socket = await tornado.websocket.websocket_connect(f"ws://127.0.0.1:{server.port}/ws")
        await asyncio.sleep(4 * IDLE)  # silent for longer than the idle limit
        await socket.write_message("still here")
        assert await asyncio.wait_for(socket.read_message(), GONE_WITHIN) == "still here"
        assert server.tracked_connections == 0  # it left the table when it took the connection over
        socket.close()


@pytest.mark.gen_test(timeout=20)
async def test_closed_connections_leave_the_table():
    async with running() as server:
        clients = [await connect(server) for _ in range(5)]
        for reader, writer in clients:
            assert await request(reader, writer) == b"quick"
        assert server.tracked_connections == 5
        for _, writer in clients:
            writer.close()
        deadline = time.monotonic() + GONE_WITHIN
        while server.tracked_connections and time.monotonic() < deadline:
            await asyncio.sleep(SWEEP)
        assert server.tracked_connections == 0


@pytest.mark.gen_test(timeout=20)
async def test_requests_set_no_timer(timeouts_set):
    """Tornado's own server wraps each wait for headers in gen.with_timeout; ours never calls it."""
    async with running() as server:
        reader, writer = await connect(server)
        for _ in range(20):
            assert await request(reader, writer) == b"quick"
        writer.close()
    assert timeouts_set == []


@pytest.mark.gen_test(timeout=20)
async def test_the_sweeper_stops_with_the_server():
    async with running() as server:
        reader, writer = await connect(server)
        assert await request(reader, writer) == b"quick"
        assert server.sweeping
        server.stop()
        assert not server.sweeping
        writer.close()

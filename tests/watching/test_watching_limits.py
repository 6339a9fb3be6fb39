"""What one /ws/watching client may cost, with the numbers README "Now watching and the WebSocket
protocol" states: 4 KiB per message, 20 messages per 10 s, 256 KiB queued, a protocol ping every
25 s (unanswered 25 s later: disconnected), and at most WATCHING_MAX_CLIENTS connections.

The real app with no Trakt key (nothing plays, so the server sends nothing unasked).
"""

from __future__ import annotations

import asyncio
import json
import resource
import time
from dataclasses import replace

import pytest
import tornado.websocket

from handlers.watching import tcp_stream
from tests.helpers.websockets import (PING, connect, masked_frame, raw_websocket, read_until_closed, receive,
                                      send_ignoring_reset)

KIB = 1024


@pytest.fixture
def app(request, config, services):
    """The server's app; `@pytest.mark.parametrize("app", [{setting: value}], indirect=True)`
    overrides Tornado settings."""
    from server import make_app

    return make_app(config, services, **getattr(request, "param", {}))


@pytest.fixture
def config(request, config):
    """`@pytest.mark.parametrize("config", [{...}], indirect=True)` overrides fields."""
    return replace(config, **getattr(request, "param", {}))


async def wait_until(predicate, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


async def welcomed(base_url: str):
    """A client that has received the state the server sends on connect."""
    conn = await connect(base_url)
    assert (await receive(conn))["type"] == "watching"
    return conn


def ping_of_size(size: int) -> str:
    """A `{"type": "ping"}` message padded to exactly `size` bytes."""
    head, tail = '{"type": "ping", "padding": "', '"}'
    text = head + "x" * (size - len(head) - len(tail)) + tail
    assert len(text.encode()) == size
    return text


def tick_of_size(size: int) -> dict:
    """A message whose compact JSON is exactly `size` bytes."""
    empty = len(json.dumps({"type": "tick", "data": ""}, separators=(",", ":")))
    return {"type": "tick", "data": "x" * (size - empty)}


# --- incoming: 4 KiB per message, 20 messages per 10 s ----------------------------------------------
@pytest.mark.gen_test(timeout=20)
async def test_a_client_message_of_4_kib_is_read_and_one_byte_more_closes_with_1009(http_server, base_url):
    conn = await welcomed(base_url)
    await conn.write_message(ping_of_size(4 * KIB))
    assert await receive(conn) == {"type": "pong"}
    await conn.write_message(ping_of_size(4 * KIB + 1))
    assert await receive(conn) is None
    assert conn.close_code == 1009


@pytest.mark.gen_test(timeout=20)
async def test_the_21st_message_within_10_s_closes_the_client_with_1008(http_server, base_url, services):
    conn = await welcomed(base_url)
    for _ in range(20):
        await conn.write_message('{"type": "ping"}')
        assert await receive(conn) == {"type": "pong"}
    await conn.write_message('{"type": "ping"}')
    assert await receive(conn) is None
    assert (conn.close_code, conn.close_reason) == (1008, "too many messages")
    assert services.watcher.clients == 0 and services.watcher.clients_dropped == 1


@pytest.mark.gen_test(timeout=60)
async def test_twenty_clients_flooding_protocol_pings_unread_are_dropped_and_rest_answers(
        http_server, http_client, http_port, base_url, services):
    # Before the budget, twenty such clients took REST to ~300 ms and the server to 217 MB for seconds.
    watcher = services.watcher
    reader = await welcomed(base_url)
    flooders = [await asyncio.to_thread(raw_websocket, http_port) for _ in range(20)]
    await wait_until(lambda: watcher.clients == 21, what="21 subscribers")
    flood = masked_frame(b"p" * 125, PING) * 20000  # 2.6 MB of pings each, pongs never read
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    await asyncio.gather(*(asyncio.to_thread(send_ignoring_reset, sock, flood) for sock in flooders))
    await wait_until(lambda: watcher.clients == 1, what="every flooder to be dropped")
    for sock in flooders:  # each connection is closed, not left waiting for a closing handshake
        await asyncio.to_thread(read_until_closed, sock)
        sock.close()
    response = await http_client.fetch(base_url + "/api/watching")
    assert response.code == 200 and json.loads(response.body) == {"isWatching": False}
    await reader.write_message('{"type": "ping"}')
    assert await receive(reader) == {"type": "pong"}
    assert watcher.clients_dropped == 20
    # Peak RSS of this process (server and clients): each flooder could queue at most a few pongs.
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before < 50 * KIB  # KiB: 50 MB
    reader.close()


# --- outgoing: 256 KiB queued -----------------------------------------------------------------------
@pytest.mark.gen_test(timeout=30)
async def test_256_kib_may_be_queued_for_a_client_and_one_byte_more_drops_it(http_server, base_url, services):
    watcher = services.watcher
    conn = await welcomed(base_url)
    await asyncio.sleep(0.1)  # the welcome has left the server: nothing is queued for this client
    assert watcher.broadcast(tick_of_size(256 * KIB)) == 1
    raw = await asyncio.wait_for(conn.read_message(), 10)
    assert len(raw.encode()) == 256 * KIB  # this test's idea of the message size is the server's
    await asyncio.sleep(0.1)
    assert watcher.broadcast(tick_of_size(256 * KIB + 1)) == 0
    assert await receive(conn) is None
    assert (conn.close_code, conn.close_reason) == (1008, "too far behind")
    assert watcher.clients == 0 and watcher.clients_dropped == 1


@pytest.mark.gen_test(timeout=60)
async def test_a_client_that_stops_reading_is_dropped_once_its_queue_is_full(http_server, http_port, base_url,
                                                                            services):
    watcher = services.watcher
    reader = await welcomed(base_url)
    silent = await asyncio.to_thread(raw_websocket, http_port)
    await wait_until(lambda: watcher.clients == 2, what="two subscribers")
    message = tick_of_size(32 * KIB)
    sent = 0
    while watcher.clients == 2:
        assert sent < 1000, "the silent client was never dropped (32 MB sent)"
        assert watcher.broadcast(message) >= 1
        sent += 1
        assert len(await asyncio.wait_for(reader.read_message(), 10)) == 32 * KIB  # the reader keeps up
    # At least 256 KiB were queued before the drop, whatever the kernel buffers took first.
    assert sent * 32 > 256
    assert watcher.clients_dropped == 1
    await asyncio.to_thread(read_until_closed, silent)
    silent.close()
    reader.close()


# --- protocol pings ---------------------------------------------------------------------------------
def test_the_server_pings_every_25_s_and_closes_a_client_that_has_not_answered_25_s_later(app):
    assert app.settings["websocket_ping_interval"] == 25
    assert app.settings["websocket_ping_timeout"] == 25


@pytest.mark.parametrize("app", [{"websocket_ping_interval": 1.0, "websocket_ping_timeout": 1.0}], indirect=True)
@pytest.mark.gen_test(timeout=30)
async def test_a_client_that_never_answers_pings_is_disconnected(app, http_server, http_port, base_url, services):
    # Whatever the kernel's buffers would absorb: a client that reads nothing answers no ping.
    reader = await welcomed(base_url)  # Tornado's client answers pings by itself
    silent = await asyncio.to_thread(raw_websocket, http_port)
    await wait_until(lambda: services.watcher.clients == 2, what="two subscribers")
    await wait_until(lambda: services.watcher.clients == 1, what="the silent client to be dropped")
    await asyncio.to_thread(read_until_closed, silent)
    silent.close()
    await reader.write_message('{"type": "ping"}')
    assert await receive(reader) == {"type": "pong"}
    reader.close()


# --- WATCHING_MAX_CLIENTS -----------------------------------------------------------------------------
@pytest.mark.parametrize("config", [{"watching_max_clients": 3}], indirect=True)
@pytest.mark.gen_test(timeout=20)
async def test_beyond_watching_max_clients_a_client_is_closed_with_1013_and_may_retry(config, http_server, base_url,
                                                                                     services):
    clients = [await welcomed(base_url) for _ in range(3)]
    late = await connect(base_url)
    assert await receive(late) is None
    assert (late.close_code, late.close_reason) == (1013, "too many clients, try again later")
    assert services.watcher.clients == 3 and services.watcher.clients_refused == 1
    clients.pop().close()
    await wait_until(lambda: services.watcher.clients == 2, what="a client to leave")
    clients.append(await welcomed(base_url))  # there is room again
    assert services.watcher.clients == 3
    for conn in clients:
        conn.close()


def test_watching_max_clients_defaults_to_500(tmp_path):
    from services.config import ConfigError, load_config

    env_file = tmp_path / ".env"
    env_file.write_text("")
    assert load_config(environ={}, env_file=env_file).watching_max_clients == 500
    assert load_config(environ={"WATCHING_MAX_CLIENTS": "20"}, env_file=env_file).watching_max_clients == 20
    with pytest.raises(ConfigError, match="WATCHING_MAX_CLIENTS"):
        load_config(environ={"WATCHING_MAX_CLIENTS": "0"}, env_file=env_file)


# --- the one Tornado internal we use --------------------------------------------------------------
@pytest.mark.gen_test(timeout=20)
async def test_the_tcp_stream_under_a_websocket_is_reachable(http_server, base_url, services):
    """handlers/watching.py reaches `WebSocketProtocol.stream`, which Tornado does not document,
    to size the send buffer and to drop a client at once. If a Tornado release removes it, this
    fails first (and every WebSocket test after it)."""
    conn = await welcomed(base_url)
    [handler] = list(services.watcher._subscribers)
    stream = tcp_stream(handler)
    assert not stream.closed() and stream.socket.fileno() >= 0
    assert isinstance(handler, tornado.websocket.WebSocketHandler)
    conn.close()

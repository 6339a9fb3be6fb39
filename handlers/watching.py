"""GET /api/watching and the WebSocket /ws/watching (README "API", README "Now watching and the WebSocket protocol").

Both only read the Watcher's state: no request ever causes a Trakt call.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections import deque
from typing import Any

import tornado.iostream
import tornado.websocket
import ujson

from handlers.base import ApiHandler
from services.config import Config
from services.watching.watcher import PONG, Outgoing, Watcher

MAX_CLIENT_MESSAGE_BYTES = 4096  # clients only ever send `{"type": "ping"}`
# What one client may send: 20 messages (protocol pings and pongs included) per 10 s. The
# dashboard sends one ping every 20 s; a client over the budget is disconnected at once.
CLIENT_MESSAGES_PER_WINDOW = 20
CLIENT_MESSAGE_WINDOW_SECONDS = 10.0
SHUTDOWN = (1001, "server shutting down")
FULL = (1013, "too many clients, try again later")  # WATCHING_MAX_CLIENTS are connected
TOO_MANY_MESSAGES = (1008, "too many messages")
TOO_FAR_BEHIND = (1008, "too far behind")


class WatchingHandler(ApiHandler):
    """GET /api/watching: what is playing now, from the Watcher's current state."""

    def initialize(self, config: Config, watcher: Watcher, **kwargs: Any) -> None:
        super().initialize(config, **kwargs)
        self.watcher = watcher

    def get(self) -> None:
        # Progress changes every second: a cache must ask again (the ETag still gives 304s).
        self.set_header("Cache-Control", "no-cache")
        self.write_json(self.watcher.state())


class WatchingSocket(tornado.websocket.WebSocketHandler):
    """WS /ws/watching: the current state on connect, then the Watcher's pushes; ping → pong.

    What one client may cost is bounded (README "Now watching and the WebSocket protocol"):
    4 KiB per message it sends, CLIENT_MESSAGES_PER_WINDOW messages per window, and the
    Watcher's `client_buffer_limit` of bytes queued for it; beyond either budget it is
    disconnected at once. A client that stops reading altogether stops answering protocol pings
    and Tornado closes it after the ping timeout, whatever the kernel's buffers hold."""

    def initialize(self, config: Config, watcher: Watcher, **_: Any) -> None:
        self.config = config
        self.watcher = watcher
        # Futures of the messages handed to Tornado that have not reached the kernel yet, with
        # their sizes: they resolve in order, so the sum is what this client owes.
        self.queued: deque[tuple[Any, int]] = deque()
        self.queued_bytes = 0
        self.window_started = time.monotonic()
        self.window_messages = 0
        self.dropped = False

    @property
    def max_message_size(self) -> int:
        return MAX_CLIENT_MESSAGE_BYTES

    def get_compression_options(self) -> None:
        return None  # no permessage-deflate: every client is sent the same bytes

    def check_origin(self, origin: str) -> bool:
        """Called only for cross-origin requests (same host is accepted by Tornado before):
        allowed when listed in ALLOWED_ORIGINS, or when that list holds "*"."""
        allowed = self.config.allowed_origins
        if "*" in allowed:
            return True
        wanted = origin.strip().rstrip("/").lower()
        return any(wanted == entry.lower() for entry in allowed)

    def open(self) -> None:
        self.set_nodelay(True)  # ticks are tiny; don't let Nagle hold them back
        if self.watcher.client_socket_buffer:
            # A fixed kernel send buffer (instead of Linux's autotuning up to megabytes) bounds
            # what a client that stops reading holds in the kernel; our messages are small.
            with contextlib.suppress(OSError):
                tcp_stream(self).socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF,
                                                   self.watcher.client_socket_buffer)
        if not self.watcher.subscribe(self):
            if self.watcher.closed:
                self.close(*SHUTDOWN)
            else:
                self.disconnect(FULL)  # its descriptor is free at once, whether it answers or not

    def on_message(self, message: str | bytes) -> None:
        if not self.within_budget() or isinstance(message, bytes):
            return  # binary frames mean nothing here
        try:
            request = ujson.loads(message)
        except ValueError:
            return
        if isinstance(request, dict) and request.get("type") == "ping":
            if not self.send(PONG):
                self.watcher.drop(self)

    def on_ping(self, data: bytes) -> None:
        self.within_budget()  # Tornado has already answered it

    def on_pong(self, data: bytes) -> None:
        self.within_budget()

    def on_close(self) -> None:
        self.watcher.unsubscribe(self)
        for future, _ in self.queued:  # failed with the connection: nobody else will look
            future.add_done_callback(_consume_result)
        self.queued.clear()

    def within_budget(self) -> bool:
        """Count one message from the client; over the budget it is disconnected (False)."""
        if self.dropped:
            return False
        now = time.monotonic()
        if now - self.window_started >= CLIENT_MESSAGE_WINDOW_SECONDS:
            self.window_started, self.window_messages = now, 0
        self.window_messages += 1
        if self.window_messages > CLIENT_MESSAGES_PER_WINDOW:
            self.watcher.drop(self)
            self.disconnect(TOO_MANY_MESSAGES)
            return False
        return True

    def disconnect(self, why: tuple[int, str]) -> None:
        """Queue a close frame saying why and close the TCP connection at once, without the
        closing handshake: this client has already cost what it may (or may not start)."""
        self.dropped = True
        if self.ws_connection is None:
            return
        stream = tcp_stream(self)
        self.close(*why)
        stream.close()

    # --- the Watcher's Subscriber interface -----------------------------------------------
    def send(self, message: Outgoing) -> bool:
        """Queue the message's bytes on this socket without waiting for them to be sent; False
        when the connection is gone or would owe more than the Watcher's `client_buffer_limit`
        (it is then disconnected: a client that stops reading never costs the others)."""
        if self.dropped or self.ws_connection is None or self.ws_connection.is_closing():
            return False
        queued = self.queued
        while queued and queued[0][0].done():
            self.queued_bytes -= queued.popleft()[1]
        size = len(message.payload)
        if self.queued_bytes + size > self.watcher.client_buffer_limit:
            self.disconnect(TOO_FAR_BEHIND)
            return False
        try:
            future = self.write_message(message.payload)
        except tornado.websocket.WebSocketClosedError:
            return False
        queued.append((future, size))
        self.queued_bytes += size
        return True

    def shutdown(self) -> None:
        """Close with 1001 because the server is stopping."""
        if self.ws_connection is not None:
            self.close(*SHUTDOWN)


def tcp_stream(handler: tornado.websocket.WebSocketHandler) -> tornado.iostream.IOStream:
    """The TCP stream under an open WebSocket, for the two things Tornado's public API cannot do:
    set the socket's send buffer, and drop a connection without the closing handshake.

    `WebSocketProtocol.stream` is not documented: this is the one place that uses it, Tornado is
    pinned below 7 in setup.py, and tests/watching/test_watching.py fails loudly if it goes away."""
    stream = getattr(handler.ws_connection, "stream", None)
    if not isinstance(stream, tornado.iostream.IOStream):
        raise RuntimeError(f"Tornado {tornado.version}: a WebSocket connection has no IOStream `stream`; "
                           "handlers/watching.py needs another way to reach the socket")
    return stream


def _consume_result(future: Any) -> None:
    """Mark a failed write's error as seen (asyncio would log "exception was never retrieved")."""
    if not future.cancelled():
        future.exception()

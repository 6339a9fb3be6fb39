"""GET /api/watching and the WebSocket /ws/watching (README "API", README "Now watching and the WebSocket protocol").

Both only read the Watcher's state: no request ever causes a Trakt call.
"""

from __future__ import annotations

import contextlib
import socket
from typing import Any

import tornado.iostream
import tornado.websocket
import ujson

from handlers.base import ApiHandler
from services.config import Config
from services.watching.watcher import PONG, Outgoing, Watcher

MAX_CLIENT_MESSAGE_BYTES = 4096  # clients only ever send `{"type": "ping"}`
SHUTDOWN_CODE = 1001
SHUTDOWN_REASON = "server shutting down"


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
    """WS /ws/watching: the current state on connect, then the Watcher's pushes; ping → pong."""

    def initialize(self, config: Config, watcher: Watcher, **_: Any) -> None:
        self.config = config
        self.watcher = watcher

    @property
    def max_message_size(self) -> int:
        return MAX_CLIENT_MESSAGE_BYTES

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
        stream = self.ws_connection.stream if self.ws_connection else None
        if stream is not None and self.watcher.client_socket_buffer:
            # A fixed kernel send buffer (instead of Linux's autotuning up to megabytes) bounds
            # what a client that stops reading can hold; our messages are a few hundred bytes.
            with contextlib.suppress(OSError):
                stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.watcher.client_socket_buffer)
        if not self.watcher.subscribe(self):
            self.close(SHUTDOWN_CODE, SHUTDOWN_REASON)

    def on_message(self, message: str | bytes) -> None:
        if isinstance(message, bytes):
            return  # binary frames mean nothing here
        try:
            request = ujson.loads(message)
        except ValueError:
            return
        if isinstance(request, dict) and request.get("type") == "ping":
            if not self.send(PONG):
                self.watcher.drop(self)

    def on_close(self) -> None:
        self.watcher.unsubscribe(self)

    # --- the Watcher's Subscriber interface -----------------------------------------------
    def send(self, message: Outgoing) -> bool:
        """Queue the pre-built frame on this socket without waiting for it to be sent.

        A client whose unsent bytes exceed the Watcher's limit has stopped reading: its
        connection is aborted so it never costs the others anything. Returns False when the
        connection is gone."""
        connection = self.ws_connection
        if connection is None or connection.is_closing() or connection.stream is None:
            return False
        stream = connection.stream
        frame = message.frame  # unmasked and uncompressed (no extension is negotiated)
        if stream.writing():
            # A backlog: queue behind it. `_write_buffer` holds what the kernel has not taken.
            if len(stream._write_buffer) + len(frame) > self.watcher.client_buffer_limit:
                stream.close()  # abort: a close frame would only queue behind the backlog
                return False
        elif type(stream) is tornado.iostream.IOStream:
            # Nothing queued on a plain TCP stream: hand the frame to the kernel directly. This
            # skips IOStream's per-write Future, which is most of the cost of a broadcast to
            # thousands of sockets; only what the kernel does not take goes through IOStream.
            try:
                sent = stream.socket.send(frame)
            except BlockingIOError:
                sent = 0
            except OSError:
                stream.close()  # reset by the peer; on_close unsubscribes
                return False
            if sent == len(frame):
                return True
            frame = frame[sent:]
        try:
            stream.write(frame)
        except tornado.iostream.StreamClosedError:
            return False
        return True

    def shutdown(self) -> None:
        """Close with 1001 because the server is stopping."""
        if self.ws_connection is not None:
            self.close(SHUTDOWN_CODE, SHUTDOWN_REASON)

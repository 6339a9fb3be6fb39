"""The HTTP server `serve` runs: idle connections closed by one sweep, not a timer per request.

Tornado's HTTPServer guards every wait for a request's headers with `gen.with_timeout` (its
`idle_connection_timeout`, an hour unless set): a timer made, chained to the read and cancelled
for each request, about 10 µs of a 230 µs cached answer on the bench's VM (README
"Performance"). This server waits without one. It notes when each connection starts waiting for
its next request, and every `sweep_seconds` closes those that have waited (or sat in the middle
of a request's headers or body) for more than `idle_seconds`. A connection whose request is
being handled or whose answer is being written is never idle; a WebSocket leaves the table when
it takes its connection over, and keeps itself alive with its own pings.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import tornado.httpserver
from tornado.httputil import HTTPConnection, HTTPMessageDelegate
from tornado.ioloop import PeriodicCallback
from tornado.iostream import IOStream

log = logging.getLogger("trakt_watch.connections")

# README "Security and reliability": a keep-alive connection may wait this long for its next
# request (nginx keeps 75 s, Tornado an hour); a client trickling headers gets no longer either.
IDLE_SECONDS = 300.0
SWEEP_SECONDS = 10.0  # a connection is closed at most this long after it became idle


class HTTPServer(tornado.httpserver.HTTPServer):
    """`tornado.httpserver.HTTPServer` with the idle rule above in place of its header timeout."""

    def initialize(self, *args: Any, idle_seconds: float = IDLE_SECONDS, sweep_seconds: float = SWEEP_SECONDS,
                   **kwargs: Any) -> None:
        super().initialize(*args, **kwargs)
        self.conn_params.header_timeout = None  # no timer per request: the sweep closes idle connections
        self.idle_seconds = idle_seconds
        self.sweep_seconds = sweep_seconds
        # stream -> time.monotonic() when it started waiting for its latest request
        self._waiting_since: dict[IOStream, float] = {}
        self._sweeper = PeriodicCallback(self.close_idle_connections, sweep_seconds * 1000)

    @property
    def tracked_connections(self) -> int:
        """How many connections the idle rule watches (those open and not taken over)."""
        return len(self._waiting_since)

    @property
    def sweeping(self) -> bool:
        """Whether the sweep runs: from the first connection until stop() or close_all_connections()."""
        return self._sweeper.is_running()

    def handle_stream(self, stream: IOStream, address: tuple) -> None:
        if not self._sweeper.is_running():
            self._sweeper.start()  # here: it needs the running loop, which initialize() may not have
        super().handle_stream(stream, address)

    def start_request(self, server_conn: object, request_conn: HTTPConnection) -> HTTPMessageDelegate:
        # Called when a connection starts reading a request: at connect and after each answer.
        self._waiting_since[request_conn.stream] = time.monotonic()  # type: ignore[attr-defined]
        return super().start_request(server_conn, request_conn)

    def on_close(self, server_conn: object) -> None:
        # Closed, or taken over by a WebSocket (detached): no longer this server's to time out.
        self._waiting_since.pop(server_conn.stream, None)  # type: ignore[attr-defined]
        super().on_close(server_conn)

    def close_idle_connections(self) -> None:
        """Close every connection waiting on its client for more than `idle_seconds`."""
        cutoff = time.monotonic() - self.idle_seconds
        closed = 0
        for stream, since in list(self._waiting_since.items()):
            # reading(): waiting for a request or in the middle of one; a handler at work, or an
            # answer still being written, reads nothing.
            if since < cutoff and stream.reading() and not stream.writing():
                stream.close()  # the connection's loop ends as on a client's close (on_close)
                closed += 1
        if closed:
            log.debug("Closed %d connection(s) idle for over %.0f s", closed, self.idle_seconds)

    def stop(self) -> None:
        self._sweeper.stop()
        super().stop()

    async def close_all_connections(self) -> None:
        self._sweeper.stop()
        await super().close_all_connections()

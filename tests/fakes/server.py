"""What every fake upstream shares: a real HTTP server on 127.0.0.1, on the test's event loop
or on its own loop in a thread (for tests that run the CLI in a subprocess)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any, Iterator

import tornado.httpserver
import tornado.netutil
import tornado.web


class LoopbackServer:
    """Subclasses build their `tornado.web.Application` in `make_app()`."""

    name = "fake upstream"
    base_url: str = ""
    _server: tornado.httpserver.HTTPServer | None = None

    def make_app(self) -> tornado.web.Application:
        raise NotImplementedError

    def thread_value(self) -> Any:
        """What `with running_in_thread() as value` gives: the fake itself unless overridden."""
        return self

    async def start(self) -> str:
        """Listen on a random loopback port of the running loop; returns the base URL."""
        sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
        self._server = tornado.httpserver.HTTPServer(self.make_app())
        self._server.add_sockets(sockets)
        self.base_url = f"http://127.0.0.1:{sockets[0].getsockname()[1]}"
        return self.base_url

    async def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            await self._server.close_all_connections()
            self._server = None

    @contextlib.contextmanager
    def running_in_thread(self) -> Iterator[Any]:
        """Serve from a daemon thread with its own event loop for the block's duration."""
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.start())
            except OSError as exc:  # e.g. no free port; reported to the caller below
                failure.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self.stop())
            loop.close()

        thread = threading.Thread(target=run, name=self.name, daemon=True)
        thread.start()
        if not ready.wait(10):
            raise RuntimeError(f"{self.name} did not start within 10 s")
        if failure:
            raise failure[0]
        try:
            yield self.thread_value()
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)

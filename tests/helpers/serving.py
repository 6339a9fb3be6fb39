"""The real application for a given Config, served in the test's own event loop."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port

from services.config import Config


@contextlib.asynccontextmanager
async def serving(config: Config) -> AsyncIterator[str]:
    """Build and start the services for `config`, serve `make_app` on a loopback port (with the
    proxy headers honoured when `config.trust_proxy`); yields the base URL."""
    from server import build_services, make_app

    services = build_services(config)
    await services.start()
    sock, port = bind_unused_port()
    server = HTTPServer(make_app(config, services), xheaders=config.trust_proxy)
    server.add_sockets([sock])
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
        await services.stop()

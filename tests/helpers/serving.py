"""The real application for a given Config, served in the test's own event loop."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from tornado.httpclient import HTTPClientError
from tornado.testing import bind_unused_port

from services.config import Config


@contextlib.asynccontextmanager
async def serving(config: Config) -> AsyncIterator[str]:
    """Build and start the services for `config` and serve `make_app` on a loopback port in the
    HTTP server `serve` runs (make_http_server); yields the base URL."""
    from server import build_services, make_app, make_http_server

    services = build_services(config)
    await services.start()
    sock, port = bind_unused_port()
    server = make_http_server(make_app(config, services), config)
    server.add_sockets([sock])
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
        await services.stop()


async def get(http_client, base_url: str, path: str, **kwargs):
    """The answer whatever its status: Tornado's client raises on 4xx and 5xx, tests read them."""
    try:
        return await http_client.fetch(base_url + path, **kwargs)
    except HTTPClientError as exc:
        if exc.response is None:
            raise
        return exc.response

"""The real application for a given Config, served in the test's own event loop."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from tornado.httpclient import HTTPClientError
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


async def get(http_client, base_url: str, path: str, **kwargs):
    """The answer whatever its status: Tornado's client raises on 4xx and 5xx, tests read them."""
    try:
        return await http_client.fetch(base_url + path, **kwargs)
    except HTTPClientError as exc:
        if exc.response is None:
            raise
        return exc.response

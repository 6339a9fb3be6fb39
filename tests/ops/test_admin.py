"""The admin rule of README "Configuration" on POST routes."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPClientError
from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port

from services.config import is_loopback


async def post(http_client, url, headers=None):
    try:
        response = await http_client.fetch(url, method="POST", body=b"", headers=headers or {})
    except HTTPClientError as exc:
        response = exc.response
    return response.code, json.loads(response.body)


@pytest.fixture
def config(data_dir):
    from services.config import Config

    return replace(Config(), data_dir=data_dir, admin_token="s3cret-token", timezone="UTC")


@pytest.mark.gen_test
async def test_token_right_wrong_missing(http_client, base_url):
    url = base_url + "/api/trakt"
    assert await post(http_client, url, {"Authorization": "Bearer s3cret-token"}) == \
        (200, {"message": "Cache cleared successfully"})
    code, document = await post(http_client, url)
    assert code == 401 and "Missing admin token" in document["error"]
    code, document = await post(http_client, url, {"Authorization": "Bearer wrong"})
    assert code == 403 and document["error"] == "Invalid admin token"
    code, document = await post(http_client, url, {"Authorization": "Basic s3cret-token"})
    assert code == 403
    code, document = await post(http_client, url, {"Authorization": "Bearer s3cret-token-and-more"})
    assert code == 403
    # a GET never needs the token
    response = await http_client.fetch(url)
    assert response.code == 200


async def _serve(app, xheaders):
    sock, port = bind_unused_port()
    server = HTTPServer(app, xheaders=xheaders)
    server.add_sockets([sock])
    return server, f"http://127.0.0.1:{port}"


@pytest.mark.parametrize("trust_proxy", [False, True])
@pytest.mark.gen_test
async def test_without_token_only_loopback_clients(data_dir, io_loop, trust_proxy):
    from server import build_services, make_app
    from services.config import Config

    config = replace(Config(), data_dir=data_dir, trust_proxy=trust_proxy)
    services = build_services(config)
    await services.start()
    server, url = await _serve(make_app(config, services), xheaders=config.trust_proxy)
    client = AsyncHTTPClient()
    try:
        # from 127.0.0.1 itself: accepted
        assert (await post(client, url + "/api/trakt"))[0] == 200
        # a client claiming (through proxy headers) to be elsewhere
        for header in ("X-Forwarded-For", "X-Real-Ip"):
            code, document = await post(client, url + "/api/trakt", {header: "203.0.113.9"})
            if trust_proxy:
                assert code == 403 and "from this machine only" in document["error"]
            else:
                assert code == 200  # headers are ignored unless TRUST_PROXY=1: nothing to spoof
        # and a forged loopback claim from outside cannot win when the proxy is trusted either
        if trust_proxy:
            code, _ = await post(client, url + "/api/trakt", {"X-Forwarded-For": "127.0.0.1, 203.0.113.9"})
            assert code == 403
    finally:
        server.stop()
        await services.stop()


def test_loopback_detection():
    assert is_loopback("127.0.0.1") and is_loopback("127.5.6.7") and is_loopback("::1")
    assert is_loopback("::ffff:127.0.0.1")
    assert not is_loopback("192.168.1.2") and not is_loopback("203.0.113.9") and not is_loopback("")
    assert not is_loopback("localhost-ish") and not is_loopback("::2")

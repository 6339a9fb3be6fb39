"""Admin POSTs refuse what a web page in the user's browser can send.

With ADMIN_TOKEN empty, admin POSTs are accepted from loopback clients; a page from another site
open in the browser on that machine is a loopback client too. A browser marks such a request
(`Origin`, `Sec-Fetch-Site`) and can only send it without a CORS preflight when the body is a
form or plain text, so those are refused, while `curl` from the machine (none of these headers,
no body or JSON) and the dashboard itself (same origin) keep working. README "Security and
reliability".
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from tornado.httpclient import AsyncHTTPClient

from tests.helpers.serving import serving

# Each admin route and the service method it would call: a refused request never reaches it.
ADMIN_ROUTES = [
    ("/api/trakt", "store", "reload"),
    ("/api/images/reload-cache", "images", "reload"),
    ("/api/trakt/sync", "sync", "start_now"),
]

CROSS_SITE = [
    {"Origin": "https://evil.example"},
    {"Origin": "null"},  # a sandboxed frame, a file:// page, a redirected form
    {"Origin": "http://localhost.evil.example:1234"},
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site"},  # another port or subdomain of the same site
    {"Content-Type": "application/x-www-form-urlencoded"},
    {"Content-Type": "multipart/form-data; boundary=xyz"},
    {"Content-Type": "text/plain;charset=UTF-8"},
    {"Content-Type": "TEXT/PLAIN"},
]


@pytest.fixture
def calls(services, monkeypatch):
    """Replace each admin route's service method by a recorder that answers like it."""
    made: list[str] = []

    async def reload(*_args, **_kwargs):
        made.append("reload")
        return True

    async def images_reload(*_args, **_kwargs):
        made.append("images")
        return {"moviePosters": 0, "movieBackdrops": 0, "showPosters": 0, "showBackdrops": 0, "seasonPosters": 0}

    def start_now(*_args, **_kwargs):
        made.append("sync")
        return True

    monkeypatch.setattr(services.store, "reload", reload)
    monkeypatch.setattr(services.images, "reload", images_reload)
    monkeypatch.setattr(services.sync, "start_now", start_now)
    return made


async def post(http_client, url, headers=None, body=b""):
    response = await http_client.fetch(url, method="POST", body=body, headers=headers or {}, raise_error=False)
    return response.code, json.loads(response.body)


@pytest.mark.parametrize("path,_service,_method", ADMIN_ROUTES)
@pytest.mark.parametrize("headers", CROSS_SITE, ids=lambda h: ":".join(next(iter(h.items()))))
@pytest.mark.gen_test
async def test_a_cross_site_admin_post_is_403_and_does_nothing(http_client, base_url, calls, path, _service,
                                                               _method, headers):
    body = b""
    if "Content-Type" in headers:
        body = (b'--xyz\r\nContent-Disposition: form-data; name="a"\r\n\r\nb\r\n--xyz--\r\n'
                if "multipart" in headers["Content-Type"] else b"a=b")
    code, document = await post(http_client, base_url + path, headers, body)
    assert code == 403
    assert "another site" in document["error"] or "form" in document["error"]
    assert calls == []


@pytest.mark.parametrize("path,_service,_method", ADMIN_ROUTES)
@pytest.mark.gen_test
async def test_curl_from_this_machine_and_the_dashboard_itself_are_accepted(http_client, base_url, http_port,
                                                                            calls, path, _service, _method):
    accepted = [
        ({}, b""),  # curl -X POST
        ({"Content-Type": "application/json"}, b"{}"),  # curl -H 'Content-Type: application/json' -d '{}'
        ({"Origin": f"http://localhost:{http_port}", "Sec-Fetch-Site": "same-origin"}, b""),  # the dashboard
        ({"Sec-Fetch-Site": "none"}, b""),  # typed by the user, no page involved
    ]
    for headers, body in accepted:
        code, _ = await post(http_client, base_url + path, headers, body)
        assert code in (200, 202), headers
    assert len(calls) == len(accepted)


@pytest.mark.gen_test
async def test_a_rebinding_host_name_is_refused_without_a_token(http_client, base_url, calls):
    """DNS rebinding: evil.example resolves to 127.0.0.1, so its page is "same origin" with a
    loopback peer; only the Host header tells it apart from this machine's own names."""
    code, document = await post(http_client, base_url + "/api/trakt",
                                {"Host": "evil.example:8888", "Origin": "http://evil.example:8888"})
    assert code == 403 and "Host" in document["error"]
    for host in ("localhost:8888", "127.0.0.1:8888", "[::1]:8888", "app.localhost"):
        assert (await post(http_client, base_url + "/api/trakt", {"Host": host}))[0] == 200, host
    assert calls == ["reload"] * 4


@pytest.mark.gen_test
async def test_with_a_token_a_cross_site_post_is_refused_even_with_the_right_token(data_dir):
    from services.config import Config

    config = replace(Config(), data_dir=data_dir, admin_token="t0ken", timezone="UTC")
    client = AsyncHTTPClient()
    async with serving(config) as url:
        token = {"Authorization": "Bearer t0ken"}
        assert (await post(client, url + "/api/trakt", token))[0] == 200
        code, document = await post(client, url + "/api/trakt", {**token, "Origin": "https://evil.example"})
        assert code == 403 and "another site" in document["error"]
        code, _ = await post(client, url + "/api/trakt", {**token, "Content-Type": "text/plain"}, b"x")
        assert code == 403


@pytest.mark.gen_test
async def test_with_trust_proxy_a_rebinding_host_is_refused_unless_the_proxy_forwarded_it(data_dir):
    from services.config import Config

    config = replace(Config(), data_dir=data_dir, trust_proxy=True, timezone="UTC")
    client = AsyncHTTPClient()
    async with serving(config) as url:
        direct = await post(client, url + "/api/trakt", {"Host": "evil.example"})
        forwarded = await post(client, url + "/api/trakt", {"Host": "tv.example.org", "X-Real-IP": "127.0.0.1"})
    assert direct[0] == 403 and "Host" in direct[1]["error"]
    assert forwarded[0] == 200

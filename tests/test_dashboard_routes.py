"""`GET /`, `/static/*` and the favicon: served with the dashboard's security headers."""

from __future__ import annotations

import pytest
from tornado.httpclient import HTTPClientError


async def fetch(http_client, url, **kwargs):
    try:
        return await http_client.fetch(url, **kwargs)
    except HTTPClientError as exc:
        return exc.response


@pytest.mark.gen_test
async def test_root_serves_the_dashboard_with_csp(http_client, base_url):
    response = await fetch(http_client, base_url + "/")
    assert response.code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert b'type="search"' in response.body and b"/static/favicon.svg" in response.body
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-cache"
    again = await fetch(http_client, base_url + "/", headers={"If-None-Match": response.headers["Etag"]})
    assert again.code == 304


@pytest.mark.gen_test
async def test_static_files_and_favicon(http_client, base_url):
    icon = await fetch(http_client, base_url + "/static/favicon.svg")
    assert icon.code == 200 and icon.headers["Content-Type"] == "image/svg+xml"
    legacy = await fetch(http_client, base_url + "/favicon.ico", follow_redirects=False)
    assert legacy.code == 301 and legacy.headers["Location"] == "/static/favicon.svg"
    css = await fetch(http_client, base_url + "/static/style.css")
    assert css.code == 200 and css.headers["Content-Type"].startswith("text/css")


@pytest.mark.parametrize("path", ["/static/../server.py", "/static/%2e%2e/server.py", "/static/..%2Fsetup.py",
                                  "/static//etc/passwd", "/static/nope.js"])
@pytest.mark.gen_test
async def test_static_never_serves_outside_its_folder(http_client, base_url, path):
    response = await fetch(http_client, base_url + path)
    assert response.code in (403, 404)
    assert b"import" not in response.body and b"root:" not in response.body

"""A request body is refused from its headers, never buffered first.

No route reads a request body (admin POSTs carry none, or a small JSON). README "Security and
reliability": at most 4 KiB on the API and admin routes, 64 KiB for anything else; a
`Content-Length` over the limit is answered 413 before a byte of the body is read.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from tests.helpers.process import serve_process

API_BODY_LIMIT = 4 * 1024  # README "Security and reliability"
HUGE = 95_000_000  # what the adversarial test announced


async def raw_request(port: int, head: str, body: bytes = b"", timeout: float = 10) -> tuple[int, dict, bytes]:
    """Send `head` (request line and headers) and `body`; read until the server closes or answers
    with a Content-Length. Returns status, headers, body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head.encode() + b"\r\n\r\n" + body)
        await writer.drain()
        raw_head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
        lines = raw_head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
        length = int(headers.get("content-length", "0"))
        payload = await asyncio.wait_for(reader.readexactly(length), timeout) if length else b""
        return int(lines[0].split()[1]), headers, payload
    finally:
        writer.close()


def announce(method: str, path: str, length: int, content_type: str = "application/json") -> str:
    return (f"{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {length}")


@pytest.mark.parametrize("method,path", [
    ("POST", "/api/trakt"),                 # admin
    ("POST", "/api/images/reload-cache"),   # admin
    ("POST", "/api/trakt/sync"),            # admin
    ("POST", "/api/trakt/user/stats"),      # no POST at all: 413 before the 405
    ("GET", "/api/trakt"),
    ("POST", "/healthz"),
    ("POST", "/api/nothing-here"),
    ("POST", "/static/style.css"),
    ("POST", "/images/movies/posters/1_poster.jpg"),
])
@pytest.mark.gen_test(timeout=20)
async def test_a_huge_content_length_is_413_before_the_body_is_read(http_server, http_port, method, path):
    started = time.monotonic()
    status, headers, payload = await raw_request(http_port, announce(method, path, HUGE), b"abc")
    assert status == 413
    assert time.monotonic() - started < 5  # answered from the headers: the 95 MB never came
    assert headers["content-type"].startswith(("application/json", "text/plain"))
    if headers["content-type"].startswith("application/json"):
        assert "too large" in json.loads(payload)["error"]


@pytest.mark.gen_test(timeout=20)
async def test_an_admin_post_may_carry_a_small_json_but_not_more(http_server, http_port):
    small = b'{"note": "' + b"x" * 1000 + b'"}'
    status, _, payload = await raw_request(http_port, announce("POST", "/api/trakt", len(small)), small)
    assert (status, json.loads(payload)) == (200, {"message": "Cache cleared successfully"})
    large = b'{"note": "' + b"x" * API_BODY_LIMIT + b'"}'
    status, _, payload = await raw_request(http_port, announce("POST", "/api/trakt", len(large)), large)
    assert status == 413
    assert f"at most {API_BODY_LIMIT} bytes" in json.loads(payload)["error"]
    exactly = b"x" * API_BODY_LIMIT  # the limit itself is allowed
    status, _, _ = await raw_request(http_port, announce("POST", "/api/trakt", API_BODY_LIMIT), exactly)
    assert status == 200


@pytest.mark.gen_test(timeout=20)
async def test_a_chunked_body_over_the_limit_is_cut_off(http_server, http_port):
    chunk = b"x" * 8192
    body = b"%x\r\n%s\r\n" % (len(chunk), chunk) * 4 + b"0\r\n\r\n"
    head = "POST /api/trakt HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked"
    status, _, _ = await raw_request(http_port, head, body)
    assert status in (400, 413)


def vm_peak_kib(pid: int, field: str = "VmHWM") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"{field} not in /proc/{pid}/status")


async def push_a_big_body(port: int, path: str, megabytes: int) -> int | None:
    """Announce 95 MB, push up to `megabytes` of it while reading the answer; the status, or None
    when the server closed the connection before an answer could be read."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(announce("POST", path, HUGE).encode() + b"\r\n\r\n")

    async def pushing() -> None:
        block = b"x" * (1 << 20)
        try:
            for _ in range(megabytes):
                writer.write(block)
                await writer.drain()
        except ConnectionError:
            pass  # refused: the server stopped reading

    pusher = asyncio.create_task(pushing())
    try:
        line = await asyncio.wait_for(reader.readline(), 30)
        return int(line.split()[1]) if line else None
    except ConnectionError:
        return None
    finally:
        pusher.cancel()
        writer.close()


@pytest.mark.gen_test(timeout=90)
async def test_ten_parallel_huge_posts_leave_the_server_process_small(tmp_path):
    """The adversarial test's attack on a real `serve` process: RSS went from 49 MB to 1.3 GB."""
    from tornado.httpclient import AsyncHTTPClient

    with serve_process(tmp_path, {}, ("--demo",)) as server:
        client = AsyncHTTPClient()
        assert (await client.fetch(server.url + "/healthz")).code == 200
        before = vm_peak_kib(server.process.pid)
        paths = ["/api/trakt", "/api/trakt/user/stats", "/api/images/reload-cache", "/api/trakt/sync", "/healthz"]
        statuses = await asyncio.gather(*(push_a_big_body(server.port, paths[i % len(paths)], 20)
                                          for i in range(10)))
        grown_mib = (vm_peak_kib(server.process.pid) - before) / 1024
        health = await client.fetch(server.url + "/healthz", raise_error=False)
        log_size = server.log_path.stat().st_size
    print(f"answers {statuses}, peak RSS grew {grown_mib:.1f} MiB, log {log_size} bytes")
    assert all(status in (413, None) for status in statuses), statuses
    assert statuses.count(413) >= 5  # a reset only when the kernel dropped the answer with the unread body
    assert grown_mib < 40, f"peak RSS grew by {grown_mib:.0f} MiB"
    assert health.code == 200
    assert log_size < 20_000


def test_only_a_request_that_announces_a_body_is_handled_in_streaming_mode(app):
    """Streaming costs every request two more turns of the event loop, so a request without a
    body is handled by its route's class itself; one with a body by the class's streaming twin,
    whose prepare() runs before the body is read (what the 413 tests above rely on)."""
    import tornado.httputil
    import tornado.web

    from handlers.base import streaming_twin
    from handlers.data import FileHandler

    def handler_class(headers: dict) -> type:
        request = tornado.httputil.HTTPServerRequest(
            start_line=tornado.httputil.RequestStartLine("POST", "/api/trakt/user/stats", "HTTP/1.1"),
            headers=tornado.httputil.HTTPHeaders({"Host": "localhost", **headers}), connection=None)
        return app.find_handler(request).handler_class

    plain, with_length, chunked = ({}, {"Content-Length": "0"}, {"Transfer-Encoding": "chunked"})
    assert handler_class(plain) is FileHandler
    assert not getattr(FileHandler, "_stream_request_body", False)
    for headers in (with_length, chunked):
        twin = handler_class(headers)
        assert twin is streaming_twin(FileHandler) and issubclass(twin, FileHandler)
        assert twin._stream_request_body is True
    assert streaming_twin(tornado.web.RedirectHandler) is tornado.web.RedirectHandler  # it has no body rule


@pytest.mark.gen_test(timeout=20)
async def test_a_request_with_a_body_is_counted_under_its_route(http_server, http_port):
    """The streaming twin is named after the route its class serves, in the metrics and the log."""
    body = b'{"note": "reload"}'
    status, _, _ = await raw_request(http_port, announce("POST", "/api/trakt", len(body)), body)
    assert status == 200
    status, _, metrics = await raw_request(http_port, "GET /metrics HTTP/1.1\r\nHost: localhost")
    assert status == 200
    assert 'trakt_watch_http_requests_total{method="POST",route="/api/trakt",status="200"} 1.0' in metrics.decode()

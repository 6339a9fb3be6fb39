"""/healthz, /metrics, dashboard security headers and the admin rule against forged client addresses.

Every test runs the real application (build_services + make_app) on a loopback port — or on a
unix socket, where the client address is not loopback — and talks HTTP to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import socket
import time
from pathlib import Path
from typing import AsyncIterator

import pytest
import tornado.httpclient
from prometheus_client.parser import text_string_to_metric_families
import tornado.netutil
import tornado.websocket
from tornado.httpserver import HTTPServer

from server import build_services, make_app
from services.config import Config
from services.data.snapshots import DataFolder
from services.trakt.report import SyncReport, save_report
from tests.helpers import accounts
from tests.helpers.process import serve_process

ROOT = Path(__file__).resolve().parents[2]


@contextlib.asynccontextmanager
async def running(config: Config, *, xheaders: bool = False) -> AsyncIterator[tuple[str, object]]:
    """The real app on a free loopback port: yields (base_url, services)."""
    services = build_services(config)
    await services.start()
    server = HTTPServer(make_app(config, services), xheaders=xheaders)
    sock, port = _bind()
    server.add_sockets([sock])
    try:
        yield f"http://127.0.0.1:{port}", services
    finally:
        server.stop()
        await services.stop()
        await server.close_all_connections()


def _bind() -> tuple[socket.socket, int]:
    [sock] = tornado.netutil.bind_sockets(0, "127.0.0.1", family=socket.AF_INET)
    return sock, sock.getsockname()[1]


async def fetch(url: str, **kwargs) -> tornado.httpclient.HTTPResponse:
    client = tornado.httpclient.AsyncHTTPClient()
    return await client.fetch(url, raise_error=False, request_timeout=10, **kwargs)


def body(response: tornado.httpclient.HTTPResponse) -> dict:
    return json.loads(response.body)


async def scrape(url: str) -> dict[tuple, float]:
    """GET /metrics parsed by prometheus_client's own parser: {(sample name, (label, value)...): value}.
    A body the parser rejects fails the test here."""
    response = await fetch(url + "/metrics")
    assert response.code == 200
    samples = {}
    for family in text_string_to_metric_families(response.body.decode()):
        for sample in family.samples:
            samples[(sample.name, *sorted(sample.labels.items()))] = sample.value
    return samples


def labels(**pairs: str) -> tuple:
    return tuple(sorted(pairs.items()))


def base_config(tmp_path: Path, **changes) -> Config:
    settings = {"data_dir": tmp_path / "data", "timezone": "UTC", "data_check_seconds": 0.1,
                "sync_interval_hours": 0, **changes}
    return dataclasses.replace(Config(), **settings)


@pytest.fixture
def account(tmp_path) -> Path:
    return accounts.write_account(tmp_path / "data")


# --- /healthz ---------------------------------------------------------------------------------

@pytest.mark.gen_test(timeout=20)
async def test_healthz_ok_on_a_healthy_account(tmp_path, account):
    async with running(base_config(tmp_path)) as (url, _):
        response = await fetch(url + "/healthz")
    assert response.code == 200
    assert response.headers["Cache-Control"] == "no-store"
    health = body(response)
    assert health["status"] == "ok"
    assert health["reasons"] == []
    assert health["demo"] is False
    assert health["data_age_seconds"] > 0  # the account says it was updated on 2026-11-01
    assert health["last_sync"] is None
    assert set(health) == {"status", "data_age_seconds", "last_sync", "watcher", "reasons", "demo", "sign_in"}


@pytest.mark.gen_test(timeout=20)
async def test_healthz_degraded_by_a_malformed_file_which_alone_fails(tmp_path, account):
    (account / "user/stats/overview.json").write_text('{"metadata": {"endpoint": ')
    async with running(base_config(tmp_path)) as (url, _):
        health = await fetch(url + "/healthz")
        stats = await fetch(url + "/api/trakt/user/stats")
        profile = await fetch(url + "/api/trakt/user/profile")
    assert health.code == 200
    assert body(health)["status"] == "degraded"
    assert any("user/stats/overview.json" in reason for reason in body(health)["reasons"])
    assert stats.code == 500
    assert profile.code == 200


@pytest.mark.gen_test(timeout=20)
async def test_healthz_503_when_no_data_can_be_served(tmp_path):
    # A Trakt key means "don't fall back to the demo": with nothing synced there is nothing to serve.
    config = base_config(tmp_path, trakt_api_key="k", trakt_username="sam",
                         trakt_api_url="http://127.0.0.1:9", watching_poll_seconds=60)
    async with running(config) as (url, _):
        response = await fetch(url + "/healthz")
    assert response.code == 503
    health = body(response)
    assert health["status"] == "degraded"
    assert health["reasons"][0].startswith("no data can be served")


@pytest.mark.gen_test(timeout=20)
async def test_healthz_degraded_after_a_failed_sync(tmp_path, account):
    report = SyncReport(username="sam", trigger="schedule")
    report.finish("failed", "Trakt answered 503 Service Unavailable")
    save_report(DataFolder(account), report)
    async with running(base_config(tmp_path)) as (url, _):
        health = body(await fetch(url + "/healthz"))
    assert health["status"] == "degraded"
    assert health["reasons"] == ["last sync failed: Trakt answered 503 Service Unavailable"]
    assert health["last_sync"]["outcome"] == "failed"


@pytest.mark.gen_test(timeout=20)
async def test_healthz_degraded_when_last_success_is_older_than_twice_the_interval(tmp_path, account):
    report = SyncReport(username="sam", started_at="2026-01-01T00:00:00.000Z")
    report.finish("success")
    report.finished_at = "2026-01-01T00:05:00.000Z"
    save_report(DataFolder(account), report)
    # SYNC_INTERVAL_HOURS=0 with syncs on record: the systemd timer's daily schedule is expected.
    config = base_config(tmp_path, trakt_api_key="k", trakt_username="sam",
                         trakt_api_url="http://127.0.0.1:9", watching_poll_seconds=600)
    async with running(config) as (url, _):
        health = body(await fetch(url + "/healthz"))
    assert health["status"] == "degraded"
    assert any(r.startswith("last successful sync was") for r in health["reasons"]), health["reasons"]


@pytest.mark.gen_test(timeout=30)
async def test_healthz_degraded_while_trakt_is_unreachable(tmp_path, account):
    # Port 9 (discard) is closed on loopback: every /watching poll fails at once.
    config = base_config(tmp_path, trakt_api_key="k", trakt_username="sam",
                         trakt_api_url="http://127.0.0.1:9", watching_poll_seconds=0.2)
    async with running(config) as (url, _):
        deadline = time.monotonic() + 20
        while True:
            health = body(await fetch(url + "/healthz"))
            if health["watcher"].get("upstream_ok") is False or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
        metrics = await scrape(url)
    assert health["status"] == "degraded"
    assert any(r.startswith("now-watching: Trakt is unreachable") for r in health["reasons"])
    assert metrics[("trakt_watch_trakt_upstream_up",)] == 0
    assert metrics[("trakt_watch_trakt_poll_errors_total",)] >= 1


@pytest.mark.gen_test(timeout=20)
async def test_healthz_on_the_demo_account(tmp_path):
    async with running(base_config(tmp_path, demo=True)) as (url, _):
        health = body(await fetch(url + "/healthz"))
    assert health["demo"] is True
    assert health["status"] == "ok"


# --- /metrics ---------------------------------------------------------------------------------

@pytest.mark.gen_test(timeout=20)
async def test_metrics_count_requests_by_route_and_status(tmp_path, account):
    async with running(base_config(tmp_path)) as (url, _):
        for path in ("/api/trakt/user/stats", "/api/trakt/user/stats", "/api/trakt/user/lists/nope",
                     "/api/trakt/user/lists/also-nope", "/api/trakt/user/history?type=bogus"):
            await fetch(url + path)
        response = await fetch(url + "/metrics")
        metrics = await scrape(url)
    assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    requests = "trakt_watch_http_requests_total"
    assert metrics[(requests, *labels(route="/api/trakt/user/stats", method="GET", status="200"))] == 2
    assert metrics[(requests, *labels(route="/api/trakt/user/lists/{param}", method="GET", status="404"))] == 2
    assert metrics[(requests, *labels(route="/api/trakt/user/history", method="GET", status="400"))] == 1
    assert "nope" not in response.body.decode()  # raw paths never become labels
    stats_200 = labels(route="/api/trakt/user/stats", method="GET", status="200")
    assert metrics[("trakt_watch_http_request_duration_seconds_count", *stats_200)] == 2
    # README: buckets 0.5 ms ... 10 s, cumulative up to +Inf
    bounds = sorted(float(dict(key[1:])["le"]) for key in metrics
                    if key[0] == "trakt_watch_http_request_duration_seconds_bucket" and
                    dict(key[1:]).get("route") == "/api/trakt/user/stats" and dict(key[1:])["status"] == "200")
    assert bounds[0] == 0.0005 and bounds[-2] == 10.0 and bounds[-1] == float("inf")
    assert metrics[("trakt_watch_http_request_duration_seconds_bucket", *labels(
        route="/api/trakt/user/stats", method="GET", status="200", le="+Inf"))] == 2
    for key, value in {("trakt_watch_up",): 1, ("trakt_watch_data_ready",): 1, ("trakt_watch_data_demo",): 0,
                       ("trakt_watch_data_problems",): 0, ("trakt_watch_sync_running",): 0,
                       ("trakt_watch_sync_runs_total", ("outcome", "success")): 0,
                       ("trakt_watch_sync_runs_total", ("outcome", "failed")): 0,
                       ("trakt_watch_sync_runs_total", ("outcome", "cancelled")): 0,
                       ("trakt_watch_sync_last_finished_timestamp_seconds",): 0,
                       ("trakt_watch_websocket_clients",): 0, ("trakt_watch_websocket_clients_dropped_total",): 0,
                       ("trakt_watch_watching_playing",): 0, ("trakt_watch_trakt_upstream_up",): 1}.items():
        assert metrics[key] == value, key
    for key in (("trakt_watch_data_age_seconds",), ("trakt_watch_data_loaded_timestamp_seconds",),
                ("trakt_watch_trakt_polls_total",), ("trakt_watch_trakt_poll_errors_total",),
                ("trakt_watch_websocket_ticks_sent_total",), ("trakt_watch_websocket_messages_sent_total",),
                ("trakt_watch_sync_last_duration_seconds",), ("trakt_watch_sync_last_success_timestamp_seconds",),
                ("process_resident_memory_bytes",), ("process_virtual_memory_bytes",),
                ("process_cpu_seconds_total",), ("process_open_fds",), ("process_start_time_seconds",)):
        assert key in metrics, key
    kinds = {dict(key[1:])["kind"] for key in metrics if key[0] == "trakt_watch_image_index_entries"}
    assert kinds == {"moviePosters", "movieBackdrops", "showPosters", "showBackdrops", "seasonPosters"}
    assert metrics[("process_resident_memory_bytes",)] > 1_000_000


@pytest.mark.gen_test(timeout=20)
async def test_metrics_count_websocket_clients(tmp_path, account):
    async with running(base_config(tmp_path)) as (url, _):
        ws_url = url.replace("http://", "ws://") + "/ws/watching"
        first = await tornado.websocket.websocket_connect(ws_url)
        second = await tornado.websocket.websocket_connect(ws_url)
        await first.read_message()
        await second.read_message()
        connected = await scrape(url)
        second.close()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            after = await scrape(url)
            if after[("trakt_watch_websocket_clients",)] == 1:
                break
            await asyncio.sleep(0.05)
        first.close()
    assert connected[("trakt_watch_websocket_clients",)] == 2
    assert after[("trakt_watch_websocket_clients",)] == 1


@pytest.mark.gen_test(timeout=20)
async def test_metrics_and_healthz_are_never_cached(tmp_path, account):
    async with running(base_config(tmp_path)) as (url, _):
        first = await fetch(url + "/metrics")
        second = await fetch(url + "/healthz")
    assert "ETag" not in first.headers and "ETag" not in second.headers


# --- dashboard security headers ------------------------------------------------------------------

@pytest.mark.gen_test(timeout=20)
async def test_dashboard_carries_csp_and_security_headers(tmp_path, account):
    config = base_config(tmp_path, image_base_url="https://cdn.example.org/watch", image_proxy="wsrv")
    static_file = next(p.name for p in sorted((ROOT / "static").iterdir()) if p.is_file() and p.suffix != ".html")
    async with running(config) as (url, _):
        page = await fetch(url + "/")
        asset = await fetch(url + "/static/" + static_file)
        api = await fetch(url + "/api/trakt/user/stats")
    for response in (page, asset):
        assert response.code == 200
        csp = dict(part.split(" ", 1) for part in response.headers["Content-Security-Policy"].split("; "))
        assert csp["default-src"] == "'self'"
        assert csp["frame-ancestors"] == "'none'"
        assert csp["img-src"].split() == ["'self'", "data:", "https://cdn.example.org", "https://image.tmdb.org",
                                          "https://*.trakt.tv", "https://secure.gravatar.com", "https://wsrv.nl"]
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "no-referrer"
    assert api.headers["X-Content-Type-Options"] == "nosniff"


# --- admin rule: the client address cannot be forged ------------------------------------------------

FORGED_OUTSIDE = {"X-Forwarded-For": "203.0.113.7", "X-Real-IP": "203.0.113.7"}
FORGED_LOOPBACK = {"X-Forwarded-For": "127.0.0.1", "X-Real-IP": "127.0.0.1"}


@pytest.mark.gen_test(timeout=20)
async def test_forwarded_headers_ignored_without_trust_proxy(tmp_path, account):
    async with running(base_config(tmp_path), xheaders=False) as (url, _):
        response = await fetch(url + "/api/trakt", method="POST", body=b"", headers=FORGED_OUTSIDE)
    # The real peer is 127.0.0.1; the headers claiming otherwise change nothing.
    assert response.code == 200
    assert body(response) == {"message": "Cache cleared successfully"}


@pytest.mark.gen_test(timeout=20)
async def test_forwarded_headers_honoured_with_trust_proxy(tmp_path, account):
    async with running(base_config(tmp_path, trust_proxy=True), xheaders=True) as (url, _):
        outside = await fetch(url + "/api/trakt", method="POST", body=b"", headers=FORGED_OUTSIDE)
        direct = await fetch(url + "/api/trakt", method="POST", body=b"")
    # Behind a trusted proxy, the proxy's word decides: an outside client is refused.
    assert outside.code == 403
    assert "from this machine only" in body(outside)["error"]
    assert direct.code == 200


async def unix_post(path: str, socket_path: str, headers: dict[str, str]) -> tuple[int, dict]:
    """POST over a unix socket (a peer whose address is not loopback) with raw HTTP/1.1."""
    reader, writer = await asyncio.open_unix_connection(socket_path)
    lines = [f"POST {path} HTTP/1.1", "Host: dashboard.example", "Content-Length: 0", "Connection: close",
             *(f"{k}: {v}" for k, v in headers.items())]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    head, _, payload = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(payload)


@contextlib.asynccontextmanager
async def on_unix_socket(config: Config, socket_path: str, xheaders: bool) -> AsyncIterator[None]:
    services = build_services(config)
    await services.start()
    server = HTTPServer(make_app(config, services), xheaders=xheaders)
    server.add_socket(tornado.netutil.bind_unix_socket(socket_path))
    try:
        yield
    finally:
        server.stop()
        await services.stop()
        await server.close_all_connections()


@pytest.mark.gen_test(timeout=20)
async def test_non_loopback_client_cannot_claim_loopback_by_header(tmp_path, account):
    socket_path = str(tmp_path / "s.sock")
    async with on_unix_socket(base_config(tmp_path), socket_path, xheaders=False):
        forged = await unix_post("/api/trakt", socket_path, FORGED_LOOPBACK)
        plain = await unix_post("/api/trakt/sync", socket_path, {})
    assert forged == (403, {"error": "Admin requests are accepted from this machine only; "
                                     "set ADMIN_TOKEN to allow others"})
    assert plain[0] == 403


@pytest.mark.gen_test(timeout=20)
async def test_trusted_proxy_on_a_unix_socket_speaks_for_the_client(tmp_path, account):
    socket_path = str(tmp_path / "s.sock")
    async with on_unix_socket(base_config(tmp_path, trust_proxy=True), socket_path, xheaders=True):
        local = await unix_post("/api/trakt", socket_path, {"X-Real-IP": "127.0.0.1"})
        outside = await unix_post("/api/trakt", socket_path, {"X-Forwarded-For": "198.51.100.4"})
    assert local == (200, {"message": "Cache cleared successfully"})
    assert outside[0] == 403


@pytest.mark.gen_test(timeout=20)
async def test_admin_token_is_required_whatever_the_headers_say(tmp_path, account):
    config = base_config(tmp_path, admin_token="s3cret-token-value")
    async with running(config) as (url, _):
        missing = await fetch(url + "/api/trakt", method="POST", body=b"", headers=FORGED_LOOPBACK)
        wrong = await fetch(url + "/api/trakt", method="POST", body=b"",
                            headers={**FORGED_LOOPBACK, "Authorization": "Bearer s3cret-token-valuf"})
        right = await fetch(url + "/api/trakt", method="POST", body=b"",
                            headers={**FORGED_OUTSIDE, "Authorization": "Bearer s3cret-token-value"})
    assert (missing.code, wrong.code, right.code) == (401, 403, 200)
    assert "s3cret" not in missing.body.decode() + wrong.body.decode()


def test_trust_proxy_reaches_the_real_server_process(tmp_path, account):
    """`trakt-watch serve` maps TRUST_PROXY=1 to xheaders: the same forged request is accepted
    without it and refused with it."""
    results = {}
    for trust in ("0", "1"):
        with serve_process(tmp_path, {"DATA_DIR": str(account), "TRUST_PROXY": trust}) as server:
            request = tornado.httpclient.HTTPRequest(server.url + "/api/trakt", method="POST",
                                                     body=b"", headers=FORGED_OUTSIDE, request_timeout=10)
            try:
                results[trust] = tornado.httpclient.HTTPClient().fetch(request).code
            except tornado.httpclient.HTTPClientError as exc:
                results[trust] = exc.code
    assert results == {"0": 200, "1": 403}


@pytest.mark.gen_test(timeout=60)
async def test_metrics_and_health_after_a_sync(tmp_path, account):
    from tests.fakes.trakt import FakeAccount, FakeTrakt

    fake = FakeTrakt(FakeAccount.build(history=20, watched_movies=5, shows=2, lists=1))
    trakt_url = await fake.start()
    config = base_config(tmp_path, trakt_api_key=fake.api_key, trakt_username=fake.account.username,
                         trakt_api_url=trakt_url, watching_poll_seconds=60)
    try:
        async with running(config) as (url, _):
            assert (await fetch(url + "/api/trakt/sync", method="POST", body=b"")).code == 202
            deadline = time.monotonic() + 30
            while body(await fetch(url + "/api/trakt/sync"))["running"]:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
            metrics = await scrape(url)
            health = body(await fetch(url + "/healthz"))
    finally:
        await fake.stop()
    assert metrics[("trakt_watch_sync_runs_total", ("outcome", "success"))] == 1
    assert metrics[("trakt_watch_sync_runs_total", ("outcome", "failed"))] == 0
    assert metrics[("trakt_watch_sync_last_duration_seconds",)] > 0
    finished = metrics[("trakt_watch_sync_last_success_timestamp_seconds",)]
    assert abs(finished - time.time()) < 60
    assert metrics[("trakt_watch_sync_last_finished_timestamp_seconds",)] == finished
    assert health["status"] == "ok", health["reasons"]
    assert health["last_sync"]["outcome"] == "success"
    assert health["data_age_seconds"] < 60

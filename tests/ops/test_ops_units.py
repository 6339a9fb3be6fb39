"""Unit tests of the operations modules on their own: metrics registry, health rules, sd_notify, CSP."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import socket
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from services.config import Config
from services.ops.health import SyncSummary, compute_health, parse_time
from services.ops.metrics import AppMetrics, Registry, format_value, process_stats
from services.ops.notify import SystemdNotifier
from services.ops.security import content_security_policy, dashboard_headers, image_origins

NOW = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)


# --- metrics -------------------------------------------------------------------------------------

def test_counter_renders_help_type_and_labelled_samples():
    registry = Registry()
    requests = registry.counter("app_requests_total", "Requests.", ("route", "status"))
    requests.inc(route="/a", status="200")
    requests.inc(2, route="/a", status="200")
    requests.inc(route='/b"x\n', status="404")
    text = registry.render()
    assert "# HELP app_requests_total Requests.\n# TYPE app_requests_total counter\n" in text
    assert 'app_requests_total{route="/a",status="200"} 3\n' in text
    assert 'app_requests_total{route="/b\\"x\\n",status="404"} 1\n' in text


def test_counter_refuses_decrease_wrong_labels_and_bad_names():
    registry = Registry()
    counter = registry.counter("x_total", "X.", ("a",))
    with pytest.raises(ValueError, match="cannot decrease"):
        counter.inc(-1, a="1")
    with pytest.raises(ValueError, match="takes labels"):
        counter.inc(b="1")
    with pytest.raises(ValueError, match="end in _total"):
        registry.counter("x", "X.")
    with pytest.raises(ValueError, match="invalid metric name"):
        registry.gauge("1bad", "X.")
    with pytest.raises(ValueError, match="already registered"):
        registry.counter("x_total", "again")


def test_unlabelled_gauge_starts_at_zero_and_moves_both_ways():
    registry = Registry()
    clients = registry.gauge("ws_clients", "Clients.")
    assert "ws_clients 0\n" in registry.render()
    clients.inc()
    clients.inc()
    clients.dec()
    assert clients.value() == 1
    clients.set(2.5)
    assert "ws_clients 2.5\n" in registry.render()


def test_histogram_buckets_are_cumulative_with_sum_and_count():
    registry = Registry()
    latency = registry.histogram("lat_seconds", "Latency.", ("route",), buckets=(0.1, 1.0))
    for value in (0.05, 0.5, 0.5, 3.0):
        latency.observe(value, route="/a")
    text = registry.render()
    assert 'lat_seconds_bucket{route="/a",le="0.1"} 1\n' in text
    assert 'lat_seconds_bucket{route="/a",le="1"} 3\n' in text
    assert 'lat_seconds_bucket{route="/a",le="+Inf"} 4\n' in text
    assert 'lat_seconds_sum{route="/a"} 4.05\n' in text
    assert 'lat_seconds_count{route="/a"} 4\n' in text
    assert latency.count(route="/a") == 4


def test_collectors_run_at_every_scrape():
    registry = Registry()
    calls = []

    def collect():
        calls.append(1)
        yield "data_age_seconds", "gauge", "Age.", [({}, float(len(calls)))]
        yield "polls_total", "counter", "Polls.", [({"outcome": "ok"}, 3), ({"outcome": "error"}, 1)]

    registry.add_collector(collect)
    assert "data_age_seconds 1\n" in registry.render()
    text = registry.render()
    assert "data_age_seconds 2\n" in text
    assert '# TYPE polls_total counter\npolls_total{outcome="ok"} 3\npolls_total{outcome="error"} 1\n' in text


def test_format_value_spells_special_numbers():
    assert [format_value(v) for v in (1.0, 0.25, float("inf"), float("-inf"), float("nan"))] == \
        ["1", "0.25", "+Inf", "-Inf", "NaN"]


def test_process_stats_read_from_proc_self():
    stats = process_stats()
    assert stats["resident_memory_bytes"] > 1_000_000
    assert stats["cpu_seconds"] > 0
    assert stats["open_fds"] >= 3
    assert abs(stats["start_time_seconds"] - datetime.now(UTC).timestamp()) < 24 * 3600


def test_app_metrics_render_is_valid_exposition_text():
    metrics = AppMetrics()
    metrics.observe_request("/api/trakt", "GET", 200, 0.0003)
    metrics.observe_request("/api/trakt", "GET", 304, 0.0001)
    text = metrics.render()
    assert 'trakt_watch_http_requests_total{route="/api/trakt",method="GET",status="200"} 1' in text
    assert "process_resident_memory_bytes " in text
    sample = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? '
                        r'(-?[0-9.e+-]+|[+-]Inf|NaN)\Z')
    for line in text.splitlines():
        assert line.startswith(("# HELP ", "# TYPE ")) or sample.match(line), line


# --- health ----------------------------------------------------------------------------------------

def test_health_ok_with_fresh_data_and_good_sync():
    health = compute_health(
        ready=True, data_last_updated=(NOW - timedelta(hours=3)).isoformat(),
        sync=SyncSummary(last_attempt_at=NOW - timedelta(hours=3), last_success_at=NOW - timedelta(hours=3),
                         last_outcome="success"),
        sync_expected=True, sync_interval_hours=24, watcher={"enabled": True, "upstream_ok": True}, now=NOW)
    assert health.serving
    assert health.body["status"] == "ok"
    assert health.body["reasons"] == []
    assert health.body["data_age_seconds"] == 3 * 3600
    assert health.body["last_sync"]["outcome"] == "success"
    assert health.body["last_sync"]["at"] == "2026-01-10T09:00:00Z"
    assert health.body["demo"] is False


def test_health_without_data_is_not_serving():
    health = compute_health(ready=False, now=NOW)
    assert not health.serving
    assert health.body["status"] == "degraded"
    assert health.body["reasons"] == ["no data can be served: nothing synced or imported yet"]
    assert health.body["data_age_seconds"] is None
    assert health.body["last_sync"] is None


def test_health_degraded_by_malformed_file():
    health = compute_health(ready=True, problems=["user/stats/overview.json: Expected object"], now=NOW)
    assert health.serving
    assert health.body["status"] == "degraded"
    assert health.body["reasons"] == ["data problem: user/stats/overview.json: Expected object"]


def test_health_degraded_by_failed_sync_but_not_while_a_new_one_runs():
    failed = SyncSummary(last_attempt_at=NOW, last_success_at=NOW - timedelta(hours=1),
                         last_outcome="failed", last_error="Trakt answered 503")
    health = compute_health(ready=True, sync=failed, now=NOW)
    assert health.body["reasons"] == ["last sync failed: Trakt answered 503"]
    running = dataclasses.replace(failed, running=True)
    assert compute_health(ready=True, sync=running, now=NOW).body["status"] == "ok"


def test_health_degraded_when_last_success_older_than_twice_the_interval():
    old = SyncSummary(last_attempt_at=NOW - timedelta(hours=49), last_success_at=NOW - timedelta(hours=49),
                      last_outcome="success")
    health = compute_health(ready=True, sync=old, sync_expected=True, sync_interval_hours=24, now=NOW)
    assert health.body["status"] == "degraded"
    assert "49.0 h ago" in health.body["reasons"][0]
    recent = dataclasses.replace(old, last_success_at=NOW - timedelta(hours=47))
    assert compute_health(ready=True, sync=recent, sync_expected=True, sync_interval_hours=24,
                          now=NOW).body["status"] == "ok"
    # No schedule, no Trakt key: old data is not a fault.
    assert compute_health(ready=True, sync=old, sync_expected=False, now=NOW).body["status"] == "ok"


def test_health_stale_data_without_sync_record_uses_data_age():
    health = compute_health(ready=True, data_last_updated=NOW - timedelta(days=5),
                            sync_expected=True, sync_interval_hours=24, now=NOW)
    assert health.body["status"] == "degraded"
    assert "last successful sync" in health.body["reasons"][0]


def test_health_demo_data_is_not_stale():
    health = compute_health(ready=True, is_demo=True, data_last_updated=NOW - timedelta(days=400),
                            sync_expected=True, now=NOW)
    assert health.body == {**health.body, "status": "ok", "demo": True}


def test_health_degraded_when_watcher_upstream_down():
    health = compute_health(ready=True, watcher={"enabled": True, "upstream_ok": False,
                                                 "last_error": "connection refused"}, now=NOW)
    assert health.body["reasons"] == ["now-watching: Trakt is unreachable (connection refused)"]
    assert health.body["watcher"]["upstream_ok"] is False
    disabled = compute_health(ready=True, watcher={"enabled": False, "upstream_ok": False}, now=NOW)
    assert disabled.body["status"] == "ok"


def test_parse_time_accepts_iso_z_epoch_and_rejects_garbage():
    assert parse_time("2026-01-10T12:00:00.000Z") == NOW
    assert parse_time(NOW.timestamp()) == NOW
    assert parse_time("2026-01-10T12:00:00") == NOW
    assert parse_time("yesterday") is None
    assert parse_time(None) is None


# --- sd_notify -------------------------------------------------------------------------------------

@pytest.fixture
def notify_socket(tmp_path):
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(5)
    yield path, sock
    sock.close()


def test_notify_sends_ready_status_and_stopping(notify_socket):
    path, sock = notify_socket
    notifier = SystemdNotifier({"NOTIFY_SOCKET": path})
    assert notifier.enabled
    assert notifier.ready("Serving 12 files")
    assert sock.recv(4096) == b"READY=1\nSTATUS=Serving 12 files"
    assert notifier.stopping()
    assert sock.recv(4096) == b"STOPPING=1\nSTATUS=Shutting down"


def test_notify_abstract_socket():
    name = f"trakt-watch-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(b"\0" + name.encode())
    sock.settimeout(5)
    try:
        assert SystemdNotifier({"NOTIFY_SOCKET": "@" + name}).watchdog()
        assert sock.recv(4096) == b"WATCHDOG=1"
    finally:
        sock.close()


def test_notify_without_socket_is_a_no_op(tmp_path):
    assert not SystemdNotifier({}).ready()
    # A socket path that vanished: reported as False, never raised.
    assert not SystemdNotifier({"NOTIFY_SOCKET": str(tmp_path / "gone.sock")}).ready()
    assert not SystemdNotifier({"NOTIFY_SOCKET": "relative/path"}).enabled


def test_watchdog_interval_from_environment():
    assert SystemdNotifier({"WATCHDOG_USEC": "30000000"}).watchdog_seconds == 30
    assert SystemdNotifier({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}).watchdog_seconds == 0
    assert SystemdNotifier({"WATCHDOG_USEC": str(2_000_000), "WATCHDOG_PID": str(os.getpid())}) \
        .watchdog_seconds == 2
    assert SystemdNotifier({"WATCHDOG_USEC": "soon"}).watchdog_seconds == 0


@pytest.mark.gen_test(timeout=10)
async def test_watchdog_pings_from_the_event_loop(notify_socket):
    path, sock = notify_socket
    sock.setblocking(False)
    notifier = SystemdNotifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "100000"})
    notifier.start_watchdog()
    loop = asyncio.get_running_loop()
    try:
        received = [await asyncio.wait_for(loop.sock_recv(sock, 64), 5) for _ in range(3)]
    finally:
        notifier.stop_watchdog()
    assert received == [b"WATCHDOG=1"] * 3


# --- content security policy -------------------------------------------------------------------

def test_csp_allows_only_self_and_configured_image_hosts():
    config = dataclasses.replace(Config(), image_base_url="https://cdn.example.org/watch",
                                 image_proxy="wsrv")
    policy = dict(part.split(" ", 1) for part in content_security_policy(config).split("; "))
    assert policy["default-src"] == "'self'"
    assert policy["script-src"] == "'self'"
    assert policy["connect-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    assert policy["object-src"] == "'none'"
    assert policy["img-src"].split() == ["'self'", "data:", "https://cdn.example.org", "https://image.tmdb.org",
                                         "https://*.trakt.tv", "https://secure.gravatar.com", "https://wsrv.nl"]


def test_csp_without_cdn_or_proxy_has_only_tmdb_and_avatar_hosts():
    assert image_origins(Config()) == ["https://image.tmdb.org", "https://*.trakt.tv", "https://secure.gravatar.com"]
    headers = dashboard_headers(Config())
    assert "wsrv.nl" not in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"

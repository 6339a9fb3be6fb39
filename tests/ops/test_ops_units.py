"""Unit tests of the operations modules on their own: metrics (read back through prometheus_client's
parser), health rules, sd_notify, CSP."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import resource
import socket
import time
import uuid
from datetime import UTC, datetime, timedelta

import prometheus_client
import pytest
from prometheus_client.parser import text_string_to_metric_families

from services.config import Config
from services.ops.health import SyncSummary, compute_health
from services.times import parse as parse_time
from services.ops.metrics import AppMetrics, ProcessCollector, ServicesCollector, process_stats
from services.ops.notify import SystemdNotifier
from services.ops.security import content_security_policy, dashboard_headers, image_origins

NOW = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)


# --- metrics -------------------------------------------------------------------------------------

def parsed(text: str) -> dict[tuple, float]:
    """The exposition text through prometheus_client's parser: {(sample name, (label, value)...): value}."""
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, *sorted(sample.labels.items()))] = sample.value
    return samples


def request_labels(route: str, status: str, **extra: str) -> tuple:
    return tuple(sorted({"route": route, "method": "GET", "status": status, **extra}.items()))


def test_requests_are_counted_by_route_method_and_status_with_latency_buckets():
    metrics = AppMetrics()
    metrics.observe_request("/api/trakt", "GET", 200, 0.0003)
    metrics.observe_request("/api/trakt", "GET", 200, 0.003)
    metrics.observe_request("/api/trakt", "GET", 304, 20.0)
    samples = parsed(metrics.render())
    ok, not_modified = request_labels("/api/trakt", "200"), request_labels("/api/trakt", "304")
    assert samples[("trakt_watch_http_requests_total", *ok)] == 2
    assert samples[("trakt_watch_http_requests_total", *not_modified)] == 1
    bucket = "trakt_watch_http_request_duration_seconds_bucket"
    assert samples[(bucket, *request_labels("/api/trakt", "200", le="0.0005"))] == 1
    assert samples[(bucket, *request_labels("/api/trakt", "200", le="0.0025"))] == 1
    assert samples[(bucket, *request_labels("/api/trakt", "200", le="0.005"))] == 2
    assert samples[(bucket, *request_labels("/api/trakt", "304", le="10.0"))] == 0
    assert samples[(bucket, *request_labels("/api/trakt", "304", le="+Inf"))] == 1
    assert samples[("trakt_watch_http_request_duration_seconds_sum", *ok)] == pytest.approx(0.0033)
    assert samples[("trakt_watch_http_request_duration_seconds_count", *ok)] == 2


def test_label_values_with_quotes_and_newlines_are_escaped_and_parse_back():
    metrics = AppMetrics()
    metrics.observe_request('/b"x\n', "GET", 404, 0.001)
    text = metrics.render()
    assert 'route="/b\\"x\\n"' in text
    assert parsed(text)[("trakt_watch_http_requests_total", *request_labels('/b"x\n', "404"))] == 1


def test_sync_outcomes_start_at_zero_and_count_each_finished_sync():
    metrics = AppMetrics()
    before = parsed(metrics.render())
    assert [before[("trakt_watch_sync_runs_total", ("outcome", o))] for o in ("success", "failed", "cancelled")] \
        == [0, 0, 0]
    assert before[("trakt_watch_sync_last_finished_timestamp_seconds",)] == 0
    metrics.observe_sync({"outcome": "failed", "duration_seconds": 2.5})
    metrics.observe_sync({"outcome": "weird"})
    after = parsed(metrics.render())
    assert after[("trakt_watch_sync_runs_total", ("outcome", "failed"))] == 1
    assert after[("trakt_watch_sync_runs_total", ("outcome", "other"))] == 1
    assert after[("trakt_watch_sync_last_duration_seconds",)] == 2.5
    assert after[("trakt_watch_sync_last_success_timestamp_seconds",)] == 0
    assert abs(after[("trakt_watch_sync_last_finished_timestamp_seconds",)] - time.time()) < 60
    metrics.observe_sync({"outcome": "success", "duration_seconds": 1})
    assert parsed(metrics.render())[("trakt_watch_sync_last_success_timestamp_seconds",)] > 0


def test_no_undocumented_created_series_are_served():
    metrics = AppMetrics()
    metrics.observe_request("/a", "GET", 200, 0.01)
    assert "_created" not in metrics.render()


def test_each_app_has_its_own_registry_not_the_global_one():
    first, second = AppMetrics(), AppMetrics()
    first.observe_request("/a", "GET", 200, 0.01)
    assert ("trakt_watch_http_requests_total", *request_labels("/a", "200")) not in parsed(second.render())
    assert not any(f.name.startswith("trakt_watch") for f in prometheus_client.REGISTRY.collect())


class _Store:
    ready, is_demo, problems, loaded_at = True, False, ["bad.json: malformed"], 1_700_000_000.0

    def data_age_seconds(self) -> float:
        return 42.0


class _Watcher:
    def __init__(self) -> None:
        self.clients = 3

    def stats(self) -> dict:
        return {"clients": self.clients, "clients_dropped": 1, "ticks_sent": 7, "messages_sent": 9, "polls": 5,
                "poll_errors": 2, "playing": True}

    def health(self) -> dict:
        return {"upstream_ok": False}


class _Sync:
    running = True

    def status(self) -> dict:
        return {"last_success_at": None, "running": True}


class _Images:
    def stats(self) -> dict:
        return {"moviePosters": 4, "seasonPosters": 1}


def test_services_are_read_at_every_scrape():
    watcher = _Watcher()
    metrics = AppMetrics(ServicesCollector(store=_Store(), watcher=watcher, sync=_Sync(), images=_Images()))
    samples = parsed(metrics.render())
    expected = {("trakt_watch_up",): 1, ("trakt_watch_data_ready",): 1, ("trakt_watch_data_demo",): 0,
                ("trakt_watch_data_problems",): 1, ("trakt_watch_data_age_seconds",): 42,
                ("trakt_watch_data_loaded_timestamp_seconds",): 1_700_000_000,
                ("trakt_watch_websocket_clients",): 3, ("trakt_watch_websocket_clients_dropped_total",): 1,
                ("trakt_watch_websocket_ticks_sent_total",): 7, ("trakt_watch_websocket_messages_sent_total",): 9,
                ("trakt_watch_trakt_polls_total",): 5, ("trakt_watch_trakt_poll_errors_total",): 2,
                ("trakt_watch_watching_playing",): 1, ("trakt_watch_trakt_upstream_up",): 0,
                ("trakt_watch_sync_running",): 1,
                ("trakt_watch_image_index_entries", ("kind", "moviePosters")): 4,
                ("trakt_watch_image_index_entries", ("kind", "seasonPosters")): 1}
    assert {key: samples.get(key) for key in expected} == expected
    watcher.clients = 1
    assert parsed(metrics.render())[("trakt_watch_websocket_clients",)] == 1


def test_process_stats_read_from_proc_self():
    stats = process_stats()
    assert stats["resident_memory_bytes"] > 1_000_000
    assert stats["cpu_seconds"] > 0
    assert stats["open_fds"] >= 3
    assert abs(stats["start_time_seconds"] - datetime.now(UTC).timestamp()) < 24 * 3600


def _fake_proc(root, *, boot_time: int | None) -> str:
    """A /proc with this process's `self/stat` and `self/fd`; `stat` (boot time) only when given,
    as systemd's ProcSubset=pid hides it."""
    (root / "self" / "fd").mkdir(parents=True)
    for fd in ("0", "1", "2", "7"):
        (root / "self" / "fd" / fd).write_text("")
    # fields from 3 (state) on; utime=14 -> 250, stime=15 -> 150, starttime=22 -> 1000, vsize=23, rss=24 pages
    after_name = ["S"] + ["0"] * 10 + ["250", "150"] + ["0"] * 6 + ["1000", "123456789", "500"] + ["0"] * 20
    (root / "self" / "stat").write_text("4242 (trakt watch) x) " + " ".join(after_name) + "\n")
    if boot_time is not None:
        (root / "stat").write_text(f"cpu  1 2 3\nbtime {boot_time}\nprocesses 9\n")
    return str(root)


def test_process_collector_reads_only_proc_self_under_procsubset_pid(tmp_path):
    ticks, page = os.sysconf("SC_CLK_TCK"), os.sysconf("SC_PAGE_SIZE")
    metrics = AppMetrics(process=ProcessCollector(_fake_proc(tmp_path, boot_time=None)))
    samples = parsed(metrics.render())
    assert samples[("process_cpu_seconds_total",)] == pytest.approx(400 / ticks)
    assert samples[("process_resident_memory_bytes",)] == 500 * page
    assert samples[("process_virtual_memory_bytes",)] == 123456789
    assert samples[("process_open_fds",)] == 4
    # no boot time to add the start ticks to: roughly now (when the metrics module was imported)
    assert abs(samples[("process_start_time_seconds",)] - time.time()) < 24 * 3600


def test_process_start_time_is_boot_time_plus_start_ticks_when_proc_stat_is_readable(tmp_path):
    ticks = os.sysconf("SC_CLK_TCK")
    samples = parsed(AppMetrics(process=ProcessCollector(_fake_proc(tmp_path, boot_time=1_600_000_000))).render())
    assert samples[("process_start_time_seconds",)] == pytest.approx(1_600_000_000 + 1000 / ticks)


def test_process_collector_without_proc_still_scrapes(tmp_path):
    samples = parsed(AppMetrics(process=ProcessCollector(str(tmp_path / "no-proc"))).render())
    assert [key for key in samples if key[0].startswith("process_")] == [("process_start_time_seconds",)]


def test_served_series_keep_the_readme_names():
    text = AppMetrics(ServicesCollector(store=_Store(), watcher=_Watcher(), sync=_Sync(), images=_Images())).render()
    names = {family.name for family in text_string_to_metric_families(text)}
    # families as the parser names them (a counter's family drops its _total)
    assert names >= {
        "trakt_watch_http_requests", "trakt_watch_http_request_duration_seconds", "trakt_watch_websocket_clients",
        "trakt_watch_websocket_clients_dropped", "trakt_watch_websocket_ticks_sent",
        "trakt_watch_websocket_messages_sent", "trakt_watch_trakt_polls", "trakt_watch_trakt_poll_errors",
        "trakt_watch_trakt_upstream_up", "trakt_watch_watching_playing", "trakt_watch_sync_runs",
        "trakt_watch_sync_last_duration_seconds", "trakt_watch_sync_last_finished_timestamp_seconds",
        "trakt_watch_sync_last_success_timestamp_seconds", "trakt_watch_sync_running",
        "trakt_watch_image_index_entries", "trakt_watch_data_ready", "trakt_watch_data_demo",
        "trakt_watch_data_problems", "trakt_watch_data_age_seconds", "trakt_watch_data_loaded_timestamp_seconds",
        "trakt_watch_up", "process_resident_memory_bytes", "process_virtual_memory_bytes", "process_cpu_seconds",
        "process_open_fds", "process_start_time_seconds"}
    types = {family.name: family.type for family in text_string_to_metric_families(text)}
    assert types["trakt_watch_http_requests"] == "counter"
    assert types["trakt_watch_http_request_duration_seconds"] == "histogram"
    assert types["trakt_watch_websocket_clients"] == "gauge"
    assert types["process_cpu_seconds"] == "counter"


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


def test_watchdog_pings_reuse_one_socket_so_they_work_without_free_descriptors(notify_socket):
    path, sock = notify_socket
    notifier = SystemdNotifier({"NOTIFY_SOCKET": path})
    assert notifier.watchdog()
    assert sock.recv(4096) == b"WATCHDOG=1"
    lowest_free = os.open(os.devnull, os.O_RDONLY)
    os.close(lowest_free)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (lowest_free, hard))  # no descriptor left to open
    try:
        for _ in range(50):
            assert notifier.watchdog()
            assert sock.recv(4096) == b"WATCHDOG=1"
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    notifier.close()


def test_a_full_notify_queue_never_blocks_the_caller(notify_socket):
    path, sock = notify_socket  # nobody reads: the queue fills after a few datagrams
    notifier = SystemdNotifier({"NOTIFY_SOCKET": path})
    sent = [notifier.watchdog() for _ in range(500)]  # returns at once; blocked forever before
    assert sent[0] and not sent[-1]
    notifier.close()


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


def test_the_last_successful_sync_counts_one_another_process_ran():
    """A sync run by the systemd timer is its own process: only its report on disk knows it."""

    class SyncOnDisk:
        running = False

        def status(self):
            return {"last_success_at": "2026-11-27T03:12:09.000Z", "running": False}

    metrics = AppMetrics(ServicesCollector(sync=SyncOnDisk()))
    expected = datetime(2026, 11, 27, 3, 12, 9, tzinfo=UTC).timestamp()
    assert parsed(metrics.render())[("trakt_watch_sync_last_success_timestamp_seconds",)] == expected
    metrics.observe_sync({"outcome": "success", "duration_seconds": 1})  # a newer one in this process
    assert parsed(metrics.render())[("trakt_watch_sync_last_success_timestamp_seconds",)] > expected

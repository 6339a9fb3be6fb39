"""The /metrics registry: prometheus_client series this process records, plus collectors that read
the running services and /proc/self at scrape time (README "Health and metrics").

Each `AppMetrics` has its own `CollectorRegistry`, never prometheus_client's global one, so two
apps in one process (the tests) never share or clash on a series.
"""

from __future__ import annotations

import os
import time
from bisect import bisect_left
from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, disable_created_metrics, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

from services import times

# No `*_created` companion series: they would double every counter and histogram in the scrape with
# series the README does not document (a process-wide switch; this process exposes only our registry).
disable_created_metrics()

# The README documents format 0.0.4; prometheus_client's generate_latest writes that format.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Request latencies of an in-memory API: most answers take well under a millisecond.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

SYNC_OUTCOMES = ("success", "failed", "cancelled")


# --- process figures from /proc/self ----------------------------------------------------------

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_IMPORTED_AT = time.time()


def process_stats(proc: str = "/proc") -> dict[str, float]:
    """RSS, virtual memory, CPU seconds, open fds and start time of this process. Reads only
    `/proc/self` except for the boot time, so it works under systemd's `ProcSubset=pid`;
    a figure that cannot be read is left out (the start time falls back to this module's import)."""
    stats: dict[str, float] = {}
    start_ticks = None
    try:
        with open(f"{proc}/self/stat", "rb") as fh:
            # The command name may contain spaces and ')': split after the last ')'.
            fields = fh.read().rsplit(b")", 1)[1].split()
        # fields[0] is field 3 (state); utime=14, stime=15, starttime=22, vsize=23, rss=24
        stats["cpu_seconds"] = (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS
        stats["virtual_memory_bytes"] = float(int(fields[20]))
        stats["resident_memory_bytes"] = float(int(fields[21]) * _PAGE_SIZE)
        start_ticks = int(fields[19])
    except (OSError, IndexError, ValueError):
        pass
    try:
        with open(f"{proc}/stat", "rb") as fh:
            boot = next(int(line.split()[1]) for line in fh if line.startswith(b"btime "))
        stats["start_time_seconds"] = boot + start_ticks / _CLOCK_TICKS if start_ticks is not None else _IMPORTED_AT
    except (OSError, ValueError, IndexError, StopIteration):
        # ProcSubset=pid (the systemd unit) hides /proc/stat: fall back to when this module loaded.
        stats["start_time_seconds"] = _IMPORTED_AT
    try:
        stats["open_fds"] = float(len(os.listdir(f"{proc}/self/fd")))
    except OSError:
        pass
    return stats


class ProcessCollector:
    """The standard `process_*` series. prometheus_client's own ProcessCollector reads
    /proc/stat for the boot time and gives up on everything when it is hidden (ProcSubset=pid)."""

    def __init__(self, proc: str = "/proc") -> None:
        self.proc = proc

    def collect(self) -> Iterable[Metric]:
        stats = process_stats(self.proc)
        families = (
            ("cpu_seconds", CounterMetricFamily, "process_cpu_seconds",
             "Total user and system CPU time spent in seconds."),
            ("resident_memory_bytes", GaugeMetricFamily, "process_resident_memory_bytes",
             "Resident memory size in bytes."),
            ("virtual_memory_bytes", GaugeMetricFamily, "process_virtual_memory_bytes",
             "Virtual memory size in bytes."),
            ("start_time_seconds", GaugeMetricFamily, "process_start_time_seconds",
             "Start time of the process since unix epoch in seconds."),
            ("open_fds", GaugeMetricFamily, "process_open_fds", "Number of open file descriptors."),
        )
        for key, family, name, help_text in families:
            if key in stats:
                yield family(name, help_text, value=stats[key])


# --- the running services, read at scrape time ------------------------------------------------

def _gauge(name: str, help_text: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, help_text, value=value)


def _counter(name: str, help_text: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, help_text, value=value)


class ServicesCollector:
    """Series that other services already count (the watcher's polls and sends, the store's state,
    the image index): read from them at every scrape, so nothing is counted twice."""

    def __init__(self, store: Any = None, watcher: Any = None, sync: Any = None, images: Any = None) -> None:
        self.store = store
        self.watcher = watcher
        self.sync = sync
        self.images = images

    def collect(self) -> Iterable[Metric]:
        yield _gauge("trakt_watch_up", "1 while the server process is running.", 1)
        store, watcher = self.store, self.watcher
        if store is not None:
            yield _gauge("trakt_watch_data_ready", "1 when data can be served, 0 otherwise.", 1 if store.ready else 0)
            yield _gauge("trakt_watch_data_demo", "1 when the bundled demo account is served.",
                         1 if store.is_demo else 0)
            yield _gauge("trakt_watch_data_problems", "Data files that could not be loaded (malformed).",
                         len(store.problems) if store.ready else 0)
            age = store.data_age_seconds()
            if age is not None:
                yield _gauge("trakt_watch_data_age_seconds",
                             "Seconds since the served data was last updated (its last_updated).", age)
            if store.loaded_at is not None:
                yield _gauge("trakt_watch_data_loaded_timestamp_seconds",
                             "Unix time the served data was (re)loaded into memory.", store.loaded_at)
        if watcher is not None:
            stats = watcher.stats()
            yield _gauge("trakt_watch_websocket_clients", "Connected /ws/watching clients.", stats["clients"])
            yield _counter("trakt_watch_websocket_clients_dropped",
                           "WebSocket clients dropped because they stopped reading.", stats["clients_dropped"])
            yield _counter("trakt_watch_websocket_ticks_sent", "Progress ticks sent (one per client per tick).",
                           stats["ticks_sent"])
            yield _counter("trakt_watch_websocket_messages_sent", "WebSocket messages sent, ticks included.",
                           stats["messages_sent"])
            yield _counter("trakt_watch_trakt_polls", "Polls of Trakt /users/{user}/watching.", stats["polls"])
            yield _counter("trakt_watch_trakt_poll_errors", "Polls of /watching that failed.", stats["poll_errors"])
            yield _gauge("trakt_watch_watching_playing", "1 while something is playing.", 1 if stats["playing"] else 0)
            yield _gauge("trakt_watch_trakt_upstream_up",
                         "0 while polls of Trakt fail, 1 otherwise (also when polling is off).",
                         1 if watcher.health().get("upstream_ok", True) else 0)
        if self.sync is not None:
            yield _gauge("trakt_watch_sync_running", "1 while a sync runs in this process.",
                         1 if self.sync.running else 0)
        if self.images is not None:
            family = GaugeMetricFamily("trakt_watch_image_index_entries", "Images in the in-memory index, by kind.",
                                       labels=("kind",))
            for kind, value in sorted(self.images.stats().items()):
                family.add_metric((kind,), value)
            yield family


# --- what this server records itself ----------------------------------------------------------

class RequestSeries:
    """The request counter and latency histogram as plain integers: a request costs a dict lookup,
    a bisect and three additions on the loop thread (README "Performance"); prometheus_client's own
    Counter and Histogram take a lock per bucket. Turned into the two families at scrape time."""

    def __init__(self, buckets: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self.buckets = buckets
        # (route, method, status) -> [count, seconds, per-bucket counts (last: above every bound)]
        self.series: dict[tuple[str, str, int], list] = {}

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        series = self.series.get((route, method, status))
        if series is None:
            series = self.series[(route, method, status)] = [0, 0.0, [0] * (len(self.buckets) + 1)]
        series[0] += 1
        series[1] += seconds
        series[2][bisect_left(self.buckets, seconds)] += 1  # a bound is inclusive (le)

    def collect(self) -> Iterable[Metric]:
        labels = ("route", "method", "status")
        requests = CounterMetricFamily("trakt_watch_http_requests",
                                       "HTTP requests answered, by route pattern, method and status.", labels=labels)
        latency = HistogramMetricFamily("trakt_watch_http_request_duration_seconds",
                                        "Time from request start to the last byte written, by route pattern, method "
                                        "and status.", labels=labels)
        bounds = [floatToGoString(b) for b in self.buckets] + ["+Inf"]
        for (route, method, status), (count, seconds, counts) in sorted(self.series.items()):
            values = (route, method, str(status))
            requests.add_metric(values, count)
            cumulative, total = [], 0
            for bound, n in zip(bounds, counts):
                total += n
                cumulative.append((bound, total))
            latency.add_metric(values, cumulative, seconds)
        yield requests
        yield latency


class AppMetrics:
    """Request and sync series recorded as they happen, and the collectors above; `render()` is the
    /metrics body."""

    def __init__(self, services: ServicesCollector | None = None, process: ProcessCollector | None = None) -> None:
        self.registry = CollectorRegistry()
        self.requests = RequestSeries()
        self.registry.register(self.requests)
        # the access log's hot path: one bound method, no attribute lookups per request
        self.observe_request = self.requests.observe
        self.sync_runs = Counter("trakt_watch_sync_runs",
                                 "Syncs finished in this process, by outcome (success, failed, cancelled).",
                                 ("outcome",), registry=self.registry)
        for outcome in SYNC_OUTCOMES:
            self.sync_runs.labels(outcome)  # every outcome shows from the start, at 0
        self.sync_last_duration = Gauge("trakt_watch_sync_last_duration_seconds",
                                        "How long the last finished sync took.", registry=self.registry)
        self.sync_last_finished = Gauge("trakt_watch_sync_last_finished_timestamp_seconds",
                                        "Unix time the last sync finished (0: none yet).", registry=self.registry)
        # Read at scrape time: a sync the systemd timer ran in its own process counts too (its
        # report is on disk), so an alert on this gauge does not depend on where syncs run.
        self._success_in_process = 0.0
        self._sync = services.sync if services is not None else None
        self.sync_last_success = Gauge("trakt_watch_sync_last_success_timestamp_seconds",
                                       "Unix time the last successful sync finished, in this process or "
                                       "another (its report in DATA_DIR/sync/; 0: none known).",
                                       registry=self.registry)
        self.sync_last_success.set_function(self._last_success)
        self.registry.register(process or ProcessCollector())
        if services is not None:
            self.registry.register(services)

    def observe_sync(self, report: dict) -> None:
        """Count one finished sync from its report (`SyncService(on_finished=...)`)."""
        outcome = str(report.get("outcome") or "unknown")
        if outcome not in SYNC_OUTCOMES:
            outcome = "other"
        self.sync_runs.labels(outcome).inc()
        duration = report.get("duration_seconds")
        if isinstance(duration, (int, float)):
            self.sync_last_duration.set(duration)
        finished = time.time()
        self.sync_last_finished.set(finished)
        if outcome == "success":
            self._success_in_process = finished

    def _last_success(self) -> float:
        on_disk = None
        if self._sync is not None:
            try:
                on_disk = times.parse(self._sync.status().get("last_success_at"))
            except OSError:  # an unreadable DATA_DIR: /healthz says so
                on_disk = None
        return max(self._success_in_process, on_disk.timestamp() if on_disk is not None else 0.0)

    def render(self) -> str:
        return generate_latest(self.registry).decode()

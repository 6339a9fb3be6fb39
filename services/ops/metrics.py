"""A small Prometheus registry (counters, gauges, histograms) rendered in text format 0.0.4.

No dependency: the process exposes a handful of series, and the exposition format is a few
lines of text. Values computed at scrape time (data age, RSS, WebSocket clients…) come from
collectors registered with `Registry.add_collector`.
"""

from __future__ import annotations

import math
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Request latencies of an in-memory API: most answers take well under a millisecond.
DEFAULT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*\Z")

LabelValues = tuple[str, ...]
# A collector yields (name, type, help, [(labels dict, value), ...]).
Family = tuple[str, str, str, list[tuple[dict[str, str], float]]]


def _check_name(name: str, labels: Sequence[str]) -> None:
    if not _NAME.match(name):
        raise ValueError(f"invalid metric name {name!r}")
    for label in labels:
        if not _LABEL.match(label) or label.startswith("__"):
            raise ValueError(f"invalid label name {label!r} for {name}")
    if len(set(labels)) != len(labels):
        raise ValueError(f"duplicate label names for {name}: {labels}")


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def format_value(value: float) -> str:
    """Prometheus number syntax: integers without '.0', +Inf/-Inf/NaN spelled out."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def _labels_text(names: Sequence[str], values: Sequence[str], extra: str = "") -> str:
    parts = [f'{n}="{_escape_label(v)}"' for n, v in zip(names, values)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


class _Metric:
    kind = "untyped"

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = ()) -> None:
        _check_name(name, labels)
        self.name = name
        self.help = help_text
        self.label_names = tuple(labels)
        self._lock = threading.Lock()

    def _key(self, labels: dict[str, str]) -> LabelValues:
        if set(labels) != set(self.label_names):
            raise ValueError(f"{self.name} takes labels {self.label_names}, got {tuple(labels)}")
        return tuple(str(labels[n]) for n in self.label_names)

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {_escape_help(self.help)}", f"# TYPE {self.name} {self.kind}"]

    def render(self) -> list[str]:
        raise NotImplementedError


class _Scalar(_Metric):
    """One number per label combination (counters and gauges)."""

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = ()) -> None:
        super().__init__(name, help_text, labels)
        self._values: dict[LabelValues, float] = {}
        if not self.label_names:
            self._values[()] = 0.0

    def _add(self, amount: float, labels: dict[str, str]) -> None:
        key = self._key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def value(self, **labels: str) -> float:
        return self._values.get(self._key(labels), 0.0)

    def render(self) -> list[str]:
        with self._lock:
            items = sorted(self._values.items())
        return self.header() + [f"{self.name}{_labels_text(self.label_names, k)} {format_value(v)}"
                                for k, v in items]


class Counter(_Scalar):
    """A value that only goes up (resets when the process restarts)."""

    kind = "counter"

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = ()) -> None:
        if not name.endswith("_total"):
            raise ValueError(f"counter names end in _total: {name!r}")
        super().__init__(name, help_text, labels)

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        if amount < 0:
            raise ValueError(f"{self.name}: a counter cannot decrease (got {amount})")
        self._add(amount, labels)


class Gauge(_Scalar):
    """A value that goes up and down."""

    kind = "gauge"

    def set(self, value: float, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            self._values[key] = float(value)

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        self._add(amount, labels)

    def dec(self, amount: float = 1.0, **labels: str) -> None:
        self._add(-amount, labels)


class Histogram(_Metric):
    """Observations counted into cumulative buckets, with their sum and count."""

    kind = "histogram"

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = (),
                 buckets: Sequence[float] = DEFAULT_BUCKETS) -> None:
        if "le" in labels:
            raise ValueError(f"{name}: 'le' is reserved for histogram buckets")
        super().__init__(name, help_text, labels)
        bounds = sorted(float(b) for b in buckets if not math.isinf(b))
        if not bounds or len(set(bounds)) != len(bounds):
            raise ValueError(f"{name}: buckets must be distinct finite numbers, got {buckets}")
        self.buckets = tuple(bounds)
        # per label set: [count per bucket..., +Inf count], sum
        self._series: dict[LabelValues, tuple[list[int], list[float]]] = {}

    def observe(self, value: float, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            series = self._series.get(key)
            if series is None:
                series = self._series[key] = ([0] * (len(self.buckets) + 1), [0.0])
            counts, total = series
            for i, bound in enumerate(self.buckets):
                if value <= bound:
                    counts[i] += 1
                    break
            else:
                counts[-1] += 1
            total[0] += value

    def count(self, **labels: str) -> int:
        series = self._series.get(self._key(labels))
        return sum(series[0]) if series else 0

    def render(self) -> list[str]:
        lines = self.header()
        with self._lock:
            items = sorted((k, (list(c), s[0])) for k, (c, s) in self._series.items())
        for key, (counts, total) in items:
            cumulative = 0
            for bound, n in zip((*self.buckets, math.inf), counts):
                cumulative += n
                le = 'le="' + format_value(bound) + '"'
                lines.append(f"{self.name}_bucket{_labels_text(self.label_names, key, le)} {cumulative}")
            lines.append(f"{self.name}_sum{_labels_text(self.label_names, key)} {format_value(total)}")
            lines.append(f"{self.name}_count{_labels_text(self.label_names, key)} {cumulative}")
        return lines


class Registry:
    """Holds metrics and scrape-time collectors; `render()` is the /metrics body."""

    def __init__(self) -> None:
        self._metrics: dict[str, _Metric] = {}
        self._collectors: list[Callable[[], Iterable[Family]]] = []

    def _add(self, metric: _Metric) -> _Metric:
        if metric.name in self._metrics:
            raise ValueError(f"metric {metric.name} is already registered")
        self._metrics[metric.name] = metric
        return metric

    def counter(self, name: str, help_text: str, labels: Sequence[str] = ()) -> Counter:
        return self._add(Counter(name, help_text, labels))  # type: ignore[return-value]

    def gauge(self, name: str, help_text: str, labels: Sequence[str] = ()) -> Gauge:
        return self._add(Gauge(name, help_text, labels))  # type: ignore[return-value]

    def histogram(self, name: str, help_text: str, labels: Sequence[str] = (),
                  buckets: Sequence[float] = DEFAULT_BUCKETS) -> Histogram:
        return self._add(Histogram(name, help_text, labels, buckets))  # type: ignore[return-value]

    def get(self, name: str) -> _Metric:
        return self._metrics[name]

    def add_collector(self, collector: Callable[[], Iterable[Family]]) -> None:
        """`collector()` is called on every scrape and yields (name, type, help, samples)."""
        self._collectors.append(collector)

    def render(self) -> str:
        lines: list[str] = []
        for metric in self._metrics.values():
            lines.extend(metric.render())
        for collector in self._collectors:
            for name, kind, help_text, samples in collector():
                if kind not in ("counter", "gauge", "untyped"):
                    raise ValueError(f"collector family {name}: unsupported type {kind!r}")
                _check_name(name, ())
                lines.append(f"# HELP {name} {_escape_help(help_text)}")
                lines.append(f"# TYPE {name} {kind}")
                for labels, value in samples:
                    names = tuple(labels)
                    _check_name(name, names)
                    lines.append(f"{name}{_labels_text(names, tuple(labels.values()))} {format_value(value)}")
        return "\n".join(lines) + "\n"


# --- process metrics from /proc/self ----------------------------------------------------------

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_IMPORTED_AT = time.time()


def process_stats() -> dict[str, float]:
    """RSS, virtual memory, CPU seconds, open fds and start time of this process (Linux /proc)."""
    stats: dict[str, float] = {}
    try:
        with open("/proc/self/stat", "rb") as fh:
            # The command name may contain spaces and ')': split after the last ')'.
            fields = fh.read().rsplit(b")", 1)[1].split()
        # fields[0] is field 3 (state); utime=14, stime=15, starttime=22, vsize=23, rss=24
        stats["cpu_seconds"] = (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS
        stats["virtual_memory_bytes"] = float(int(fields[20]))
        stats["resident_memory_bytes"] = float(int(fields[21]) * _PAGE_SIZE)
        start_ticks = int(fields[19])
    except (OSError, IndexError, ValueError):
        start_ticks = None
    try:
        with open("/proc/stat", "rb") as fh:
            boot = next(int(line.split()[1]) for line in fh if line.startswith(b"btime "))
        stats["start_time_seconds"] = boot + start_ticks / _CLOCK_TICKS if start_ticks is not None else _IMPORTED_AT
    except (OSError, ValueError, StopIteration):
        # ProcSubset=pid (the systemd unit) hides /proc/stat: fall back to when this module loaded.
        stats["start_time_seconds"] = _IMPORTED_AT
    try:
        stats["open_fds"] = float(len(os.listdir("/proc/self/fd")))
    except OSError:
        pass
    return stats


def process_collector() -> Iterable[Family]:
    """The standard `process_*` series, as the Prometheus client libraries name them."""
    stats = process_stats()
    names = {
        "cpu_seconds": ("process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds."),
        "resident_memory_bytes": ("process_resident_memory_bytes", "gauge", "Resident memory size in bytes."),
        "virtual_memory_bytes": ("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes."),
        "start_time_seconds": ("process_start_time_seconds", "gauge",
                               "Start time of the process since unix epoch in seconds."),
        "open_fds": ("process_open_fds", "gauge", "Number of open file descriptors."),
    }
    for key, (name, kind, help_text) in names.items():
        if key in stats:
            yield name, kind, help_text, [({}, stats[key])]


class AppMetrics:
    """The series this server records itself; the rest is read from the services at scrape time."""

    def __init__(self) -> None:
        self.registry = Registry()
        self.requests = self.registry.counter(
            "trakt_watch_http_requests_total", "HTTP requests answered, by route pattern, method and status.",
            ("route", "method", "status"))
        self.latency = self.registry.histogram(
            "trakt_watch_http_request_duration_seconds",
            "Time from request start to the last byte written, by route pattern, method and status.",
            ("route", "method", "status"))
        self.sync_runs = self.registry.counter(
            "trakt_watch_sync_runs_total", "Syncs finished in this process, by outcome (success, failed, cancelled).",
            ("outcome",))
        for outcome in ("success", "failed", "cancelled"):
            self.sync_runs.inc(0, outcome=outcome)
        self.sync_last_duration = self.registry.gauge(
            "trakt_watch_sync_last_duration_seconds", "How long the last finished sync took.")
        self.sync_last_finished = self.registry.gauge(
            "trakt_watch_sync_last_finished_timestamp_seconds", "Unix time the last sync finished (0: none yet).")
        self.sync_last_success = self.registry.gauge(
            "trakt_watch_sync_last_success_timestamp_seconds",
            "Unix time the last successful sync finished (0: none in this process).")
        self.registry.add_collector(process_collector)

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        labels = {"route": route, "method": method, "status": str(status)}
        self.requests.inc(**labels)
        self.latency.observe(seconds, **labels)

    def add_collector(self, collector: Callable[[], Iterable[Family]]) -> None:
        self.registry.add_collector(collector)

    def observe_sync(self, report: dict) -> None:
        """Count one finished sync from its report (`SyncService(on_finished=...)`)."""
        outcome = str(report.get("outcome") or "unknown")
        if outcome not in ("success", "failed", "cancelled"):
            outcome = "other"
        self.sync_runs.inc(outcome=outcome)
        duration = report.get("duration_seconds")
        if isinstance(duration, (int, float)):
            self.sync_last_duration.set(duration)
        finished = time.time()
        self.sync_last_finished.set(finished)
        if outcome == "success":
            self.sync_last_success.set(finished)

    def render(self) -> str:
        return self.registry.render()


def services_collector(services: Any) -> Callable[[], Iterable[Family]]:
    """Scrape-time series read from the running services: `services.store`, `.watcher`, `.sync`
    and `.images` (any may be missing or None; they are looked up at every scrape)."""

    def collect() -> Iterable[Family]:
        store, watcher, sync, images = (getattr(services, name, None)
                                        for name in ("store", "watcher", "sync", "images"))
        yield "trakt_watch_up", "gauge", "1 while the server process is running.", [({}, 1)]
        if store is not None:
            yield ("trakt_watch_data_ready", "gauge", "1 when data can be served, 0 otherwise.",
                   [({}, 1 if store.ready else 0)])
            yield ("trakt_watch_data_demo", "gauge", "1 when the bundled demo account is served.",
                   [({}, 1 if store.is_demo else 0)])
            yield ("trakt_watch_data_problems", "gauge", "Data files that could not be loaded (malformed).",
                   [({}, len(store.problems) if store.ready else 0)])
            age = store.data_age_seconds()
            if age is not None:
                yield ("trakt_watch_data_age_seconds", "gauge",
                       "Seconds since the served data was last updated (its last_updated).", [({}, age)])
            if store.loaded_at is not None:
                yield ("trakt_watch_data_loaded_timestamp_seconds", "gauge",
                       "Unix time the served data was (re)loaded into memory.", [({}, store.loaded_at)])
        if watcher is not None:
            stats = watcher.stats()
            yield ("trakt_watch_websocket_clients", "gauge", "Connected /ws/watching clients.",
                   [({}, stats["clients"])])
            yield ("trakt_watch_websocket_clients_dropped_total", "counter",
                   "WebSocket clients dropped because they stopped reading.", [({}, stats["clients_dropped"])])
            yield ("trakt_watch_websocket_ticks_sent_total", "counter",
                   "Progress ticks sent (one per client per tick).", [({}, stats["ticks_sent"])])
            yield ("trakt_watch_websocket_messages_sent_total", "counter",
                   "WebSocket messages sent, ticks included.", [({}, stats["messages_sent"])])
            yield ("trakt_watch_trakt_polls_total", "counter", "Polls of Trakt /users/{user}/watching.",
                   [({}, stats["polls"])])
            yield ("trakt_watch_trakt_poll_errors_total", "counter", "Polls of /watching that failed.",
                   [({}, stats["poll_errors"])])
            yield ("trakt_watch_watching_playing", "gauge", "1 while something is playing.",
                   [({}, 1 if stats["playing"] else 0)])
            health = watcher.health()
            yield ("trakt_watch_trakt_upstream_up", "gauge",
                   "0 while polls of Trakt fail, 1 otherwise (also when polling is off).",
                   [({}, 1 if health.get("upstream_ok", True) else 0)])
        if sync is not None:
            yield ("trakt_watch_sync_running", "gauge", "1 while a sync runs in this process.",
                   [({}, 1 if sync.running else 0)])
        if images is not None:
            counts = images.stats()
            yield ("trakt_watch_image_index_entries", "gauge", "Images in the in-memory index, by kind.",
                   [({"kind": kind}, value) for kind, value in sorted(counts.items())])

    return collect

"""GET /healthz, GET /metrics, GET /api/openapi.json."""

from __future__ import annotations

from typing import Any

from handlers.base import ApiHandler, BaseHandler
from services.config import Config
from services.health import Health, compute_health, summarize_sync, sync_expectation
from services.metrics import CONTENT_TYPE, AppMetrics
from services.openapi import openapi_document
from services.snapshots import DataFolder, dumps
from services.store import DataStore
from services.sync_report import read_sync_status


def gather_health(config: Config, store: DataStore, folder: DataFolder, watcher: Any = None,
                  sync: Any = None) -> Health:
    """Read the inputs of `compute_health` from the running services."""
    status = None if store.is_demo else read_sync_status(folder)
    running = bool(sync is not None and sync.running)
    summary = summarize_sync(status, running)
    ever_synced = summary.last_attempt_at is not None or summary.last_success_at is not None
    expected, interval = sync_expectation(config.has_trakt, config.sync_interval_hours, ever_synced)
    return compute_health(
        ready=store.ready,
        unavailable_reason=store.load_error,
        problems=store.problems,
        data_last_updated=store.data_last_updated,
        is_demo=store.is_demo,
        sync=summary,
        sync_expected=expected and not store.is_demo,
        sync_interval_hours=interval,
        watcher=watcher.health() if watcher is not None else None,
    )


class HealthHandler(BaseHandler):
    """`{"status": "ok"|"degraded", …}`; 503 when no data can be served."""

    def initialize(self, config: Config, store: DataStore, folder: DataFolder, watcher: Any = None,
                   sync: Any = None, **kwargs: Any) -> None:
        super().initialize(config, **kwargs)
        self.store = store
        self.folder = folder
        self.watcher = watcher
        self.sync = sync

    def get(self) -> None:
        health = gather_health(self.config, self.store, self.folder, self.watcher, self.sync)
        self.set_header("Cache-Control", "no-store")
        self.write_json(health.body, 200 if health.serving else 503)

    def compute_etag(self) -> None:
        return None  # health changes by the second; never answer 304


class MetricsHandler(BaseHandler):
    """Prometheus text format 0.0.4."""

    def initialize(self, config: Config, metrics: AppMetrics, **kwargs: Any) -> None:
        super().initialize(config, **kwargs)
        self.metrics = metrics

    def get(self) -> None:
        self.set_header("Content-Type", CONTENT_TYPE)
        self.set_header("Cache-Control", "no-store")
        self.finish(self.metrics.render().encode())

    def compute_etag(self) -> None:
        return None


class OpenApiHandler(ApiHandler):
    """The OpenAPI 3.1 document, serialised once per process."""

    _body: bytes | None = None

    def get(self) -> None:
        if OpenApiHandler._body is None:
            OpenApiHandler._body = dumps(openapi_document()).encode()
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(OpenApiHandler._body)

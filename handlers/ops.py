"""GET /healthz, GET /metrics, GET /api/openapi.json."""

from __future__ import annotations

from typing import Any

from handlers.base import ApiHandler, BaseHandler
from services.config import Config
from services.ops.health import gather_health
from services.ops.metrics import CONTENT_TYPE, AppMetrics
from services.ops.openapi import openapi_document
from services.data.snapshots import DataFolder, dumps
from services.data.store import DataStore


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
    """Prometheus text format 0.0.4, written by prometheus_client."""

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

"""`/api/trakt/sync`: start a sync (admin) and see how the last one went."""

from __future__ import annotations

from typing import Any

from handlers.base import ApiHandler
from services.config import Config
from services.trakt.service import SyncService


class SyncHandler(ApiHandler):
    """POST starts a sync in the background (202, or 409 while one runs, naming the process that
    holds the lock when it is another one); GET shows its status."""

    def initialize(self, config: Config, sync: SyncService, **kwargs: Any) -> None:
        super().initialize(config, **kwargs)
        self.sync = sync

    def set_default_headers(self) -> None:
        super().set_default_headers()
        self.set_header("Cache-Control", "no-store")

    def get(self) -> None:
        self.write_json(self.sync.details())

    def post(self) -> None:
        self.require_admin()
        self.sync.start_now()  # 409 (SyncAlreadyRunning) while a sync runs here or in another process
        self.write_json({"message": "Sync started", "running": True, "status_url": self.request.path}, status=202)

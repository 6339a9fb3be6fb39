"""The web dashboard: `static/` as it is (no build step), with the security headers."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import tornado.web


class DashboardFileHandler(tornado.web.StaticFileHandler):
    """`GET /` (index.html) and `/static/*`. Files are revalidated on every load (cheap 304s), so
    an upgrade is picked up at once even though the file names carry no version."""

    def set_default_headers(self) -> None:
        for name, value in self.settings.get("dashboard_headers", {}).items():
            self.set_header(name, value)

    def set_extra_headers(self, path: str) -> None:
        self.set_header("Cache-Control", "no-cache")

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.set_header("Content-Type", "text/plain; charset=UTF-8")
        try:
            phrase = HTTPStatus(status_code).phrase
        except ValueError:
            phrase = "Error"
        self.finish(f"{status_code} {phrase}\n")

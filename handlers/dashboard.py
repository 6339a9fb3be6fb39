"""The web dashboard: `static/` as it is (no build step), with the security headers."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import tornado.web

from handlers.base import API_BODY_LIMIT, refuse_large_body


@tornado.web.stream_request_body  # prepare() runs on the headers, before any body is read
class DashboardFileHandler(tornado.web.StaticFileHandler):
    """`GET /` (index.html) and `/static/*`. Files are revalidated on every load (cheap 304s), so
    an upgrade is picked up at once even though the file names carry no version."""

    def set_default_headers(self) -> None:
        for name, value in self.settings.get("dashboard_headers", {}).items():
            self.set_header(name, value)

    def prepare(self) -> None:
        refuse_large_body(self.request, API_BODY_LIMIT)  # README "Security and reliability"

    def data_received(self, chunk: bytes) -> None:
        """A body (within the limit) is dropped as it arrives."""

    def validate_absolute_path(self, root: str, absolute_path: str) -> str | None:
        if "\x00" in absolute_path:  # no file has one; the filesystem calls would raise ValueError
            raise tornado.web.HTTPError(404)
        return super().validate_absolute_path(root, absolute_path)

    def set_extra_headers(self, path: str) -> None:
        self.set_header("Cache-Control", "no-cache")

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.set_header("Content-Type", "text/plain; charset=UTF-8")
        try:
            phrase = HTTPStatus(status_code).phrase
        except ValueError:
            phrase = "Error"
        self.finish(f"{status_code} {phrase}\n")

"""The web dashboard: `static/` as it is (no build step), with the security headers, and each
text file gzip-compressed once at start-up for the clients that accept it."""

from __future__ import annotations

import gzip
import os
from http import HTTPStatus
from pathlib import Path
from typing import Any

import tornado.web

from handlers.base import API_BODY_LIMIT, accepts_gzip, refuse_large_body

COMPRESSIBLE = (".html", ".css", ".js", ".svg", ".json", ".txt")
GZIP_LEVEL = 9  # once per start on a few small files: the best ratio costs nothing per request


class PrecompressedFiles:
    """The gzip form of every text file under `root`, made once, with the size and mtime of the
    file it was made from: a file changed since (an upgrade in place) is served uncompressed
    rather than stale."""

    def __init__(self, root: Path) -> None:
        self._files: dict[str, tuple[int, int, bytes]] = {}
        for path in sorted(root.rglob("*")):
            if path.suffix in COMPRESSIBLE and path.is_file():
                stat = path.stat()
                packed = gzip.compress(path.read_bytes(), GZIP_LEVEL, mtime=0)
                self._files[os.path.abspath(path)] = (stat.st_size, stat.st_mtime_ns, packed)

    def covers(self, absolute_path: str) -> bool:
        """Whether this file has a gzip form (its answers then vary with Accept-Encoding)."""
        return absolute_path in self._files

    def lookup(self, absolute_path: str, stat: os.stat_result) -> bytes | None:
        entry = self._files.get(absolute_path)
        if entry is None or (entry[0], entry[1]) != (stat.st_size, stat.st_mtime_ns):
            return None
        return entry[2]



class DashboardFileHandler(tornado.web.StaticFileHandler):
    """`GET /` (index.html) and `/static/*`. Files are revalidated on every load (cheap 304s), so
    an upgrade is picked up at once even though the file names carry no version."""

    refuses_large_bodies = True  # prepare() refuses a body from its headers (handlers.base.Application)

    def initialize(self, path: str, default_filename: str | None = None,
                   packed: PrecompressedFiles | None = None) -> None:
        super().initialize(path, default_filename)
        self.packed = packed
        self._gzip: bytes | None = None

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

    async def get(self, path: str, include_body: bool = True) -> None:
        """The gzip form from memory when the client takes it (and asks for no byte range);
        otherwise Tornado's own file serving."""
        if self.packed is None or self.request.headers.get("Range") \
                or not accepts_gzip(self.request.headers.get("Accept-Encoding", "")):
            await super().get(path, include_body)
            return
        self.path = self.parse_url_path(path)
        self.absolute_path = self.validate_absolute_path(self.root, self.get_absolute_path(self.root, self.path))
        if self.absolute_path is None:
            return
        self._gzip = self.packed.lookup(self.absolute_path, os.stat(self.absolute_path))
        if self._gzip is None:
            await super().get(path, include_body)
            return
        self.modified = self.get_modified_time()
        self.set_headers()
        if self.should_return_304():
            self.set_status(304)
            return
        self.set_header("Content-Length", len(self._gzip))
        if include_body:
            self.write(self._gzip)

    def compute_etag(self) -> str | None:
        etag = super().compute_etag()
        # A distinct validator per encoding (RFC 9110 §8.8.3.3), so no cache mixes the two.
        return etag[:-1] + '-gz"' if etag and self._gzip is not None else etag

    def set_extra_headers(self, path: str) -> None:
        self.set_header("Cache-Control", "no-cache")
        if self.packed is not None and self.packed.covers(self.absolute_path):
            self.set_header("Vary", "Accept-Encoding")
        if self._gzip is not None:
            self.set_header("Content-Encoding", "gzip")

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.set_header("Content-Type", "text/plain; charset=UTF-8")
        try:
            phrase = HTTPStatus(status_code).phrase
        except ValueError:
            phrase = "Error"
        self.finish(f"{status_code} {phrase}\n")

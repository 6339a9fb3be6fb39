"""Image routes: /api/images redirects, a random backdrop, the admin reload, and /images/ files."""

from __future__ import annotations

import email.utils
import os
import stat
from collections.abc import Awaitable
from datetime import datetime, timezone
from typing import Any

import tornado.web

from handlers.base import ApiHandler, BaseHandler
from services.config import Config
from services.images.index import ImageIndex
from services.images.naming import IMAGE_TYPES
from services.images.queries import IMAGE
# The redirect target of one id never changes once indexed; let browsers keep it for an hour.
REDIRECT_CACHE = "public, max-age=3600"
IMMUTABLE = "public, max-age=31536000, immutable"
FILE_CHUNK = 64 * 1024


class ImageRedirectHandler(ApiHandler):
    """GET /api/images?type=&category=&tmdb_id=[&season=][&w=&q=&output=&maxage=] -> 302."""

    def initialize(self, config: Config, index: ImageIndex, **kwargs: Any) -> None:
        super().initialize(config, **kwargs)
        self.index = index

    def get(self) -> None:
        query = self.parsed(IMAGE)
        relative = self.index.lookup(query["type"], query["category"], query["tmdb_id"], query["season"])
        if relative is None:
            raise tornado.web.HTTPError(404, reason="Image not found")
        self.set_header("Cache-Control", REDIRECT_CACHE)
        self.redirect(self.index.url_for(relative, w=query["w"], q=query["q"], output=query["output"],
                                         maxage=query["maxage"]), status=302)

    head = get


class RandomBackdropHandler(ApiHandler):
    """GET /api/images/random-backdrop -> {"url", "tmdbId", "type"}; 404 when none is indexed."""

    def initialize(self, config: Config, index: ImageIndex, **kwargs: Any) -> None:
        super().initialize(config, **kwargs)
        self.index = index

    def get(self) -> None:
        backdrop = self.index.random_backdrop()
        if backdrop is None:
            raise tornado.web.HTTPError(404, reason="No backdrops indexed")
        self.set_header("Cache-Control", "no-store")  # a different one each time
        self.write_json(backdrop)

    def compute_etag(self) -> str | None:
        return None  # random by design: a 304 would pin one picture


class AvailableImagesHandler(ApiHandler):
    """GET /api/images/available: every indexed id per type/category (and season posters),
    so the dashboard requests only pictures that exist."""

    def initialize(self, config: Config, index: ImageIndex, **kwargs: Any) -> None:
        super().initialize(config, **kwargs)
        self.index = index

    def get(self) -> Awaitable[None] | None:
        return self.write_cached(self.index.available())


class ImageReloadHandler(ApiHandler):
    """POST /api/images/reload-cache (admin): rescan the image folder and manifest."""

    def initialize(self, config: Config, index: ImageIndex, **kwargs: Any) -> None:
        super().initialize(config, **kwargs)
        self.index = index

    async def post(self) -> None:
        self.require_admin()
        stats = await self.index.reload()
        self.set_header("Cache-Control", "no-store")
        self.write_json({"success": True, "message": "Image index reloaded successfully", "stats": stats})


class ImageFileHandler(BaseHandler):
    """GET /images/<path>: files of the current image folder, long-cached, never outside it.

    The folder comes from the index on every request (demo images or DATA_DIR/images), errors
    are JSON and only image files are served. The file is opened one path segment at a time
    beneath the folder with O_NOFOLLOW, so no symlink (planted or swapped in while we answer) is
    ever followed, and what is checked and sent is the opened file itself, not the path."""

    def initialize(self, config: Config, index: ImageIndex, **kwargs: Any) -> None:
        super().initialize(config)
        self.index = index

    async def get(self, path: str) -> None:
        _check_image_path(path)
        fd = _open_beneath(str(self.index.images_dir()), path)
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise tornado.web.HTTPError(404, reason="Image not found")
            self.set_header("Content-Type", IMAGE_TYPES[path.rsplit(".", 1)[1].lower()])
            self.set_header("Cache-Control", IMMUTABLE)
            # An SVG opened directly must not run script in our origin.
            self.set_header("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; sandbox")
            self.set_header("Last-Modified", datetime.fromtimestamp(int(info.st_mtime), timezone.utc))
            self.set_header("Etag", f'"{info.st_ino:x}-{info.st_size:x}-{info.st_mtime_ns:x}"')
            if self.check_etag_header() or self._not_modified_since(info.st_mtime):
                self.set_status(304)
                self.finish()
                return
            self.set_header("Content-Length", info.st_size)
            if self.request.method == "HEAD":
                self.finish()
                return
            remaining = info.st_size
            while remaining > 0:
                chunk = os.read(fd, min(remaining, FILE_CHUNK))
                if not chunk:  # truncated in place while we sent it: the connection is closed
                    break
                remaining -= len(chunk)
                self.write(chunk)
                await self.flush()
        finally:
            os.close(fd)
        self.finish()

    def _not_modified_since(self, mtime: float) -> bool:
        if self.request.headers.get("If-None-Match"):
            return False  # RFC 9110 §13.1.3: the ETag decides
        since = self.request.headers.get("If-Modified-Since")
        try:
            stamp = email.utils.parsedate_to_datetime(since) if since else None
        except (TypeError, ValueError):
            return False
        return stamp is not None and stamp.tzinfo is not None and int(mtime) <= stamp.timestamp()

    def compute_etag(self) -> str | None:
        return None  # set from the opened file in get()


def _open_beneath(root: str, relative: str) -> int:
    """A read-only descriptor of `root/relative` with no symlink below `root` (the folder itself
    may be one): each folder is opened relative to the one before with O_NOFOLLOW, and so is the
    file, non-blocking so a FIFO planted there cannot hang us. 404 when anything is missing."""
    try:
        folder = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        raise tornado.web.HTTPError(404, reason="Image not found") from None
    try:
        *folders, name = relative.split("/")
        for segment in folders:
            inner = os.open(segment, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=folder)
            os.close(folder)
            folder = inner
        return os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=folder)
    except OSError:
        raise tornado.web.HTTPError(404, reason="Image not found") from None
    finally:
        os.close(folder)


def _check_image_path(path: str) -> None:
    """Refuse before touching the filesystem: hidden or parent segments, odd characters,
    anything that is not an image file name."""
    segments = path.split("/")
    if (not path or len(path) > 512 or "\\" in path or "\x00" in path
            or any(not s or s.startswith(".") for s in segments)):
        raise tornado.web.HTTPError(404, reason="Image not found")
    name = segments[-1]
    if "." not in name or name.rsplit(".", 1)[1].lower() not in IMAGE_TYPES:
        raise tornado.web.HTTPError(404, reason="Image not found")

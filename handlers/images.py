"""Image routes: /api/images redirects, a random backdrop, the admin reload, and /images/ files."""

from __future__ import annotations

import os
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


class ImageRedirectHandler(ApiHandler):
    """GET /api/images?type=&category=&tmdb_id=[&season=][&w=&q=&output=&maxage=] -> 302."""

    def initialize(self, config: Config, index: ImageIndex, **kwargs: Any) -> None:
        super().initialize(config, **kwargs)
        self.index = index

    def get(self) -> None:
        query = IMAGE.parse(self.request.query_arguments)
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

    async def get(self) -> None:
        await self.write_cached(self.index.available())


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


class ImageFileHandler(BaseHandler, tornado.web.StaticFileHandler):
    """GET /images/<path>: files of the current image folder, long-cached, never outside it.

    The folder comes from the index on every request (demo images or DATA_DIR/images), errors
    are JSON, only image files are served, and symlinks that lead out of the folder are refused."""

    def initialize(self, config: Config, index: ImageIndex, **kwargs: Any) -> None:  # type: ignore[override]
        BaseHandler.initialize(self, config)
        self.index = index
        self.root = str(index.images_dir())
        self.default_filename = None

    async def get(self, path: str, include_body: bool = True) -> None:
        _check_image_path(path)
        await super().get(path, include_body)

    async def head(self, path: str) -> None:  # type: ignore[override]
        await self.get(path, include_body=False)

    def validate_absolute_path(self, root: str, absolute_path: str) -> str | None:
        real_root = os.path.realpath(root)
        real_path = os.path.realpath(absolute_path)
        if os.path.commonpath([real_root, real_path]) != real_root:
            raise tornado.web.HTTPError(404, reason="Image not found")
        if not os.path.isfile(real_path):
            raise tornado.web.HTTPError(404, reason="Image not found")
        return absolute_path

    def get_cache_time(self, path: str, modified: Any, mime_type: str) -> int:
        return 31536000

    def set_extra_headers(self, path: str) -> None:
        self.set_header("Cache-Control", IMMUTABLE)
        # An SVG opened directly must not run script in our origin.
        self.set_header("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; sandbox")

    def get_content_type(self) -> str:
        assert self.absolute_path is not None
        return IMAGE_TYPES[self.absolute_path.rsplit(".", 1)[1].lower()]


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

"""/api/trakt/*: the mirrored account, answered from the DataStore's ready bytes."""

from __future__ import annotations

from typing import Any

import tornado.web

from handlers.base import ApiHandler
from services.data.search import DEFAULT_LIMIT, MAX_LIMIT
from services.data.store import DataStore

TYPES = ("movies", "shows", "all")
MAX_PAGE_LIMIT = 1000
MAX_QUERY_LENGTH = 200


class StoreHandler(ApiHandler):
    def initialize(self, config: Any, store: DataStore, **kwargs: Any) -> None:
        super().initialize(config)
        self.store = store
        self.options_kwargs = kwargs


class IndexHandler(StoreHandler):
    """GET: index.json with sync status; POST (admin): reload everything from disk and say what
    could not be loaded."""

    async def get(self) -> None:
        await self.write_cached(self.store.index())

    async def post(self) -> None:
        self.require_admin()
        self.write_json(await self.store.reload_on_request())


class FileHandler(StoreHandler):
    """A route that answers one whole file (profile, stats, comments, lists, ratings)."""

    def initialize(self, config: Any, store: DataStore, endpoint: str) -> None:
        super().initialize(config, store)
        self.endpoint = endpoint

    async def get(self) -> None:
        await self.write_cached(self.store.file(self.endpoint))


class TypedCollectionHandler(StoreHandler):
    """history / watched / watchlist with `type=movies|shows|all` and optional `page` + `limit`."""

    def initialize(self, config: Any, store: DataStore, files: dict[str, str]) -> None:
        super().initialize(config, store)
        self.files = files

    async def get(self) -> None:
        kind = self.query_choice("type", TYPES, "all")
        page = self.query_int("page", None, 1, 1_000_000)
        limit = self.query_int("limit", None, 1, MAX_PAGE_LIMIT)
        if page is None and limit is not None:
            page = 1
        elif page is not None and limit is None:
            limit = DEFAULT_LIMIT
        if kind == "all":
            body = self.store.both(self.files, page, limit)
        elif page is not None:
            body = self.store.page(self.files[kind], page, limit)
        else:
            body = self.store.file(self.files[kind])
        await self.write_cached(body)


class ListItemsHandler(StoreHandler):
    async def get(self, list_id: str) -> None:
        await self.write_cached(self.store.list_items(list_id))


class ActivityHandler(StoreHandler):
    """Plays per month and the weekday x hour heatmap, in the configured time zone."""

    def get(self) -> None:
        self.write_json(self.store.activity())


class SearchHandler(StoreHandler):
    def get(self) -> None:
        query = self._raw_query_argument("q")
        if query is None or not query.strip():
            raise tornado.web.HTTPError(400, reason="Missing search query: q must not be empty")
        if len(query) > MAX_QUERY_LENGTH:
            raise tornado.web.HTTPError(
                400, reason=f"Search query too long: at most {MAX_QUERY_LENGTH} characters")
        kind = self.query_choice("type", TYPES, "all")
        limit = self.query_int("limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
        self.write_json(self.store.search(query.strip(), kind, limit))

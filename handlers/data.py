"""/api/trakt/*: the mirrored account, answered from the DataStore's ready bytes."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from handlers.base import ApiHandler
from services.data.queries import CALENDAR, COLLECTION, INSIGHTS, PAGED, SEARCH, UP_NEXT, paging
from services.data.store import DataStore
from services.watching.watcher import Watcher


class StoreHandler(ApiHandler):
    # Answers made from the rows' figures, which a large account builds after ready (README "Performance").
    needs_rows = False

    def initialize(self, config: Any, store: DataStore, **kwargs: Any) -> None:
        super().initialize(config)
        self.store = store
        self.options_kwargs = kwargs

    def prepare(self) -> Awaitable[None] | None:
        super().prepare()
        return self.store.when_finished() if self.needs_rows else None


class IndexHandler(StoreHandler):
    """GET: index.json with sync status; POST (admin): reload everything from disk and say what
    could not be loaded."""

    def get(self) -> Awaitable[None] | None:
        return self.write_cached(self.store.index())

    async def post(self) -> None:
        self.require_admin()
        self.write_json(await self.store.reload_on_request())


class FileHandler(StoreHandler):
    """A route that answers one whole file (profile, stats, comments, lists, ratings)."""

    def initialize(self, config: Any, store: DataStore, endpoint: str) -> None:
        super().initialize(config, store)
        self.endpoint = endpoint

    def get(self) -> Awaitable[None] | None:
        return self.write_cached(self.store.file(self.endpoint))


class PagedFileHandler(FileHandler):
    """A list-shaped file (comments) whole, or one page of it with `page` + `limit`."""

    def get(self) -> Awaitable[None] | None:
        paged = paging(self.parsed(PAGED))
        return self.write_cached(self.store.file(self.endpoint) if paged is None
                                 else self.store.page(self.endpoint, *paged))


class TypedCollectionHandler(StoreHandler):
    """history / watched / watchlist with `type=movies|shows|all` and optional `page` + `limit`."""

    def initialize(self, config: Any, store: DataStore, files: dict[str, str]) -> None:
        super().initialize(config, store)
        self.files = files

    def get(self) -> Awaitable[None] | None:
        query = self.parsed(COLLECTION)
        kind = query["type"]
        page, limit = paging(query) or (None, None)
        if kind == "all":
            body = self.store.both(self.files, page, limit)
        elif page is not None:
            body = self.store.page(self.files[kind], page, limit)
        else:
            body = self.store.file(self.files[kind])
        return self.write_cached(body)


class ListItemsHandler(StoreHandler):
    """The items of one list, whole or one page of them with `page` + `limit`."""

    def get(self, list_id: str) -> Awaitable[None] | None:
        paged = paging(self.parsed(PAGED))
        return self.write_cached(self.store.list_items(list_id, *(paged or (None, None))))


class ActivityHandler(StoreHandler):
    """Plays per month and the weekday x hour heatmap, in the configured time zone."""

    needs_rows = True

    def get(self) -> Awaitable[None] | None:
        return self.write_cached(self.store.activity())


class SearchHandler(StoreHandler):
    needs_rows = True

    def get(self) -> None:
        query = self.parsed(SEARCH)
        self.finish(self.store.search_json(query["q"], query["type"], query["limit"]))


class InsightsHandler(StoreHandler):
    """Year in review (`?year=`) or all time, in the configured time zone (README "Insights")."""

    needs_rows = True

    def get(self) -> Awaitable[None] | None:
        return self.write_cached(self.store.insights(self.parsed(INSIGHTS)["year"]))


class SummaryHandler(StoreHandler):
    """A small JSON for home dashboards: what plays now (the Watcher's state) and this year's figures."""

    needs_rows = True

    def initialize(self, config: Any, store: DataStore, watcher: Watcher) -> None:
        super().initialize(config, store)
        self.watcher = watcher

    def get(self) -> None:
        self.set_header("Cache-Control", "no-cache")  # what plays and its percentage change by the second
        self.write_json(self.store.summary(self.watcher.state()))


class UpNextHandler(StoreHandler):
    """Shows in progress with the next episode to watch; `include=completed` adds finished ones."""

    needs_rows = True

    def get(self) -> Awaitable[None] | None:
        query = self.parsed(UP_NEXT)
        return self.write_cached(self.store.up_next(query["include"] == "completed"))


class CalendarHandler(StoreHandler):
    """Upcoming episodes and watchlist movie releases for `days` days from today (TIMEZONE)."""

    needs_rows = True

    def get(self) -> Awaitable[None] | None:
        query = self.parsed(CALENDAR)
        return self.write_cached(self.store.calendar(query["days"]))

"""/calendar.ics: the calendar as an RFC 5545 feed behind the secret in its URL (README "Calendar feed")."""

from __future__ import annotations

import hmac
from typing import Any

import tornado.web

from handlers.base import BaseHandler
from services import times
from services.data import ical
from services.data.queries import FEED, FEED_TOKEN_ONLY
from services.data.store import DataStore
from services.errors import InvalidRequest

ICS_TYPE = "text/calendar; charset=utf-8"


class CalendarFeedHandler(BaseHandler):
    """Calendar apps cannot send headers, so the token is a query parameter; it is compared in
    constant time, and a missing, wrong or unconfigured one is a plain 404 (the feed's existence
    is not revealed). The access log writes the path only, never the query."""

    def initialize(self, config: Any, store: DataStore) -> None:
        super().initialize(config)
        self.store = store

    def get(self) -> None:
        expected = self.config.calendar_token
        try:
            sent = FEED_TOKEN_ONLY.parse(self.request.query_arguments)["token"] or ""
        except InvalidRequest:  # sent twice, too long, not UTF-8: not the token
            sent = ""
        if not expected or not hmac.compare_digest(str(sent).encode(), expected.encode()):
            raise tornado.web.HTTPError(404, reason="Not Found")
        query = FEED.parse(self.request.query_arguments)
        rows = self.store.calendar_rows(query["days"], in_progress_only=query["shows"] == "in-progress",
                                        premieres_only=query["premieres"] == "1")
        self.set_header("Content-Type", ICS_TYPE)
        self.set_header("Cache-Control", "private, max-age=300")
        # DTSTAMP is the data's date, so an unchanged feed has the same bytes and ETag (a 304).
        self.finish(ical.feed(rows, times.parse(self.store.data_last_updated) or self.store.clock()))

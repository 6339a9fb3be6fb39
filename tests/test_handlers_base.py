"""handlers/base.py's error answers through Tornado's public hooks (`write_error`, `log_exception`):
what the client gets and what the log gets, for each kind of failure."""

from __future__ import annotations

import json
import logging
from dataclasses import replace

import pytest
import tornado.httpclient
import tornado.httputil
import tornado.iostream
import tornado.web

from handlers.base import ApiHandler, header_value
from services.config import Config
from services.errors import BrokenData, NotFound

BIG = b"x" * 100_000


class Failing(ApiHandler):
    """GET /fail/<kind>: fails the way `kind` says."""

    async def get(self, kind: str) -> None:
        if kind == "http":
            raise tornado.web.HTTPError(400, reason="Invalid type parameter 'é': must be one of movies, shows")
        if kind == "not-found":
            raise NotFound("No such list: best")
        if kind == "broken":
            raise BrokenData("user/stats/overview.json is not valid JSON")
        if kind == "unexpected":
            raise RuntimeError("internals")
        if kind == "client-gone":
            raise tornado.iostream.StreamClosedError()
        # after the headers and part of the body have gone out
        self.set_header("Content-Length", str(len(BIG) * 2))
        self.write(BIG)
        await self.flush()
        raise RuntimeError("half way")


@pytest.fixture
def app():
    return tornado.web.Application([(r"/fail/(.*)", Failing, {"config": replace(Config())})])


def logged(caplog) -> list[logging.LogRecord]:
    """Warnings and errors, leaving out the access log (a line per request by design)."""
    return [r for r in caplog.records if r.levelno >= logging.WARNING and r.name != "tornado.access"]


async def fetch(http_client, base_url, kind):
    return await http_client.fetch(f"{base_url}/fail/{kind}", raise_error=False)


@pytest.mark.gen_test
async def test_an_http_error_answers_its_reason_as_json_with_the_standard_status_line(http_client, base_url,
                                                                                      caplog):
    with caplog.at_level(logging.DEBUG):
        response = await fetch(http_client, base_url, "http")
    assert response.code == 400 and response.reason == "Bad Request"
    assert json.loads(response.body) == {"error": "Invalid type parameter 'é': must be one of movies, shows"}
    assert response.headers["Content-Type"] == "application/json; charset=UTF-8"
    assert response.headers["Cache-Control"] == "no-store"
    assert logged(caplog) == []


@pytest.mark.gen_test
async def test_a_service_error_answers_its_status_and_message(http_client, base_url, caplog):
    with caplog.at_level(logging.DEBUG):
        missing = await fetch(http_client, base_url, "not-found")
        broken = await fetch(http_client, base_url, "broken")
    assert missing.code == 404 and json.loads(missing.body) == {"error": "No such list: best"}
    assert broken.code == 500 and json.loads(broken.body) == {"error": "user/stats/overview.json is not valid JSON"}
    errors = logged(caplog)
    assert [r.getMessage() for r in errors] == ["GET /fail/broken: user/stats/overview.json is not valid JSON"]
    assert errors[0].exc_info is None  # one line, no traceback


@pytest.mark.gen_test
async def test_an_unexpected_error_is_a_bare_500_and_one_logged_traceback(http_client, base_url, caplog):
    with caplog.at_level(logging.DEBUG):
        response = await fetch(http_client, base_url, "unexpected")
    assert response.code == 500 and json.loads(response.body) == {"error": "Internal server error"}
    [error] = logged(caplog)
    assert error.getMessage() == "unexpected error on GET /fail/unexpected"
    assert error.exc_info[0] is RuntimeError


@pytest.mark.gen_test
async def test_a_client_that_went_away_is_not_an_error(http_client, base_url, caplog):
    with caplog.at_level(logging.DEBUG):
        await fetch(http_client, base_url, "client-gone")
    assert logged(caplog) == []


@pytest.mark.gen_test
async def test_an_error_after_the_headers_went_out_cuts_the_connection(http_client, base_url):
    # The answer must not look complete: the client sees the connection end before Content-Length.
    with pytest.raises((tornado.httpclient.HTTPClientError, tornado.iostream.StreamClosedError, OSError)):
        await http_client.fetch(f"{base_url}/fail/partial")


def test_header_value_is_what_get_answers_for_present_absent_and_repeated_headers():
    headers = tornado.httputil.HTTPHeaders()
    headers.add("Accept-Encoding", "gzip")
    headers.add("If-None-Match", '"a"')
    headers.add("If-None-Match", '"b"')
    assert header_value(headers, "accept-encoding", "") == "gzip"
    assert header_value(headers, "If-None-Match") == '"a","b"'  # joined, as get() joins them
    assert header_value(headers, "Origin") is None
    assert header_value(headers, "Origin", "") == ""

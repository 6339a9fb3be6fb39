"""The fixed-path router in front of the route table (README "Performance"): the same handler and
arguments as the table's own rules, for exactly the paths those rules match."""

from __future__ import annotations

import re

import pytest
import tornado.web

from server import FixedPaths, fixed_paths


def test_fixed_paths_of_route_patterns():
    assert fixed_paths(r"/api/trakt/user/stats/?") == ["/api/trakt/user/stats", "/api/trakt/user/stats/"]
    assert fixed_paths(r"/calendar\.ics") == ["/calendar.ics"]
    assert fixed_paths(r"/healthz") == ["/healthz"]
    for with_parameter in (r"/api/trakt/user/lists/([^/]+)/?", r"/api/.*", r"/()", r"/year/?()", r"/static/(.*)",
                           r"/a|/b", r"/x+"):
        assert fixed_paths(with_parameter) == []


def test_every_fixed_path_goes_where_the_first_matching_rule_would(app):
    router = next(rule.target for rule in app.wildcard_router.rules if isinstance(rule.target, FixedPaths))
    assert app.wildcard_router.rules[0].target is router  # asked before any regex
    rules = [rule for rule in app.wildcard_router.rules if isinstance(rule.target, type)]
    assert len(router.table) >= 40
    for path, (handler, kwargs) in router.table.items():
        first = next(rule for rule in rules if re.fullmatch(rule.matcher.regex.pattern.rstrip("$"), path))
        assert (handler, kwargs) == (first.target, first.target_kwargs), path


@pytest.mark.gen_test
async def test_fixed_and_parameter_routes_both_answer(http_client, base_url):
    for path, status in (("/api/trakt/user/stats", 200), ("/api/trakt/user/stats/", 200), ("/healthz", 200),
                         ("/api/trakt/user/lists/nope", 404), ("/api/nothing", 404), ("/api/trakt/user/stat", 404)):
        response = await http_client.fetch(base_url + path, raise_error=False)
        assert response.code == status, path


def test_a_router_for_an_app_without_fixed_paths_is_empty():
    app = tornado.web.Application()
    assert FixedPaths(app, [(r"/(.*)", tornado.web.RequestHandler, {})]).table == {}

"""GET /api/openapi.json: a valid OpenAPI 3.1 document that matches the route table exactly."""

from __future__ import annotations

import json
import re

import pytest
import tornado.web
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from services.ops.openapi import openapi_document

# Routes that are not part of the HTTP API: the dashboard page, its static files, the WebSocket and
# the JSON 404 for unknown /api/ paths.
UNDOCUMENTED = {"/{}", "/year/?{}", "/static/{}", "/favicon.ico", "/ws/watching", "/api/.*"}
_GROUP = re.compile(r"\((?:[^()\\]|\\.)*\)")


def route_path(pattern: str) -> str:
    """`/api/trakt/user/lists/([^/]+)/?$` -> `/api/trakt/user/lists/{}`."""
    text = pattern.rstrip("$")
    if text.endswith("/?"):
        text = text[:-2] or "/"
    if text == "/api/.*":
        return text
    return _GROUP.sub("{}", text).replace("\\", "")


def documented_path(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path)


def routes(app: tornado.web.Application) -> dict[str, type]:
    table = {}
    for rule in app.wildcard_router.rules:
        if isinstance(rule.target, type):
            table[route_path(rule.matcher.regex.pattern)] = rule.target
    return table


def test_document_is_valid_openapi_31():
    document = openapi_document()
    assert document["openapi"] == "3.1.0"
    validate(document)  # the OpenAPI 3.1 meta-schema, including every schema object's dialect


def test_every_documented_path_and_method_is_routed(app):
    table = routes(app)
    for path, operations in openapi_document()["paths"].items():
        handler = table.get(documented_path(path))
        assert handler is not None, f"{path} is documented but not routed"
        for method in operations:
            implemented = getattr(handler, method)
            assert implemented is not getattr(tornado.web.RequestHandler, method), \
                f"{method.upper()} {path} is documented but {handler.__name__} does not implement it"


def test_every_route_is_documented_with_every_method(app):
    paths = {documented_path(p): ops for p, ops in openapi_document()["paths"].items()}
    for path, handler in routes(app).items():
        if path in UNDOCUMENTED:
            continue
        assert path in paths, f"{path} ({handler.__name__}) is routed but not documented"
        for method in ("get", "post", "put", "patch", "delete"):
            if getattr(handler, method) is not getattr(tornado.web.RequestHandler, method):
                assert method in paths[path], f"{method.upper()} {path} is implemented but not documented"


def test_contract_routes_are_all_documented():
    paths = openapi_document()["paths"]
    expected = {
        ("/api/trakt", "get"), ("/api/trakt", "post"), ("/api/trakt/user/profile", "get"),
        ("/api/trakt/user/stats", "get"), ("/api/trakt/user/comments", "get"), ("/api/trakt/user/lists", "get"),
        ("/api/trakt/user/history", "get"), ("/api/trakt/user/watched", "get"),
        ("/api/trakt/user/watchlist", "get"), ("/api/trakt/user/lists/{id}", "get"),
        ("/api/trakt/search", "get"), ("/api/watching", "get"), ("/api/images", "get"),
        ("/api/images/random-backdrop", "get"), ("/api/images/reload-cache", "post"), ("/images/{path}", "get"),
        ("/api/images/available", "get"),
        ("/healthz", "get"), ("/metrics", "get"), ("/api/openapi.json", "get"),
        ("/api/trakt/user/ratings", "get"), ("/api/trakt/user/activity", "get"),
        ("/api/trakt/sync", "get"), ("/api/trakt/sync", "post"),
        ("/api/trakt/user/insights", "get"), ("/api/trakt/user/summary", "get"),
        ("/api/trakt/user/up-next", "get"), ("/api/trakt/user/calendar", "get"), ("/calendar.ics", "get"),
    }
    assert {(p, m) for p, ops in paths.items() for m in ops} == expected


def test_parameters_carry_enums_and_ranges():
    paths = openapi_document()["paths"]
    history = {p["name"]: p["schema"] for p in paths["/api/trakt/user/history"]["get"]["parameters"]}
    assert history["type"]["enum"] == ["movies", "shows", "all"]
    assert history["page"]["minimum"] == 1 and history["limit"]["maximum"] == 1000
    search = {p["name"]: p for p in paths["/api/trakt/search"]["get"]["parameters"]}
    assert search["q"]["required"] is True
    assert search["limit"]["schema"]["maximum"] == 500
    images = {p["name"]: p for p in paths["/api/images"]["get"]["parameters"]}
    assert {n for n, p in images.items() if p["required"]} == {"picture", "tmdb_id"}
    picture = images["picture"]["schema"]
    assert (images["picture"]["style"], images["picture"]["explode"]) == ("form", True)  # type=…&category=…
    assert picture["required"] == ["type", "category"]
    assert picture["properties"]["category"]["enum"] == ["posters", "backdrops"]


def test_season_is_documented_as_valid_only_for_show_posters():
    """OpenAPI cannot tie one parameter to another, so type, category and season are one
    exploded object whose schema says it; a JSON Schema validator reads the rule as the server does."""
    [rule] = openapi_document()["paths"]["/api/images"]["get"]["parameters"][0]["schema"]["allOf"]
    validator = Draft202012Validator(openapi_document()["paths"]["/api/images"]["get"]["parameters"][0]["schema"])
    assert validator.is_valid({"type": "shows", "category": "posters", "season": 2})
    assert validator.is_valid({"type": "movies", "category": "posters", "season": ""})  # blank: not given
    assert validator.is_valid({"type": "movies", "category": "backdrops"})
    assert not validator.is_valid({"type": "movies", "category": "posters", "season": 0})
    assert not validator.is_valid({"type": "shows", "category": "backdrops", "season": 1})
    assert rule["then"]["properties"] == {"type": {"const": "shows"}, "category": {"const": "posters"}}


def test_optional_query_parameters_allow_blank_and_required_ones_do_not():
    """Blank (`?limit=`) is the same as leaving an optional parameter out (OpenAPI's allowEmptyValue);
    a required one sent blank is missing."""
    for path, operations in openapi_document()["paths"].items():
        for parameter in operations.get("get", {}).get("parameters", []):
            if parameter["in"] != "query" or parameter.get("explode"):
                continue
            assert parameter.get("allowEmptyValue", False) is not parameter["required"], (path, parameter["name"])


def test_errors_are_exactly_an_error_string():
    document = openapi_document()
    error = document["components"]["schemas"]["Error"]
    assert error == {"type": "object", "required": ["error"], "additionalProperties": False,
                     "properties": {"error": {"type": "string", "minLength": 1}}}
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                schema = response.get("content", {}).get("application/json", {}).get("schema")
                if status.startswith(("4", "5")) and path != "/healthz":
                    assert schema == {"$ref": "#/components/schemas/Error"}, (method, path, status)


def test_admin_operations_declare_the_bearer_token():
    document = openapi_document()
    admin = [(p, m) for p, ops in document["paths"].items() for m, op in ops.items() if "security" in op]
    assert sorted(admin) == [("/api/images/reload-cache", "post"), ("/api/trakt", "post"),
                             ("/api/trakt/sync", "post")]
    assert document["components"]["securitySchemes"]["adminToken"] == {
        **document["components"]["securitySchemes"]["adminToken"], "type": "http", "scheme": "bearer"}


@pytest.mark.gen_test(timeout=10)
async def test_served_document_is_the_generated_one(http_client, base_url):
    response = await http_client.fetch(base_url + "/api/openapi.json")
    assert response.headers["Content-Type"] == "application/json; charset=UTF-8"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert json.loads(response.body) == openapi_document()

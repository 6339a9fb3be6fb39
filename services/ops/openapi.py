"""The OpenAPI 3.1 description of every route, served at /api/openapi.json.

Query parameters come from the declarations the handlers parse with (services/query.py), so the
document cannot promise what the server refuses. Kept true by tests/ops/test_openapi.py (every
documented path is routed, every route is documented) and tests/ops/test_fuzz.py (schemathesis
checks live answers against these schemas).
"""

from __future__ import annotations

import copy
from typing import Any

from services.data.layout import SLUG_PATTERN
from services.data.queries import CALENDAR, COLLECTION, FEED, INSIGHTS, PAGED, SEARCH, UP_NEXT
from services.images.queries import IMAGE
from services.query import Param, Query

VERSION = "0.1.0"
JSON = "application/json"
# What Python's str.strip() removes (str.isspace()); JavaScript's \s is another set, so a pattern
# that says "not only white space" must list them.
PYTHON_WHITESPACE = r"\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


def _whole(pattern: str) -> str:
    """A Python `fullmatch` pattern as a JSON Schema pattern (which may match anywhere)."""
    return f"^(?:{pattern})$"  # ECMA-262, which JSON Schema uses: `$` is the end of the input


def _schema(param: Param) -> dict[str, Any]:
    if param.type == "integer":
        schema: dict[str, Any] = {"type": "integer"}
        if param.minimum is not None:
            schema["minimum"] = param.minimum
        if param.maximum is not None:
            schema["maximum"] = param.maximum
    else:
        schema = {"type": "string"}
        if param.choices:
            schema["enum"] = list(param.choices)
        if param.max_length is not None:
            schema["maxLength"] = param.max_length
        if param.pattern is not None:
            schema["pattern"] = _whole(param.pattern)
        elif param.strip:
            schema.update(minLength=1, pattern=f"[^{PYTHON_WHITESPACE}]")
    if param.default is not None:
        schema["default"] = param.default
    return schema


def _parameters(query: Query) -> list[dict[str, Any]]:
    """The OpenAPI parameters of a declared query. Parameters tied by a rule are one exploded
    object (on the wire still `type=…&category=…&season=…`), the only way OpenAPI can state it."""
    grouped: dict[str, list] = {}
    for rule in query.rules:
        grouped.setdefault(rule.group, []).append(rule)
    members = {name for rules in grouped.values() for rule in rules for name in (rule.param, *rule.values)}
    parameters = [_group(query, name, rules) for name, rules in grouped.items()]
    for param in query.params:
        if param.name in members:
            continue
        parameters.append({"name": param.name, "in": "query", "required": param.required,
                           "schema": _schema(param), "description": param.description})
        if not param.required:
            parameters[-1]["allowEmptyValue"] = True  # blank is the same as leaving it out
    return parameters


def _group(query: Query, name: str, rules: list) -> dict[str, Any]:
    names = {n for rule in rules for n in (rule.param, *rule.values)}
    params = [p for p in query.params if p.name in names]
    properties = {}
    for param in params:
        schema = _schema(param)
        if not param.required:
            schema = {"anyOf": [schema, {"const": ""}]}  # blank is the same as leaving it out
        properties[param.name] = {**schema, "description": param.description}
    conditions = [{"if": {"required": [rule.param], "properties": {rule.param: {"not": {"const": ""}}}},
                   "then": {"properties": {n: {"const": v} for n, v in rule.values.items()}}} for rule in rules]
    schema = {"type": "object", "properties": properties, "required": [p.name for p in params if p.required],
              "additionalProperties": False, "allOf": conditions}
    sent = "&".join(f"{p.name}=…" for p in params)
    return {"name": name, "in": "query", "style": "form", "explode": True,
            "required": any(p.required for p in params), "schema": schema,
            "description": f"Sent as `{sent}`: " + "; ".join(rule.explanation() for rule in rules) + "."}


ETAG_HEADER = {"ETag": {"description": "Strong validator of the body; send it back in If-None-Match.",
                        "schema": {"type": "string"}}}
IF_NONE_MATCH = {"name": "If-None-Match", "in": "header", "required": False, "schema": {"type": "string"},
                 "description": "An ETag from an earlier answer: 304 when the data has not changed."}

DATA_ERRORS = {
    "304": {"description": "Not modified (If-None-Match matched)."},
    "404": _error("The file for this route has not been synced."),
    "500": _error("The file exists but is malformed (other routes keep working; /healthz says degraded)."),
    "503": _error("No data can be served yet."),
}
ADMIN_ERRORS = {
    "401": _error("ADMIN_TOKEN is set and no `Authorization: Bearer` header was sent."),
    "403": _error("Wrong token, or no ADMIN_TOKEN and the client is not on this machine."),
}
ADMIN_SECURITY = [{}, {"adminToken": []}]


def _data_get(summary: str, schema: dict[str, Any], tag: str, parameters: list | None = None,
              extra: dict | None = None) -> dict[str, Any]:
    responses: dict[str, Any] = {"200": {**_json(schema, "The data."), "headers": ETAG_HEADER}}
    responses.update(DATA_ERRORS)
    if parameters:
        responses["400"] = _error("A parameter is invalid; the message names it.")
    responses.update(extra or {})
    return {"get": {"summary": summary, "tags": [tag], "parameters": [*(parameters or []), IF_NONE_MATCH],
                    "responses": dict(sorted(responses.items()))}}


def _insights_schema() -> dict[str, Any]:
    count = {"type": "integer", "minimum": 0}
    streak = {"type": "object", "required": ["days", "start", "end"],
              "properties": {"days": count, "start": {"type": ["string", "null"], "format": "date"},
                             "end": {"type": ["string", "null"], "format": "date"}}}
    sums = {"plays": count, "minutes": count}

    def rows(key: dict[str, Any], name: str, required: tuple[str, ...] = ("plays", "minutes")) -> dict[str, Any]:
        return {"type": "array", "items": {"type": "object", "required": [name, *required],
                                           "properties": {name: key, **sums}}}

    def busiest(name: str) -> dict[str, Any]:
        return {"type": ["object", "null"], "required": [name, "plays", "minutes"],
                "properties": {name: {"type": "string"}, **sums}}

    return {
        "type": "object",
        "description": "Year in review (or all time) in the configured TIMEZONE; README \"Insights\".",
        "required": ["year", "timezone", "years", "totals", "first_play", "last_play", "streaks", "busiest_day",
                     "busiest_week", "busiest_month", "by_month", "by_weekday", "by_hour", "days", "top_shows",
                     "top_movies", "genres", "decades", "countries", "languages", "ratings"],
        "properties": {
            "year": {"type": ["integer", "null"]},
            "timezone": {"type": "string"},
            "years": {"type": "array", "items": {"type": "integer"}},
            "totals": {"type": "object", "properties": {name: count for name in (
                "plays", "movie_plays", "episode_plays", "minutes", "movies", "shows", "episodes", "rewatches",
                "unknown_runtime_plays")}, "required": ["plays", "movie_plays", "episode_plays", "minutes", "movies",
                                                        "shows", "episodes", "rewatches", "unknown_runtime_plays"]},
            "first_play": {"type": ["object", "null"], "description": "The history row."},
            "last_play": {"type": ["object", "null"], "description": "The history row."},
            "streaks": {"type": "object", "required": ["longest", "current"],
                        "properties": {"longest": streak, "current": streak}},
            "busiest_day": busiest("date"),
            "busiest_week": busiest("week"),
            "busiest_month": busiest("month"),
            "by_month": rows({"type": "string"}, "month"),
            "by_weekday": {**rows({"type": "string"}, "weekday"), "minItems": 7, "maxItems": 7},
            "by_hour": {**rows({"type": "integer"}, "hour"), "minItems": 24, "maxItems": 24},
            "days": {"type": "object", "additionalProperties": count, "description": "YYYY-MM-DD: plays."},
            "top_shows": {"type": "array", "maxItems": 10, "items": {"type": "object", "required": [
                "show", "plays", "minutes", "episodes"]}},
            "top_movies": {"type": "array", "maxItems": 10, "items": {"type": "object", "required": [
                "movie", "plays", "minutes", "last_watched"]}},
            "genres": rows({"type": "string"}, "genre"),
            "decades": rows({"type": "integer"}, "decade", ("plays",)),
            "countries": rows({"type": "string"}, "country", ("plays",)),
            "languages": rows({"type": "string"}, "language", ("plays",)),
            "ratings": {"type": "object", "required": ["count", "average", "distribution", "highest"],
                        "properties": {"count": count, "average": {"type": ["number", "null"]},
                                       "distribution": {"type": "object", "additionalProperties": count},
                                       "highest": {"type": "array", "maxItems": 10, "items": {"type": "object"}}}},
        },
    }


SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object", "required": ["error"], "additionalProperties": False,
        "properties": {"error": {"type": "string", "minLength": 1}},
    },
    "Metadata": {
        "type": "object",
        "required": ["last_updated", "source", "username", "endpoint", "count"],
        "properties": {
            "last_updated": {"type": ["string", "null"]},
            "source": {"type": "string"},
            "username": {"type": ["string", "null"]},
            "endpoint": {"type": "string"},
            "count": {"type": "integer", "minimum": 0},
            "page": {"type": "integer", "minimum": 1},
            "limit": {"type": "integer", "minimum": 1},
            "total": {"type": "integer", "minimum": 0},
        },
    },
    "Wrapper": {
        "type": "object", "required": ["metadata", "data"],
        "properties": {"metadata": _ref("Metadata"), "data": {}},
    },
    "ListWrapper": {
        "type": "object", "required": ["metadata", "data"],
        "properties": {"metadata": _ref("Metadata"), "data": {"type": "array", "items": {"type": "object"}}},
    },
    "ObjectWrapper": {
        "type": "object", "required": ["metadata", "data"],
        "properties": {"metadata": _ref("Metadata"), "data": {"type": "object"}},
    },
    "MoviesAndShows": {
        "type": "object", "required": ["movies", "shows"], "additionalProperties": False,
        "properties": {"movies": _ref("ListWrapper"), "shows": _ref("ListWrapper")},
    },
    "Collection": {"anyOf": [_ref("ListWrapper"), _ref("MoviesAndShows")]},
    "SearchResults": {
        "type": "object", "required": ["query", "type", "results", "total_results"],
        "properties": {
            "query": {"type": "string"},
            "type": {"type": "string", "enum": ["movies", "shows", "all"]},
            "results": {
                "type": "object", "required": ["movies", "shows"],
                "properties": {"movies": {"type": "array", "items": {"type": "object"}},
                               "shows": {"type": "array", "items": {"type": "object"}}},
            },
            "total_results": {"type": "integer", "minimum": 0},
        },
    },
    "Watching": {
        "type": "object", "required": ["isWatching"],
        "properties": {
            "isWatching": {"type": "boolean"},
            "content": {
                "type": "object",
                "properties": {
                    "type": {"type": "string", "enum": ["movie", "episode"]},
                    "title": {"type": "string"},
                    "subtitle": {"type": ["string", "null"]},
                    "year": {"type": ["integer", "null"]},
                    "progress": {"type": "object", "properties": {
                        "started_at": {"type": "string"}, "expires_at": {"type": "string"},
                        "percentage": {"type": "number", "minimum": 0, "maximum": 100}}},
                    "images": {"type": ["object", "null"]},
                    "ids": {"type": "object"},
                },
            },
        },
    },
    "AvailableImages": {
        "type": "object", "required": ["movies", "shows"],
        "properties": {
            "movies": {"type": "object", "required": ["posters", "backdrops"], "properties": {
                "posters": {"type": "array", "items": {"type": "integer"}},
                "backdrops": {"type": "array", "items": {"type": "integer"}}}},
            "shows": {"type": "object", "required": ["posters", "backdrops", "seasons"], "properties": {
                "posters": {"type": "array", "items": {"type": "integer"}},
                "backdrops": {"type": "array", "items": {"type": "integer"}},
                "seasons": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "integer"}}}}},
        },
    },
    "RandomBackdrop": {
        "type": "object", "required": ["url", "tmdbId", "type"],
        "properties": {"url": {"type": "string"}, "tmdbId": {"type": ["integer", "string"]},
                       "type": {"type": "string", "enum": ["movies", "shows"]}},
    },
    "ImageReload": {
        "type": "object", "required": ["success", "message", "stats"],
        "properties": {
            "success": {"type": "boolean"},
            "message": {"type": "string"},
            "stats": {
                "type": "object",
                "required": ["moviePosters", "movieBackdrops", "showPosters", "showBackdrops", "seasonPosters"],
                "properties": {k: {"type": "integer", "minimum": 0} for k in
                               ("moviePosters", "movieBackdrops", "showPosters", "showBackdrops", "seasonPosters")},
            },
        },
    },
    "Message": {
        "type": "object", "required": ["message"], "properties": {"message": {"type": "string"}},
    },
    "SyncStatus": {
        "type": "object",
        "description": "State of the sync: whether one runs now and the report of the last one.",
    },
    "Activity": {
        "type": "object",
        "description": "Plays per month and a weekday x hour heatmap in the configured TIMEZONE.",
    },
    "Insights": _insights_schema(),
    "Summary": {
        "type": "object",
        "required": ["timezone", "now_watching", "plays_today", "plays_this_week", "plays_this_year",
                     "minutes_this_year", "current_streak", "last_watched", "next_up"],
        "properties": {
            "timezone": {"type": "string"},
            "now_watching": {"type": ["object", "null"], "required": ["type", "title", "subtitle", "percentage"],
                             "properties": {"type": {"type": ["string", "null"]}, "title": {"type": ["string", "null"]},
                                            "subtitle": {"type": "string"},
                                            "percentage": {"type": "number", "minimum": 0, "maximum": 100}}},
            **{name: {"type": "integer", "minimum": 0} for name in (
                "plays_today", "plays_this_week", "plays_this_year", "minutes_this_year", "current_streak")},
            "current_streak_start": {"type": ["string", "null"], "format": "date"},
            "last_watched": {"type": ["object", "null"], "required": ["type", "title", "subtitle", "watched_at"]},
            "next_up": {
                "type": ["object", "null"],
                "description": "The next episode of the show in progress watched most recently (the first row of "
                               "/api/trakt/user/up-next); null when no show is in progress or without show data.",
                "required": ["type", "title", "subtitle", "season", "number", "episode_title", "aired_left"],
                "properties": {"type": {"const": "episode"}, "title": {"type": ["string", "null"]},
                               "subtitle": {"type": "string", "description": "S1E2 - Episode title"},
                               "season": {"type": "integer", "minimum": 1}, "number": {"type": "integer"},
                               "episode_title": {"type": ["string", "null"]},
                               "aired_left": {"type": "integer", "minimum": 1,
                                              "description": "Aired episodes not watched yet, this one included."}}},
        },
    },
    "UpNext": {
        "type": "object", "required": ["metadata", "data"],
        "properties": {
            "metadata": {"type": "object", "required": ["last_updated", "timezone", "count"]},
            "data": {"type": "array", "items": {
                "type": "object",
                "required": ["show", "next_episode", "aired_left", "last_watched_at", "status"],
                "properties": {
                    "show": {"type": "object"},
                    "next_episode": {"anyOf": [{"type": "null"}, {
                        "type": "object", "required": ["season", "number", "title", "first_aired", "runtime"]}]},
                    "aired_left": {"type": "integer", "minimum": 0},
                    "aired": {"type": "integer", "minimum": 0},
                    "watched": {"type": "integer", "minimum": 0},
                    "last_watched_at": {"type": ["string", "null"]},
                    "status": {"type": ["string", "null"]},
                }}},
        },
    },
    "Calendar": {
        "type": "object", "required": ["metadata", "data"],
        "properties": {
            "metadata": {"type": "object", "required": ["timezone", "count", "days", "start_date", "end_date"]},
            "data": {"type": "array", "items": {
                "type": "object", "required": ["type", "first_aired", "date", "local_time", "title", "runtime",
                                               "premiere", "finale"],
                "properties": {
                    "type": {"type": "string", "enum": ["episode", "movie"]},
                    "first_aired": {"type": ["string", "null"], "description": "UTC; null for a movie release"},
                    "date": {"type": "string", "description": "the day in TIMEZONE"},
                    "local_time": {"type": ["string", "null"], "description": "HH:MM in TIMEZONE"},
                    "show": {"type": "object"}, "movie": {"type": "object"}, "episode": {"type": "object"},
                    "premiere": {"type": "boolean"}, "finale": {"type": "boolean"},
                }}},
        },
    },
    "Health": {
        "type": "object",
        "required": ["status", "data_age_seconds", "last_sync", "watcher", "reasons", "demo"],
        "properties": {
            "status": {"type": "string", "enum": ["ok", "degraded"]},
            "data_age_seconds": {"type": ["number", "null"], "minimum": 0},
            "last_sync": {"type": ["object", "null"]},
            "watcher": {"type": "object"},
            "reasons": {"type": "array", "items": {"type": "string"}},
            "demo": {"type": "boolean"},
            "sign_in": {"type": "object", "description": "The Trakt sign-in: state (signed_in, signed_out, lost, "
                                                         "refused), username, message; never a token."},
        },
    },
}

PATHS: dict[str, Any] = {
    "/api/trakt": {
        **_data_get("Overview of the mirrored data (index.json), with sync status in metadata",
                    _ref("ObjectWrapper"), "trakt"),
        "post": {
            "summary": "Reload every data file from disk (admin)", "tags": ["trakt"],
            "security": ADMIN_SECURITY,
            "responses": {"200": _json(_ref("Message"), "Reloaded: {\"message\": \"Cache cleared successfully\"}."),
                          **ADMIN_ERRORS},
        },
    },
    "/api/trakt/user/profile": _data_get("Profile", _ref("ObjectWrapper"), "trakt"),
    "/api/trakt/user/stats": _data_get("Statistics", _ref("ObjectWrapper"), "trakt"),
    "/api/trakt/user/comments": _data_get("Comments and reviews", _ref("ListWrapper"), "trakt", _parameters(PAGED)),
    "/api/trakt/user/ratings": _data_get("Ratings", _ref("ListWrapper"), "trakt"),
    "/api/trakt/user/lists": _data_get("The user's lists", _ref("ListWrapper"), "trakt"),
    "/api/trakt/user/lists/{id}": _data_get(
        "Items of one list, by slug or numeric Trakt id", _ref("ListWrapper"), "trakt",
        [{"name": "id", "in": "path", "required": True,
          "schema": {"type": "string", "pattern": _whole(SLUG_PATTERN)},
          "description": "List slug (e.g. `best-of-2023`) or numeric Trakt id; anything else is 400."},
         *_parameters(PAGED)]),
    "/api/trakt/user/history": _data_get("Watch history", _ref("Collection"), "trakt", _parameters(COLLECTION)),
    "/api/trakt/user/watched": _data_get("Watched movies and shows with play counts", _ref("Collection"),
                                         "trakt", _parameters(COLLECTION)),
    "/api/trakt/user/watchlist": _data_get("Watchlist", _ref("Collection"), "trakt", _parameters(COLLECTION)),
    "/api/trakt/user/up-next": _data_get(
        "Shows in progress with the next episode to watch, newest last_watched_at first", _ref("UpNext"), "trakt",
        _parameters(UP_NEXT)),
    "/api/trakt/user/calendar": _data_get(
        "Upcoming episodes of watched shows and watchlist movie releases, by day in TIMEZONE", _ref("Calendar"),
        "trakt", _parameters(CALENDAR)),
    "/calendar.ics": {"get": {
        "summary": "The calendar as an RFC 5545 feed for calendar apps (CALENDAR_TOKEN in the URL)",
        "tags": ["trakt"],
        "parameters": _parameters(FEED),
        "responses": {
            "200": {"description": "The feed: one event per calendar row, each with a stable UID.",
                    "content": {"text/calendar": {"schema": {"type": "string"}}}},
            "304": {"description": "Not modified (If-None-Match matched)."},
            "400": _error("A filter is invalid (only once the token matched)."),
            "404": _error("CALENDAR_TOKEN is not set, or `token` is missing or wrong; or no show data is synced."),
            "503": DATA_ERRORS["503"],
        },
    }},
    "/api/trakt/user/activity": {"get": {
        "summary": "Plays per month and weekday x hour heatmap", "tags": ["trakt"],
        "responses": {"200": _json(_ref("Activity"), "Activity statistics."),
                      "503": DATA_ERRORS["503"]},
    }},
    "/api/trakt/user/insights": _data_get(
        "Year in review (`year`) or all-time insights, in the configured TIMEZONE", _ref("Insights"), "trakt",
        _parameters(INSIGHTS)),
    "/api/trakt/user/summary": {"get": {
        "summary": "A small JSON for home dashboards (Homepage, Glance): now watching, plays today, this week "
                   "and this year, minutes this year, current streak, last watched", "tags": ["trakt"],
        "responses": {"200": _json(_ref("Summary"), "The summary (not cached: the percentage moves)."),
                      "503": DATA_ERRORS["503"]},
    }},
    "/api/trakt/search": {"get": {
        "summary": "Search titles across watched, watchlist, history and list items", "tags": ["trakt"],
        "parameters": _parameters(SEARCH),
        "responses": {"200": _json(_ref("SearchResults"), "Best matches first."),
                      "400": _error("Missing, blank or too long `q`, or a bad `type`/`limit`."),
                      "503": DATA_ERRORS["503"]},
    }},
    "/api/trakt/sync": {
        "get": {
            "summary": "State of the sync: running now, last report", "tags": ["sync"],
            "responses": {"200": _json(_ref("SyncStatus"), "Sync state.")},
        },
        "post": {
            "summary": "Start a sync now (admin)", "tags": ["sync"], "security": ADMIN_SECURITY,
            "responses": {
                "202": _json(_ref("SyncStatus"), "A sync was started."),
                "409": _error("A sync is already running."),
                "503": _error("Sync is not configured (TRAKT_API_KEY / TRAKT_USERNAME missing)."),
                **ADMIN_ERRORS,
            },
        },
    },
    "/api/watching": {"get": {
        "summary": "What the user is watching now (the watcher's state, never a Trakt call)",
        "tags": ["watching"],
        "responses": {"200": _json(_ref("Watching"), "`{isWatching: false}` or the content and its progress.")},
    }},
    "/api/images": {"get": {
        "summary": "Redirect to a poster, backdrop or season poster", "tags": ["images"],
        "parameters": _parameters(IMAGE),
        "responses": {
            "302": {"description": "Found: `Location` is the image URL.",
                    "headers": {"Location": {"schema": {"type": "string"}}}},
            "400": _error("A parameter is missing or invalid; the message names it."),
            "404": _error("No such image in the index."),
        },
    }},
    "/api/images/random-backdrop": {"get": {
        "summary": "A random indexed backdrop", "tags": ["images"],
        "responses": {"200": _json(_ref("RandomBackdrop"), "A backdrop."),
                      "404": _error("No backdrop is indexed.")},
    }},
    "/api/images/available": {"get": {
        "summary": "Every indexed image id, so a page requests only pictures that exist", "tags": ["images"],
        "responses": {"200": _json(_ref("AvailableImages"), "Ids per type and category; season posters per show.")},
    }},
    "/api/images/reload-cache": {"post": {
        "summary": "Rescan the image folder and manifest (admin)", "tags": ["images"],
        "security": ADMIN_SECURITY,
        "responses": {"200": _json(_ref("ImageReload"), "The new index counts."), **ADMIN_ERRORS},
    }},
    "/images/{path}": {"get": {
        "summary": "Image files of DATA_DIR/images (when no IMAGE_BASE_URL is set)", "tags": ["images"],
        "parameters": [{"name": "path", "in": "path", "required": True, "schema": {"type": "string"},
                        "example": "movies/posters/27205_poster.jpg",  # also tells clients `/` is meant
                        "description": "A path below the image folder, slashes unescaped."}],
        "responses": {
            "200": {"description": "The image, with long cache headers.",
                    "content": {"image/*": {"schema": {"type": "string", "contentMediaType": "image/*"}}}},
            "304": {"description": "Not modified."},
            "404": _error("No such image (also: not an image name, or a path that leaves the folder)."),
        },
    }},
    "/healthz": {"get": {
        "summary": "Health: ok or degraded with reasons; 503 when no data can be served", "tags": ["ops"],
        "responses": {"200": _json(_ref("Health"), "Serving (status ok or degraded)."),
                      "503": _json(_ref("Health"), "Nothing can be served.")},
    }},
    "/metrics": {"get": {
        "summary": "Prometheus metrics (text format 0.0.4)", "tags": ["ops"],
        "responses": {"200": {"description": "Metrics.",
                              "content": {"text/plain": {"schema": {"type": "string"}}}}},
    }},
    "/api/openapi.json": {"get": {
        "summary": "This document", "tags": ["ops"],
        "responses": {"200": _json({"type": "object", "required": ["openapi", "paths"]}, "OpenAPI 3.1.")},
    }},
}


def openapi_document() -> dict[str, Any]:
    """A fresh copy of the document (callers may add `servers`)."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Trakt Watch Dashboard",
            "version": VERSION,
            "description": "A self-hosted mirror of one Trakt.tv account: its data, images and what "
                           "is playing now. Errors are always `{\"error\": message}`. GET answers carry "
                           "an ETag; `/api/*` GETs allow any origin.",
        },
        "paths": copy.deepcopy(PATHS),
        "components": {
            "schemas": copy.deepcopy(SCHEMAS),
            "securitySchemes": {"adminToken": {
                "type": "http", "scheme": "bearer",
                "description": "ADMIN_TOKEN. Without one configured, admin POSTs are accepted from "
                               "loopback clients only."}},
        },
    }

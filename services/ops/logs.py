"""Logging: text or JSON lines, one access line per request, and no secret in any record.

`setup_logging(config)` installs one handler on the root logger. Its filter rewrites every
record that passes through it so that the values of `config.secrets()` (API keys, the admin
token) are replaced by `[REDACTED]` (services/redact.py), whatever logger or library produced the
record, including exception tracebacks.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, TextIO

import tornado.web

from services.config import Config
from services.ops.metrics import AppMetrics
from services.redact import REDACTED as REDACTED  # what tests and callers import from here
from services.redact import Redactor

ACCESS_LOGGER = "trakt_watch.access"

# Standard LogRecord attributes; anything else on a record came from `extra=` and goes into JSON.
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
_KNOWN_METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"))


class RedactingFilter(logging.Filter):
    """Replaces secret values in a record's message, arguments, extras and traceback text."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.redact = Redactor(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.redact:
            return True
        message = record.getMessage()
        record.msg = self.redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
            record.exc_info = None  # the redacted text is what gets printed
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        for key, value in list(vars(record).items()):
            if key not in _RECORD_FIELDS and isinstance(value, str):
                setattr(record, key, self.redact(value))
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, any `extra=` fields, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RECORD_FIELDS and not key.startswith("_"):
                entry[key] = value if isinstance(value, (str, int, float, bool, type(None))) else str(value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, ensure_ascii=False, default=str)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(config: Config, stream: TextIO | None = None) -> logging.Handler:
    """Route every logger to one handler on `stream` (stderr) in the configured format and level.

    Replaces handlers installed by an earlier call, so it can be called again with a new config.
    Returns the handler (tests attach it to a buffer).
    """
    # The Logging HOWTO's optimisations: our formats never show where a call came from, or the
    # thread and process, and finding the caller walks the stack on every access line.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    if config.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    handler.addFilter(RedactingFilter(config.secrets()))
    handler.set_name("trakt-watch")
    root = logging.getLogger()
    for old in list(root.handlers):
        if old.get_name() == "trakt-watch":
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(config.log_level)
    # Our own access lines replace tornado.access; aiohttp's client chatter stays at WARNING.
    logging.getLogger("tornado.access").setLevel(logging.WARNING)
    logging.getLogger("aiohttp").setLevel(max(logging.WARNING, logging.getLevelName(config.log_level)))
    logging.captureWarnings(True)
    return handler


class RouteNamer:
    """Names the route pattern that served a request (`/api/trakt/user/lists/{id}`), never the raw
    path, so metric labels stay few whatever paths clients invent."""

    def __init__(self) -> None:
        self._by_class: dict[type, list[tuple[Any, str]]] | None = None

    def _index(self, application: tornado.web.Application) -> dict[type, list[tuple[Any, str]]]:
        if self._by_class is None:
            by_class: dict[type, list[tuple[Any, str]]] = {}
            for rule in application.wildcard_router.rules:
                target = rule.target
                if isinstance(target, type):
                    by_class.setdefault(target, []).append((rule.matcher, route_pattern(rule)))
            self._by_class = by_class
        return self._by_class

    def name(self, handler: tornado.web.RequestHandler) -> str:
        candidates = self._index(handler.application).get(type(handler), [])
        if len(candidates) == 1:
            return candidates[0][1]
        for matcher, pattern in candidates:
            if matcher.match(handler.request) is not None:
                return pattern
        return "unmatched"


_GROUP = re.compile(r"\(\?P<(\w+)>(?:[^()\\]|\\.)*\)|\((?:[^()\\]|\\.)*\)")


def route_pattern(rule: Any) -> str:
    """`/api/trakt/user/lists/([^/]+)$` -> `/api/trakt/user/lists/{id}`; a named rule keeps its name."""
    if getattr(rule, "name", None):
        return rule.name
    matcher = rule.matcher
    regex = getattr(matcher, "regex", None)
    if regex is None:
        return type(matcher).__name__
    text = regex.pattern.rstrip("$")
    if text.endswith("/?"):  # an optional trailing slash is the same route
        text = text[:-2] or "/"
    if text in (".*", "/.*", r"/(.*)"):
        return "unmatched"
    return _GROUP.sub(lambda m: "{" + (m.group(1) or "param") + "}", text).replace("\\", "")


def access_log_function(metrics: AppMetrics | None = None,
                        logger: logging.Logger | None = None) -> Callable[[tornado.web.RequestHandler], None]:
    """`Application(log_function=...)`: one line per request (method, path, status, ms) at INFO
    for success, WARNING for 4xx, ERROR for 5xx; also feeds the request metrics."""
    access = logger or logging.getLogger(ACCESS_LOGGER)
    namer = RouteNamer()

    def log_request(handler: tornado.web.RequestHandler) -> None:
        status = handler.get_status()
        seconds = handler.request.request_time()
        request = handler.request
        method = request.method if request.method in _KNOWN_METHODS else "other"
        route = namer.name(handler)
        if metrics is not None:
            metrics.observe_request(route, method, status, seconds)
        level = logging.INFO if status < 400 else logging.WARNING if status < 500 else logging.ERROR
        if not access.isEnabledFor(level):
            return
        ms = round(seconds * 1000, 2)
        access.log(level, "%s %s %d %.2fms %s", method, request.path, status, ms, request.remote_ip,
                   extra={"method": method, "path": request.path, "status": status, "ms": ms,
                          "route": route, "remote_ip": request.remote_ip})

    return log_request

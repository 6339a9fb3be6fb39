"""Logging: text or JSON lines, one access line per request, and no secret in any record.

`setup_logging(config)` installs one handler on the root logger. Its filter rewrites every
record that passes through it so that the values of `config.secrets()` (API keys, the admin
token) are replaced by `[REDACTED]` (services/redact.py), whatever logger or library produced the
record, including exception tracebacks.

Access lines skip the logging machinery when that handler is the only one they would reach
(README "Performance"): the line is formatted the way a record would be, redacted the same way,
and written with the other lines of the same event-loop iteration in one write.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sys
import time
from collections import deque
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


class _SecondStamps:
    """Timestamps as the formatters write them, the part up to the second made once per second."""

    def __init__(self, second: Callable[[int], str], fraction: str) -> None:
        self._second, self._fraction = second, fraction  # fraction: "%s,%03d"-like, of (second, ms)
        self._last: tuple[int, str] = (-1, "")

    def __call__(self, created: float) -> str:
        whole = int(created)
        if whole != self._last[0]:
            self._last = (whole, self._second(whole))
        return self._fraction % (self._last[1], int((created - whole) * 1000))


def _utc_second(whole: int) -> str:
    return datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _local_second(whole: int) -> str:
    return time.strftime(logging.Formatter.default_time_format, time.localtime(whole))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, any `extra=` fields, exception."""

    def __init__(self) -> None:
        super().__init__()
        self.stamp = _SecondStamps(_utc_second, "%s.%03d+00:00")  # isoformat(timespec="milliseconds")

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.stamp(record.created),
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


class LogHandler(logging.StreamHandler):
    """The one handler `setup_logging` installs: records as any StreamHandler writes them, and
    access lines (`access_line`) gathered and written once per event-loop iteration.

    A request costs a tuple appended to a deque: the lines are formatted, redacted and written
    together at the end of the iteration (README "Performance"). A record written in between first
    writes the lines gathered before it, and `flush()` (called by `logging.shutdown` at exit) writes
    what is left, so lines keep their order and none is lost."""

    def __init__(self, stream: TextIO, log_format: str, secrets: Iterable[str]) -> None:
        super().__init__(stream)
        self.as_json = log_format == "json"
        self.setFormatter(JsonFormatter() if self.as_json else logging.Formatter(TEXT_FORMAT))
        self.redacting = RedactingFilter(secrets)
        self.addFilter(self.redacting)
        self.text_stamp = _SecondStamps(_local_second, logging.Formatter.default_msec_format)
        # Appended on the loop thread without the lock (deque appends and pops are atomic); drained
        # under the lock by whichever thread writes next.
        self._pending: deque[tuple] = deque()

    def access_line(self, level: int, logger: str, method: str, path: str, status: int, seconds: float,
                    route: str, remote_ip: str) -> None:
        """Gather the line `logger.log(level, "%s %s %d %.2fms %s", ...)` with these fields as
        `extra=` would write through this handler (`ms` = `seconds` in milliseconds, 2 decimals)."""
        pending = self._pending
        pending.append((time.time(), level, logger, method, path, status, seconds, route, remote_ip))
        if len(pending) == 1:  # the first of this iteration: the others find the write scheduled
            try:
                asyncio.get_running_loop().call_soon(self.write_access_lines)
            except RuntimeError:  # no event loop: nothing will come back for it
                self.write_access_lines()

    def write_access_lines(self) -> None:
        with self.lock:
            pending = self._pending
            if not pending:
                return
            lines = self._format_access([pending.popleft() for _ in range(len(pending))])
            try:
                self.stream.write(lines)
                self.stream.flush()
            except (OSError, ValueError):  # a closed or broken stream, as logging.raiseExceptions=False
                pass

    def _format_access(self, gathered: list[tuple]) -> str:
        """The gathered fields as the text this handler would write for their records, redacted as
        its filter would redact them."""
        redact, terminator = self.redacting.redact, self.terminator
        return "".join([self._access_text(fields, redact) + terminator for fields in gathered])

    def _access_text(self, fields: tuple, redact: Redactor) -> str:
        created, level, logger, method, path, status, seconds, route, remote_ip = fields
        message = f"{method} {path} {status} {seconds * 1000:.2f}ms {remote_ip}"
        if redact:
            message, path = redact(message), redact(path)
        if not self.as_json:
            return f"{self.text_stamp(created)} {logging.getLevelName(level)} {logger}: {message}"
        return json.dumps({"time": self.formatter.stamp(created), "level": logging.getLevelName(level),
                           "logger": logger, "message": message, "method": method, "path": path, "status": status,
                           "ms": round(seconds * 1000, 2), "route": route, "remote_ip": remote_ip},
                          ensure_ascii=False, default=str)

    def emit(self, record: logging.LogRecord) -> None:
        if self._pending:
            self.write_access_lines()
        super().emit(record)

    def flush(self) -> None:
        if self._pending:
            self.write_access_lines()
        super().flush()


def setup_logging(config: Config, stream: TextIO | None = None) -> logging.Handler:
    """Route every logger to one handler on `stream` (stderr) in the configured format and level.

    Replaces handlers installed by an earlier call, so it can be called again with a new config.
    Returns the handler (tests attach it to a buffer).
    """
    # The Logging HOWTO's optimisations: our formats never show the thread or the process.
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = LogHandler(stream if stream is not None else sys.stderr, config.log_format, config.secrets())
    handler.set_name("trakt-watch")
    root = logging.getLogger()
    for old in list(root.handlers):
        if old.get_name() == "trakt-watch":
            root.removeHandler(old)
            old.flush()
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

    PATHS_KEPT = 1024  # a route class serving several patterns: the names of that many paths are remembered

    def __init__(self) -> None:
        self._by_class: dict[type, list[tuple[Any, str]]] | None = None
        self._by_path: dict[tuple[type, str], str] = {}

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
        index = self._index(handler.application)
        candidates = index.get(type(handler))
        if candidates is None:  # a class no rule names (the streaming twin of a routed one): its base's routes
            candidates = index[type(handler)] = next(
                (index[base] for base in type(handler).__mro__[1:] if base in index), [])
        if len(candidates) == 1:
            return candidates[0][1]
        key = (type(handler), handler.request.path)
        found = self._by_path.get(key)
        if found is None:
            found = next((pattern for matcher, pattern in candidates if matcher.match(handler.request) is not None),
                         "unmatched")
            if len(self._by_path) >= self.PATHS_KEPT:
                self._by_path.clear()  # paths clients invent: start over rather than grow
            self._by_path[key] = found
        return found


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


def _only_handler(logger: logging.Logger) -> LogHandler | None:
    """Our handler when it is the one handler a record of `logger` would reach, else None."""
    node: logging.Logger | None = logger
    found = None
    while node is not None:
        if node.handlers:
            if found is not None or len(node.handlers) != 1 or node.filters:
                return None
            found = node.handlers[0]
        if not node.propagate:
            break
        node = node.parent
    return found if isinstance(found, LogHandler) and not logger.filters else None


def access_log_function(metrics: AppMetrics | None = None,
                        logger: logging.Logger | None = None) -> Callable[[tornado.web.RequestHandler], None]:
    """`Application(log_function=...)`: one line per request (method, path, status, ms) at INFO
    for success, WARNING for 4xx, ERROR for 5xx; also feeds the request metrics.

    The path never carries the query string (where the calendar feed's token travels)."""
    access = logger or logging.getLogger(ACCESS_LOGGER)
    namer = RouteNamer()
    observe = metrics.observe_request if metrics is not None else None

    def log_request(handler: tornado.web.RequestHandler) -> None:
        status = handler.get_status()
        request = handler.request
        seconds = request.request_time()
        method = request.method if request.method in _KNOWN_METHODS else "other"
        route = namer.name(handler)
        if observe is not None:
            observe(route, method, status, seconds)
        level = logging.INFO if status < 400 else logging.WARNING if status < 500 else logging.ERROR
        if not access.isEnabledFor(level):
            return
        direct = _only_handler(access)
        if direct is not None:
            direct.access_line(level, access.name, method, request.path, status, seconds, route, request.remote_ip)
            return
        ms = round(seconds * 1000, 2)
        access.log(level, "%s %s %d %.2fms %s", method, request.path, status, ms, request.remote_ip,
                   extra={"method": method, "path": request.path, "status": status, "ms": ms,
                          "route": route, "remote_ip": request.remote_ip})

    return log_request

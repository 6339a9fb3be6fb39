"""What every handler shares: JSON errors, CORS on GET /api/*, cached-bytes writes, the admin rule."""

from __future__ import annotations

import hmac
import logging
import socket
from http import HTTPStatus
from collections.abc import Awaitable
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import tornado.iostream
import tornado.web

from services.config import Config, is_loopback
from services.data.dataset import Body
from services.errors import BrokenData, Conflict, InvalidRequest, NotFound, NotReady, ServiceError
from services.data.snapshots import dumps
from services.query import Query

log = logging.getLogger("trakt_watch.http")

JSON_TYPE = "application/json; charset=UTF-8"
INLINE_BODY_LIMIT = 64 * 1024  # above this, headers and body are written separately (no copy)
# The body types a page of any site may POST without a CORS preflight (the "simple" requests of
# the Fetch standard); admin routes refuse them.
FORM_MEDIA_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data", "text/plain")
CROSS_SITE_FETCHES = ("cross-site", "same-site")
# README "Security and reliability": no route reads a request body; an admin POST may carry a
# small JSON. Anything larger is refused from its headers (413) before a byte is read.
API_BODY_LIMIT = 4 * 1024
SERVER_BODY_LIMIT = 64 * 1024  # the HTTPServer's own cap, for routes outside this stack
PARSED_KEPT = 4096  # parsed query strings remembered (BaseHandler.parsed)
_PARSED: dict[tuple[int, str], dict[str, Any]] = {}


class BaseHandler(tornado.web.RequestHandler):
    """Errors as `{"error": …}` JSON, never a traceback."""

    config: Config
    refuses_large_bodies = True  # prepare() refuses a body from its headers (see Application)

    def initialize(self, config: Config, **_: Any) -> None:
        self.config = config

    def set_default_headers(self) -> None:
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Referrer-Policy", "no-referrer")

    # --- request bodies (README "Security and reliability") --------------------------------------
    def prepare(self) -> None:
        refuse_large_body(self.request, API_BODY_LIMIT)

    def data_received(self, chunk: bytes) -> None:
        """Within the limit, a body is dropped as it arrives: no route reads one."""

    # --- HEAD (README "API") ----------------------------------------------------------------------
    async def head(self, *args: Any, **kwargs: Any) -> None:
        """What GET answers, headers only: Tornado drops the body of a HEAD answer. 405 where
        there is no GET."""
        result = self.get(*args, **kwargs)
        if result is not None:
            await result

    # --- query parameters -----------------------------------------------------------------------
    def parsed(self, query: Query) -> dict[str, Any]:
        """`query.parse()` of this request's query string, remembered per string: the same URIs
        come back again and again (posters, pages), and parsing is most of a cached answer's own
        work (README "Performance"). The dict is shared: read it, never change it."""
        key = (id(query), self.request.query)
        values = _PARSED.get(key)
        if values is None:
            values = query.parse(self.request.query_arguments)  # an invalid query raises: never kept
            if len(_PARSED) >= PARSED_KEPT:
                _PARSED.clear()  # query strings clients invent: start over rather than grow
            _PARSED[key] = values
        return values

    # --- writing -----------------------------------------------------------------------
    def write_json(self, obj: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", JSON_TYPE)
        self.finish(dumps(obj).encode())

    def write_cached(self, body: Body) -> Awaitable[None] | None:
        """Answer with bytes computed at load time, never copying them; the gzip form (made at
        load time too, with its own ETag; just after start-up it may not be made yet) to a client
        that accepts it. The handler returns what this returns: None once the answer is written,
        an awaitable for a large one.

        The ETag is set here and a revalidation answered here (README "Performance"): an
        If-None-Match equal to it is a 304 without Tornado's parse of the header (any other one
        goes through `check_etag_header`, which knows lists, weak tags and `*`), and `finish()`
        then neither asks `compute_etag` nor checks again. A large or multi-chunk body (type=all)
        is sent after the headers: Tornado would otherwise append it to the header buffer, a full
        copy on every request."""
        headers = self.request.headers
        if body.gzip is not None and accepts_gzip(header_value(headers, "Accept-Encoding", "")):
            self.set_header("Content-Encoding", "gzip")
            chunks, length, etag = body.gzip, body.gzip_length, body.gzip_etag
        else:
            chunks, length, etag = body.chunks, body.length, body.etag
        self.set_header("Vary", "Accept-Encoding")
        self.set_header("Etag", etag)
        sent = header_value(headers, "If-None-Match")
        if sent is not None and (sent == etag or self.check_etag_header()):
            self.set_status(304)
            self.finish()
            return None
        if len(chunks) == 1 and length <= INLINE_BODY_LIMIT:
            self.finish(chunks[0])
            return None
        return self._write_large(chunks, length)

    async def _write_large(self, chunks: tuple[bytes, ...], length: int) -> None:
        self.set_header("Content-Length", length)
        await self.flush()  # the headers alone
        for chunk in chunks:
            self.write(chunk)
            await self.flush()
        self.finish()

    # --- errors --------------------------------------------------------------------------
    # Tornado turns every exception a handler raises into `log_exception` then `send_error`, which
    # calls `write_error` with `exc_info`: both are overridden, nothing private is touched.
    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """The `{"error": …}` body: an HTTPError's reason, a service error's message and status,
        otherwise the status's own phrase (a bare "Internal server error" for anything unexpected)."""
        status, message = _error_answer(status_code, kwargs.get("exc_info"))
        self.set_status(status)  # the standard reason phrase: a message may not fit a status line
        self.set_header("Content-Type", JSON_TYPE)
        self.set_header("Cache-Control", "no-store")
        if status == 405:
            self.set_header("Allow", ", ".join(allowed_methods(type(self))))  # RFC 9110 §15.5.6
        self.finish(dumps({"error": message}).encode())

    def log_exception(self, typ, value, tb) -> None:  # type: ignore[override]
        """Expected failures are not logged with a traceback: an HTTPError not at all, a service
        error of status 500 or more as one line; anything else with its traceback."""
        if isinstance(value, tornado.web.HTTPError):
            return
        if isinstance(value, ServiceError):
            if _status_of(value) >= 500:
                log.error("%s %s: %s", self.request.method, self.request.path, value)
            return
        if isinstance(value, tornado.iostream.StreamClosedError):
            log.debug("%s %s: the client went away", self.request.method, self.request.path)
            return
        log.error("unexpected error on %s %s", self.request.method, self.request.path,
                  exc_info=(typ, value, tb))

    # --- admin rule (README "Configuration", "Security and reliability") ----------------------------
    def require_admin(self) -> None:
        """Never from another site's page (403). Then: ADMIN_TOKEN set: `Authorization: Bearer
        <token>` (401 missing, 403 wrong). Not set: loopback clients addressing this machine by
        one of its own names only (403 otherwise)."""
        self.refuse_cross_site()
        token = self.config.admin_token
        if token:
            header = self.request.headers.get("Authorization", "")
            scheme, _, supplied = header.partition(" ")
            if not header:
                raise tornado.web.HTTPError(401, reason="Missing admin token: send 'Authorization: Bearer <ADMIN_TOKEN>'")
            if scheme.lower() != "bearer" or not hmac.compare_digest(supplied.strip().encode(), token.encode()):
                raise tornado.web.HTTPError(403, reason="Invalid admin token")
            return
        if not is_loopback(self.request.remote_ip or ""):
            raise tornado.web.HTTPError(
                403, reason="Admin requests are accepted from this machine only; set ADMIN_TOKEN to allow others")
        if not self._through_trusted_proxy() and not _names_this_machine(self.request.host_name):
            # DNS rebinding: another site's name resolving to 127.0.0.1 makes its page "same origin".
            # Behind the trusted proxy (README "Reverse proxy") the proxy decides which names reach us.
            raise tornado.web.HTTPError(
                403, reason=f"Admin requests without ADMIN_TOKEN must address this machine by a loopback name "
                            f"(Host {self.request.host_name[:80]!r} is not one); set ADMIN_TOKEN to allow others")

    def _through_trusted_proxy(self) -> bool:
        # A page cannot add these headers without a CORS preflight, which admin routes never pass.
        headers = self.request.headers
        return self.config.trust_proxy and ("X-Real-Ip" in headers or "X-Forwarded-For" in headers)

    def refuse_cross_site(self) -> None:
        """What only a browser sends on behalf of a page: an `Origin` other than this server's
        host (or `null`), `Sec-Fetch-Site: cross-site|same-site`, and a body of a type a page may
        POST to any site without a CORS preflight (a form, plain text)."""
        headers = self.request.headers
        origin = headers.get("Origin")
        if origin is not None and (origin.strip().lower() == "null"
                                   or urlsplit(origin.strip()).netloc.lower() != self.request.host.lower()):
            raise tornado.web.HTTPError(403, reason=f"Admin requests from another site's page are refused "
                                                    f"(Origin {origin[:100]!r})")
        fetch_site = headers.get("Sec-Fetch-Site", "").strip().lower()
        if fetch_site in CROSS_SITE_FETCHES:
            raise tornado.web.HTTPError(403, reason=f"Admin requests from another site's page are refused "
                                                    f"(Sec-Fetch-Site: {fetch_site})")
        media_type = headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
        # An empty body labelled as a form is let through: Tornado's own client (and `curl -d ''`)
        # label every POST so; a browser sending one from a page adds the Origin refused above.
        if media_type in FORM_MEDIA_TYPES and _has_body(headers):
            raise tornado.web.HTTPError(403, reason=f"Admin requests with a form or text body ({media_type}) are "
                                                    f"refused: send no body, or JSON")


class Application(tornado.web.Application):
    """Tornado's, with the body rule of README "Security and reliability" applied per request: a
    request that announces a body is handled by the `stream_request_body` twin of its handler, so
    prepare() runs on the headers and refuses a large body before a byte of it is read. A request
    that announces none (nearly all of them) is handled by the handler itself: streaming costs
    every request two more turns of the event loop (README "Performance")."""

    def get_handler_delegate(self, request: Any, target_class: type, target_kwargs: dict | None = None,
                             path_args: list | None = None, path_kwargs: dict | None = None) -> Any:
        if announces_body(request.headers):
            target_class = streaming_twin(target_class)
        return super().get_handler_delegate(request, target_class, target_kwargs, path_args, path_kwargs)


def header_value(headers: Any, name: str, default: str | None = None) -> str | None:
    """`headers.get(name, default)` without its exception: HTTPHeaders inherits Mapping.get,
    which raises and catches a KeyError for an absent header (0.8 µs against 0.26 µs for `in`);
    on the path of every cached answer, the headers looked up are usually absent."""
    return headers[name] if name in headers else default


def announces_body(headers: Any) -> bool:
    """HTTP/1.1 has a request body only with one of these headers (RFC 9112 §6.3)."""
    return "Content-Length" in headers or "Transfer-Encoding" in headers


_TWINS: dict[type, type] = {}


def streaming_twin(handler_class: type) -> type:
    """`handler_class` in `stream_request_body` mode (made once), when its prepare() refuses large
    bodies; any other class as it is (Tornado then reads a body up to SERVER_BODY_LIMIT)."""
    if not getattr(handler_class, "refuses_large_bodies", False):
        return handler_class
    twin = _TWINS.get(handler_class)
    if twin is None:
        twin = _TWINS[handler_class] = tornado.web.stream_request_body(
            type(handler_class.__name__, (handler_class,), {"__module__": handler_class.__module__,
                                                            "__qualname__": handler_class.__qualname__}))
    return twin


class ApiHandler(BaseHandler):
    """JSON API: CORS for GET from any origin (no credentials)."""

    def set_default_headers(self) -> None:
        super().set_default_headers()
        self.set_header("Content-Type", JSON_TYPE)
        if self.request.method in ("GET", "HEAD", "OPTIONS"):
            self.set_header("Access-Control-Allow-Origin", "*")

    def options(self, *args: Any) -> None:
        self.set_header("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
        self.set_header("Access-Control-Allow-Headers", "If-None-Match, Content-Type")
        self.set_header("Access-Control-Max-Age", "86400")
        self.set_status(204)
        self.finish()


class NotFoundHandler(ApiHandler):
    """Any path no route claims: a JSON 404."""

    def prepare(self) -> None:
        super().prepare()
        raise tornado.web.HTTPError(404, reason=f"No such endpoint: {self.request.path}")


_KNOWN_STATUSES = {s.value for s in HTTPStatus}

# How each kind of service failure is answered (anything else a service raises: 500).
_SERVICE_STATUSES = ((NotFound, 404), (InvalidRequest, 400), (NotReady, 503), (Conflict, 409),
                     (BrokenData, 500))


def _status_of(error: ServiceError) -> int:
    return next((status for kind, status in _SERVICE_STATUSES if isinstance(error, kind)), 500)


def _error_answer(status_code: int, exc_info: Any) -> tuple[int, str]:
    """(status, message) of the error Tornado is answering; unknown statuses become 500."""
    error = exc_info[1] if exc_info else None
    message = ""
    if isinstance(error, ServiceError):
        status_code, message = _status_of(error), str(error)
    elif isinstance(error, tornado.web.HTTPError):
        status_code, message = error.status_code, error.reason or ""
        if not message and error.log_message and status_code < 500:
            message = error.log_message % error.args if error.args else error.log_message
    if status_code not in _KNOWN_STATUSES:
        status_code = 500
    return status_code, message or _default_message(status_code)


def _default_message(status_code: int) -> str:
    if status_code == 500:
        return "Internal server error"
    try:
        return HTTPStatus(status_code).phrase
    except ValueError:
        return "Error"


def refuse_large_body(request: Any, limit: int) -> None:
    """413 when `Content-Length` says more than `limit` bytes; a chunked body is cut off by the
    connection once it passes `limit` (call from `prepare()`: Application streams the body of such
    a handler, so prepare() runs before it is read)."""
    headers = request.headers
    if not announces_body(headers):
        return  # nothing to limit
    length = headers.get("Content-Length", "").strip()
    if length.isdigit() and int(length) > limit:
        raise tornado.web.HTTPError(413, reason=f"Request body too large: at most {limit} bytes")
    request.connection.set_max_body_size(limit)


def _has_body(headers: Any) -> bool:
    return headers.get("Content-Length", "0").strip() not in ("", "0") or "Transfer-Encoding" in headers


def _names_this_machine(host_name: str) -> bool:
    """A loopback address, `localhost` (or a name under `.localhost`) or this machine's host name."""
    name = host_name.strip("[]").rstrip(".").lower()
    return (is_loopback(name) or name == "localhost" or name.endswith(".localhost")
            or name == socket.gethostname().lower())


@lru_cache(maxsize=256)  # clients send a handful of different headers, again and again
def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an Accept-Encoding header admits gzip (RFC 9110 §12.5.3: `gzip;q=0` refuses it,
    `*` stands for any coding not named)."""
    if not accept_encoding:
        return False
    weights = {}
    for item in accept_encoding.lower().split(","):
        name, _, params = item.partition(";")
        key, _, value = params.strip().partition("=")
        try:
            weights[name.strip()] = float(value) if key.strip() == "q" else 1.0
        except ValueError:
            weights[name.strip()] = 0.0
    return weights.get("gzip", weights.get("x-gzip", weights.get("*", 0.0))) > 0


def allowed_methods(handler_class: type) -> list[str]:
    """The HTTP methods a handler class implements (for the `Allow` header of a 405); HEAD
    goes with GET."""
    def implements(method: str) -> bool:
        return getattr(handler_class, method.lower()) is not getattr(tornado.web.RequestHandler, method.lower())

    return [method for method in tornado.web.RequestHandler.SUPPORTED_METHODS
            if implements("GET" if method == "HEAD" else method)]

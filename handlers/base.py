"""What every handler shares: JSON errors, CORS on GET /api/*, cached-bytes writes, the admin rule."""

from __future__ import annotations

import hmac
import logging
from http import HTTPStatus
from typing import Any

import tornado.web

from services.config import Config, is_loopback
from services.data.dataset import Body
from services.errors import BrokenData, Conflict, InvalidRequest, NotFound, NotReady, ServiceError
from services.data.snapshots import dumps

log = logging.getLogger("trakt_watch.http")

JSON_TYPE = "application/json; charset=UTF-8"
INLINE_BODY_LIMIT = 64 * 1024  # above this, headers and body are written separately (no copy)


class BaseHandler(tornado.web.RequestHandler):
    """Errors as `{"error": …}` JSON, never a traceback."""

    config: Config

    def initialize(self, config: Config, **_: Any) -> None:
        self.config = config
        self._cached_etag: str | None = None

    def set_default_headers(self) -> None:
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Referrer-Policy", "no-referrer")

    # --- writing -----------------------------------------------------------------------
    def write_json(self, obj: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", JSON_TYPE)
        self.finish(dumps(obj).encode())

    async def write_cached(self, body: Body) -> None:
        """Answer with bytes computed at load time, never copying them; the gzip form (made at
        load time too, with its own ETag) to a client that accepts it.

        A small single chunk goes through `finish()` (Tornado answers a matching If-None-Match
        with 304 by itself). A large or multi-chunk body (type=all) is sent after the headers:
        Tornado would otherwise append it to the header buffer, a full copy on every request."""
        self.set_header("Vary", "Accept-Encoding")
        if accepts_gzip(self.request.headers.get("Accept-Encoding", "")):
            self.set_header("Content-Encoding", "gzip")
            chunks, length, self._cached_etag = (body.gzip,), len(body.gzip), body.gzip_etag
        else:
            chunks, length, self._cached_etag = body.chunks, body.length, body.etag
        self.set_header("Content-Type", JSON_TYPE)
        if len(chunks) == 1 and length <= INLINE_BODY_LIMIT:
            self.finish(chunks[0])
            return
        self.set_etag_header()
        if self.check_etag_header():
            self.set_status(304)
            self.finish()
            return
        self.set_header("Content-Length", length)
        await self.flush()  # the headers alone
        for chunk in chunks:
            self.write(chunk)
            await self.flush()
        self.finish()

    def compute_etag(self) -> str | None:
        if self._cached_etag is not None:
            return self._cached_etag
        return super().compute_etag()

    # --- errors --------------------------------------------------------------------------
    def _handle_request_exception(self, e: BaseException) -> None:
        """Expected failures (HTTPError, a service's error) become a JSON answer with a message;
        anything else is logged with its traceback and answered as a bare 500."""
        if isinstance(e, tornado.web.Finish) or not isinstance(e, (ServiceError, tornado.web.HTTPError)):
            super()._handle_request_exception(e)
            return
        if isinstance(e, ServiceError):
            status, message = _status_of(e), str(e)
            if status >= 500:
                log.error("%s %s: %s", self.request.method, self.request.path, message)
        else:
            status, message = e.status_code, e.reason
            if not message and e.log_message and status < 500:
                message = e.log_message % e.args if e.args else e.log_message
        if self._finished:
            return
        if self._headers_written:
            self.request.connection.close()  # type: ignore[union-attr]
            return
        self.clear()
        self.set_status(status if status in _KNOWN_STATUSES else 500)
        self._error_message = message
        self.write_error(status)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        message = getattr(self, "_error_message", None) or _default_message(status_code)
        self.set_header("Content-Type", JSON_TYPE)
        self.set_header("Cache-Control", "no-store")
        if status_code == 405:
            self.set_header("Allow", ", ".join(allowed_methods(type(self))))  # RFC 9110 §15.5.6
        self.finish(dumps({"error": message}).encode())

    def log_exception(self, typ, value, tb) -> None:  # type: ignore[override]
        log.error("unexpected error on %s %s", self.request.method, self.request.path,
                  exc_info=(typ, value, tb))

    # --- admin rule (README "Configuration") --------------------------------------------------------
    def require_admin(self) -> None:
        """ADMIN_TOKEN set: `Authorization: Bearer <token>` (401 missing, 403 wrong).
        Not set: loopback clients only (403 otherwise)."""
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

    def query_choice(self, name: str, options: tuple[str, ...], default: str) -> str:
        """A query parameter that must be one of `options`; 400 naming the allowed values."""
        value = self._raw_query_argument(name)
        if value is None or value == "":
            return default
        if value not in options:
            raise tornado.web.HTTPError(
                400, reason=f"Invalid {name} parameter {value[:50]!r}: must be one of {', '.join(options)}")
        return value

    def _raw_query_argument(self, name: str) -> str | None:
        """The last value of a query parameter exactly as sent. Tornado's own getters replace
        control characters with spaces, so "%00" would pass for blank instead of being refused
        and "%10" would be searched as nothing at all."""
        values = self.request.query_arguments.get(name)
        if not values:
            return None
        try:
            return values[-1].decode("utf-8")
        except UnicodeDecodeError:
            raise tornado.web.HTTPError(400, reason=f"Invalid {name} parameter: not UTF-8 text") from None

    def query_int(self, name: str, default: int | None, minimum: int, maximum: int) -> int | None:
        """A plain non-negative integer parameter within [minimum, maximum]; 400 otherwise."""
        value = self._raw_query_argument(name)
        if value is None or value == "":
            return default
        if not value.isascii() or not value.isdigit() or len(value) > 9:
            raise tornado.web.HTTPError(
                400, reason=f"Invalid {name} parameter {value[:50]!r}: must be a whole number")
        number = int(value)
        if not minimum <= number <= maximum:
            raise tornado.web.HTTPError(
                400, reason=f"Invalid {name} parameter {value!r}: must be between {minimum} and {maximum}")
        return number


class NotFoundHandler(ApiHandler):
    """Any path no route claims: a JSON 404."""

    def prepare(self) -> None:
        raise tornado.web.HTTPError(404, reason=f"No such endpoint: {self.request.path}")


_KNOWN_STATUSES = {s.value for s in HTTPStatus}

# How each kind of service failure is answered (anything else a service raises: 500).
_SERVICE_STATUSES = ((NotFound, 404), (InvalidRequest, 400), (NotReady, 503), (Conflict, 409),
                     (BrokenData, 500))


def _status_of(error: ServiceError) -> int:
    return next((status for kind, status in _SERVICE_STATUSES if isinstance(error, kind)), 500)


def _default_message(status_code: int) -> str:
    if status_code == 500:
        return "Internal server error"
    try:
        return HTTPStatus(status_code).phrase
    except ValueError:
        return "Error"


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an Accept-Encoding header admits gzip (RFC 9110 §12.5.3: `gzip;q=0` refuses it,
    `*` stands for any coding not named)."""
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
    """The HTTP methods a handler class implements (for the `Allow` header of a 405)."""
    return [method for method in tornado.web.RequestHandler.SUPPORTED_METHODS
            if getattr(handler_class, method.lower()) is not getattr(tornado.web.RequestHandler, method.lower())]

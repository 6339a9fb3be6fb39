"""Async client for the Trakt API v2: one aiohttp session, retries, rate limits, pagination.

The sync and the now-watching poller both talk to Trakt through this module. HTTP failures
become a small exception tree (`TraktError` and subclasses) that callers decide on; the API key
is sent as a header and never appears in a message.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from typing import TYPE_CHECKING, Any

import aiohttp
import ujson

from services.http_session import SessionOwner
from services.config import Config
from services.retry import (
    TRANSIENT_ERRORS,
    AnswerTooLarge,
    RetryPolicy,
    describe_bytes,
    read_bounded,
    retryable_status,
)

if TYPE_CHECKING:  # auth.py imports this module (USER_AGENT, TraktError) through oauth.py
    from services.trakt.auth import TokenManager

log = logging.getLogger("trakt_watch.trakt")

SIGNED_IN_USER = "me"  # Trakt's name for the token's own account (README "Signing in")
LOGIN_HINT = "sign in with: trakt-watch login"

PAGE_LIMIT = 250  # Trakt's maximum page size; larger values are clamped by the API
RATE_LIMIT_PERIOD = 300.0  # Trakt counts GET requests per 5 minutes
MAX_PAGES = 2000  # 500,000 rows at 250 a page: far beyond any Trakt account limit
# Largest answer read, counted after decompression (README "Sync"): a 250-row page is well under
# 1 MiB and an unpaginated watched/shows of thousands of shows a few MiB; a gzip bomb stops here.
MAX_ANSWER_BYTES = 16 * 1024 * 1024


def _version() -> str:
    try:
        return metadata.version("trakt-watch")
    except metadata.PackageNotFoundError:
        return "0.1.0"


USER_AGENT = f"trakt-watch/{_version()} (+self-hosted dashboard)"


# --- exceptions ------------------------------------------------------------------------------
class TraktError(Exception):
    """Any failure talking to Trakt; the message is safe to show (never holds the key)."""


class TraktRateLimited(TraktError):
    """429 from Trakt (or the CDN in front of it); `retry_after` is in seconds."""

    def __init__(self, retry_after: float, message: str = "") -> None:
        super().__init__(message or f"Trakt rate limit reached (429), retry after {retry_after:g} s")
        self.retry_after = retry_after


class TraktNotFound(TraktError):
    """404: the user (or list) does not exist."""


class TraktPrivate(TraktError):
    """401/403: the account is private (sign in to read it) or the API key is wrong."""


class TraktUnavailable(TraktError):
    """5xx, Cloudflare 520-524, timeouts or dropped connections, after the retries."""


class TraktBadResponse(TraktError):
    """An answer that is not the JSON shape Trakt documents."""


# --- policies (RetryPolicy lives in services/retry.py, shared with the TMDB client) ---------
class RequestBudget:
    """Client-side limit: at most `limit` requests in any `period` seconds (a sliding window).

    Shared by everything that talks to Trakt with one key, so a sync never pushes the account
    past Trakt's GET limit. A 429 pauses every caller until its Retry-After has passed.
    """

    def __init__(self, limit: int, period: float = RATE_LIMIT_PERIOD,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep) -> None:
        if limit < 1:
            raise ValueError(f"request budget limit must be at least 1, got {limit}")
        if period <= 0:
            raise ValueError(f"request budget period must be positive, got {period}")
        self.limit = limit
        self.period = period
        self._clock = clock
        self._sleep = sleep  # tests pass a virtual clock and sleep
        self._sent: collections.deque[float] = collections.deque()
        self._paused_until = 0.0
        self._lock = asyncio.Lock()
        self.waited_seconds = 0.0

    async def acquire(self) -> float:
        """Wait for a free slot and take it; returns the seconds waited."""
        waited = 0.0
        async with self._lock:
            while True:
                now = self._clock()
                while self._sent and self._sent[0] <= now - self.period:
                    self._sent.popleft()
                delay = max(0.0, self._paused_until - now)
                if len(self._sent) >= self.limit:
                    delay = max(delay, self._sent[0] + self.period - now)
                if delay <= 0:
                    self._sent.append(now)
                    self.waited_seconds += waited
                    return waited
                await self._sleep(delay)
                waited += delay

    def pause(self, seconds: float) -> None:
        """Hold every caller for `seconds` (Trakt said Retry-After)."""
        self._paused_until = max(self._paused_until, self._clock() + seconds)

    def used(self) -> int:
        """Requests sent in the current window."""
        now = self._clock()
        return sum(1 for t in self._sent if t > now - self.period)


@dataclass
class CallStats:
    """What one logical call cost: HTTP requests, retries and 429s."""

    requests: int = 0
    retries: int = 0
    rate_limited: int = 0

    def add(self, other: CallStats) -> None:
        self.requests += other.requests
        self.retries += other.retries
        self.rate_limited += other.rate_limited


@dataclass
class PagedResult:
    """Every item of a paginated endpoint and what fetching it took."""

    items: list = field(default_factory=list)
    pages: int = 0
    item_count: int | None = None  # X-Pagination-Item-Count as Trakt reported it
    page_count: int | None = None  # X-Pagination-Page-Count (None: endpoint not paginated)
    requests: int = 0
    retries: int = 0
    rate_limited: int = 0

    @property
    def stats(self) -> CallStats:
        return CallStats(self.requests, self.retries, self.rate_limited)


# --- the client ------------------------------------------------------------------------------
# README "Sync": each request may take 30 s; 4 requests are in flight at once.
REQUEST_TIMEOUT_SECONDS = 30.0
MAX_CONCURRENCY = 4


def trakt_session(config: Config, timeout: float) -> aiohttp.ClientSession:
    """An HTTP session that sends the headers Trakt requires on every request, OAuth included
    (a missing User-Agent is refused by Trakt's firewall, a missing Content-Type with 412)."""
    return aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=timeout, connect=min(10.0, timeout)),
        headers={
            "Content-Type": "application/json",
            "trakt-api-version": "2",
            "trakt-api-key": config.trakt_api_key,
            "User-Agent": USER_AGENT,
        },
        json_serialize=ujson.dumps,
        raise_for_status=False,
    )


class TraktClient(SessionOwner):
    """Trakt API v2 over one aiohttp session; `start()` before use, `close()` after.

    With `auth` (the sign-in's TokenManager) every request carries its Authorization header, and a
    401 that is not a private-user 401 refreshes the token once and is retried once.
    """

    def __init__(self, config: Config, *, budget: RequestBudget | None = None,
                 retry: RetryPolicy | None = None, timeout: float = REQUEST_TIMEOUT_SECONDS,
                 max_concurrency: int = MAX_CONCURRENCY, auth: TokenManager | None = None) -> None:
        if not config.trakt_api_key:
            raise ValueError("TRAKT_API_KEY is not set")
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be at least 1, got {max_concurrency}")
        self.config = config
        self.base_url = config.trakt_api_url.rstrip("/")
        self.budget = budget if budget is not None else RequestBudget(config.trakt_rate_limit)
        self.retry = retry or RetryPolicy()
        self.timeout = timeout
        self.totals = CallStats()
        self.auth = auth
        self._concurrency = asyncio.Semaphore(max_concurrency)
        self._session: aiohttp.ClientSession | None = None

    def _new_session(self) -> aiohttp.ClientSession:
        return trakt_session(self.config, self.timeout)

    # --- whose data ------------------------------------------------------------------------
    @property
    def signed_in(self) -> bool:
        """Whether a usable sign-in is stored (a lost or refused one is not)."""
        return self.auth is not None and self.auth.signed_in

    def user_id(self, username: str) -> str:
        """Whose data to read: `me` when signed in (Trakt's name for the token's own account, which
        follows a renamed slug and reads a private profile), else `username` ("" when neither)."""
        return SIGNED_IN_USER if self.signed_in else username

    # --- single requests ------------------------------------------------------------------
    async def get_json(self, path: str, params: Mapping[str, Any] | None = None, *,
                       retries: int | None = None) -> tuple[Any, Mapping[str, str]]:
        """GET `path` (relative to TRAKT_API_URL) and parse the JSON; 204 gives `None`.

        `retries` overrides the policy's retry count for 5xx/timeouts (0: fail at once; a 429
        then raises `TraktRateLimited` instead of waiting).
        """
        data, headers, _ = await self.get_with_stats(path, params, retries=retries)
        return data, headers

    async def watching(self, username: str) -> dict | None:
        """What `username` is playing now (GET /users/{u}/watching), None when nothing (204);
        signed in, what the token's own account plays (`/users/me/watching`).

        No retries: the poller has its own backoff. Errors raise the TraktError subclasses.
        """
        user = self.user_id(username)
        if not user:
            raise ValueError("username is empty")
        data, _ = await self.get_json(f"/users/{user}/watching", retries=0)
        if data is None:
            return None
        if not isinstance(data, dict):
            raise TraktBadResponse(f"/users/{user}/watching: expected a JSON object, "
                                   f"got {type(data).__name__}")
        return data

    async def get_all_pages(self, path: str, params: Mapping[str, Any] | None = None) -> PagedResult:
        """Every page of a (possibly) paginated list endpoint, `limit=250` each.

        Follows X-Pagination-Page-Count and counts what came back, so a server that clamps or
        ignores `limit` still yields every row. Pages after the first are fetched concurrently
        (bounded by the client's concurrency); an endpoint without pagination headers is one page.
        """
        base = dict(params or {})
        result = PagedResult()
        first, headers, stats = await self.get_with_stats(path, {**base, "page": 1, "limit": PAGE_LIMIT})
        result.requests, result.retries, result.rate_limited = stats.requests, stats.retries, stats.rate_limited
        self._check_page(path, first, headers, 1)
        result.items.extend(first)
        result.pages = 1
        result.item_count = _int_header(headers, "X-Pagination-Item-Count", path)
        page_count = _int_header(headers, "X-Pagination-Page-Count", path)
        result.page_count = page_count
        if page_count is None or page_count <= 1:
            return result
        if page_count > MAX_PAGES:
            raise TraktBadResponse(f"{path}: Trakt reported {page_count} pages, more than the "
                                   f"{MAX_PAGES} a real account can have")

        async def fetch(page: int) -> tuple[list, CallStats]:
            data, page_headers, page_stats = await self.get_with_stats(path, {**base, "page": page, "limit": PAGE_LIMIT})
            self._check_page(path, data, page_headers, page)
            return data, page_stats

        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(fetch(page)) for page in range(2, page_count + 1)]
        except BaseExceptionGroup as errors:
            raise first_error(errors) from None
        for task in tasks:
            data, page_stats = task.result()
            result.items.extend(data)
            result.pages += 1
            result.requests += page_stats.requests
            result.retries += page_stats.retries
            result.rate_limited += page_stats.rate_limited
        return result

    @staticmethod
    def _check_page(path: str, data: Any, headers: Mapping[str, str], page: int) -> None:
        if not isinstance(data, list):
            raise TraktBadResponse(f"{path} page {page}: expected a JSON array, got {type(data).__name__}")
        echoed = _int_header(headers, "X-Pagination-Page", path)
        if echoed is not None and echoed != page:
            raise TraktBadResponse(f"{path}: asked for page {page}, Trakt answered page {echoed}")

    # --- the retry loop -------------------------------------------------------------------
    async def get_with_stats(self, path: str, params: Mapping[str, Any] | None = None, *,
                             retries: int | None = None) -> tuple[Any, Mapping[str, str], CallStats]:
        """`get_json` plus what the call cost (requests, retries, 429s), for the sync report."""
        if not path.startswith("/"):
            raise ValueError(f"path must start with '/': {path!r}")
        if self._session is None:
            raise RuntimeError("TraktClient.start() was not called")
        max_retries = self.retry.retries if retries is None else max(0, retries)
        wait_on_429 = retries is None or retries > 0
        stats = CallStats()
        failures = 0
        limited = 0
        refreshed = False
        query = {k: str(v) for k, v in (params or {}).items()}
        while True:
            # Asked at every attempt: a refresh by another caller (or a 429 wait) may have passed.
            authorization = await self.auth.authorization_header() if self.auth is not None else {}
            try:
                async with self._concurrency:
                    # The slot is taken right before sending, so the window sees real send times.
                    await self.budget.acquire()
                    stats.requests += 1
                    self.totals.requests += 1
                    status, headers, body = await self._send(path, query, authorization)
            except TRANSIENT_ERRORS as exc:
                problem = _describe_transport_error(exc)
                if failures >= max_retries:
                    raise TraktUnavailable(f"{path}: {problem}, giving up after {_attempts(failures + 1)}") from None
                await self._back_off(path, problem, failures, stats)
                failures += 1
                continue

            if status == 429:
                retry_after = self.retry.rate_limit_delay(headers.get("Retry-After"))
                stats.rate_limited += 1
                self.totals.rate_limited += 1
                self.budget.pause(retry_after)
                if not wait_on_429 or limited >= self.retry.rate_limit_retries:
                    raise TraktRateLimited(retry_after, f"{path}: Trakt rate limit reached (429), retry after "
                                                        f"{retry_after:g} s")
                limited += 1
                stats.retries += 1
                self.totals.retries += 1
                log.warning("Trakt rate limit on %s: waiting %.1f s (Retry-After)", path, retry_after)
                continue  # the budget holds this and every other request until Retry-After passed
            if retryable_status(status):
                problem = f"Trakt answered {status}"
                if failures >= max_retries:
                    raise TraktUnavailable(f"{path}: {problem}, giving up after {_attempts(failures + 1)}")
                await self._back_off(path, problem, failures, stats)
                failures += 1
                continue
            if status == 401 and authorization and not refreshed:
                refreshed = True  # one refresh and one retry per request, never a loop
                if await self.auth.on_unauthorized(headers, authorization):
                    stats.retries += 1
                    self.totals.retries += 1
                    log.info("Trakt refused the token on %s (401); retrying once with the refreshed one", path)
                    continue
            if status == 204:
                return None, headers, stats
            if 200 <= status < 300:
                try:
                    return ujson.loads(body), headers, stats
                except ValueError:
                    problem = "Trakt sent malformed JSON"
                    if failures >= max_retries:
                        raise TraktBadResponse(f"{path}: {problem} ({len(body)} bytes), "
                                               f"giving up after {_attempts(failures + 1)}") from None
                    await self._back_off(path, problem, failures, stats)
                    failures += 1
                    continue
            raise _status_error(path, status, headers, signed=bool(authorization))

    async def _send(self, path: str, query: Mapping[str, str],
                    authorization: Mapping[str, str]) -> tuple[int, Mapping[str, str], bytes]:
        assert self._session is not None
        async with self._session.get(self.base_url + path, params=query, headers=authorization,
                                     allow_redirects=False) as response:
            try:
                body = await read_bounded(response.content, MAX_ANSWER_BYTES)
            except AnswerTooLarge:
                page = f" page {query['page']}" if "page" in query else ""
                raise TraktBadResponse(
                    f"{path}{page}: Trakt's answer is larger than {describe_bytes(MAX_ANSWER_BYTES)} after "
                    "decompression, the limit per answer; refused without reading further") from None
            return response.status, response.headers, body

    async def _back_off(self, path: str, problem: str, attempt: int, stats: CallStats) -> None:
        delay = self.retry.backoff(attempt)
        stats.retries += 1
        self.totals.retries += 1
        log.warning("%s on %s: retrying in %.2f s", problem, path, delay)
        await asyncio.sleep(delay)


# --- helpers ---------------------------------------------------------------------------------
def first_error(group: BaseExceptionGroup) -> BaseException:
    """The most telling failure in a TaskGroup's exception group (a TraktError if there is one)."""
    leaves: list[BaseException] = []

    def walk(error: BaseException) -> None:
        if isinstance(error, BaseExceptionGroup):
            for inner in error.exceptions:
                walk(inner)
        else:
            leaves.append(error)

    walk(group)
    for wanted in (TraktError, Exception):
        for error in leaves:
            if isinstance(error, wanted):
                return error
    return leaves[0]


def _attempts(count: int) -> str:
    return f"{count} attempt" if count == 1 else f"{count} attempts"


def _int_header(headers: Mapping[str, str], name: str, path: str) -> int | None:
    raw = headers.get(name)
    if raw is None or raw.strip() == "":
        return None
    try:
        value = int(raw.strip())
    except ValueError:
        raise TraktBadResponse(f"{path}: header {name} is not a number: {raw[:40]!r}") from None
    if value < 0:
        raise TraktBadResponse(f"{path}: header {name} is negative: {value}")
    return value


def _status_error(path: str, status: int, headers: Mapping[str, str], *, signed: bool = False) -> TraktError:
    """`signed`: the request carried the sign-in's token."""
    if status in (401, 403) and not signed and path.split("/")[1:3] == ["users", SIGNED_IN_USER]:
        return TraktPrivate(f"{path}: not signed in to Trakt any more (the sign-in was lost or removed while "
                            "this ran); sign in again: trakt-watch login")
    if status == 401 and not signed and path.split("/")[1:2] == ["sync"]:
        return TraktPrivate(f"{path}: needs the Trakt sign-in, which was lost or removed while this ran; "
                            "sign in again: trakt-watch login")
    if status == 401 and headers.get("X-Private-User", "").lower() == "true":
        return TraktPrivate(f"{path}: the Trakt profile is private (401 with X-Private-User); to mirror your own "
                            f"private profile, {LOGIN_HINT}")
    if status == 401 and signed:
        return TraktPrivate(f"{path}: Trakt refused the sign-in's token (401) even after a refresh; "
                            "sign in again: trakt-watch login")
    if status == 401:
        return TraktPrivate(f"{path}: Trakt refused the request (401): the profile is private ({LOGIN_HINT}) "
                            "or the API key (TRAKT_API_KEY) is wrong")
    if status == 403 and path.startswith("/users/"):
        return TraktPrivate(f"{path}: Trakt refused the request (403): the profile is private ({LOGIN_HINT}), "
                            "or the API key (TRAKT_API_KEY) is wrong or the app is not approved")
    if status == 403:
        return TraktPrivate(f"{path}: Trakt refused the request (403): the API key (TRAKT_API_KEY) "
                            "is wrong or the app is not approved")
    if status == 404:
        return TraktNotFound(f"{path}: not found on Trakt (404): check TRAKT_USERNAME")
    if status == 412:
        return TraktError(f"{path}: Trakt rejected the request headers (412 Precondition Failed)")
    if status == 423:
        return TraktPrivate(f"{path}: the Trakt account is locked (423)")
    return TraktError(f"{path}: Trakt answered {status}")


def _describe_transport_error(exc: BaseException) -> str:
    if isinstance(exc, asyncio.TimeoutError):
        return "Trakt did not answer in time"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "Trakt closed the connection without answering"
    if isinstance(exc, aiohttp.ClientPayloadError):
        return "Trakt's answer was cut off"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot connect to Trakt ({exc.os_error.strerror or exc.os_error})"
    return f"connection to Trakt failed ({type(exc).__name__})"

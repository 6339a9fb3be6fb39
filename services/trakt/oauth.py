"""Trakt's OAuth endpoints: the device flow, token refresh, revoke, and who a token belongs to.

Requests go to TRAKT_AUTH_URL (Trakt's 2026 contract names https://auth.trakt.tv for every OAuth
request); when that host cannot be reached or does not know the route (404), TRAKT_API_URL is
tried once and the log says so (README "Signing in"). Every request carries Trakt's required
headers and, when given, takes a slot of the shared request budget first.

Access tokens, refresh tokens, device codes and the client secret never appear in a message,
a log line or a repr: errors name the endpoint and the status, never a body that could echo them.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp
import ujson

from services.http_session import SessionOwner
from services.config import Config
from services.trakt.client import TraktError, trakt_session

log = logging.getLogger("trakt_watch.auth")

# Trakt's device flow is for apps without a browser; its redirect URI is the "out of band" one.
OUT_OF_BAND = "urn:ietf:wg:oauth:2.0:oob"
DEFAULT_INTERVAL = 5.0  # seconds between polls when Trakt does not say
SLOW_DOWN_STEP = 5.0  # RFC 8628 3.5: on "slow down" poll 5 s less often, for good
DEFAULT_RETRY_AFTER = 10.0


class Budget(Protocol):
    """What `services.trakt.client.RequestBudget` offers; OAuth requests share it."""

    async def acquire(self) -> float: ...

    def pause(self, seconds: float) -> None: ...


# --- exceptions ------------------------------------------------------------------------------
class AuthError(TraktError):
    """Signing in or keeping the sign-in failed; the message is safe to show."""


class AuthUnavailable(AuthError):
    """Trakt's sign-in service could not be reached or answered 5xx (worth trying later)."""


class InvalidGrant(AuthError):
    """Trakt refused the refresh token (`invalid_grant`): only a new sign-in helps."""


class DeviceFlowFailed(AuthError):
    """The device code can no longer give a token; `outcome` says why (see DEVICE_OUTCOMES)."""

    def __init__(self, outcome: str, message: str) -> None:
        super().__init__(message)
        self.outcome = outcome


# Status of POST /oauth/device/token -> (outcome, what the user is told). 200 is the token,
# 400 "pending" and 429 "slow down" keep the poll going.
DEVICE_OUTCOMES: dict[int, tuple[str, str]] = {
    404: ("invalid_code", "Trakt does not know this code (404 invalid code)"),
    409: ("already_used", "this code was already used (409)"),
    410: ("expired", "the code expired before it was approved (410)"),
    418: ("denied", "the sign-in was denied on Trakt (418)"),
}


# --- what Trakt hands out --------------------------------------------------------------------
@dataclass(frozen=True)
class Token:
    """An access/refresh token pair. Expiry is `created_at + expires_in`, never assumed."""

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    created_at: float
    expires_in: float
    token_type: str = "bearer"
    scope: str = "public"

    @property
    def expires_at(self) -> float:
        return self.created_at + self.expires_in

    @classmethod
    def from_response(cls, body: Any, where: str) -> Token:
        """Parse Trakt's token answer; refuses one without the fields a refresh needs."""
        if not isinstance(body, dict):
            raise AuthError(f"{where}: Trakt's token answer is not a JSON object")
        access, refresh = body.get("access_token"), body.get("refresh_token")
        created_at, expires_in = body.get("created_at"), body.get("expires_in")
        if not (isinstance(access, str) and access and isinstance(refresh, str) and refresh):
            raise AuthError(f"{where}: Trakt's token answer has no access_token/refresh_token")
        if not (_is_number(created_at) and _is_number(expires_in) and expires_in > 0):
            raise AuthError(f"{where}: Trakt's token answer has no usable created_at/expires_in")
        return cls(access_token=access, refresh_token=refresh, created_at=float(created_at),
                   expires_in=float(expires_in), token_type=str(body.get("token_type") or "bearer"),
                   scope=str(body.get("scope") or "public"))


@dataclass(frozen=True)
class DeviceCode:
    """What POST /oauth/device/code gives: the code to show, where to enter it, how to poll."""

    device_code: str = field(repr=False)
    user_code: str
    verification_url: str
    expires_in: float
    interval: float


@dataclass(frozen=True)
class Account:
    """Who a token belongs to (GET /users/settings)."""

    username: str
    slug: str


# --- the client ------------------------------------------------------------------------------
class OAuthClient(SessionOwner):
    """Trakt's OAuth endpoints over one aiohttp session (`async with OAuthClient(config) as oauth`)."""

    def __init__(self, config: Config, *, budget: Budget | None = None, timeout: float = 30.0) -> None:
        if not config.trakt_api_key:
            raise ValueError("TRAKT_API_KEY is not set")
        self.config = config
        self.budget = budget
        self.timeout = timeout
        self.api_url = config.trakt_api_url.rstrip("/")
        auth_url = config.trakt_auth_url.rstrip("/")
        self._hosts = [auth_url] if auth_url == self.api_url else [auth_url, self.api_url]
        self._host: str | None = None  # the OAuth host that answered; used from then on
        self._session: aiohttp.ClientSession | None = None

    @property
    def host(self) -> str:
        """The OAuth host in use (TRAKT_AUTH_URL until a fallback happened)."""
        return self._host or self._hosts[0]

    def _new_session(self) -> aiohttp.ClientSession:
        return trakt_session(self.config, self.timeout)

    def _credentials(self) -> dict[str, str]:
        if not self.config.trakt_client_secret:
            raise AuthError("TRAKT_CLIENT_SECRET is not set (the Trakt app's Client Secret)")
        return {"client_id": self.config.trakt_api_key, "client_secret": self.config.trakt_client_secret}

    # --- endpoints ------------------------------------------------------------------------
    async def device_code(self) -> DeviceCode:
        """POST /oauth/device/code: a code for the user to enter at the verification URL."""
        where = "/oauth/device/code"
        status, headers, body = await self._post(where, {"client_id": self.config.trakt_api_key})
        if status != 200:
            raise self._failure(where, status, headers, _error_code(body))
        if not isinstance(body, dict):
            raise AuthError(f"{where}: Trakt's answer is not a JSON object")
        device, user_code, url = body.get("device_code"), body.get("user_code"), body.get("verification_url")
        if not all(isinstance(v, str) and v for v in (device, user_code, url)):
            raise AuthError(f"{where}: Trakt's answer has no device_code/user_code/verification_url")
        expires_in = body.get("expires_in")
        interval = body.get("interval")
        return DeviceCode(device_code=device, user_code=user_code, verification_url=url,
                          expires_in=float(expires_in) if _is_number(expires_in) and expires_in > 0 else 600.0,
                          interval=float(interval) if _is_number(interval) and interval > 0 else DEFAULT_INTERVAL)

    async def poll_device_token(self, device: DeviceCode) -> tuple[int, Token | None]:
        """One POST /oauth/device/token: (status, the token on 200)."""
        where = "/oauth/device/token"
        # A 404 here means "invalid code", never "wrong host": no fallback on it.
        status, headers, body = await self._post(where, {"code": device.device_code, **self._credentials()},
                                                 fallback_on_404=False)
        if status == 200:
            return status, Token.from_response(body, where)
        if status in (400, 429) or status in DEVICE_OUTCOMES:
            return status, None
        raise self._failure(where, status, headers, _error_code(body))

    async def refresh(self, refresh_token: str) -> Token:
        """POST /oauth/token with grant_type=refresh_token; the old refresh token is spent either way."""
        where = "/oauth/token"
        status, headers, body = await self._post(where, {
            "refresh_token": refresh_token, **self._credentials(), "redirect_uri": OUT_OF_BAND,
            "grant_type": "refresh_token"})
        if status == 200:
            return Token.from_response(body, where)
        error = _error_code(body)
        # The blueprint documents 401, the 2026 contract 400: both mean the grant is gone.
        if status in (400, 401) and error == "invalid_grant":
            raise InvalidGrant(f"Trakt refused the refresh token ({status} invalid_grant)")
        raise self._failure(where, status, headers, error)

    async def revoke(self, access_token: str) -> None:
        """POST /oauth/revoke: the token stops working at Trakt."""
        where = "/oauth/revoke"
        status, headers, body = await self._post(where, {"token": access_token, **self._credentials()})
        if status != 200:
            raise self._failure(where, status, headers, _error_code(body))

    async def account(self, access_token: str) -> Account:
        """GET {TRAKT_API_URL}/users/settings with the token: whose token it is."""
        where = "/users/settings"
        await self._take_budget()
        try:
            async with self._session_or_fail().get(
                    self.api_url + where, headers={"Authorization": f"Bearer {access_token}"},
                    allow_redirects=False) as response:
                status, raw = response.status, await response.read()
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise AuthUnavailable(f"{where}: {self.api_url}: {_describe_transport_error(exc)}") from None
        if status != 200:
            raise AuthError(f"{where}: Trakt answered {status}")
        body = _json_or_none(raw)
        user = body.get("user") if isinstance(body, dict) else None
        username = user.get("username") if isinstance(user, dict) else None
        ids = user.get("ids") if isinstance(user, dict) else None
        slug = ids.get("slug") if isinstance(ids, dict) else None
        if not isinstance(username, str) or not username:
            raise AuthError(f"{where}: Trakt's answer names no user")
        return Account(username=username, slug=slug if isinstance(slug, str) and slug else username)

    # --- transport ------------------------------------------------------------------------
    def _session_or_fail(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("OAuthClient.start() was not called")
        return self._session

    async def _take_budget(self) -> None:
        if self.budget is not None:
            await self.budget.acquire()

    async def _post(self, path: str, body: Mapping[str, Any], *,
                    fallback_on_404: bool = True) -> tuple[int, Mapping[str, str], Any]:
        hosts = [self._host] if self._host else self._hosts
        for number, host in enumerate(hosts):
            following = hosts[number + 1] if number + 1 < len(hosts) else None
            await self._take_budget()
            try:
                async with self._session_or_fail().post(host + path, json=dict(body),
                                                        allow_redirects=False) as response:
                    status, headers, raw = response.status, response.headers, await response.read()
            except (TimeoutError, aiohttp.ClientError) as exc:
                problem = _describe_transport_error(exc)
                if following is None:
                    raise AuthUnavailable(f"{path}: {host}: {problem}") from None
                log.warning("Trakt's OAuth host %s failed: %s; trying %s once", host, problem, following)
                continue
            if status == 404 and fallback_on_404 and following is not None:
                log.warning("Trakt's OAuth host %s answered 404 for %s; trying %s once", host, path, following)
                continue
            if self._host != host:
                self._host = host
                if number:
                    log.info("OAuth requests go to %s from now on (the fallback for %s)", host, hosts[0])
            if status == 429 and path != "/oauth/device/token" and self.budget is not None:
                self.budget.pause(_retry_after(headers))
            return status, headers, _json_or_none(raw)
        raise AssertionError("unreachable: the last host either answers or raises")

    def _failure(self, where: str, status: int, headers: Mapping[str, str], error: str | None = None) -> AuthError:
        code = f" {error}" if error else ""
        if status == 429:
            return AuthUnavailable(f"{where}: Trakt rate limit reached (429), retry after "
                                   f"{_retry_after(headers):g} s")
        if status >= 500:
            return AuthUnavailable(f"{where}: Trakt answered {status}")
        if status in (401, 403):
            return AuthError(f"{where}: Trakt refused the app ({status}{code}): check TRAKT_API_KEY "
                             "and TRAKT_CLIENT_SECRET (the Client ID and Client Secret of your Trakt app)")
        return AuthError(f"{where}: Trakt answered {status}{code}")


# --- the device flow ---------------------------------------------------------------------------
async def wait_for_device_token(oauth: OAuthClient, device: DeviceCode, *,
                                on_slow_down: Callable[[float], None] | None = None,
                                sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
                                clock: Callable[[], float] = time.monotonic) -> Token:
    """Poll at the interval Trakt gave until the user approves; raises DeviceFlowFailed otherwise.

    400 (pending) polls again; 429 (slow down) polls `SLOW_DOWN_STEP` seconds less often from then
    on; a dropped connection is retried until the code expires; 404/409/410/418 end the flow.
    """
    interval = device.interval
    deadline = clock() + device.expires_in
    while True:
        await sleep(interval)
        if clock() > deadline:
            raise DeviceFlowFailed("expired", DEVICE_OUTCOMES[410][1])
        try:
            status, token = await oauth.poll_device_token(device)
        except AuthUnavailable as exc:
            log.warning("waiting for the sign-in: %s; trying again", exc)
            continue
        if token is not None:
            return token
        if status == 429:
            interval += SLOW_DOWN_STEP
            if on_slow_down is not None:
                on_slow_down(interval)
            else:
                log.info("Trakt asked to slow down (429): polling every %g s now", interval)
            continue
        if status in DEVICE_OUTCOMES:
            raise DeviceFlowFailed(*DEVICE_OUTCOMES[status])
        # 400: the user has not approved yet.


# --- helpers ---------------------------------------------------------------------------------
def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _error_code(body: Any) -> str | None:
    """The OAuth `error` code of an answer (`invalid_grant`); only a plain word, never free text."""
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, str) and error.isidentifier() and len(error) <= 40 else None


def _json_or_none(raw: bytes) -> Any:
    try:
        return ujson.loads(raw) if raw else None
    except ValueError:
        return None


def _retry_after(headers: Mapping[str, str]) -> float:
    try:
        seconds = float((headers.get("Retry-After") or "").strip())
    except ValueError:
        return DEFAULT_RETRY_AFTER
    return min(max(seconds, 0.0), 900.0) if math.isfinite(seconds) else DEFAULT_RETRY_AFTER


def _describe_transport_error(exc: BaseException) -> str:
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        return "no answer in time"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot connect ({exc.os_error.strerror or exc.os_error})"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "the connection was closed without an answer"
    return f"the connection failed ({type(exc).__name__})"

"""A fake of Trakt's OAuth host (auth.trakt.tv): the device flow, refresh, revoke, /users/settings.

It checks Trakt's required headers like the real API (412 without `Content-Type:
application/json`, 403 for an unknown `trakt-api-key`, a Cloudflare-style 403 HTML page without a
`User-Agent`, 400 for a wrong `trakt-api-version`) and the client id and secret in the bodies.

    fake = FakeTraktOAuth(interval=0.05, token_expires_in=3600)
    url = await fake.start()               # serve as TRAKT_AUTH_URL (and TRAKT_API_URL for /users/settings)
    fake.script = ["pending", "slow_down", "approve"]   # what the next polls of a new code answer
    fake.approve() / fake.deny() / fake.expire() / fake.mark_used()   # or switch the newest code
    pair = fake.issue_token(expires_in=60) # a signed-in token without the device flow
    fake.refresh_count                     # refresh requests received (racing tests want exactly 1)
    fake.secret_values()                   # every token, device code and the client secret handed out

Device code answers (POST /oauth/device/token): "pending" 400, "approve" 200 (then the code is
used: 409), "invalid" 404, "used" 409, "expire" 410, "deny" 418, "slow_down" 429. Refresh tokens
are single-use; a spent, unknown or revoked one gets `invalid_grant` with `invalid_grant_status`
(400 as in Trakt's 2026 contract, or 401 as in the blueprint). `not_found=True` makes a host that
answers 404 to everything (an auth host without the OAuth routes).
"""

from __future__ import annotations

import asyncio
import collections
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import tornado.web

from tests.fakes.server import LoopbackServer

CLIENT_ID = "test-key"  # the same app key the fake Trakt API expects
CLIENT_SECRET = "fake-client-secret-5f2a9c"
DEVICE_ANSWERS = ("pending", "approve", "invalid", "used", "expire", "deny", "slow_down")
_STATUS = {"pending": 400, "invalid": 404, "used": 409, "expire": 410, "deny": 418, "slow_down": 429}


@dataclass
class DeviceGrant:
    device_code: str
    user_code: str
    expires_at: float
    state: str = "pending"  # pending | approved | used | denied | expired
    script: collections.deque = field(default_factory=collections.deque)
    polls: list[float] = field(default_factory=list)  # time.monotonic() of every poll


@dataclass
class IssuedToken:
    access_token: str
    refresh_token: str
    created_at: int
    expires_in: int
    valid: bool = True


class FakeTraktOAuth(LoopbackServer):
    name = "fake Trakt OAuth"

    def __init__(self, *, client_id: str = CLIENT_ID, client_secret: str = CLIENT_SECRET,
                 interval: float = 5, device_expires_in: float = 600, token_expires_in: int = 7 * 86400,
                 username: str = "fakeuser", invalid_grant_status: int = 400, refresh_delay: float = 0.0,
                 not_found: bool = False) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.interval = interval
        self.device_expires_in = device_expires_in
        self.token_expires_in = token_expires_in
        self.username = username
        self.invalid_grant_status = invalid_grant_status
        self.refresh_delay = refresh_delay  # seconds each refresh takes (widens race windows)
        self.not_found = not_found
        self.script: list[str] = []  # answers of the next device code's first polls
        self.grants: list[DeviceGrant] = []
        self.tokens: dict[str, IssuedToken] = {}  # by access token
        self.by_refresh: dict[str, IssuedToken] = {}
        self.spent_refresh: set[str] = set()
        self.revoked: list[str] = []
        self.refresh_count = 0
        self.requests: list[tuple[str, str, Any]] = []  # method, path, headers (case-insensitive)
        self._lock = threading.Lock()

    def make_app(self) -> tornado.web.Application:
        return tornado.web.Application(self.routes(r"/(.*)"), log_function=lambda h: None)

    def routes(self, pattern: str = r"/(oauth/.*|users/settings)") -> list[tuple]:
        """Tornado routes serving this fake; the default pattern can sit in front of the fake API's."""
        return [(pattern, _OAuthHandler, {"fake": self})]

    def is_valid(self, authorization: str) -> bool:
        """Whether an `Authorization: Bearer …` header carries a live token (for a fake API to check)."""
        return self.user_for(authorization) is not None

    # --- switches --------------------------------------------------------------------------
    def newest(self) -> DeviceGrant:
        with self._lock:
            if not self.grants:
                raise LookupError("no device code was requested yet")
            return self.grants[-1]

    def approve(self) -> None:
        self._set_state("approved")

    def deny(self) -> None:
        self._set_state("denied")

    def expire(self) -> None:
        self._set_state("expired")

    def mark_used(self) -> None:
        self._set_state("used")

    def _set_state(self, state: str) -> None:
        grant = self.newest()
        with self._lock:
            grant.state = state

    def issue_token(self, *, expires_in: int | None = None, created_at: int | None = None) -> dict[str, Any]:
        """A valid token pair, as Trakt's token answer."""
        with self._lock:
            return self._issue(expires_in, created_at)

    def invalidate_refresh_tokens(self) -> None:
        """Every refresh token handed out so far stops working (a revoked app, a password change)."""
        with self._lock:
            self.spent_refresh.update(self.by_refresh)

    def secret_values(self) -> list[str]:
        with self._lock:
            values = [self.client_secret]
            values += [grant.device_code for grant in self.grants]
            for token in self.tokens.values():
                values += [token.access_token, token.refresh_token]
            return values

    def count(self, path: str) -> int:
        with self._lock:
            return sum(1 for _, p, _ in self.requests if p == path)

    # --- behaviour -------------------------------------------------------------------------
    def _issue(self, expires_in: int | None = None, created_at: int | None = None) -> dict[str, Any]:
        token = IssuedToken(access_token=f"fake-access-{secrets.token_hex(12)}",
                            refresh_token=f"fake-refresh-{secrets.token_hex(12)}",
                            created_at=int(time.time()) if created_at is None else created_at,
                            expires_in=self.token_expires_in if expires_in is None else expires_in)
        self.tokens[token.access_token] = token
        self.by_refresh[token.refresh_token] = token
        return {"access_token": token.access_token, "token_type": "bearer", "expires_in": token.expires_in,
                "refresh_token": token.refresh_token, "scope": "public", "created_at": token.created_at}

    def new_device_code(self) -> dict[str, Any]:
        with self._lock:
            grant = DeviceGrant(device_code=f"fake-device-{secrets.token_hex(16)}",
                                user_code=secrets.token_hex(4).upper(),
                                expires_at=time.monotonic() + self.device_expires_in,
                                script=collections.deque(self.script))
            self.script = []
            self.grants.append(grant)
        return {"device_code": grant.device_code, "user_code": grant.user_code,
                "verification_url": "https://trakt.tv/activate", "expires_in": self.device_expires_in,
                "interval": self.interval}

    def poll(self, code: str) -> tuple[int, Any]:
        with self._lock:
            grant = next((g for g in self.grants if g.device_code == code), None)
            if grant is None:
                return 404, None
            grant.polls.append(time.monotonic())
            answer = grant.script.popleft() if grant.script else None
            if answer is not None and answer not in DEVICE_ANSWERS:
                raise ValueError(f"unknown device answer {answer!r}")
            if answer == "approve" or (answer is None and grant.state == "approved"):
                grant.state = "used"
                return 200, self._issue()
            if answer is not None:
                return _STATUS[answer], None
            if grant.state == "pending" and time.monotonic() > grant.expires_at:
                grant.state = "expired"
            return {"pending": 400, "used": 409, "expired": 410, "denied": 418}[grant.state], None

    def refresh(self, refresh_token: str) -> tuple[int, Any]:
        with self._lock:
            token = self.by_refresh.get(refresh_token)
            if token is None or refresh_token in self.spent_refresh:
                return self.invalid_grant_status, {
                    "error": "invalid_grant",
                    "error_description": "The provided authorization grant is invalid, expired, revoked, does not "
                                         "match the redirection URI used in the authorization request, or was "
                                         "issued to another client."}
            self.spent_refresh.add(refresh_token)
            token.valid = False
            return 200, self._issue()

    def revoke(self, access_token: str) -> None:
        with self._lock:
            token = self.tokens.get(access_token)
            if token is not None:
                token.valid = False
                self.spent_refresh.add(token.refresh_token)
            self.revoked.append(access_token)

    def user_for(self, authorization: str) -> dict | None:
        with self._lock:
            token = self.tokens.get(authorization.removeprefix("Bearer "))
            if token is None or not token.valid or time.time() > token.created_at + token.expires_in:
                return None
        return {"user": {"username": self.username, "private": True, "name": "Fake User", "vip": False,
                         "ids": {"slug": self.username}},
                "account": {"timezone": "UTC", "time_24hr": True}}


class _OAuthHandler(tornado.web.RequestHandler):
    def initialize(self, fake: FakeTraktOAuth) -> None:
        self.fake = fake

    def check_xsrf_cookie(self) -> None:
        pass

    def _record(self) -> bool:
        """Log the request and answer header problems; False when it was answered."""
        fake = self.fake
        with fake._lock:
            fake.requests.append((self.request.method, self.request.path, self.request.headers.copy()))
        headers = self.request.headers
        if fake.not_found:
            self._json(404, {"error": "not_found"})
            return False
        if not headers.get("User-Agent"):
            self.set_status(403)
            self.set_header("Content-Type", "text/html")
            self.set_header("Server", "cloudflare")
            self.finish("<html><body>Sorry, you have been blocked</body></html>")
            return False
        if headers.get("Content-Type", "").split(";")[0].strip() != "application/json":
            self._json(412, {"error": "precondition_failed"})
            return False
        if headers.get("trakt-api-key") != fake.client_id:
            self._json(403, {"error": "forbidden"})
            return False
        if headers.get("trakt-api-version") != "2":
            self._json(400, {"error": "wrong api version"})
            return False
        return True

    def _body(self) -> dict:
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError:
            return {}
        return body if isinstance(body, dict) else {}

    def _client_ok(self, body: dict, *, secret: bool = True) -> bool:
        fake = self.fake
        if body.get("client_id") != fake.client_id or (secret and body.get("client_secret") != fake.client_secret):
            self._json(401, {"error": "invalid_client", "error_description": "Client authentication failed"})
            return False
        return True

    def _json(self, status: int, body: Any) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body if body is not None else {}))

    async def post(self, path: str) -> None:
        if not self._record():
            return
        fake, body = self.fake, self._body()
        if path == "oauth/device/code":
            if self._client_ok(body, secret=False):
                self._json(200, fake.new_device_code())
        elif path == "oauth/device/token":
            if self._client_ok(body):
                self._json(*fake.poll(str(body.get("code"))))
        elif path == "oauth/token":
            if body.get("grant_type") != "refresh_token":
                self._json(400, {"error": "unsupported_grant_type"})
                return
            with fake._lock:
                fake.refresh_count += 1
            if fake.refresh_delay:
                await asyncio.sleep(fake.refresh_delay)
            if self._client_ok(body):
                self._json(*fake.refresh(str(body.get("refresh_token"))))
        elif path == "oauth/revoke":
            if self._client_ok(body):
                fake.revoke(str(body.get("token")))
                self._json(200, {})
        else:
            self._json(404, {"error": "not_found"})

    def get(self, path: str) -> None:
        if not self._record():
            return
        if path == "users/settings":
            settings = self.fake.user_for(self.request.headers.get("Authorization", ""))
            if settings is None:
                self._json(401, {"error": "invalid_token"})
            else:
                self._json(200, settings)
        else:
            self._json(404, {"error": "not_found"})

"""The Trakt sign-in: the token file in the data folder and keeping the token valid.

`TokenStore` keeps `DATA_DIR/auth/token.json` (mode 0600, written atomically; a file others can
read is refused, not used). `TokenManager` is what the sync and the watcher ask for a header:
it refreshes before expiry and once on a 401 that is not a private-user 401. Refresh tokens are
single-use (README "Signing in"), so one refresh runs at a time: an asyncio lock inside a process,
a file lock across processes (the CLI sync and the server), and the new pair is stored before it
is used. A refresh refused with `invalid_grant` marks the sign-in lost, on disk, and nothing
tries again until `trakt-watch login`.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import hashlib
import logging
import os
import secrets
import stat
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ujson

from services import times
from services.config import Config
from services.data import layout
from services.trakt.oauth import Account, AuthError, AuthUnavailable, Budget, InvalidGrant, OAuthClient, Token

log = logging.getLogger("trakt_watch.auth")

SIGNED_IN = "signed_in"
SIGNED_OUT = "signed_out"
LOST = "lost"
REFUSED = "refused"  # the token file exists but cannot be used (mode, owner, contents)

SIGN_IN_AGAIN = "sign in again: trakt-watch login"
REFRESH_MARGIN_FRACTION = 0.1  # refresh once 90 % of the lifetime has passed ...
REFRESH_MARGIN_MAX = 24 * 3600.0  # ... but never more than a day early (3-month tokens)
REFRESH_RETRY_SECONDS = 60.0  # after a failed refresh (Trakt down), wait this long before the next
LOCK_TIMEOUT_SECONDS = 60.0
LOCK_POLL_SECONDS = 0.05


class NotSignedIn(AuthError):
    """No token is stored."""


class SignInLost(AuthError):
    """Trakt refused the refresh token; only `trakt-watch login` helps."""


class TokenFileRefused(AuthError):
    """The token file exists but is not used: readable by others, unreadable or malformed."""


@dataclass(frozen=True)
class SignIn:
    """What the token file holds: a token (signed in) or the note that the sign-in was lost."""

    state: str  # SIGNED_IN or LOST
    token: Token | None = None
    username: str | None = None
    slug: str | None = None
    lost_at: str | None = None
    reason: str | None = None

    def describe(self) -> dict[str, Any]:
        """For display: who, until when, in what state; never a token."""
        expires_at = self.token.expires_at if self.token else None
        return {
            "state": self.state,
            "username": self.username,
            "slug": self.slug,
            "expires_at": None if expires_at is None else times.iso_z(times.parse(expires_at), timespec="seconds"),
            "lost_at": self.lost_at,
            "message": SIGN_IN_AGAIN if self.state == LOST else f"signed in as {self.username or 'an unknown user'}",
        }


def fingerprint(access_token: str) -> str:
    """A short hash that tells two tokens apart without keeping either."""
    return hashlib.sha256(access_token.encode()).hexdigest()[:16]


# --- the token file ----------------------------------------------------------------------------
class TokenStore:
    """`DATA_DIR/auth/token.json`: read with a permission check, written atomically with mode 0600."""

    def __init__(self, data_dir: Path) -> None:
        root = Path(data_dir).absolute()  # messages name it: `chmod 600 <path>` must work from anywhere
        self.path = root / layout.TOKEN
        self.lock_path = root / layout.TOKEN_LOCK
        self._cache: tuple[tuple[int, int, int], SignIn] | None = None

    def load(self) -> SignIn | None:
        """The stored sign-in, None when there is no file; TokenFileRefused when it must not be used."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            self._cache = None
            return None
        except OSError as exc:
            raise TokenFileRefused(self._unreadable(exc)) from None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise TokenFileRefused(f"{self.path} is not a regular file; delete it and run trakt-watch login")
            mode = stat.S_IMODE(info.st_mode)
            if mode & 0o077:
                raise TokenFileRefused(
                    f"{self.path} can be read by other users (mode {mode:04o}), so the Trakt token in it is "
                    f"not used; make it private with: chmod 600 {self.path}")
            key = (info.st_ino, info.st_mtime_ns, info.st_size)
            if self._cache is not None and self._cache[0] == key:
                return self._cache[1]
            with os.fdopen(fd, "rb", closefd=False) as fh:
                raw = fh.read()
        finally:
            os.close(fd)
        signin = self._parse(raw)
        self._cache = (key, signin)
        return signin

    def save(self, token: Token, *, username: str | None, slug: str | None) -> SignIn:
        """Store a token (replacing whatever was there) and return what was stored."""
        self._write({
            "state": SIGNED_IN, "username": username, "slug": slug,
            "access_token": token.access_token, "refresh_token": token.refresh_token,
            "token_type": token.token_type, "scope": token.scope,
            "created_at": token.created_at, "expires_in": token.expires_in,
            "stored_at": times.iso_z(times.now(), timespec="seconds"),
        })
        return SignIn(SIGNED_IN, token, username, slug)

    def mark_lost(self, previous: SignIn, reason: str) -> SignIn:
        """Replace the token with a note that the sign-in was lost (the tokens are useless now)."""
        lost_at = times.iso_z(times.now(), timespec="seconds")
        self._write({"state": LOST, "username": previous.username, "slug": previous.slug,
                     "lost_at": lost_at, "reason": reason})
        return SignIn(LOST, None, previous.username, previous.slug, lost_at, reason)

    def delete(self) -> bool:
        """Remove the token file; True when there was one."""
        self._cache = None
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        _fsync_dir(self.path.parent)
        return True

    @contextlib.asynccontextmanager
    async def locked(self, timeout: float = LOCK_TIMEOUT_SECONDS) -> AsyncIterator[None]:
        """Hold `auth/token.lock` (an flock): no two processes spend the same refresh token."""
        self._ensure_dir()
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EAGAIN, errno.EACCES):
                        raise
                if time.monotonic() > deadline:
                    raise AuthError(f"another trakt-watch process held {self.lock_path} for over {timeout:g} s")
                await asyncio.sleep(LOCK_POLL_SECONDS)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    # --- internals ------------------------------------------------------------------------
    def _ensure_dir(self) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)

    def _write(self, document: dict[str, Any]) -> None:
        """Temp file (0600 from the start) + fsync + rename + fsync of the folder."""
        self._ensure_dir()
        tmp = self.path.with_name(f".{self.path.name}.{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            try:
                os.fchmod(fd, 0o600)  # whatever the umask was
                os.write(fd, ujson.dumps(document, indent=2).encode())
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self.path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        self._cache = None
        _fsync_dir(self.path.parent)

    def _parse(self, raw: bytes) -> SignIn:
        broken = f"{self.path} is not a token file trakt-watch wrote; delete it and run trakt-watch login"
        try:
            document = ujson.loads(raw)
        except ValueError:
            raise TokenFileRefused(broken) from None
        if not isinstance(document, dict):
            raise TokenFileRefused(broken)
        username = document.get("username") if isinstance(document.get("username"), str) else None
        slug = document.get("slug") if isinstance(document.get("slug"), str) else None
        if document.get("state") == LOST:
            return SignIn(LOST, None, username, slug, document.get("lost_at"), document.get("reason"))
        try:
            token = Token.from_response(document, str(self.path))
        except AuthError:
            raise TokenFileRefused(broken) from None
        return SignIn(SIGNED_IN, token, username, slug)

    def _unreadable(self, exc: OSError) -> str:
        if isinstance(exc, PermissionError):
            return (f"cannot read {self.path}: permission denied; run trakt-watch as the user that owns it "
                    "(the user the service runs as), or sign in again as this user")
        return f"cannot read {self.path}: {exc.strerror or exc}"


# --- keeping the token valid -------------------------------------------------------------------
class TokenManager:
    """Gives callers a valid Authorization header and keeps the sign-in alive.

        header = await tokens.authorization_header()   # {} when not signed in: public profiles work
        ... on a 401: if await tokens.on_unauthorized(response.headers, header): retry once
        tokens.state()                                   # for /healthz and `trakt-watch status`
    """

    def __init__(self, config: Config, *, budget: Budget | None = None, oauth: OAuthClient | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.store = TokenStore(config.data_dir)
        self.oauth = oauth
        self.budget = budget
        self._owns_oauth = oauth is None
        self._clock = clock
        self._lock = asyncio.Lock()
        self._refreshed_after_401: set[str] = set()  # fingerprints: a second 401 on these is final
        self._refresh_failed_at: float | None = None
        self._last_failure: AuthError | None = None
        self._refused: str | None = None  # the refused token file's message, as last logged

    async def close(self) -> None:
        if self._owns_oauth and self.oauth is not None:
            await self.oauth.close()
            self.oauth = None

    def state(self) -> dict[str, Any]:
        """`state` (signed_in, signed_out, lost, refused), `username`, `slug`, `expires_at`, `message`."""
        try:
            signin = self.store.load()
        except TokenFileRefused as exc:  # said here; logged by what would use the token (signed_in, the header)
            return {"state": REFUSED, "username": None, "slug": None, "expires_at": None, "lost_at": None,
                    "message": str(exc)}
        if signin is None:
            return {"state": SIGNED_OUT, "username": None, "slug": None, "expires_at": None, "lost_at": None,
                    "message": "not signed in: public profiles only (trakt-watch login signs in)"}
        return signin.describe()

    @property
    def signed_in(self) -> bool:
        """A token is stored and usable (not lost, not refused)."""
        try:
            signin = self.store.load()
        except TokenFileRefused as exc:
            self._note_refused(exc)
            return False
        self._note_refused(None)
        return signin is not None and signin.token is not None

    def _note_refused(self, exc: TokenFileRefused | None) -> None:
        """Log a refused token file once (what is wrong and the fix), and once when it is usable again."""
        message = str(exc) if exc is not None else None
        if message == self._refused:
            return
        if message is not None:
            log.error("the Trakt sign-in is not used: %s", message)
        elif self._refused is not None:
            log.info("the Trakt token file can be used again")
        self._refused = message

    def refresh_margin(self, token: Token) -> float:
        return min(token.expires_in * REFRESH_MARGIN_FRACTION, REFRESH_MARGIN_MAX)

    async def authorization_header(self) -> dict[str, str]:
        """`{"Authorization": "Bearer …"}`, refreshed first when it expires soon; {} when not signed in.

        A token file that is refused (others can read it) counts as not signed in, like a lost
        sign-in: logged once, and /healthz says how to fix it. Raises AuthError when the token has
        expired and Trakt cannot refresh it right now.
        """
        try:
            signin = self.store.load()
        except TokenFileRefused as exc:
            self._note_refused(exc)
            return {}
        self._note_refused(None)
        if signin is None or signin.token is None:
            return {}
        token = signin.token
        if self._clock() >= token.expires_at - self.refresh_margin(token):
            try:
                token = await self._refresh(token, "it expires soon" if self._clock() < token.expires_at
                                            else "it expired")
            except (SignInLost, NotSignedIn):
                return {}  # lost, or signed out meanwhile: public profiles still work
            except AuthError:
                if self._clock() >= token.expires_at:
                    raise
                # Still valid for a while: use it, the next call tries again.
        return {"Authorization": f"Bearer {token.access_token}"}

    async def on_unauthorized(self, response_headers: Mapping[str, str],
                              request_headers: Mapping[str, str] | None = None) -> bool:
        """A request got 401: refresh once and say whether retrying it can help.

        A private-user 401 (`X-Private-User: true`) is not about the token: False. A 401 on a token
        this method already refreshed for is final: False (no loop). `request_headers` (what the
        refused request carried) tells whether another caller has refreshed meanwhile.
        """
        if any(name.lower() == "x-private-user" and str(value).lower() == "true"
               for name, value in response_headers.items()):
            return False
        signin = self.store.load()
        if signin is None or signin.token is None:
            return False
        sent = (request_headers or {}).get("Authorization", "").removeprefix("Bearer ")
        current = signin.token
        if sent and sent != current.access_token:
            return True  # refreshed since that request was sent: retry with the new token
        if fingerprint(current.access_token) in self._refreshed_after_401:
            return False
        try:
            token = await self._refresh(current, "Trakt answered 401")
        except AuthError:
            return False
        self._refreshed_after_401.add(fingerprint(token.access_token))
        return True

    async def _refresh(self, stale: Token, reason: str) -> Token:
        """Exactly one refresh for `stale`, whoever else asks at the same time, in this or another process.

        Shielded: a caller that gives up (the watcher's poll timeout) must not abandon a refresh
        after Trakt has spent the old refresh token but before the new pair is stored.
        """
        work = asyncio.ensure_future(self._refresh_locked(stale, reason))
        work.add_done_callback(_retrieve_exception)
        return await asyncio.shield(work)

    async def _refresh_locked(self, stale: Token, reason: str) -> Token:
        async with self._lock:
            current = self._signed_in()
            if current.token.access_token != stale.access_token:
                return current.token  # another caller in this process refreshed while we waited
            now = self._clock()
            if self._refresh_failed_at is not None and now - self._refresh_failed_at < REFRESH_RETRY_SECONDS:
                raise self._last_failure or AuthUnavailable("refreshing the Trakt sign-in failed")
            async with self.store.locked():
                current = self._signed_in()  # re-read: another process may have refreshed already
                if current.token.access_token != stale.access_token:
                    return current.token
                oauth = await self._oauth()
                try:
                    token = await oauth.refresh(current.token.refresh_token)
                except InvalidGrant as exc:
                    self.store.mark_lost(current, str(exc))
                    log.error("Trakt refused to refresh the sign-in of %s (%s): %s",
                              current.username or "the account", exc, SIGN_IN_AGAIN)
                    raise SignInLost(f"{exc}: {SIGN_IN_AGAIN}") from None
                except AuthError as exc:
                    self._refresh_failed_at, self._last_failure = self._clock(), exc
                    log.warning("refreshing the Trakt sign-in failed (%s); trying again in %g s",
                                exc, REFRESH_RETRY_SECONDS)
                    raise
                # Stored before it is used: the old refresh token is already spent at Trakt.
                self.store.save(token, username=current.username, slug=current.slug)
            self._refresh_failed_at = self._last_failure = None
            log.info("refreshed the Trakt sign-in of %s (%s); the new token expires %s",
                     current.username or "the account", reason,
                     times.iso_z(times.parse(token.expires_at), timespec="seconds"))
            return token

    def _signed_in(self) -> SignIn:
        signin = self.store.load()
        if signin is None:
            raise NotSignedIn("not signed in to Trakt (trakt-watch login signs in)")
        if signin.token is None:
            raise SignInLost(f"the Trakt sign-in was lost: {SIGN_IN_AGAIN}")
        return signin

    async def _oauth(self) -> OAuthClient:
        if self.oauth is None:
            self.oauth = OAuthClient(self.config, budget=self.budget)
        await self.oauth.start()
        return self.oauth


def store_sign_in(config: Config, token: Token, account: Account | None) -> SignIn:
    """Store the token a login produced (replacing any earlier sign-in, lost or not)."""
    return TokenStore(config.data_dir).save(token, username=account.username if account else None,
                                            slug=account.slug if account else None)


# --- helpers ---------------------------------------------------------------------------------
def _retrieve_exception(task: asyncio.Future) -> None:
    """A shielded refresh whose caller gave up still fails quietly here; the next caller sees it."""
    if not task.cancelled():
        task.exception()


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

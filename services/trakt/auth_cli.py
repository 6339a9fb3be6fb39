"""`trakt-watch login`, `logout` and `status` (README "Signing in"); server.py only dispatches.

Each returns the exit code: 0 done, 1 failed (denied, expired, Trakt unreachable, a token file
that must be fixed), 2 configuration error. What they print names the user, the verification
URL, the code to type and expiry times; never a token, a device code or the client secret.
"""

from __future__ import annotations

import asyncio
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from typing import Any, TextIO

import ujson

from services import times
from services.config import Config
from services.data import layout
from services.data.snapshots import DataFolder
from services.trakt.auth import LOST, REFUSED, SIGNED_IN, SIGNED_OUT, SignIn, TokenFileRefused, TokenManager, \
    TokenStore, store_sign_in
from services.trakt.oauth import AuthError, OAuthClient, wait_for_device_token
from services.trakt.report import read_last_attempt, read_sync_status

TRY_AGAIN = "run trakt-watch login again"
STATUS_TIMEOUT_SECONDS = 2.0  # `status` asks the local server's /healthz; a busy one still answers in time
MAX_HEALTH_BYTES = 1 << 20


def missing_settings(config: Config) -> str | None:
    """What stops OAuth from working at all, as one line (None when nothing does)."""
    missing = [name for name, value in (("TRAKT_API_KEY", config.trakt_api_key),
                                        ("TRAKT_CLIENT_SECRET", config.trakt_client_secret)) if not value]
    if not missing:
        return None
    return (f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set: signing in needs the "
            "Client ID and Client Secret of your Trakt app (README \"Signing in\")")


# --- login -----------------------------------------------------------------------------------
def login(config: Config, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    problem = missing_settings(config)
    if problem:
        print(f"trakt-watch login: configuration error: {problem}", file=err)
        return 2
    try:
        before = TokenStore(config.data_dir).load()
    except TokenFileRefused:
        before = None  # the new token replaces that file (and its mode)
    try:
        return asyncio.run(_login(config, before, out, err))
    except KeyboardInterrupt:
        print(f"\nSign-in cancelled; nothing was stored{_kept(before)}.", file=err)
        return 1


def _kept(before: SignIn | None) -> str:
    """What a failed or cancelled login leaves: the earlier sign-in, when there was a usable one."""
    if before is None or before.state != SIGNED_IN:
        return ""
    return f"; you are still signed in as {before.username or 'an unknown user'} (the earlier token is kept)"


async def _login(config: Config, before: SignIn | None, out: TextIO, err: TextIO) -> int:
    failed = "Not signed in" if before is None or before.state != SIGNED_IN else "Sign-in not replaced"
    async with OAuthClient(config) as oauth:
        try:
            device = await oauth.device_code()
        except AuthError as exc:
            print(f"trakt-watch login: could not start the sign-in: {exc}{_kept(before)}", file=err)
            return 1
        if before is not None and before.state == SIGNED_IN:
            _say(out, f"Already signed in as {before.username or 'an unknown user'}; "
                      "signing in again replaces that token.\n")
        minutes = max(1, round(device.expires_in / 60))
        _say(out, "To sign in to Trakt, open this address on any device (phone, laptop):\n\n"
                  f"    {device.verification_url}\n\n"
                  "and enter this code:\n\n"
                  f"    {device.user_code}\n\n"
                  f"Waiting for you to approve it (the code works for {minutes} minute{'s' if minutes != 1 else ''}; "
                  "Ctrl-C cancels)...")

        def slowed(interval: float) -> None:
            _say(out, f"(Trakt asked to check less often: every {interval:g} s now.)")

        try:
            token = await wait_for_device_token(oauth, device, on_slow_down=slowed)
        except AuthError as exc:  # DeviceFlowFailed (denied, expired...) or Trakt unreachable
            print(f"{failed}: {exc}; {TRY_AGAIN}{_kept(before)}.", file=err)
            return 1
        try:
            account = await oauth.account(token.access_token)
        except AuthError as exc:
            account = None
            print(f"(Could not read which account this is: {exc}.)", file=err)
    signin = store_sign_in(config, token, account)
    expires = signin.describe()["expires_at"]
    _say(out, f"\nSigned in to Trakt as {signin.username or 'an unknown user'}.\n"
              f"The token is stored in {TokenStore(config.data_dir).path.resolve()} (readable only by you);\n"
              f"it expires {_when(expires)} and is refreshed before then.\n"
              "Next: a running trakt-watch serve with this data folder starts syncing within seconds;\n"
              "otherwise run trakt-watch sync, then trakt-watch serve. trakt-watch status shows how it went.")
    return 0


# --- logout ----------------------------------------------------------------------------------
def logout(config: Config, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    store = TokenStore(config.data_dir)
    try:
        signin = store.load()
    except TokenFileRefused as exc:
        # Unusable anyway; deleting it is what logging out means.
        store.delete()
        _say(out, f"Deleted {store.path} ({exc}). Nothing was revoked at Trakt: to be sure, remove the app at "
                  "https://trakt.tv/oauth/authorized_applications")
        return 0
    if signin is None:
        _say(out, "Not signed in; nothing to do.")
        return 0
    if signin.token is None:
        store.delete()
        _say(out, f"Deleted the lost sign-in of {signin.username or 'an unknown user'}.")
        return 0
    problem = missing_settings(config)
    if problem:
        print(f"trakt-watch logout: configuration error: {problem}", file=err)
        return 2
    try:
        asyncio.run(_revoke(config, signin.token.access_token))
    except AuthError as exc:
        store.delete()
        print(f"Could not revoke the token at Trakt ({exc}); deleted it here anyway. Remove the app at "
              "https://trakt.tv/oauth/authorized_applications to be sure it is no longer valid.", file=err)
        return 1
    store.delete()
    _say(out, f"Signed out {signin.username or 'an unknown user'}: the token was revoked at Trakt and deleted here.")
    return 0


async def _revoke(config: Config, access_token: str) -> None:
    async with OAuthClient(config) as oauth:
        await oauth.revoke(access_token)


# --- status ----------------------------------------------------------------------------------
def status(config: Config, out: TextIO = sys.stdout, now: float | None = None) -> int:
    """Exit 0, or 1 when the sign-in needs attention (lost, or a token file that is refused).

    The sign-in, the data and the last sync are read from the data folder; the server and its
    watcher from the running server's own /healthz (what monitoring sees too), so a server that
    is down is said to be down, not guessed from old files."""
    now = time.time() if now is None else now
    state = TokenManager(config).state()
    lines = [("Trakt sign-in", _sign_in_line(state, now, config))]
    folder = DataFolder(config.data_dir)
    lines.append(("Data", _data_line(folder, now)))
    lines.append(("Last sync", _sync_line(read_sync_status(folder), read_last_attempt(folder), now)))
    url = server_url(config)
    health, problem = _ask_server(url)
    lines.append(("Server", _server_line(url, health, problem, said=state["message"])))
    lines.append(("Watcher", _watcher_line(health, now, signed_in=state["state"] == SIGNED_IN and bool(config.trakt_api_key))))
    width = max(len(label) for label, _ in lines) + 2
    for label, text in lines:
        _say(out, f"{label + ':':<{width}}{text}")
    return 1 if state["state"] in (LOST, REFUSED) else 0


def server_url(config: Config) -> str:
    """Where this machine reaches the server HOST/PORT describe (a wildcard address is loopback)."""
    host = config.host.strip("[]") or "127.0.0.1"
    host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    return f"http://{f'[{host}]' if ':' in host else host}:{config.port}"


def _ask_server(url: str) -> tuple[dict | None, str | None]:
    """(the /healthz body, None) or (None, why no server answered)."""
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=STATUS_TIMEOUT_SECONDS) as response:
            raw = response.read(MAX_HEALTH_BYTES)
    except urllib.error.HTTPError as exc:  # 503: no data can be served, still the health JSON
        raw = exc.read(MAX_HEALTH_BYTES)
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return None, getattr(reason, "strerror", None) or str(reason) or type(exc).__name__
    try:
        body = ujson.loads(raw)
    except ValueError:
        body = None
    if not isinstance(body, dict) or "status" not in body:
        return None, "something else answers there (not trakt-watch's /healthz)"
    return body, None


def _server_line(url: str, health: dict | None, problem: str | None, said: str = "") -> str:
    if health is None:
        return f"not running at {url} ({problem}); trakt-watch serve starts it (HOST/PORT say where)"
    line = f"running at {url}/, {health['status']}"
    reasons = [str(r) for r in health.get("reasons") or [] if str(r) != said]  # the sign-in line said it
    if len(reasons) < len(health.get("reasons") or []):
        reasons.insert(0, "the sign-in above")
    return line + (": " + "; ".join(reasons) if reasons else "")


def _watcher_line(health: dict | None, now: float, *, signed_in: bool = False) -> str:
    if health is None:
        return "unknown while the server is down"
    watcher = health.get("watcher") if isinstance(health.get("watcher"), dict) else {}
    kind = watcher.get("status")
    if kind == "demo":
        return "plays the demo account's schedule"
    if (kind == "disabled" or not watcher.get("polling")) and signed_in:
        every = watcher.get("poll_seconds")
        return ("not polling yet: it takes up the new sign-in at its next look"
                + (f" (every {every:g} s)" if isinstance(every, (int, float)) else ""))
    if kind == "disabled" or not watcher.get("polling"):
        return "not polling Trakt (no TRAKT_API_KEY, or neither TRAKT_USERNAME nor a sign-in)"
    how = ("/users/me/watching (signed in)" if watcher["polling"] == "signed_in"
           else f"/users/{watcher.get('user')}/watching (TRAKT_USERNAME, not signed in)")
    every = watcher.get("poll_seconds")
    line = f"polling {how}{f' every {every:g} s' if isinstance(every, (int, float)) else ''}"
    line += f"; last good poll {_ago(watcher.get('last_poll_at'), now)}" if watcher.get("last_poll_at") \
        else "; no successful poll yet"
    playing = watcher.get("playing")
    since = f" since {_ago(watcher['playing_since'], now)}" if watcher.get("playing_since") else ""
    line += f"; playing {playing}{since}" if playing else f"; nothing playing{since}"
    if watcher.get("last_error"):
        line += f"; failing: {watcher['last_error']}"
    return line


def _sign_in_line(state: dict[str, Any], now: float, config: Config) -> str:
    kind = state["state"]
    if kind == SIGNED_IN:
        expires = times.to_epoch(state["expires_at"])
        if expires is not None and expires <= now:
            until = f"the token expired {_when(state['expires_at'], now)}; it is refreshed at the next request"
        else:
            until = f"the token expires {_when(state['expires_at'], now)}"
        return f"signed in as {state['username'] or 'an unknown user'}; {until}"
    if kind == LOST:
        return f"lost {_when(state['lost_at'], now)} (Trakt refused to refresh it): {state['message']}"
    if kind == SIGNED_OUT and not config.trakt_username:
        return "not signed in, and TRAKT_USERNAME is not set: nothing to sync until you run trakt-watch login"
    if kind == SIGNED_OUT:
        return (f"not signed in: {config.trakt_username}'s public profile is read with TRAKT_API_KEY alone "
                "(trakt-watch login signs in)")
    return f"not usable: {state['message']}"


def _data_line(folder: DataFolder, now: float) -> str:
    served = folder.served_root()
    if served is None:
        return "no synced data yet"
    try:
        index = ujson.loads((served / layout.INDEX).read_bytes())
    except (OSError, ValueError):
        return f"{served} (its {layout.INDEX} cannot be read)"
    metadata = index.get("metadata") if isinstance(index, dict) else None
    stamp = metadata.get("last_updated") if isinstance(metadata, dict) else None
    if not stamp:
        return f"{served} (no last_updated in {layout.INDEX})"
    user = metadata.get("username")
    # last_updated is when the mirrored data last changed; Last sync says when it was last confirmed
    return f"{'account ' + user + ', ' if user else ''}last changed {_when(stamp, now)}"


def _sync_line(sync: dict[str, Any], last: dict | None, now: float) -> str:
    outcome = sync.get("last_attempt_outcome")
    if outcome is None:
        return "never ran"
    line = f"{outcome} {_when(sync.get('last_attempt_at'), now)}"
    if outcome == "success" and isinstance(last, dict):
        kind = {"incremental": "a check", "full": "a full mirror"}.get(last.get("mode"))
        changed = last.get("changed")
        if kind and isinstance(changed, list):
            line += f", {kind}: " + (f"{', '.join(map(str, changed))} changed" if last.get("committed") and changed
                                     else "nothing new")
    if outcome != "success":
        if sync.get("last_error"):
            line += f": {sync['last_error']}"
        line += f"; last success {_when(sync.get('last_success_at'), now)}" if sync.get("last_success_at") \
            else "; never succeeded"
    return line


# --- helpers ---------------------------------------------------------------------------------
def _say(out: TextIO, text: str) -> None:
    print(text, file=out, flush=True)


def _when(value: Any, now: float | None = None) -> str:
    """`2026-12-08 21:40 UTC (in 6 days)` / `(3 hours ago)`."""
    stamp = times.to_epoch(value)
    if stamp is None:
        return "at an unknown time"
    now = time.time() if now is None else now
    text = datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d %H:%M UTC")
    delta = stamp - now
    span = _span(abs(delta))
    return f"{text} ({'in ' + span if delta > 0 else span + ' ago'})"


def _ago(value: Any, now: float) -> str:
    """`12 s ago`, `3 minutes ago`: for what happens every few seconds."""
    stamp = times.to_epoch(value)
    if stamp is None:
        return "at an unknown time"
    seconds = max(0.0, now - stamp)
    return f"{seconds:.0f} s ago" if seconds < 57 else f"{_span(seconds)} ago"


def _span(seconds: float) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size * 0.95:  # 59.9 minutes reads as "1 hour", 14 hours not as "1 day"
            count = max(1, round(seconds / size))
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return "less than a minute"

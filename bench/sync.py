"""Sync: requests made and time taken for the 10,000-history-row account, 50 ms per request:
the full mirror, then the incremental check (README "Sync") for an unchanged account and for one
new play, signed in (`/sync/last_activities`) and not (public signals); and up next's show data of
the scale account (`_up_next_rows`).

The fake Trakt (tests/fakes/trakt.py) runs in a thread of this process with `latency=0.05`; the
sync is the real command a user runs, `python server.py sync --data-dir D --no-images`, as its
own process. The account is the one the sync tests use for completeness (10,000 history rows,
3,000 watched movies, 600 shows, 40 lists ...). The minimum is one request per 250-row page (at
least one per endpoint) plus the profile and the stats: `FakeAccount.minimum_requests(250)`.
The checks run in this process (`SyncService.run_once`) on the folder the command wrote (not
signed in) and on one a signed-in full sync wrote; an unchanged check may cost at most 2 requests
signed in and 4 without.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
from datetime import timedelta
from unittest import mock

from bench import accounts
from bench.util import Context, Row, missing_modules, scrubbed_env, skipped, verdict

SECTION = "sync"
LATENCY_S = 0.05
PAGE_LIMIT = 250
API_KEY = "bench-key"


def run(ctx: Context) -> list[Row]:
    missing = missing_modules("server.py", "services/trakt/sync.py", "services/trakt/incremental.py",
                              "tests/fakes/trakt.py")
    if missing:
        return [skipped(SECTION, f"{', '.join(missing)} not present")]
    from tests.fakes.trakt import FakeAccount, FakeTrakt

    account = FakeAccount.build(history=10_000, watched_movies=3_000, shows=600, lists=40, watchlist=300,
                                comments=120, ratings=700)
    fake = FakeTrakt(account, api_key=API_KEY, latency=LATENCY_S)
    minimum = account.minimum_requests(PAGE_LIMIT)
    data_dir = ctx.work_dir / "data"
    with fake.running_in_thread() as url:
        # The budget lifted: 500-odd requests would wait 5 minutes for TRAKT_RATE_LIMIT=400's window,
        # and this measures requests, not the budget.
        env = scrubbed_env({"TRAKT_API_KEY": API_KEY, "TRAKT_USERNAME": account.username, "TRAKT_API_URL": url,
                            "SYNC_INTERVAL_HOURS": "0", "TRAKT_RATE_LIMIT": "100000"})
        started = time.perf_counter()
        done = subprocess.run([sys.executable, str(accounts.SERVER_PY), "sync", "--data-dir", str(data_dir),
                               "--no-images"], check=False, capture_output=True, text=True, env=env,
                              cwd=str(ctx.work_dir), timeout=300, stdin=subprocess.DEVNULL)
        took = time.perf_counter() - started
        made = fake.count()
        checks = asyncio.run(_checks(fake, url, data_dir, ctx)) if done.returncode == 0 else []
    if done.returncode != 0:
        return [Row(SECTION, "10,000-row sync", f"exit {done.returncode}", status="FAIL",
                    note=(done.stderr or done.stdout).strip()[-300:])]
    ok = made == minimum
    sequential = minimum * LATENCY_S
    return [
        Row(SECTION, "10,000-row sync: requests", f"{made} (minimum {minimum})", "= minimum", verdict(ok),
            "" if ok else "extra requests beyond one per 250-row page", {"requests": made, "minimum": minimum}),
        Row(SECTION, "10,000-row sync: time", f"{took:.1f} s", status="INFO",
            note=f"whole command incl. start-up and writing; {minimum} x 50 ms one after another would be "
                 f"{sequential:.1f} s", data={"seconds": took, "sequential_latency_s": sequential}),
        *checks,
        *_up_next_rows(ctx),
    ]


UNCHANGED_MOST = {True: 2, False: 4}  # README "Sync": what an unchanged check may cost


async def _checks(fake, url: str, public_dir, ctx: Context) -> list[Row]:
    from services.config import Config
    from services.data.snapshots import DataFolder
    from services.trakt.service import SyncService

    rows = []
    for signed_in, folder in ((False, public_dir), (True, ctx.work_dir / "data-signed-in")):
        config = Config(trakt_api_key=API_KEY, trakt_username=fake.account.username, trakt_api_url=url,
                        data_dir=folder, sync_interval_hours=0, sync_check_minutes=0, trakt_rate_limit=100_000)
        sync = SyncService(config, DataFolder(folder), signed_in=lambda signed_in=signed_in: signed_in)
        if signed_in:
            await sync.run_once(full=True)
        who = "signed in" if signed_in else "not signed in"
        for case in ("unchanged", "one new play"):
            if case == "one new play":
                fake.add_play("episode", index=0)
            fake.reset_counts()
            started = time.perf_counter()
            report = await sync.run_once()
            took = time.perf_counter() - started
            made = fake.count()
            data = {"requests": made, "seconds": took, "signed_in": signed_in, "outcome": report.outcome,
                    "changed": report.changed}
            if case == "unchanged":
                most = UNCHANGED_MOST[signed_in]
                ok = report.succeeded and report.mode == "incremental" and made <= most
                rows.append(Row(SECTION, f"unchanged check, {who}: requests", f"{made}", f"<= {most}", verdict(ok),
                                "" if ok else report.error or "more requests than an unchanged check may cost", data))
            else:
                ok = report.succeeded and "history" in (report.changed or [])
                rows.append(Row(SECTION, f"one new play, {who}: requests", f"{made}", status="INFO" if ok else "FAIL",
                                note="" if ok else report.error or "the new play was not mirrored", data=data))
            rows.append(Row(SECTION, f"{case}, {who}: time", f"{took:.2f} s", status="INFO",
                            note=f"{made} requests at {LATENCY_S * 1000:.0f} ms each", data={"seconds": took}))
    return rows


# --- up next's show data (README "Up next and the calendar") ---------------------------------------
UPNEXT_SCALE = 50  # the scale account's watched shows and watchlist (bench/accounts.py)


def _up_next_rows(ctx: Context) -> list[Row]:
    """Show-data requests and seconds of a first and a second sync of the scale account's 2,625
    watched shows (and its watchlist), without a token and signed in; the second sync of the
    unchanged account must spend none. Then a day later (the clock moved on in this process), the
    daily refresh after new episodes of 1 % of the shows were announced. The rest of the account is
    left small: its cost is measured above. The budget is lifted so the seconds are the requests'
    own; at TRAKT_RATE_LIMIT=400 (a sliding 5-minute window) every 400 requests beyond the first
    add at least 5 minutes."""
    import json

    from tests.fakes.trakt import FakeAccount, FakeTrakt
    from tests.fakes.trakt_oauth import FakeTraktOAuth

    folder, _ = accounts.account_dir(UPNEXT_SCALE, ctx.say)
    watched = json.loads((folder / "user/watched/shows.json").read_text())["data"]
    if ctx.quick:  # a smoke test: a tenth of the shows
        watched = watched[: len(watched) // 10]
    watchlist = json.loads((folder / "user/watchlist/all.json").read_text())["data"]
    rows: list[Row] = []
    for signed_in in (False, True):
        account = FakeAccount.build(history=30, watched_movies=5, shows=0, lists=1, watchlist=0, comments=1, ratings=1)
        account.watched_shows, account.watchlist = watched, watchlist
        oauth = FakeTraktOAuth(username=account.username) if signed_in else None
        fake = FakeTrakt(account, api_key=API_KEY, latency=LATENCY_S, oauth=oauth)
        data_dir = ctx.work_dir / ("upnext-signed-in" if signed_in else "upnext-public")
        with fake.running_in_thread() as url:
            rows += asyncio.run(_up_next_syncs(ctx, fake, oauth, url, data_dir))
    return rows


async def _up_next_syncs(ctx: Context, fake, oauth, url: str, data_dir) -> list[Row]:
    from services import times
    from services.config import Config
    from services.data.snapshots import DataFolder
    from services.trakt import shows as shows_module
    from services.trakt.auth import TokenManager, TokenStore
    from services.trakt.oauth import Token
    from services.trakt.service import SyncService

    account = fake.account
    signed_in = oauth is not None
    who = "signed in" if signed_in else "not signed in"
    config = Config(trakt_api_key=API_KEY, trakt_username="" if signed_in else account.username, trakt_api_url=url,
                    trakt_auth_url=url, trakt_client_secret="bench-secret" if signed_in else "", data_dir=data_dir,
                    sync_interval_hours=0, sync_check_minutes=0, trakt_rate_limit=100_000)
    auth = None
    if signed_in:
        TokenStore(data_dir).save(Token.from_response(oauth.issue_token(), "bench"), username=account.username,
                                  slug=account.username)
        auth = TokenManager(config)
    sync = SyncService(config, DataFolder(data_dir), auth=auth)
    shows = len(account.watched_shows)
    # What the sync spent before it chose per show: the watched shows again with extended=full (250 a
    # page), every show's seasons, the watchlist's releases.
    before = -(-shows // PAGE_LIMIT) + shows + max(1, -(-len(account.watchlist_of("movies")) // PAGE_LIMIT))
    expected = account.show_data_requests(signed_in=signed_in)
    # A day later, Trakt announced new episodes of 1 % of the shows (their updated_at moved).
    announced = [row["show"]["ids"]["trakt"] for row in account.watched_shows[::100]]
    rows = []
    for case in ("first sync", "second sync", "a day later"):
        ctx.say(f"up next, scale-{UPNEXT_SCALE} ({shows} shows), {who}: {case}")
        fake.reset_counts()
        later = times.now() + timedelta(hours=shows_module.SHOW_REFRESH_HOURS, minutes=5)
        if case == "a day later":
            fake.show_updated_at.update({trakt_id: "2026-06-02T00:00:00.000Z" for trakt_id in announced})
        started = time.perf_counter()
        with mock.patch.object(times, "now", lambda moment=later: moment) if case == "a day later" else (
                contextlib.nullcontext()):
            report = await sync.run_once()
        took = time.perf_counter() - started
        spent = (report.show_data or {}).get("requests")
        data = {"show_data_requests": spent, "requests": fake.count(), "seconds": took, "signed_in": signed_in,
                "outcome": report.outcome, "shows": shows, "show_data": report.show_data}
        label = f"up next {case}, scale-{UPNEXT_SCALE}, {who}: show-data requests"
        if not report.succeeded:
            rows.append(Row(SECTION, label, "failed", status="FAIL", note=report.error or "", data=data))
            return rows
        if case == "first sync":
            ok = spent == expected
            rows.append(Row(SECTION, label, f"{spent} (was {before})", f"= {expected}", verdict(ok),
                            f"{shows} shows: {_reasons(report.show_data)}", data))
        elif case == "second sync":
            ok = spent == 0
            rows.append(Row(SECTION, label, f"{spent}", "= 0", verdict(ok),
                            f"unchanged account, {report.mode} ({'committed' if report.committed else 'nothing to commit'})",
                            data))
        else:
            seasons = report.show_data.get("seasons_fetched")
            rows.append(Row(SECTION, label, f"{spent}", status="INFO" if report.committed else "FAIL",
                            note=f"the daily refresh: watched shows re-read (extended=full), {seasons} seasons of the "
                                 f"{len(announced)} shows with new episodes that need them, the releases", data=data))
        at_budget = (fake.count() - 1) // 400 * 300.0  # each 400 beyond the first wait for the 5-minute window
        budget = (f"; at TRAKT_RATE_LIMIT=400 up to {at_budget / 60:.0f} min more (less: the calendar-only seasons "
                  "wait for the next checks)") if at_budget else ""
        rows.append(Row(SECTION, f"up next {case}, scale-{UPNEXT_SCALE}, {who}: time", f"{took:.1f} s", status="INFO",
                        note=f"{fake.count()} request(s) in all at {LATENCY_S * 1000:.0f} ms{budget} (machine shared)",
                        data={"seconds": took}))
    return rows


def _reasons(show_data: dict | None) -> str:
    reasons = (show_data or {}).get("reasons") or {}
    return ", ".join(f"{count} {reason}" for reason, count in sorted(reasons.items(), key=lambda pair: -pair[1]))

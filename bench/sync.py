"""Sync: requests made and time taken for the 10,000-history-row account, 50 ms per request:
the full mirror, then the incremental check (README "Sync") for an unchanged account and for one
new play, signed in (`/sync/last_activities`) and not (public signals).

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
import subprocess
import sys
import time

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
        env = scrubbed_env({"TRAKT_API_KEY": API_KEY, "TRAKT_USERNAME": account.username, "TRAKT_API_URL": url,
                            "SYNC_INTERVAL_HOURS": "0"})
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
    ]


UNCHANGED_MOST = {True: 2, False: 4}  # README "Sync": what an unchanged check may cost


async def _checks(fake, url: str, public_dir, ctx: Context) -> list[Row]:
    from services.config import Config
    from services.data.snapshots import DataFolder
    from services.trakt.service import SyncService

    rows = []
    for signed_in, folder in ((False, public_dir), (True, ctx.work_dir / "data-signed-in")):
        config = Config(trakt_api_key=API_KEY, trakt_username=fake.account.username, trakt_api_url=url,
                        data_dir=folder, sync_interval_hours=0, sync_check_minutes=0)
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

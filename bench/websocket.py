"""WebSocket fan-out: tick delivery to 1,000 and 2,000 clients, server CPU per tick, Trakt polls.

Our server runs as its own process against the fake Trakt (tests/fakes/trakt.py, served from a
thread of this process) with something playing, a 1 s tick and a 2 s poll. The clients are
aiohttp WebSocket clients in two more processes (bench/ws_clients.py), so their own frame
parsing is spread over both cores.

Ticks carry no production timestamp (README "Now watching and the WebSocket protocol" fixes their shape), so the delay reported is
the spread of one tick: each client's arrival minus the first client's arrival of that tick,
p50/p99 over all clients and ticks. It includes the client processes working through 2,000
sockets on the same two cores, so it is an upper bound of the server's fan-out time. Server
CPU per tick is the utime+stime delta of the server process over the window divided by the
ticks sent (polls and protocol pings included).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

from bench import accounts
from bench.util import (
    BenchError, Context, Row, fmt_ms, missing_modules, our_server, percentile, scrubbed_env, skipped, verdict,
)

SECTION = "websocket"
TICK_SECONDS = 1.0
POLL_SECONDS = 2.0
P99_TARGET_S = 0.250
API_KEY = "bench-key"
CLIENT_PROCESSES = 2  # one per core: the clients' own parsing must not be what is measured


def playing_now() -> dict:
    """A movie that started 20 minutes ago and ends in 100 (Trakt's /watching shape)."""
    now = datetime.now(UTC)
    return {
        "expires_at": (now + timedelta(minutes=100)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "started_at": (now - timedelta(minutes=20)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "action": "scrobble", "type": "movie",
        "movie": {"title": "Inception", "year": 2010,
                  "ids": {"trakt": 16662, "slug": "inception-2010", "imdb": "tt1375666", "tmdb": 27205}},
    }


def fan_out(server, fake, clients: int, window: float, ctx: Context) -> dict:
    """Connect `clients` (split over CLIENT_PROCESSES processes), record ticks for `window` seconds."""
    processes = CLIENT_PROCESSES if clients >= 1000 else 1
    procs = []
    logs = []
    outs = []
    try:
        for number in range(processes):
            share = clients // processes + (1 if number < clients % processes else 0)
            out = ctx.work_dir / f"arrivals-{clients}-{number}.json"
            log = open(ctx.work_dir / f"ws-clients-{clients}-{number}.log", "wb")  # noqa: SIM115 -- closed below
            logs.append(log)
            outs.append(out)
            argv = [sys.executable, "-m", "bench.ws_clients", "--url",
                    f"ws://127.0.0.1:{server.port}/ws/watching", "--origin", server.base_url,
                    "--clients", str(share), "--out", str(out)]
            procs.append(subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True,
                                          cwd=str(accounts.REPO), env=scrubbed_env()))
        connected = 0
        for proc, log in zip(procs, logs):
            line = proc.stdout.readline().strip()
            if not line.startswith("ready"):
                raise BenchError(f"a client process did not get ready: {line!r} (see {log.name})")
            connected += int(line.split()[1])
        time.sleep(1.0)  # let the connection burst settle before the window opens
        polls_before = fake.count("/watching")
        cpu_before = server.cpu()
        for proc in procs:
            proc.stdin.write("go\n")
            proc.stdin.flush()
        time.sleep(window)
        cpu_after = server.cpu()
        polls_after = fake.count("/watching")
        for proc in procs:
            proc.stdin.write("stop\n")
            proc.stdin.flush()
        for proc in procs:
            if proc.stdout.readline().strip() != "done":
                raise BenchError("a client process did not finish")
            proc.wait(timeout=60)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for log in logs:
            log.close()
    by_tick: dict[str, list[float]] = {}
    client_cpu = 0.0
    closed_early = 0
    for out in outs:
        result = json.loads(out.read_text())
        for payload, arrivals in zip(result["tick_payloads"], result["ticks"]):
            by_tick.setdefault(payload, []).extend(arrivals)
        client_cpu += result["client_cpu_seconds"]
        closed_early += result["closed_early"]
    spreads = []
    complete_ticks = 0
    for arrivals in by_tick.values():
        first = min(arrivals)  # time.monotonic() is one clock for every process on Linux
        spreads.extend(a - first for a in arrivals)
        complete_ticks += len(arrivals) == connected
    if not spreads:
        raise BenchError(f"no tick arrived at {clients} clients in {window:.0f} s")
    ticks = len(by_tick)
    return {
        "clients": clients, "connected": connected, "client_processes": processes, "ticks": ticks,
        "complete_ticks": complete_ticks, "deliveries": len(spreads), "p50_s": percentile(spreads, 0.5),
        "p99_s": percentile(spreads, 0.99), "max_s": max(spreads),
        "cpu_per_tick_s": (cpu_after - cpu_before) / max(1, ticks),
        "polls": polls_after - polls_before, "poll_intervals": window / POLL_SECONDS,
        "client_cpu_per_tick_s": client_cpu / max(1, ticks), "closed_early": closed_early,
    }


def run(ctx: Context) -> list[Row]:
    missing = missing_modules("server.py", "services/watching/watcher.py", "handlers/watching.py", "tests/fakes/trakt.py",
                              accounts.GENERATOR)
    if missing:
        return [skipped(SECTION, f"{', '.join(missing)} not present")]
    from tests.fakes.trakt import FakeAccount, FakeTrakt

    fake = FakeTrakt(FakeAccount.build(), api_key=API_KEY)
    fake.watching = playing_now()
    data_dir, _ = accounts.working_copy(1, ctx.work_dir / "account", ctx.say)
    accounts.mark_as_synced(data_dir)
    window = ctx.seconds(12, 4)
    rows: list[Row] = []
    with fake.running_in_thread() as fake_url:
        env = scrubbed_env({
            "TRAKT_API_KEY": API_KEY, "TRAKT_USERNAME": fake.account.username, "TRAKT_API_URL": fake_url,
            "WATCHING_TICK_SECONDS": str(TICK_SECONDS), "WATCHING_POLL_SECONDS": str(POLL_SECONDS),
            "SYNC_INTERVAL_HOURS": "0", "WATCHING_MAX_CLIENTS": "5000",  # above the 2,000 measured
        })
        server = our_server(data_dir, log_dir=ctx.work_dir, name="ws-server", env=env)
        with server:
            server.wait_ready(timeout=60)
            for clients in ((1000, 2000) if not ctx.quick else (200, 500)):
                ctx.say(f"websocket: {clients} clients")
                m = fan_out(server, fake, clients, window, ctx)
                ok = m["p99_s"] <= P99_TARGET_S and m["connected"] == clients
                polls_ok = abs(m["polls"] - m["poll_intervals"]) <= 1
                note = (f"{m['connected']}/{clients} connected, {m['ticks']} ticks, {m['complete_ticks']} reached "
                        f"every client; {m['client_processes']} client processes used "
                        f"{fmt_ms(m['client_cpu_per_tick_s'])} CPU/tick")
                rows += [
                    Row(SECTION, f"{clients} clients: tick spread p50/p99", f"{fmt_ms(m['p50_s'])} / "
                        f"{fmt_ms(m['p99_s'])}", "p99 <= 250 ms" if clients >= 2000 else "",
                        verdict(ok) if clients >= 2000 else "INFO", note, m),
                    Row(SECTION, f"{clients} clients: server CPU per tick", fmt_ms(m["cpu_per_tick_s"]),
                        status="INFO", note=f"utime+stime over {window:.0f} s / ticks (polls and pings included)"),
                    Row(SECTION, f"{clients} clients: Trakt polls", f"{m['polls']} in {m['poll_intervals']:.0f} "
                        f"intervals", "1 per interval", verdict(polls_ok),
                        "" if polls_ok else "more than one poller, or polls tied to clients"),
                ]
    return rows

"""Soak: the real server under mixed load for a set time, then errors (must be 0) and memory growth.

    python -m bench.soak [--seconds 60] [--rest-workers 6] [--ws-clients 12]

What runs, all on 127.0.0.1:
- `python server.py serve` as its own process on a copy of the generated demo account, with a
  Trakt key pointing at the fake Trakt (tests/fakes/trakt.py, in a thread of this process) that
  reports a movie playing, so the watcher polls and WebSocket clients get ticks;
- REST workers looping over the API (ETag revalidation included) on keep-alive connections;
- WebSocket clients that connect, read, ping, and drop after a random while, over and over;
- in the middle: an admin `POST /api/trakt/sync` (waited for: it must commit), an image index
  reload and a data reload.

An error is a 5xx, a status the route never answers, a failed connection, a WebSocket that
closes on its own or misses its pong, or a sync that does not succeed. RSS is read from
/proc/<pid>/status after a warm-up and at the end. Exit status 0 only with zero errors.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

if __package__ in (None, ""):  # `python bench/soak.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
WARM_UP_SECONDS = 3.0
MAX_SECONDS = 24 * 3600

# (path, statuses it may answer). 304 comes from If-None-Match revalidation.
ROUTES: list[tuple[str, frozenset[int]]] = [
    ("/api/trakt", frozenset({200, 304})),
    ("/api/trakt/user/profile", frozenset({200, 304})),
    ("/api/trakt/user/stats", frozenset({200, 304})),
    ("/api/trakt/user/history", frozenset({200, 304})),
    ("/api/trakt/user/history?type=movies&page=1&limit=50", frozenset({200, 304})),
    ("/api/trakt/user/watched?type=shows", frozenset({200, 304})),
    ("/api/trakt/user/watchlist?type=all", frozenset({200, 304})),
    ("/api/trakt/user/lists", frozenset({200, 304})),
    ("/api/trakt/user/lists/no-such-list", frozenset({404})),
    ("/api/trakt/user/comments", frozenset({200, 304})),
    ("/api/trakt/search?q=the", frozenset({200, 304})),
    ("/api/trakt/search?q=star&type=movies&limit=5", frozenset({200, 304})),
    ("/api/trakt/user/history?type=bogus", frozenset({400})),
    ("/api/watching", frozenset({200, 304})),
    ("/api/images/random-backdrop", frozenset({200, 404})),
    ("/api/images?type=movies&category=posters&tmdb_id=1", frozenset({302, 404})),
    ("/healthz", frozenset({200})),
    ("/metrics", frozenset({200})),
]


@dataclass
class Tally:
    """Everything counted during the run."""

    requests: collections.Counter = field(default_factory=collections.Counter)  # status -> count
    errors: list[str] = field(default_factory=list)
    ws_sessions: int = 0
    ws_messages: int = 0
    ws_pongs: int = 0
    rss_samples: list[tuple[float, int]] = field(default_factory=list)

    def error(self, message: str) -> None:
        if len(self.errors) < 1000:  # keep memory bounded if something goes badly wrong
            self.errors.append(message)
        else:
            self.errors[-1] = f"... and more ({message})"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_bytes(pid: int) -> int:
    """Resident set size of a process, from /proc/<pid>/status (VmRSS, in kB)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


async def rest_worker(session: aiohttp.ClientSession, base: str, stop: asyncio.Event, tally: Tally,
                      rng: random.Random) -> None:
    etags: dict[str, str] = {}
    while not stop.is_set():
        path, allowed = rng.choice(ROUTES)
        headers = {"If-None-Match": etags[path]} if path in etags and rng.random() < 0.3 else {}
        try:
            async with session.get(base + path, headers=headers, allow_redirects=False) as response:
                await response.read()
                tally.requests[response.status] += 1
                if response.status not in allowed:
                    tally.error(f"GET {path} -> {response.status}")
                elif "ETag" in response.headers:
                    etags[path] = response.headers["ETag"]
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            tally.error(f"GET {path}: {type(exc).__name__}: {exc}")


async def ws_client(session: aiohttp.ClientSession, url: str, stop: asyncio.Event, tally: Tally,
                    rng: random.Random) -> None:
    """Connect, read for a random while, ping once, drop; again until the run ends."""
    while not stop.is_set():
        stay = rng.uniform(0.3, 3.0)
        try:
            async with session.ws_connect(url, heartbeat=None) as ws:
                tally.ws_sessions += 1
                await ws.send_str('{"type": "ping"}')
                got_pong = False
                deadline = time.monotonic() + stay
                while time.monotonic() < deadline and not stop.is_set():
                    try:
                        message = await asyncio.wait_for(ws.receive(), timeout=max(0.05, deadline - time.monotonic()))
                    except asyncio.TimeoutError:
                        break
                    if message.type == aiohttp.WSMsgType.TEXT:
                        tally.ws_messages += 1
                        if '"pong"' in message.data:
                            got_pong = True
                    elif message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED,
                                          aiohttp.WSMsgType.ERROR):
                        if not stop.is_set():
                            tally.error(f"WebSocket closed by the server ({message.type.name}, {ws.close_code})")
                        return
                if got_pong:
                    tally.ws_pongs += 1
                elif not stop.is_set():
                    # The pong may still be in flight after a short stay: wait for it a little.
                    with contextlib.suppress(asyncio.TimeoutError):
                        while True:
                            message = await asyncio.wait_for(ws.receive(), timeout=5)
                            if message.type != aiohttp.WSMsgType.TEXT:
                                break
                            if '"pong"' in message.data:
                                got_pong = True
                                tally.ws_pongs += 1
                                break
                    if not got_pong:
                        tally.error("WebSocket ping got no pong")
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            tally.error(f"WebSocket {type(exc).__name__}: {exc}")
            await asyncio.sleep(0.2)


async def admin_actions(session: aiohttp.ClientSession, base: str, token: str, tally: Tally) -> dict:
    """The mid-run events: a full sync (must commit), an image index reload, a data reload."""
    auth = {"Authorization": f"Bearer {token}"}
    results: dict = {}
    async with session.post(base + "/api/trakt/sync", headers=auth) as response:
        if response.status != 202:
            tally.error(f"POST /api/trakt/sync -> {response.status}: {await response.text()}")
            return results
    started = time.monotonic()
    while True:
        await asyncio.sleep(0.2)
        async with session.get(base + "/api/trakt/sync") as response:
            status = await response.json()
        if not status.get("running"):
            break
        if time.monotonic() - started > 300:
            tally.error("sync still running after 300 s")
            return results
    results["sync_seconds"] = round(time.monotonic() - started, 2)
    results["sync_outcome"] = status.get("last_attempt_outcome")
    if results["sync_outcome"] != "success":
        tally.error(f"mid-run sync ended {results['sync_outcome']}: {status.get('last_error')}")
    async with session.post(base + "/api/images/reload-cache", headers=auth) as response:
        if response.status != 200:
            tally.error(f"POST /api/images/reload-cache -> {response.status}")
        else:
            results["image_index"] = (await response.json())["stats"]
    async with session.post(base + "/api/trakt", headers=auth) as response:
        if response.status != 200:
            tally.error(f"POST /api/trakt -> {response.status}")
    return results


async def sample_rss(pid: int, stop: asyncio.Event, tally: Tally, started: float) -> None:
    while not stop.is_set():
        with contextlib.suppress(OSError, RuntimeError):
            tally.rss_samples.append((time.monotonic() - started, rss_bytes(pid)))
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0)


async def drive(base: str, pid: int, seconds: float, rest_workers: int, ws_clients: int, token: str,
                seed: int) -> tuple[Tally, dict, int, int]:
    tally = Tally()
    stop = asyncio.Event()
    rng = random.Random(seed)
    timeout = aiohttp.ClientTimeout(total=30)
    connector = aiohttp.TCPConnector(limit=rest_workers + ws_clients + 4)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        started = time.monotonic()
        tasks = [asyncio.create_task(rest_worker(session, base, stop, tally, random.Random(rng.random())))
                 for _ in range(rest_workers)]
        ws_url = base.replace("http://", "ws://") + "/ws/watching"
        tasks += [asyncio.create_task(ws_client(session, ws_url, stop, tally, random.Random(rng.random())))
                  for _ in range(ws_clients)]
        tasks.append(asyncio.create_task(sample_rss(pid, stop, tally, started)))
        await asyncio.sleep(min(WARM_UP_SECONDS, seconds / 4))
        rss_start = rss_bytes(pid)
        await asyncio.sleep(max(0.0, seconds / 2 - (time.monotonic() - started)))
        events = await admin_actions(session, base, token, tally)
        await asyncio.sleep(max(0.0, seconds - (time.monotonic() - started)))
        rss_end = rss_bytes(pid)
        stop.set()
        await asyncio.gather(*tasks)
    return tally, events, rss_start, rss_end


def prepare_data(work: Path) -> Path:
    from services.demo.generator import write_demo

    data = work / "data"
    write_demo(data, 1, images=True)
    return data


def start_server(work: Path, data: Path, port: int, env: dict[str, str]) -> subprocess.Popen:
    environment = {k: v for k, v in os.environ.items()
                   if k not in ("TRAKT_API_KEY", "TRAKT_USERNAME", "TMDB_API_KEY", "ADMIN_TOKEN", "IMAGE_BASE_URL",
                                "NOTIFY_SOCKET", "WATCHDOG_USEC", "DATA_DIR")}
    environment.update({"DATA_DIR": str(data), "HOST": "127.0.0.1", "PORT": str(port), "LOG_LEVEL": "WARNING",
                        "SYNC_INTERVAL_HOURS": "0", "WATCHING_POLL_SECONDS": "1", "WATCHING_TICK_SECONDS": "0.5",
                        **env})
    log = open(work / "server.log", "wb")
    process = subprocess.Popen([sys.executable, str(REPO / "server.py"), "serve"], cwd=work, env=environment,
                               stdout=log, stderr=subprocess.STDOUT)
    log.close()
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}: {(work / 'server.log').read_text()}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return process
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("server did not listen within 60 s")
        time.sleep(0.05)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to run the load (default 60)")
    parser.add_argument("--rest-workers", type=int, default=6, help="concurrent REST loops (default 6)")
    parser.add_argument("--ws-clients", type=int, default=12, help="concurrent WebSocket clients (default 12)")
    parser.add_argument("--seed", type=int, default=7, help="random seed of the load mix")
    args = parser.parse_args(argv)
    if not 2 <= args.seconds <= MAX_SECONDS:
        parser.error(f"--seconds must be between 2 and {MAX_SECONDS}, got {args.seconds:g}")
    if not 1 <= args.rest_workers <= 256:
        parser.error(f"--rest-workers must be between 1 and 256, got {args.rest_workers}")
    if not 0 <= args.ws_clients <= 1024:
        parser.error(f"--ws-clients must be between 0 and 1024, got {args.ws_clients}")

    from tests.fakes.trakt import FakeAccount, FakeTrakt

    work = Path(tempfile.mkdtemp(prefix="trakt-watch-soak-"))
    account = FakeAccount.build(history=300, watched_movies=60, shows=12, lists=4)
    now = datetime.now(UTC)
    token = secrets.token_urlsafe(24)
    fake = FakeTrakt(account, api_key="soak-" + secrets.token_hex(8))
    fake.watching = {"started_at": (now - timedelta(minutes=20)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                     "expires_at": (now + timedelta(hours=6)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                     "action": "scrobble", "type": "movie", "movie": account.watched_movies[0]["movie"]}
    code = 1
    try:
        print(f"soak: preparing the demo account in {work}", flush=True)
        data = prepare_data(work)
        with fake.running_in_thread() as trakt_url:
            port = free_port()
            process = start_server(work, data, port, {"TRAKT_API_KEY": fake.api_key,
                                                      "TRAKT_USERNAME": account.username,
                                                      "TRAKT_API_URL": trakt_url, "ADMIN_TOKEN": token})
            try:
                print(f"soak: server pid {process.pid} on 127.0.0.1:{port}; {args.seconds:g} s of load with "
                      f"{args.rest_workers} REST workers and {args.ws_clients} WebSocket clients", flush=True)
                tally, events, rss_start, rss_end = asyncio.run(
                    drive(f"http://127.0.0.1:{port}", process.pid, args.seconds, args.rest_workers,
                          args.ws_clients, token, args.seed))
            finally:
                process.send_signal(signal.SIGTERM)
                try:
                    exit_code = process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    exit_code = -9
        log = (work / "server.log").read_text(errors="replace")
        if exit_code != 0:
            tally.error(f"server exited with {exit_code} after SIGTERM")
        if "Traceback" in log:
            tally.error("the server log has a traceback")
        code = report(args, tally, events, rss_start, rss_end, work)
    finally:
        if code == 0:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"soak: kept {work} (server.log) for inspection")
    return code


def report(args: argparse.Namespace, tally: Tally, events: dict, rss_start: int, rss_end: int, work: Path) -> int:
    total = sum(tally.requests.values())
    by_status = ", ".join(f"{status}: {count}" for status, count in sorted(tally.requests.items()))
    peak = max((rss for _, rss in tally.rss_samples), default=rss_end)
    mib = 1024 * 1024
    print(f"requests        {total} ({total / args.seconds:.0f}/s)   {by_status}")
    print(f"websocket       {tally.ws_sessions} sessions, {tally.ws_messages} messages, {tally.ws_pongs} pongs")
    print(f"mid-run events  sync {events.get('sync_outcome')} in {events.get('sync_seconds')} s; "
          f"image index {events.get('image_index')}")
    print(f"RSS             start {rss_start / mib:.1f} MiB, end {rss_end / mib:.1f} MiB, "
          f"growth {(rss_end - rss_start) / mib:+.1f} MiB, peak {peak / mib:.1f} MiB")
    print(f"errors          {len(tally.errors)}")
    for message in tally.errors[:20]:
        print(f"  - {message}")
    return 0 if not tally.errors else 1


if __name__ == "__main__":
    sys.exit(main())

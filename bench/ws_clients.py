"""Many WebSocket clients in one process, recording when each tick arrives at each client.

Run by bench/websocket.py as its own process (so the server's CPU is the server's alone):

    python -m bench.ws_clients --url ws://127.0.0.1:P/ws/watching --clients 2000 --out arrivals.json

Protocol on stdin/stdout: prints `ready <n>` once every client has its first `watching`
message, waits for a `go` line, records tick arrivals until a `stop` line, prints `done`, writes
the arrivals to --out and exits. Arrival times are `time.monotonic()` (one system-wide clock on
Linux) taken as soon as aiohttp hands the frame over; the JSON is parsed only afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from collections import defaultdict

import aiohttp

CONNECT_BATCH = 100  # handshakes in flight at once


class Recorder:
    """Arrival times per tick frame, while recording is on."""

    def __init__(self) -> None:
        self.recording = False
        self.arrivals: dict[str, list[float]] = defaultdict(list)
        self.other_messages = 0
        self.closed_early = 0


async def client(number: int, session: aiohttp.ClientSession, url: str, origin: str, recorder: Recorder,
                 connected: asyncio.Event) -> None:
    """One connection: wait for the snapshot, then note the arrival time of every tick."""
    try:
        async with session.ws_connect(url, headers={"Origin": origin}, autoping=True, heartbeat=None,
                                      max_msg_size=1 << 20) as ws:
            async for message in ws:
                now = time.monotonic()
                if message.type != aiohttp.WSMsgType.TEXT:
                    continue
                if not connected.is_set():
                    connected.set()
                    continue
                if recorder.recording and message.data.startswith('{"type":"tick"'):
                    recorder.arrivals[message.data].append(now)
                elif recorder.recording:
                    recorder.other_messages += 1
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
        print(f"client {number}: {exc!r}", file=sys.stderr, flush=True)
    finally:
        if not connected.is_set():
            connected.set()
        if recorder.recording:
            recorder.closed_early += 1


async def read_line() -> str:
    return (await asyncio.to_thread(sys.stdin.readline)).strip()


async def main_async(args: argparse.Namespace) -> None:
    recorder = Recorder()
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        tasks = []
        for start in range(0, args.clients, CONNECT_BATCH):
            events = []
            for number in range(start, min(args.clients, start + CONNECT_BATCH)):
                connected = asyncio.Event()
                events.append(connected)
                tasks.append(asyncio.create_task(client(number, session, args.url, args.origin, recorder, connected)))
            await asyncio.gather(*(e.wait() for e in events))
        alive = sum(1 for t in tasks if not t.done())
        print(f"ready {alive}", flush=True)
        if await read_line() != "go":
            raise SystemExit("expected 'go'")
        usage_before = resource.getrusage(resource.RUSAGE_SELF)
        recorder.recording = True
        await read_line()  # "stop"
        recorder.recording = False
        usage_after = resource.getrusage(resource.RUSAGE_SELF)
        print("done", flush=True)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    cpu = (usage_after.ru_utime + usage_after.ru_stime) - (usage_before.ru_utime + usage_before.ru_stime)
    with open(args.out, "w") as fh:
        json.dump({"clients": args.clients, "connected": alive, "ticks": list(recorder.arrivals.values()),
                   "tick_payloads": list(recorder.arrivals.keys()), "other_messages": recorder.other_messages,
                   "closed_early": recorder.closed_early, "client_cpu_seconds": cpu}, fh)


def main() -> None:
    parser = argparse.ArgumentParser(description="many /ws/watching clients recording tick arrivals")
    parser.add_argument("--url", required=True)
    parser.add_argument("--origin", required=True, help="the server's own origin (http://host:port)")
    parser.add_argument("--clients", type=int, required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    if args.clients < 1:
        parser.error("--clients must be at least 1")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = args.clients + 256
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard) if hard != resource.RLIM_INFINITY else wanted,
                                                    hard))
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()

"""Instructions per request, ours against the ceiling: the REST section's noise-free reading.

Throughput ratios on a shared 2-core VM swing by several percent between runs (steal time,
caches, the other core's load). An instruction count does not: both servers run under
valgrind's callgrind with instrumentation off until the load starts, then one connection sends
requests for a few seconds; `callgrind_control` turns counting on and off around it and dumps
the total. Repeated runs agree within about 0.5 %. Kernel time (socket reads and writes) and
cache misses are not in it, which is why the throughput ratios stay the targets; this row says
how much of a gap is our code.
"""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

from bench import accounts
from bench.ceiling import Fixture, ceiling_argv, save_fixtures
from bench.util import (
    BenchError,
    Context,
    Row,
    ServerProcess,
    ensure_debian_tool,
    free_port,
    our_server,
    run_wrk,
)

ROUTES = ("stats", "304 history all", "image redirect", "history shows page 3")
CONNECTIONS = 1  # one request at a time: every request pays the same loop iteration, so counts repeat
LOAD_SECONDS = 6
START_TIMEOUT_S = 900  # a scale-50 load under valgrind takes about 15 s here; a slower machine more
_TOTALS = re.compile(r"^totals: (\d+)", re.M)


def under_callgrind(argv: list[str], out_file: Path) -> list[str]:
    """`argv` under callgrind, counting nothing until `callgrind_control -i on`."""
    return ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out_file}", *argv]


def count(server: ServerProcess, out_file: Path, uri: str, headers: dict[str, str], wrk: str) -> float:
    """Instructions per request of `server` answering `uri` at one connection."""
    pid = str(server.pid)
    control = ["callgrind_control"]
    subprocess.run([*control, "-i", "on", pid], check=True, capture_output=True)
    subprocess.run([*control, "-z", pid], check=True, capture_output=True)
    result = run_wrk(wrk, server.base_url + uri, connections=CONNECTIONS, duration=LOAD_SECONDS,
                     headers=headers, timeout_s=60)
    subprocess.run([*control, "-i", "off", pid], check=True, capture_output=True)
    dumps_before = set(out_file.parent.glob(out_file.name + ".*"))
    subprocess.run([*control, "-d", pid], check=True, capture_output=True)
    if result.requests == 0 or result.error_count:
        raise BenchError(f"{server.name} {uri} under callgrind: {result.requests} requests, errors {result.errors}")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for dump in sorted(set(out_file.parent.glob(out_file.name + ".*")) - dumps_before):
            total = dump_total(dump.read_text(errors="replace"))
            if total is not None:
                return total / result.requests
        time.sleep(0.2)
    raise BenchError(f"callgrind wrote no dump for {server.name} within 30 s")


def dump_total(text: str) -> int | None:
    """The instruction count of a callgrind dump: its `totals:` line (written last, so None until
    the dump is complete). Its `summary:` line is not used: after `-z` it can wrap below zero."""
    found = _TOTALS.search(text)
    return int(found.group(1)) if found else None


def rows(ctx: Context, wrk: str, data_dir: Path, fixtures: dict[str, Fixture], routes: list,
         section: str) -> list[Row]:
    """One INFO row per route of ROUTES: ours and the ceiling's instructions per request."""
    ensure_debian_tool("valgrind", "valgrind", ctx.say)
    chosen = [route for route in routes if route.name in ROUTES]
    folder = ctx.work_dir / "callgrind"
    folder.mkdir(exist_ok=True)
    fixtures_dir = folder / "fixtures"
    save_fixtures(fixtures_dir, fixtures)
    ours = our_server(data_dir, log_dir=ctx.work_dir, name="rest-ours-callgrind")
    ours.argv = under_callgrind(ours.argv, folder / "ours.out")
    port = free_port()
    ceiling = ServerProcess(
        under_callgrind(ceiling_argv(port, fixtures_dir), folder / "ceiling.out"),
        name="ceiling-callgrind", log_dir=ctx.work_dir, port=port, cwd=accounts.REPO)
    out: list[Row] = []
    with ours, ceiling:
        ours.wait_built(timeout=START_TIMEOUT_S)  # the build would be counted while it runs
        ceiling.wait_ready(timeout=START_TIMEOUT_S)
        for server in (ours, ceiling):  # first-request paths (imports, caches) stay out of the count
            run_wrk(wrk, server.base_url + chosen[0].uri, connections=CONNECTIONS, duration=2, timeout_s=60)
        for route in chosen:
            ctx.say(f"rest: {route.name}, instructions per request (callgrind)")
            mine = count(ours, folder / "ours.out", route.uri, route.headers, wrk)
            theirs = count(ceiling, folder / "ceiling.out", route.uri, route.headers, wrk)
            out.append(Row(
                section, f"{route.name} instructions/request", f"{mine / 1000:.1f}k / {theirs / 1000:.1f}k: "
                f"{theirs / mine:.3f}x", status="INFO",
                note="ours / ceiling under callgrind, 1 connection; ceiling / ours is the throughput "
                     "ratio our code alone would allow (no kernel time, no cache misses)",
                data={"uri": route.uri, "ours": mine, "ceiling": theirs, "ratio": theirs / mine}))
    return out

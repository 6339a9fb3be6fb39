"""`python -m bench`: measure the server on this machine and print/save a table.

Sections (all by default, or pick with --only): rest, scale, images, websocket, sync, dashboard.
Each prints PASS/MISS against its targets (README "Performance"), or SKIP with the reason when something it
needs has not been built yet. Results go to bench/results/latest.json (git-ignored).
"""

from __future__ import annotations

import argparse
import importlib
import os
import resource
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from bench.util import (
    RESULTS_DIR,
    Context,
    Row,
    format_markdown,
    format_table,
    machine_description,
    write_json,
)

SECTIONS = ("rest", "scale", "images", "websocket", "sync", "dashboard")
MODULES = {"rest": "bench.rest", "scale": "bench.scale", "images": "bench.images",
           "websocket": "bench.websocket", "sync": "bench.sync", "dashboard": "bench.dashboard"}


def parse_sections(text: str) -> list[str]:
    """`rest,search` style list; 'search' is part of the scale section."""
    aliases = {"search": "scale", "ws": "websocket", "browser": "dashboard"}
    chosen: list[str] = []
    for raw in text.split(","):
        name = aliases.get(raw.strip().lower(), raw.strip().lower())
        if not name:
            continue
        if name not in SECTIONS:
            raise argparse.ArgumentTypeError(
                f"unknown section {raw.strip()!r}: choose from {', '.join(SECTIONS)} (or search, ws)")
        if name not in chosen:
            chosen.append(name)
    if not chosen:
        raise argparse.ArgumentTypeError("--only needs at least one section name")
    return chosen


def raise_file_limit(wanted: int = 65536) -> int:
    """Lift the soft open-files limit as far as the hard limit allows (2,000 WebSockets need it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short durations and fewer clients (a few minutes)")
    parser.add_argument("--smoke", action="store_true",
                        help="seconds, for the test suite: --quick, and the REST section on the bundled demo "
                             "account with three routes measured once (the numbers mean little)")
    parser.add_argument("--only", type=parse_sections, default=list(SECTIONS),
                        help=f"comma-separated sections: {','.join(SECTIONS)}")
    parser.add_argument("--output", type=Path, default=RESULTS_DIR / "latest.json", help="where to write the JSON")
    parser.add_argument("--markdown", action="store_true", help="also print the table as Markdown (for the README)")
    args = parser.parse_args(argv)

    limit = raise_file_limit()
    load_before = os.getloadavg()
    started = time.perf_counter()
    rows: list[Row] = []
    timings: dict[str, float] = {}
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="trakt-bench-") as scratch:
        for name in args.only:
            print(f"[{name}]", file=sys.stderr, flush=True)
            section_started = time.perf_counter()
            work_dir = Path(scratch) / name
            work_dir.mkdir()
            ctx = Context(quick=args.quick or args.smoke, work_dir=work_dir, smoke=args.smoke)
            try:
                module = importlib.import_module(MODULES[name])
                rows.extend(module.run(ctx))
            except Exception as exc:  # noqa: BLE001 -- one broken section must not hide the others
                detail = traceback.format_exception_only(type(exc), exc)[-1].strip()
                print(traceback.format_exc(), file=sys.stderr)
                rows.append(Row(name, "(section)", "-", status="FAIL", note=detail[:300]))
            timings[name] = time.perf_counter() - section_started

    total = time.perf_counter() - started
    table = format_table(rows)
    print(table)
    if args.markdown:
        print()
        print(format_markdown(rows))
    machine = machine_description()
    machine["load_average_before"] = load_before
    print(f"\n{machine['nproc']} cores, {machine['cpu']}, {machine['ram_gib']} GiB RAM, Python {machine['python']}; "
          f"load average {load_before[0]:.1f} before, {machine['load_average'][0]:.1f} after; "
          f"total {total:.0f} s; open-files limit {limit}")
    write_json(args.output, {
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "smoke": args.smoke,
        "sections": args.only,
        "seconds": {"total": total, **timings},
        "machine": machine,
        "rows": [row.as_dict() for row in rows],
        "table": table,
        "markdown": format_markdown(rows),
    })
    print(f"written to {args.output}")
    return 1 if any(row.status == "FAIL" for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())

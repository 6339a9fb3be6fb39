"""REST throughput and latency, ours beside a ceiling serving the same bytes.

Load generator: wrk (Debian's package; installed if missing). It is a C event-loop client, so
one wrk thread saturates one Python process while using a fraction of a core. The machine's two
cores are shared by the server under test and wrk (and by anything else running), which is why
every number is reported beside the ceiling measured a few seconds apart on the same machine:
the ratio is what counts, not the absolute req/s.

Protocol per route: throughput at 64 connections in short runs ordered ours, ceiling, ceiling,
ours (ABBA), five times over, so bursts of background load hit both alike. The ratio is the
median of the five ABBA ratios: a burst of load from the hypervisor (steal time) that lands on
one quad moves the sum of all runs by several percent, the median not at all. Then p50/p99 at 4
connections with `--latency`, again ABBA, averaged per server. Large answers (>= 1 MB) are
counted in bytes (see `requests_per_second`). The account is marked as synced from Trakt, so
the demo now-watching schedule (measured separately in the scale section) stays out of it.
"""

from __future__ import annotations

import collections
import json
import re
import shutil
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from bench import accounts, instructions
from bench.ceiling import Fixture, ceiling_argv, save_fixtures
from bench.util import (
    SERVER_CPU,
    BenchError,
    Context,
    Row,
    ServerProcess,
    WrkResult,
    ensure_wrk,
    fmt_ms,
    free_port,
    http_get,
    missing_modules,
    our_server,
    run_wrk,
    scrubbed_env,
    skipped,
    uvloop_version,
    verdict,
    without_uvloop,
)

SECTION = "rest"
SCALE = 50
THROUGHPUT_CONNECTIONS = 64
CYCLES = 5  # ABBA quads per route; the ratio is their median
LATENCY_CONNECTIONS = 4
RATIO_TARGET = 0.95  # cached answers, 304s and image redirects
PAGED_RATIO_TARGET = 0.9  # a page of a collection
P99_CEILING_TARGET = 1.15  # stats p99 @4 against the ceiling's, and any answer of LARGE_BODY or more
QUIET_ROUTES = ("stats", "image redirect")
# Measured again on asyncio's own loop when uvloop is installed (the main pass runs on uvloop then).
OTHER_LOOP_ROUTES = ("stats", "304 history all", "image redirect", "history shows page 3")
P99_TARGET_S = 0.005
SMOKE_ROUTES = ("stats", "304 history all", "image redirect")  # --smoke: the three kinds of answer


@dataclass
class Route:
    """One measured request: a name, the URI and the request headers."""

    name: str
    uri: str
    headers: dict[str, str]
    cached: bool  # served from bytes computed at load time (the ratio target applies)
    expect: int = 200
    ratio_target: float = RATIO_TARGET  # of the ceiling at 64 connections, when cached
    p99_vs_ceiling: bool = False  # p99 @4 within P99_CEILING_TARGET of the ceiling's


def pick_queries(data_root: Path) -> dict[str, str]:
    """Four search shapes from the account's own titles: an exact title, a common word's prefix, a
    substring, and one letter (the first keystroke of a search box)."""
    movies = json.loads((data_root / "user/watched/movies.json").read_text())["data"]
    titles = [row["movie"]["title"] for row in movies if isinstance(row.get("movie"), dict)]
    if not titles:
        raise BenchError("the account has no watched movies to take search queries from")
    words = collections.Counter(w.lower() for t in titles for w in re.findall(r"[A-Za-z]{4,}", t))
    common = next((w for w, _ in words.most_common() if w not in {"with", "from", "that", "this"}), "love")
    long_words = [w for w, _ in words.most_common(200) if len(w) >= 7]
    middle = long_words[0][2:6] if long_words else common[1:4]
    return {"exact": titles[len(titles) // 2], "prefix": common[:3], "substring": middle, "one letter": common[0]}


def image_target(data_root: Path, images_dir: Path) -> str:
    """Put one (empty) poster file in the image folder and return the /api/images URI that finds it."""
    movies = json.loads((data_root / "user/watched/movies.json").read_text())["data"]
    for row in movies:
        tmdb = ((row.get("movie") or {}).get("ids") or {}).get("tmdb")
        if isinstance(tmdb, int):
            poster = images_dir / "movies" / "posters" / f"{tmdb}_poster.jpg"
            poster.parent.mkdir(parents=True, exist_ok=True)
            poster.write_bytes(b"")
            return f"/api/images?type=movies&category=posters&tmdb_id={tmdb}"
    raise BenchError("no watched movie with a TMDB id to request an image for")


def routes(data_root: Path, images_uri: str | None) -> list[Route]:
    queries = pick_queries(data_root)
    out = [
        Route("stats", "/api/trakt/user/stats", {}, cached=True, p99_vs_ceiling=True),
        Route("history all", "/api/trakt/user/history?type=all", {}, cached=True),
        Route("watched movies", "/api/trakt/user/watched?type=movies", {}, cached=True),
        Route("insights 2025", "/api/trakt/user/insights?year=2025", {}, cached=True),
        Route("insights all time", "/api/trakt/user/insights", {}, cached=True),
        # The 304 goes to the largest document: a server hashing bodies per request would show here.
        Route("304 history all", "/api/trakt/user/history?type=all", {"If-None-Match": ""}, cached=True,
              expect=304),
        # what the dashboard's history view asks for (a page, never the 84 MB whole)
        Route("history shows page 3", "/api/trakt/user/history?type=shows&page=3&limit=50", {}, cached=True,
              ratio_target=PAGED_RATIO_TARGET),
    ]
    for shape, query in queries.items():
        out.append(Route(f"search {shape} {query!r}", f"/api/trakt/search?q={quote(query)}", {}, cached=False))
    if images_uri:
        out.append(Route("image redirect", images_uri, {}, cached=True, expect=302))
    return out


def record(server: ServerProcess, route_list: list[Route]) -> tuple[dict[str, Fixture], list[Row]]:
    """Fetch each route once from our server; fill in the real ETag for the 304 route; keep the
    answers, and the headers of the 304 for the ceiling's own 304.

    A route the server does not have yet (its JSON 404 "No such endpoint") is dropped from
    `route_list` and reported as skipped rather than failing the section.
    """
    fixtures: dict[str, Fixture] = {}
    not_modified: dict[str, list[tuple[str, str]]] = {}  # URI -> the headers of our 304
    skipped_rows: list[Row] = []
    for route in list(route_list):
        if "If-None-Match" in route.headers:
            status, headers, _ = http_get(server.base_url + route.uri)
            etag = {k.lower(): v for k, v in headers}.get("etag")
            if not etag:
                raise BenchError(f"{route.uri} answered without an ETag, so there is nothing to revalidate")
            route.headers["If-None-Match"] = etag
        status, headers, body = http_get(server.base_url + route.uri, route.headers)
        if status == 404 and b"No such endpoint" in body:
            route_list.remove(route)
            skipped_rows.append(skipped(SECTION, f"{route.name}: the server has no route {route.uri.split('?')[0]}"))
            continue
        if status != route.expect:
            raise BenchError(f"{route.uri} answered {status}, expected {route.expect}: {body[:200]!r}")
        if status == 304:
            not_modified[route.uri] = headers
        if route.uri not in fixtures or status == 200:
            fixtures[route.uri] = Fixture.recorded(status, headers, body)
    for uri, headers in not_modified.items():  # the ceiling's 304 carries what ours did
        fixtures[uri] = fixtures[uri].with_not_modified(headers)
    return fixtures, skipped_rows


def start_ceiling(fixtures: dict[str, Fixture], ctx: Context, env: dict[str, str] | None = None,
                  name: str = "ceiling") -> ServerProcess:
    folder = ctx.work_dir / "ceiling-fixtures"
    save_fixtures(folder, fixtures)
    port = free_port()
    return ServerProcess(ceiling_argv(port, folder), name=name, log_dir=ctx.work_dir, port=port, cwd=accounts.REPO, cpu=SERVER_CPU,
                         env=env)


LARGE_BODY = 2**20  # from here on, throughput is counted in bytes (see measure())


def single_request(server: ServerProcess, route: Route) -> tuple[float, int]:
    """Median time of three lone requests and the size of the answer (headers included)."""
    times = []
    size = 0
    for _ in range(3):
        started = time.perf_counter()
        status, headers, body = http_get(server.base_url + route.uri, route.headers)
        times.append(time.perf_counter() - started)
        size = len(body) + sum(len(k) + len(v) + 4 for k, v in headers) + 20
    return sorted(times)[1], size


def requests_per_second(results: list[WrkResult], response_bytes: int) -> float:
    """Completed requests per second; for large bodies, bytes read / response size.

    With 64 connections sharing the bandwidth fairly, 64 answers of tens of MB all finish at
    nearly the same moment, so counting completions in a fixed window is mostly luck; wrk's
    byte count includes the partial answers and is not.
    """
    seconds = sum(r.duration_s for r in results)
    if response_bytes >= LARGE_BODY:
        return sum(r.bytes_read for r in results) / response_bytes / seconds
    return sum(r.requests for r in results) / seconds


def measure(wrk: str, ours: ServerProcess, ceiling: ServerProcess, route: Route, ctx: Context
            ) -> dict[str, float | WrkResult | str]:
    """Throughput at 64 connections (ABBA) and latency at 4 connections for one route, both servers."""
    alone, response_bytes = single_request(ours, route)
    large = response_bytes >= LARGE_BODY
    # Short runs alternated many times: background load on this shared machine comes in bursts.
    duration = ctx.seconds(3 if large else 1, 1)
    cycles = 1 if ctx.quick else CYCLES
    order = ("ours", "ceiling") if ctx.smoke else ("ours", "ceiling", "ceiling", "ours")
    latency_duration = max(ctx.seconds(2, 1), min(ctx.seconds(8, 4), 5 * LATENCY_CONNECTIONS * alone))
    timeout = int(max(10, 4 * THROUGHPUT_CONNECTIONS * alone))
    runs: dict[str, list[WrkResult]] = {"ours": [], "ceiling": []}
    cpu = {"ours": 0.0, "ceiling": 0.0}
    cycle_ratios = []
    for _ in range(cycles):
        cycle: dict[str, list[WrkResult]] = {"ours": [], "ceiling": []}
        for who in order:
            server = ours if who == "ours" else ceiling
            before = server.cpu()
            cycle[who].append(run_wrk(wrk, server.base_url + route.uri, connections=THROUGHPUT_CONNECTIONS,
                                      duration=duration, headers=route.headers, timeout_s=timeout))
            server.wait_idle()
            cpu[who] += server.cpu() - before  # includes draining answers still queued when wrk stopped
        for who, results in cycle.items():
            runs[who].extend(results)
        ceiling_rps = requests_per_second(cycle["ceiling"], response_bytes)
        cycle_ratios.append(requests_per_second(cycle["ours"], response_bytes) / ceiling_rps if ceiling_rps else 0.0)
    latency: dict[str, list[WrkResult]] = {"ours": [], "ceiling": []}
    for who in order:
        server = ours if who == "ours" else ceiling
        latency[who].append(run_wrk(wrk, server.base_url + route.uri, connections=LATENCY_CONNECTIONS,
                                    duration=latency_duration, headers=route.headers, latency=True,
                                    timeout_s=timeout))
        server.wait_idle()
    for who, results in runs.items():
        for result in [*results, *latency[who]]:
            if result.error_count:
                raise BenchError(f"{who} {route.uri}: wrk saw errors {result.errors}")
        for result in latency[who]:
            if result.requests == 0:
                raise BenchError(f"{who} {route.uri}: no request completed in {result.duration_s:.0f} s")
    served = {who: requests_per_second(results, response_bytes) * sum(r.duration_s for r in results)
              for who, results in runs.items()}
    return {"rps_ours": requests_per_second(runs["ours"], response_bytes),
            "rps_ceiling": requests_per_second(runs["ceiling"], response_bytes),
            "ratio": statistics.median(cycle_ratios), "cycle_ratios": cycle_ratios,
            "cpu_per_request_ours": cpu["ours"] / max(1.0, served["ours"]),
            "cpu_per_request_ceiling": cpu["ceiling"] / max(1.0, served["ceiling"]),
            "duration_s": duration * len(runs["ours"]), "by_bytes": large,
            "latency_ours": mean_percentiles(latency["ours"]), "latency_ceiling": mean_percentiles(latency["ceiling"])}


def mean_percentiles(results: list[WrkResult]) -> dict[int, float]:
    """p50/p99 of the latency runs of one server, averaged over its runs (ABBA order)."""
    return {p: sum(r.percentiles_s.get(p, 0.0) for r in results) / len(results) for p in (50, 99)}


def run(ctx: Context) -> list[Row]:
    """Start ours and the ceiling on the scale-50 account and measure every route."""
    missing = missing_modules("server.py", "services/data/store.py", accounts.GENERATOR)
    if missing:
        return [skipped(SECTION, f"{', '.join(missing)} not present")]
    wrk = ensure_wrk(ctx.say)
    if ctx.smoke:
        data_dir = ctx.work_dir / "rest-account"
        shutil.copytree(accounts.REPO / "data" / "demo", data_dir)
    else:
        data_dir, _ = accounts.working_copy(SCALE, ctx.work_dir / "rest-account", ctx.say)
    accounts.mark_as_synced(data_dir)  # measure the REST path as a synced deployment runs it
    served = data_dir / "current" if (data_dir / "current").exists() else data_dir
    images_uri = None
    if not missing_modules("services/images/index.py"):
        images_uri = image_target(served, data_dir / "images")
    route_list = routes(served, images_uri)
    if ctx.smoke:
        route_list = [route for route in route_list if route.name in SMOKE_ROUTES]
    rows: list[Row] = []
    ours = our_server(data_dir, log_dir=ctx.work_dir, name="rest-ours", cpu=SERVER_CPU)
    ceiling: ServerProcess | None = None
    try:
        ours.start()
        ours.wait_built()
        fixtures, skipped_rows = record(ours, route_list)
        rows.extend(skipped_rows)
        ceiling = start_ceiling(fixtures, ctx)
        ceiling.start()
        ceiling.wait_ready()
        for server in (ours, ceiling):  # warm both up (imports, first-request paths)
            run_wrk(wrk, server.base_url + route_list[0].uri, connections=4, duration=1)
        for route in route_list:
            ctx.say(f"rest: {route.name}")
            numbers = measure(wrk, ours, ceiling, route, ctx)
            rows.extend(route_rows(route, numbers, len(fixtures[route.uri].body)))
        if not ctx.smoke:
            rows.extend(compression_rows(wrk, ours, route_list, ctx))
        account = "demo" if ctx.smoke else f"scale {SCALE}"
        rows.append(Row(SECTION, f"RSS after load ({account})", f"{ours.rss() / 2**20:.0f} MB", status="INFO",
                        data={"rss_bytes": ours.rss()}))
        ours.stop()
        if not ctx.smoke:
            rows.extend(without_access_log(wrk, data_dir, ceiling, route_list, ctx))
        ceiling.stop()
        if not ctx.smoke:
            rows.extend(instructions.rows(ctx, wrk, data_dir, fixtures, route_list, SECTION))
        loop = f"uvloop {uvloop_version()}" if uvloop_version() else "asyncio"
        rows.append(Row(SECTION, "event loop", loop, status="INFO",
                        note="ours and the ceiling on the same loop" + (
                            "; asyncio's own loop measured below" if uvloop_version() else
                            " (pip install '.[fast]' for uvloop)")))
        if uvloop_version():
            rows.extend(on_asyncio(wrk, data_dir, fixtures, route_list, ctx))
    finally:
        ours.stop()
        if ceiling is not None:
            ceiling.stop()
    if images_uri is None:
        rows.append(skipped(SECTION, "image redirect: services/images/index.py not present"))
    rows.append(Row(SECTION, "load generator", "wrk -t1", status="INFO",
                    note="server and wrk share the same 2 cores; ratios compare runs seconds apart"))
    return rows


GZIP_ROUTES = ("stats", "history all", "watched movies")  # small, the largest, a large one


def compression_rows(wrk: str, ours: ServerProcess, route_list: list[Route], ctx: Context) -> list[Row]:
    """Bytes and req/s @64 of the same routes with and without `Accept-Encoding: gzip` (both
    forms are made at load time, so a compressed answer should cost no more than a plain one)."""
    rows = []
    for route in route_list:
        if route.name not in GZIP_ROUTES:
            continue
        numbers = {}
        for label, headers in (("identity", {}), ("gzip", {"Accept-Encoding": "gzip"})):
            ctx.say(f"rest: {route.name}, {label}")
            _, response_headers, body = http_get(ours.base_url + route.uri, headers)
            encoding = {k.lower(): v for k, v in response_headers}.get("content-encoding", "identity")
            if encoding != label:
                raise BenchError(f"{route.uri} with {headers or 'no Accept-Encoding'} came back {encoding}")
            result = run_wrk(wrk, ours.base_url + route.uri, connections=THROUGHPUT_CONNECTIONS,
                             duration=ctx.seconds(2, 1), headers=headers, timeout_s=30)
            numbers[label] = (len(body), requests_per_second([result], len(body)))
            ours.wait_idle()
        (plain_bytes, plain_rps), (packed_bytes, packed_rps) = numbers["identity"], numbers["gzip"]
        rows.append(Row(
            SECTION, f"{route.name}: gzip vs identity", f"{_size(packed_bytes)} / {_size(plain_bytes)} = "
            f"{plain_bytes / packed_bytes:.1f}x smaller", status="INFO",
            note=f"req/s @64: {packed_rps:.0f} gzip, {plain_rps:.0f} identity",
            data={"uri": route.uri, "gzip_bytes": packed_bytes, "identity_bytes": plain_bytes,
                  "gzip_rps": packed_rps, "identity_rps": plain_rps}))
    return rows


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MB" if n >= 2**20 else f"{n / 1024:.1f} KB"


def on_asyncio(wrk: str, data_dir: Path, fixtures: dict[str, Fixture], route_list: list[Route],
               ctx: Context) -> list[Row]:
    """The main routes again with uvloop hidden from both servers: what asyncio's own loop gives."""
    env = without_uvloop(scrubbed_env(), ctx.work_dir / "no-uvloop")
    ours = our_server(data_dir, log_dir=ctx.work_dir, name="rest-ours-asyncio", env=env, cpu=SERVER_CPU)
    ceiling = start_ceiling(fixtures, ctx, env=env, name="ceiling-asyncio")
    rows = []
    with ours, ceiling:
        ours.wait_built()
        ceiling.wait_ready()
        if "(event loop: asyncio)" not in ours.log_path.read_text(errors="replace"):
            raise BenchError(f"the asyncio pass did not run on asyncio: {ours.log_tail()}")
        for route in route_list:
            if route.name not in OTHER_LOOP_ROUTES or (ctx.smoke and route is not route_list[0]):
                continue
            ctx.say(f"rest: {route.name}, asyncio loop")
            numbers = measure(wrk, ours, ceiling, route, ctx)
            for row in route_rows(route, numbers, len(fixtures[route.uri].body)):
                row.metric += ", asyncio loop"
                rows.append(row)
    return rows


def without_access_log(wrk: str, data_dir: Path, ceiling: ServerProcess, route_list: list[Route],
                       ctx: Context) -> list[Row]:
    """The cheapest routes again with LOG_LEVEL=WARNING (no access line per request): how much of
    the gap to the ceiling is the access log."""
    quiet = our_server(data_dir, log_dir=ctx.work_dir, name="rest-ours-warning",
                       env=scrubbed_env({"LOG_LEVEL": "WARNING"}), cpu=SERVER_CPU)
    rows = []
    with quiet:
        quiet.wait_built()
        for route in route_list:
            if route.name not in QUIET_ROUTES:
                continue
            ctx.say(f"rest: {route.name}, LOG_LEVEL=WARNING")
            numbers = measure(wrk, quiet, ceiling, route, ctx)
            ratio = numbers["ratio"]
            rows.append(Row(
                SECTION, f"{route.name} req/s @64, LOG_LEVEL=WARNING",
                throughput_value(numbers), status="INFO",
                note=f"no access log; server CPU/request {_us(numbers['cpu_per_request_ours'])} vs ceiling "
                     f"{_us(numbers['cpu_per_request_ceiling'])}",
                data={"uri": route.uri, "ratio": ratio, "rps_ours": numbers["rps_ours"],
                      "rps_ceiling": numbers["rps_ceiling"]}))
    return rows


def route_rows(route: Route, numbers: dict, body_bytes: int) -> list[Row]:
    rps_ours, rps_ceiling, ratio = numbers["rps_ours"], numbers["rps_ceiling"], numbers["ratio"]
    lat_ours: dict[int, float] = numbers["latency_ours"]
    lat_ceiling: dict[int, float] = numbers["latency_ceiling"]
    p50, p99 = lat_ours[50], lat_ours[99]
    if body_bytes >= 2**20:
        size = f"{body_bytes / 2**20:.1f} MB body"
    else:
        size = f"{body_bytes / 1024:.1f} KB body" if body_bytes else "no body"
    counted = "req/s = bytes read / answer size" if numbers["by_bytes"] else ""
    data = {"uri": route.uri, "body_bytes": body_bytes, "wrk_seconds": numbers["duration_s"],
            "rps_from_bytes": numbers["by_bytes"], "rps_ours": rps_ours, "rps_ceiling": rps_ceiling,
            "ratio": ratio, "cycle_ratios": numbers["cycle_ratios"], "p50_s": p50, "p99_s": p99,
            "ceiling_p50_s": lat_ceiling[50], "ceiling_p99_s": lat_ceiling[99]}
    cpu_ours, cpu_ceiling = numbers["cpu_per_request_ours"], numbers["cpu_per_request_ceiling"]
    data.update(cpu_per_request_ours_s=cpu_ours, cpu_per_request_ceiling_s=cpu_ceiling)
    cpu_note = f"server CPU/request {_us(cpu_ours)} vs ceiling {_us(cpu_ceiling)}"
    if route.cached:
        ratio_status = verdict(ratio >= route.ratio_target)
        ratio_note = cpu_note
    else:
        ratio_status = "INFO"
        ratio_note = f"computed per request, the ceiling replays it; {cpu_note}"
    p99_ok = p99 <= P99_TARGET_S
    p99_target = "p99 <= 5 ms"
    p99_note = "" if p99_ok else f"ceiling p99 {fmt_ms(data['ceiling_p99_s'])} on the same bytes"
    if body_bytes >= LARGE_BODY:
        # Megabytes take as long to copy as they take, whoever sends them: the bound is the ceiling's.
        versus = p99 / lat_ceiling[99] if lat_ceiling[99] else 0.0
        data["p99_vs_ceiling"] = versus
        p99_ok = versus <= P99_CEILING_TARGET
        p99_target = f"p99 <= {P99_CEILING_TARGET}x ceiling"
        p99_note = f"{size}: ceiling p99 {fmt_ms(lat_ceiling[99])}, {versus:.2f}x"
    elif route.p99_vs_ceiling:
        versus = p99 / lat_ceiling[99] if lat_ceiling[99] else 0.0
        data["p99_vs_ceiling"] = versus
        p99_ok = p99_ok and versus <= P99_CEILING_TARGET
        p99_target += f" and <= {P99_CEILING_TARGET}x ceiling"
        p99_note = f"ceiling p99 {fmt_ms(lat_ceiling[99])}: {versus:.2f}x"
    return [
        Row(SECTION, f"{route.name} req/s @64", throughput_value(numbers),
            f">= {route.ratio_target}x" if route.cached else "", ratio_status,
            "; ".join(filter(None, [size, counted, ratio_note])), data),
        Row(SECTION, f"{route.name} p50/p99 @4", f"{fmt_ms(p50)} / {fmt_ms(p99)}", p99_target,
            verdict(p99_ok), p99_note),
    ]


def throughput_value(numbers: dict) -> str:
    """`ours / ceiling req/s = ratio` (over all runs), then the median of the cycles' ratios when
    there were several: that median is what the target is checked against."""
    text = f"{numbers['rps_ours']:.0f} / {numbers['rps_ceiling']:.0f} req/s"
    cycles = numbers["cycle_ratios"]
    if len(cycles) == 1:
        return f"{text} = {numbers['ratio']:.2f}x"
    return f"{text}; {numbers['ratio']:.2f}x (median of {len(cycles)}, {min(cycles):.2f}-{max(cycles):.2f})"


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:.0f} us" if seconds < 0.01 else f"{seconds * 1e3:.1f} ms"

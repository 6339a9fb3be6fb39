"""Scale: start-up time and memory for the demo and `--scale 50` accounts; search latency in-process;
the insights routes beside the ceiling.

Ready time is measured from spawning `python server.py serve` to the first 200 from `/healthz`
(so it includes the interpreter start and imports, as a user would see it). RSS is read from
/proc after every route has been requested a few times. The slowest `/healthz` of an idle server
probed every 50 ms from ready on covers the build that runs after ready (event-loop stalls). The
ready time is also measured with the insights switched off (their collector fed nothing), in
alternating runs, as a ratio. Search is timed inside this process against the DataStore's
SearchIndex loaded from the same folder, over 1,000 different queries, with
`time.perf_counter_ns` around each `search(...)` call. The insights routes (all time and a year,
200 and 304) are measured like the REST section's cached routes, beside stats, as a ratio to the
one-handler ceiling (bench/rest.py, bench/ceiling.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
import re
import statistics
import sys
import time
from pathlib import Path

from bench import accounts
from bench import rest
from bench.util import (
    REPO, SERVER_CPU, SERVER_PY, BenchError, Context, Row, ServerProcess, ensure_wrk, fmt_ms, free_port, http_get,
    missing_modules, our_server, percentile, run_wrk, scrubbed_env, skipped, verdict,
)

SECTION = "scale"
READY_TARGET_S = 2.0  # issue 16 item 4
RSS_TARGET_BYTES = 250 * 2**20
STALL_TARGET_S = 0.050
INSIGHTS_READY_RATIO_TARGET = 1.2  # loading insights adds at most 20 % to the ready time
SEARCH_P99_TARGET_S = 0.005
QUERY_COUNT = 1000

# `python server.py …` with the insights collector fed nothing: the ready time without insights.
WITHOUT_INSIGHTS = (
    "import runpy, sys\n"
    "from services.data.insights import InsightsCollector\n"
    "for name in ('add_movie_play', 'add_episode_play', 'add_watched', 'add_rating'):\n"
    "    setattr(InsightsCollector, name, lambda self, *args: None)\n"
    "sys.argv = [sys.argv[1], *sys.argv[2:]]\n"
    "runpy.run_path(sys.argv[0], run_name='__main__')\n"
)

LOAD_URIS = (
    "/api/trakt", "/api/trakt/user/profile", "/api/trakt/user/stats", "/api/trakt/user/comments",
    "/api/trakt/user/lists", "/api/trakt/user/history?type=all", "/api/trakt/user/history?type=movies",
    "/api/trakt/user/watched?type=all", "/api/trakt/user/watchlist?type=all", "/api/trakt/search?q=the",
    "/api/watching", "/healthz",
)


def ready_when_synced(scale: int, ctx: Context) -> Row:
    """Ready time of the same account marked as synced: without the demo now-watching schedule."""
    data_dir, _ = accounts.working_copy(scale, ctx.work_dir / f"account-{scale}-synced", ctx.say)
    accounts.mark_as_synced(data_dir)
    server = our_server(data_dir, log_dir=ctx.work_dir, name=f"scale-{scale}-synced")
    with server:
        ready = server.wait_ready(timeout=120)
        rss = server.rss()
    return Row(SECTION, f"scale {scale}: ready / RSS, marked as synced", f"{ready:.2f} s / {rss / 2**20:.0f} MB",
               status="INFO", note="same files with source trakt_api_user_data: no demo now-watching schedule",
               data={"seconds": ready, "rss_bytes": rss})


def startup_and_memory(scale: int, ctx: Context) -> list[Row]:
    """Spawn the server on the account, time it to ready, probe it, load every route, read RSS."""
    data_dir, generated_in = accounts.working_copy(scale, ctx.work_dir / f"account-{scale}", ctx.say)
    size = accounts.folder_size(data_dir)
    label = "demo" if scale == 1 else f"scale {scale}"
    rows = []
    if generated_in is not None:
        rows.append(Row(SECTION, f"{label}: generate account", f"{generated_in:.1f} s", status="INFO",
                        note=f"{size / 2**20:.0f} MB of JSON", data={"seconds": generated_in, "bytes": size}))
    server = our_server(data_dir, log_dir=ctx.work_dir, name=f"scale-{scale}")
    with server:
        ready = server.wait_ready(timeout=120)
        rss_ready = server.rss()
        stall, probes = longest_stall(server, ctx.seconds(10, 5))
        for _ in range(3):
            for uri in LOAD_URIS:
                status, _, _ = http_get(server.base_url + uri)
                if status >= 500:
                    raise BenchError(f"{uri} answered {status} on the {label} account")
        rss_loaded = server.rss()
        finished = finished_after(server)
    targeted = scale != 1
    ready_ok = ready <= READY_TARGET_S
    rss_ok = rss_loaded <= RSS_TARGET_BYTES
    stall_ok = stall <= STALL_TARGET_S
    finished_note = "" if finished is None else f"; everything built {finished:.2f} s after the files were"
    rows += [
        Row(SECTION, f"{label}: ready (spawn -> {server.ready_probe} 200)", f"{ready:.2f} s",
            f"<= {READY_TARGET_S:.0f} s" if targeted else "", verdict(ready_ok) if targeted else "INFO",
            f"{size / 2**20:.0f} MB of JSON on disk{finished_note}", {"seconds": ready, "bytes_on_disk": size,
                                                                     "finished_after_s": finished}),
        Row(SECTION, f"{label}: RSS ready / after load", f"{rss_ready / 2**20:.0f} / {rss_loaded / 2**20:.0f} MB",
            f"<= {RSS_TARGET_BYTES // 2**20} MB" if targeted else "", verdict(rss_ok) if targeted else "INFO",
            "after every route was requested 3 times" if rss_ok else f"serving {size / 2**20:.0f} MB of JSON",
            {"rss_ready_bytes": rss_ready, "rss_loaded_bytes": rss_loaded}),
        Row(SECTION, f"{label}: slowest /healthz, {probes} probes after ready", fmt_ms(stall),
            f"<= {STALL_TARGET_S * 1000:.0f} ms" if targeted else "", verdict(stall_ok) if targeted else "INFO",
            "probed every 50 ms from ready on, while the rest is built in the background: how long the event "
            "loop is held (the machine's other load shows here too)", {"stall_s": stall, "probes": probes}),
    ]
    return rows


def finished_after(server: ServerProcess) -> float | None:
    """Seconds the background build took after the files were served (the server's own log line)."""
    try:
        text = server.log_path.read_text(errors="replace")
    except OSError:
        return None
    found = re.findall(r"Loaded \d+ files from .* in ([\d.]+) s", text)
    return float(found[-1]) if found else None


def ready_without_insights(scale: int, ctx: Context) -> list[Row]:
    """Ready time with and without insights, alternating runs (with, without, without, with ...)."""
    data_dir, _ = accounts.working_copy(scale, ctx.work_dir / f"account-{scale}-insights", ctx.say)
    times: dict[bool, list[float]] = {True: [], False: []}
    finished: dict[bool, list[float]] = {True: [], False: []}
    for number, with_insights in enumerate((True, False, False, True) * (1 if ctx.quick else 2)):
        port = free_port()
        argv = [sys.executable, "-c", WITHOUT_INSIGHTS, str(SERVER_PY)] if not with_insights else \
            [sys.executable, str(SERVER_PY)]
        argv += ["serve", "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(data_dir)]
        cwd = ctx.work_dir / f"insights-{number}-cwd"
        cwd.mkdir(parents=True, exist_ok=True)
        server = ServerProcess(argv, name=f"insights-{number}", log_dir=ctx.work_dir, cwd=cwd, port=port,
                               env=scrubbed_env({"PYTHONPATH": str(REPO)}))
        with server:
            times[with_insights].append(server.wait_ready(timeout=120))
            status, _, body = http_get(server.base_url + "/api/trakt/user/insights", timeout=120)  # waits for it
            if status != 200 or (json.loads(body)["totals"]["plays"] > 0) != with_insights:
                raise BenchError(f"insights {'on' if with_insights else 'off'}: /insights answered {status}")
            after = finished_after(server)
            if after is not None:
                finished[with_insights].append(after)
    ready_on, ready_off = statistics.median(times[True]), statistics.median(times[False])
    ratio = ready_on / ready_off
    runs = len(times[True])
    done_on = statistics.median(finished[True]) if finished[True] else float("nan")
    done_off = statistics.median(finished[False]) if finished[False] else float("nan")
    return [
        Row(SECTION, f"scale {scale}: ready with / without insights", f"{ready_on:.2f} / {ready_off:.2f} s = "
            f"{ratio:.2f}x", f"<= {INSIGHTS_READY_RATIO_TARGET}x", verdict(ratio <= INSIGHTS_READY_RATIO_TARGET),
            f"medians of {runs} alternating runs each; insights are built after ready",
            {"ready_with_s": times[True], "ready_without_s": times[False], "ratio": ratio}),
        Row(SECTION, f"scale {scale}: built after ready, with / without insights",
            f"{done_on:.2f} / {done_off:.2f} s", status="INFO",
            note="rows, search, activity, insights, up next (the server's log); requests that need them wait",
            data={"with_s": finished[True], "without_s": finished[False]}),
    ]


def insights_routes(scale: int, ctx: Context) -> list[Row]:
    """The insights routes beside stats, as ratios to the one-handler ceiling (bench/rest.py's protocol)."""
    wrk = ensure_wrk(ctx.say)
    data_dir, _ = accounts.working_copy(scale, ctx.work_dir / f"account-{scale}-routes", ctx.say)
    accounts.mark_as_synced(data_dir)  # no demo now-watching schedule, as in the REST section
    # Pinned like the ceiling, and measured once the after-ready build is done (bench/rest.py).
    ours = our_server(data_dir, log_dir=ctx.work_dir, name="scale-routes", cpu=SERVER_CPU)
    ceiling: ServerProcess | None = None
    rows: list[Row] = []
    try:
        ours.start()
        ours.wait_built(timeout=120)
        status, _, body = http_get(ours.base_url + "/api/trakt/user/insights", timeout=120)
        years = json.loads(body)["years"] if status == 200 else []
        if not years:
            raise BenchError(f"/api/trakt/user/insights answered {status} without years")
        year = years[1] if len(years) > 1 else years[0]  # a whole past year
        route_list = [
            rest.Route("stats", "/api/trakt/user/stats", {}, cached=True),
            rest.Route("insights all time", "/api/trakt/user/insights", {}, cached=True),
            rest.Route(f"insights {year}", f"/api/trakt/user/insights?year={year}", {}, cached=True),
            # The 304s revalidate the same URIs (the ceiling answers them from the recorded 200's ETag).
            rest.Route("304 stats", "/api/trakt/user/stats", {"If-None-Match": ""}, cached=True, expect=304),
            rest.Route("304 insights all time", "/api/trakt/user/insights", {"If-None-Match": ""}, cached=True,
                       expect=304),
            rest.Route(f"304 insights {year}", f"/api/trakt/user/insights?year={year}", {"If-None-Match": ""},
                       cached=True, expect=304),
        ]
        fixtures, skipped_rows = rest.record(ours, route_list)
        rows += skipped_rows
        ceiling = rest.start_ceiling(fixtures, ctx)
        ceiling.start()
        ceiling.wait_ready()
        for server in (ours, ceiling):
            run_wrk(wrk, server.base_url + route_list[0].uri, connections=4, duration=1)
        for route in route_list:
            ctx.say(f"scale: {route.name}")
            numbers = rest.measure(wrk, ours, ceiling, route, ctx)
            rows += [dataclasses.replace(row, section=SECTION)
                     for row in rest.route_rows(route, numbers, len(fixtures[route.uri].body))]
    finally:
        ours.stop()
        if ceiling is not None:
            ceiling.stop()
    return rows


def _query(shape: int, rng: random.Random, titles: list[str], words: list[str]) -> str:
    if shape == 0:  # an exact title
        return rng.choice(titles)
    if shape == 1:  # the prefix of a word
        word = rng.choice(words)
        return word[: rng.randint(2, min(5, len(word)))]
    if shape == 2:  # a substring from anywhere in a title
        title = rng.choice(titles)
        start = rng.randrange(max(1, len(title) - 3))
        return title[start:start + rng.randint(3, 6)]
    # the first two words of a title, sometimes two unrelated words (usually no match)
    if rng.random() < 0.3:
        return " ".join(rng.sample(words, 2))
    return " ".join(rng.choice(titles).split()[:2])


def longest_stall(server, seconds: float) -> tuple[float, int]:
    """Probe /healthz every 50 ms for `seconds` while nothing else runs: the slowest answer shows
    how long the event loop was blocked by background work (reloads, the watcher)."""
    deadline = time.perf_counter() + seconds
    slowest = 0.0
    probes = 0
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        http_get(server.base_url + "/healthz", timeout=120)
        slowest = max(slowest, time.perf_counter() - started)
        probes += 1
        time.sleep(0.05)
    return slowest, probes


def make_queries(titles: list[str], count: int = QUERY_COUNT, seed: int = 8) -> list[str]:
    """`count` different queries in four shapes: exact titles, word prefixes, substrings, two-word phrases."""
    rng = random.Random(seed)
    words = sorted({w for t in titles for w in re.findall(r"\w{3,}", t)})
    if not titles or not words:
        raise BenchError("the account has no titles to build search queries from")
    queries: list[str] = []
    seen: set[str] = set()
    attempts = 0
    while len(queries) < count and attempts < count * 50:
        attempts += 1
        query = _query(len(queries) % 4, rng, titles, words).strip()
        if query and query.lower() not in seen:
            seen.add(query.lower())
            queries.append(query)
    return queries


async def _load_store(data_dir: Path):
    from services.config import Config
    from services.resources import demo_data_dir
    from services.data.snapshots import DataFolder
    from services.data.store import DataStore

    config = dataclasses.replace(Config(), data_dir=data_dir, data_check_seconds=3600.0)
    store = DataStore(config, DataFolder(data_dir), demo_data_dir())
    started = time.perf_counter()
    await store.start()
    ready = time.perf_counter() - started
    waiting = store.when_finished()
    if waiting is not None:
        await waiting
    took = time.perf_counter() - started
    await store.stop()
    if not store.ready or store.is_demo:
        raise BenchError(f"the store did not load {data_dir}: {store.problems}")
    return store, ready, took


def search_in_process(scale: int, ctx: Context) -> list[Row]:
    """Time 1,000 different searches against the loaded SearchIndex of the account: the answer's
    bytes, as the server writes them (`search_json`)."""
    data_dir, _ = accounts.account_dir(scale, ctx.say)
    store, ready_seconds, load_seconds = asyncio.run(_load_store(data_dir))
    served = data_dir / "current" if (data_dir / "current").exists() else data_dir
    titles = []
    for endpoint in ("user/watched/movies.json", "user/watched/shows.json", "user/watchlist/all.json"):
        for row in json.loads((served / endpoint).read_text())["data"]:
            for kind in ("movie", "show"):
                media = row.get(kind)
                if isinstance(media, dict) and isinstance(media.get("title"), str):
                    titles.append(media["title"])
    queries = make_queries(titles, QUERY_COUNT if not ctx.quick else 200)
    index = store.search_index
    for query in queries[:20]:  # warm caches
        index.search_json(query, "all", 50)
    timings = []
    hits = 0
    for query in queries:
        started = time.perf_counter_ns()
        answer = index.search_json(query, "all", 50)
        timings.append((time.perf_counter_ns() - started) / 1e9)
        hits += not answer.endswith(b'"total_results":0}')
    p50, p99 = percentile(timings, 0.50), percentile(timings, 0.99)
    slowest = max(range(len(queries)), key=timings.__getitem__)
    ok = p99 <= SEARCH_P99_TARGET_S
    return [
        Row(SECTION, f"search in-process p50/p99 ({len(queries)} queries)", f"{fmt_ms(p50)} / {fmt_ms(p99)}",
            "p99 <= 5 ms", verdict(ok),
            f"{len(index)} titles indexed, {hits} queries matched; slowest {queries[slowest]!r} "
            f"{fmt_ms(timings[slowest])}",
            {"p50_s": p50, "p99_s": p99, "max_s": timings[slowest], "titles": len(index),
             "queries": len(queries), "store_load_s": load_seconds}),
        Row(SECTION, "scale 50: store load in-process, ready / everything", f"{ready_seconds:.2f} / {load_seconds:.2f} s",
            status="INFO", note="DataStore.start(): read + bytes, ETags, offsets; then rows, search, insights, up next",
            data={"ready_s": ready_seconds, "finished_s": load_seconds}),
    ]


def run(ctx: Context) -> list[Row]:
    missing = missing_modules("server.py", "services/data/store.py", "services/data/search.py", accounts.GENERATOR)
    if missing:
        return [skipped(SECTION, f"{', '.join(missing)} not present")]
    rows: list[Row] = []
    for scale in (1, 50):
        ctx.say(f"scale: start-up and memory, scale {scale}")
        rows += startup_and_memory(scale, ctx)
    rows.append(ready_when_synced(50, ctx))
    ctx.say("scale: ready with and without insights")
    rows += ready_without_insights(50, ctx)
    ctx.say("scale: insights routes beside the ceiling")
    rows += insights_routes(50, ctx)
    ctx.say("scale: search in-process")
    rows += search_in_process(50, ctx)
    return rows

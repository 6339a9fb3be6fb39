"""Scale: start-up time and memory for the demo and `--scale 50` accounts; search latency in-process.

Ready time is measured from spawning `python server.py serve` to the first 200 from `/healthz`
(so it includes the interpreter start and imports, as a user would see it). RSS is read from
/proc after every route has been requested a few times. Search is timed inside this process
against the lead's DataStore/SearchIndex loaded from the same folder, over 1,000 different
queries, with `time.perf_counter_ns` around each `search(...)` call.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
import re
import time
from pathlib import Path

from bench import accounts
from bench.util import (
    BenchError, Context, Row, fmt_ms, http_get, missing_modules, our_server, percentile, skipped, verdict,
)

SECTION = "scale"
READY_TARGET_S = 3.0
RSS_TARGET_BYTES = 300 * 2**20
SEARCH_P99_TARGET_S = 0.005
QUERY_COUNT = 1000

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
    """Spawn the server on the account, time it to ready, load every route, read RSS."""
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
        stall, probes = longest_stall(server, ctx.seconds(10, 3))
        for _ in range(3):
            for uri in LOAD_URIS:
                status, _, _ = http_get(server.base_url + uri)
                if status >= 500:
                    raise BenchError(f"{uri} answered {status} on the {label} account")
        rss_loaded = server.rss()
    ready_ok = ready <= READY_TARGET_S or scale == 1
    rss_ok = rss_loaded <= RSS_TARGET_BYTES or scale == 1
    target_ready = f"<= {READY_TARGET_S:.0f} s" if scale != 1 else ""
    target_rss = f"<= {RSS_TARGET_BYTES // 2**20} MB" if scale != 1 else ""
    rows += [
        Row(SECTION, f"{label}: ready (spawn -> {server.ready_probe} 200)", f"{ready:.2f} s", target_ready,
            verdict(ready_ok) if scale != 1 else "INFO",
            f"{size / 2**20:.0f} MB of JSON on disk" if ready_ok else
            f"loading and indexing {size / 2**20:.0f} MB of JSON", {"seconds": ready, "bytes_on_disk": size}),
        Row(SECTION, f"{label}: RSS ready / after load", f"{rss_ready / 2**20:.0f} / {rss_loaded / 2**20:.0f} MB",
            target_rss, verdict(rss_ok) if scale != 1 else "INFO",
            "" if rss_ok else f"serving {size / 2**20:.0f} MB of JSON",
            {"rss_ready_bytes": rss_ready, "rss_loaded_bytes": rss_loaded}),
        Row(SECTION, f"{label}: slowest /healthz, {probes} probes after ready", fmt_ms(stall), status="INFO",
            note="idle server probed every 50 ms: how long background work blocks the event loop",
            data={"stall_s": stall, "probes": probes}),
    ]
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
    took = time.perf_counter() - started
    await store.stop()
    if not store.ready or store.is_demo:
        raise BenchError(f"the store did not load {data_dir}: {store.problems}")
    return store, took


def search_in_process(scale: int, ctx: Context) -> list[Row]:
    """Time 1,000 different searches against the loaded SearchIndex of the account."""
    data_dir, _ = accounts.account_dir(scale, ctx.say)
    store, load_seconds = asyncio.run(_load_store(data_dir))
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
        index.search(query, "all", 50)
    timings = []
    hits = 0
    for query in queries:
        started = time.perf_counter_ns()
        answer = index.search(query, "all", 50)
        timings.append((time.perf_counter_ns() - started) / 1e9)
        hits += answer["total_results"] > 0
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
        Row(SECTION, "scale 50: store load in-process", f"{load_seconds:.2f} s", status="INFO",
            note="DataStore.start(): read + parse + bodies + search index"),
    ]


def run(ctx: Context) -> list[Row]:
    missing = missing_modules("server.py", "services/store.py", "services/search.py", accounts.GENERATOR)
    if missing:
        return [skipped(SECTION, f"{', '.join(missing)} not present")]
    rows: list[Row] = []
    for scale in (1, 50):
        ctx.say(f"scale: start-up and memory, scale {scale}")
        rows += startup_and_memory(scale, ctx)
    rows.append(ready_when_synced(50, ctx))
    ctx.say("scale: search in-process")
    rows += search_in_process(50, ctx)
    return rows

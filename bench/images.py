"""Images: build time and memory of the image index for 100,000 files.

The files are empty (the index only looks at names) and laid out as README "Data folder" says: movie and
show posters and backdrops plus season posters. They are created once under
bench/results/images-100k/ and reused. The index is the images engineer's
`services.images.index.ImageIndex`, built through its own `reload()` (a scan in a worker thread).
Time: median of three builds with a warm directory cache. Memory: tracemalloc's count of what
the built index keeps alive (one extra build with tracing on, as tracing slows it down).
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import json
import random
import time
import tracemalloc
from pathlib import Path

from bench.util import RESULTS_DIR, Context, Row, missing_modules, percentile, skipped

SECTION = "images"
FILE_COUNT = 100_000
# How the 100,000 files are split (season posters: 10 seasons for each of 2,000 shows).
LAYOUT = {("movies", "posters"): 35_000, ("movies", "backdrops"): 25_000,
          ("shows", "posters"): 12_000, ("shows", "backdrops"): 8_000}
SEASON_SHOWS, SEASONS = 2_000, 10
STAMP = ".bench-stamp.json"


def image_tree(count: int = FILE_COUNT) -> Path:
    """The folder of `count` empty image files, created once (checked by a stamp file)."""
    folder = RESULTS_DIR / f"images-{count // 1000}k"
    expected = {"count": count, "layout": [list(k) + [v] for k, v in LAYOUT.items()],
                "seasons": [SEASON_SHOWS, SEASONS]}
    stamp = folder / STAMP
    try:
        if json.loads(stamp.read_text()) == expected:
            return folder
    except (OSError, ValueError):
        pass
    scale = count / FILE_COUNT
    rng = random.Random(100)
    exts = ("jpg", "jpg", "jpg", "png", "webp")
    for (kind, category), n in LAYOUT.items():
        target = folder / kind / category
        target.mkdir(parents=True, exist_ok=True)
        singular = category[:-1]
        for tmdb_id in range(1, int(n * scale) + 1):
            (target / f"{tmdb_id}_{singular}.{rng.choice(exts)}").touch()
    for show in range(1, int(SEASON_SHOWS * scale) + 1):
        for season in range(1, SEASONS + 1):
            target = folder / "shows" / "posters" / str(show) / str(season)
            target.mkdir(parents=True, exist_ok=True)
            (target / f"season_{season}_poster.jpg").touch()
    stamp.write_text(json.dumps(expected))
    return folder


async def _build(folder: Path):
    from services.config import Config
    from services.images.index import ImageIndex

    index = ImageIndex(dataclasses.replace(Config(), image_index_refresh_hours=0), folder)
    started = time.perf_counter()
    stats = await index.reload()
    return index, stats, time.perf_counter() - started


def run(ctx: Context) -> list[Row]:
    missing = missing_modules("services/images/index.py")
    if missing:
        return [skipped(SECTION, f"{', '.join(missing)} not present")]
    count = FILE_COUNT if not ctx.quick else 10_000
    started = time.perf_counter()
    folder = image_tree(count)
    created = time.perf_counter() - started
    ctx.say(f"images: {count} files ready in {folder} ({created:.1f} s)")

    timings = []
    index = stats = None
    for _ in range(3):
        index, stats, took = asyncio.run(_build(folder))
        timings.append(took)
    indexed = sum(stats.values())

    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    kept, _, _ = asyncio.run(_build(folder))
    gc.collect()
    retained = tracemalloc.get_traced_memory()[0] - before
    peak = tracemalloc.get_traced_memory()[1] - before
    tracemalloc.stop()
    del kept

    rng = random.Random(7)
    probes = [("movies", "posters", rng.randint(1, LAYOUT[("movies", "posters")] * count // FILE_COUNT), None)
              for _ in range(50_000)]
    lookups = []
    for kind, category, tmdb_id, season in probes[:5000]:
        t = time.perf_counter_ns()
        index.lookup(kind, category, tmdb_id, season)
        lookups.append((time.perf_counter_ns() - t) / 1e9)
    t = time.perf_counter()
    for kind, category, tmdb_id, season in probes:
        index.lookup(kind, category, tmdb_id, season)
    per_lookup = (time.perf_counter() - t) / len(probes)

    return [
        Row(SECTION, f"index build, {count:,} files", f"{percentile(timings, 0.5):.2f} s", status="INFO",
            note=f"median of 3 (warm dentry cache); {indexed:,} entries indexed: {stats}",
            data={"seconds": timings, "files": count, "stats": stats}),
        Row(SECTION, f"index memory, {count:,} files", f"{retained / 2**20:.1f} MB kept",
            status="INFO", note=f"tracemalloc; peak during build {peak / 2**20:.1f} MB",
            data={"retained_bytes": retained, "peak_bytes": peak}),
        Row(SECTION, "lookup", f"{per_lookup * 1e6:.2f} us", status="INFO",
            note=f"p99 of single timed calls {percentile(lookups, 0.99) * 1e6:.1f} us",
            data={"mean_s": per_lookup}),
    ]

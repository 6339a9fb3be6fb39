"""Download the posters, backdrops and season posters of every title an account references.

Called after a snapshot is committed (the scheduled sync, `trakt-watch sync --images`). Reads the
snapshot's watched/watchlist/history/list-item files, asks TMDB for the images of each movie and
show (and of every season the user watched), and writes the missing files into the image folder
of README "Data folder" with bounded concurrency. Files already present (any extension) are skipped, each
file is written atomically, unknown titles and titles without a TMDB id are counted, not fatal;
only a rejected API key (TmdbAuthError) stops the step.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ujson

from services.data import layout
from services.config import Config
from services.images.naming import season_folder, season_stem, title_folder, title_stem
from services.images.tmdb import (
    TmdbAuthError,
    TmdbClient,
    TmdbError,
    TmdbNotFound,
    best_image,
)

log = logging.getLogger(__name__)

POSTER_SIZE = "w780"
BACKDROP_SIZE = "w1280"
SEASON_POSTER_SIZE = "w780"
DEFAULT_CONCURRENCY = 8

# Language preference: posters carry the title, so English first; backdrops are best without text.
POSTER_LANGUAGES = ("en", None)
BACKDROP_LANGUAGES = (None, "en")

CATEGORIES = ("movie_posters", "movie_backdrops", "show_posters", "show_backdrops", "season_posters")
_OUTCOMES = ("downloaded", "skipped_existing", "not_found", "failed")

ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class ImageTarget:
    """One file we want: where it goes (without extension) and which TMDB size to fetch."""

    category: str
    folder: Path
    stem: str
    size: str
    languages: tuple[str | None, ...]


@dataclass(frozen=True)
class Job:
    """One TMDB lookup (a movie, a show or a season) and the files it can fill."""

    kind: str  # "movie", "tv" or "season"
    tmdb_id: int
    season: int | None
    targets: tuple[ImageTarget, ...]


@dataclass
class References:
    """What an account references: TMDB ids, watched seasons, and titles with no TMDB id."""

    movies: set[int]
    shows: set[int]
    seasons: dict[int, set[int]]
    movies_without_id: set[str]
    shows_without_id: set[str]


def _tmdb_id(media: Any) -> int | None:
    if not isinstance(media, dict) or not isinstance(media.get("ids"), dict):
        return None
    value = media["ids"].get("tmdb")
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    return value if isinstance(value, int) and value > 0 else None


def _title_key(media: Any) -> str:
    """A stable name for a title without a TMDB id, so it is counted once."""
    if not isinstance(media, dict):
        return repr(media)
    ids = media.get("ids") if isinstance(media.get("ids"), dict) else {}
    for key in ("trakt", "slug", "imdb", "tvdb"):
        if ids.get(key):
            return f"{key}:{ids[key]}"
    return f"title:{media.get('title')}:{media.get('year')}"


def _items(document: Any) -> list:
    """The list inside a `{"metadata","data"}` wrapper (or a bare list from an older export)."""
    if isinstance(document, dict):
        document = document.get("data")
    return document if isinstance(document, list) else []


def collect_references(snapshot_root: Path) -> References:
    """Every movie and show the account references, plus the seasons it watched (blocking I/O)."""
    refs = References(set(), set(), {}, set(), set())
    root = Path(snapshot_root)

    def add(kind: str, media: Any) -> None:
        if not isinstance(media, dict):
            return
        tmdb = _tmdb_id(media)
        if kind == "movie":
            (refs.movies.add(tmdb) if tmdb else refs.movies_without_id.add(_title_key(media)))
        else:
            (refs.shows.add(tmdb) if tmdb else refs.shows_without_id.add(_title_key(media)))

    files = [
        *layout.WATCHED.values(), *layout.HISTORY.values(),
        layout.WATCHLIST["movies"], layout.WATCHLIST["shows"], layout.WATCHLIST["all"],
    ]
    list_dir = root / layout.LISTS_DIR
    if list_dir.is_dir():
        files += [f"{layout.LISTS_DIR}/{p.name}" for p in sorted(list_dir.iterdir())
                  if p.name.endswith(layout.LIST_ITEMS_SUFFIX) and p.is_file()]
    for relative in files:
        path = root / relative
        try:
            document = ujson.loads(path.read_bytes())
        except FileNotFoundError:
            continue
        except (OSError, ValueError) as exc:
            log.warning("image download: cannot read %s (%s); its titles are skipped", relative, exc)
            continue
        for item in _items(document):
            if not isinstance(item, dict):
                continue
            if "movie" in item:
                add("movie", item["movie"])
            if "show" in item:
                add("show", item["show"])

    # Seasons the user watched come from watched/shows (each show lists its seasons).
    try:
        watched_shows = _items(ujson.loads((root / layout.WATCHED["shows"]).read_bytes()))
    except (OSError, ValueError):
        watched_shows = []
    for item in watched_shows:
        if not isinstance(item, dict):
            continue
        tmdb = _tmdb_id(item.get("show"))
        seasons = item.get("seasons")
        if not tmdb or not isinstance(seasons, list):
            continue
        for season in seasons:
            number = season.get("number") if isinstance(season, dict) else None
            if isinstance(number, int) and not isinstance(number, bool) and number >= 0:
                refs.seasons.setdefault(tmdb, set()).add(number)
    return refs


def _existing_stems(folder: Path) -> set[str]:
    """File names (without extension) in a folder; hidden and temp files do not count."""
    try:
        with os.scandir(folder) as entries:
            return {e.name.rsplit(".", 1)[0] for e in entries
                    if not e.name.startswith(".") and e.is_file()}
    except (FileNotFoundError, NotADirectoryError):
        return set()


def _remove_stale_partials(images_dir: Path) -> None:
    """Temp files left by a download that was killed mid-write."""
    for dirpath, _, filenames in os.walk(images_dir):
        for name in filenames:
            if name.startswith(".") and name.endswith(".part"):
                Path(dirpath, name).unlink(missing_ok=True)


def plan_jobs(refs: References, images_dir: Path) -> tuple[list[Job], dict[str, int]]:
    """Jobs for the files that are missing, and how many files are already there per category."""
    images_dir = Path(images_dir)
    folders = {
        "movie_posters": images_dir / title_folder("movies", "posters"),
        "movie_backdrops": images_dir / title_folder("movies", "backdrops"),
        "show_posters": images_dir / title_folder("shows", "posters"),
        "show_backdrops": images_dir / title_folder("shows", "backdrops"),
    }
    present = {category: _existing_stems(folder) for category, folder in folders.items()}
    skipped = dict.fromkeys(CATEGORIES, 0)
    jobs: list[Job] = []

    def wanted(category: str, stem: str, size: str, languages: tuple) -> list[ImageTarget]:
        if stem in present[category]:
            skipped[category] += 1
            return []
        return [ImageTarget(category, folders[category], stem, size, languages)]

    for tmdb in sorted(refs.movies):
        targets = (wanted("movie_posters", title_stem("posters", tmdb), POSTER_SIZE, POSTER_LANGUAGES)
                   + wanted("movie_backdrops", title_stem("backdrops", tmdb), BACKDROP_SIZE, BACKDROP_LANGUAGES))
        if targets:
            jobs.append(Job("movie", tmdb, None, tuple(targets)))
    for tmdb in sorted(refs.shows):
        targets = (wanted("show_posters", title_stem("posters", tmdb), POSTER_SIZE, POSTER_LANGUAGES)
                   + wanted("show_backdrops", title_stem("backdrops", tmdb), BACKDROP_SIZE, BACKDROP_LANGUAGES))
        if targets:
            jobs.append(Job("tv", tmdb, None, tuple(targets)))
    for tmdb in sorted(refs.seasons):
        for season in sorted(refs.seasons[tmdb]):
            folder = images_dir / season_folder(tmdb, season)
            stem = season_stem(season)
            if stem in _existing_stems(folder):
                skipped["season_posters"] += 1
                continue
            target = ImageTarget("season_posters", folder, stem, SEASON_POSTER_SIZE, POSTER_LANGUAGES)
            jobs.append(Job("season", tmdb, season, (target,)))
    return jobs, skipped


class _Run:
    """Counters and progress of one download run."""

    def __init__(self, total: int, progress: ProgressCallback | None) -> None:
        self.by_category = {c: dict.fromkeys(_OUTCOMES, 0) for c in CATEGORIES}
        self.bytes = 0
        self.done = 0
        self.total = total
        self.progress = progress

    def count(self, category: str, outcome: str, n: int = 1) -> None:
        self.by_category[category][outcome] += n
        self.done += n
        if n:
            self.report_progress()

    def report_progress(self) -> None:
        if self.progress is None:
            return
        try:
            self.progress(self.done, self.total)
        except Exception:  # a broken progress display must not stop the downloads
            log.exception("image download progress callback failed")


async def _run_job(client: TmdbClient, job: Job, run: _Run) -> None:
    what = f"{job.kind} {job.tmdb_id}" + (f" season {job.season}" if job.season is not None else "")
    try:
        if job.kind == "season":
            assert job.season is not None
            images = await client.season_images(job.tmdb_id, job.season)
        else:
            images = await client.images(job.kind, job.tmdb_id)  # type: ignore[arg-type]
    except TmdbAuthError:
        raise
    except TmdbNotFound:
        for target in job.targets:
            run.count(target.category, "not_found")
        return
    except TmdbError as exc:
        log.warning("image download: %s: %s", what, exc)
        for target in job.targets:
            run.count(target.category, "failed")
        return

    for target in job.targets:
        entries = images.get("backdrops" if target.category.endswith("backdrops") else "posters")
        chosen = best_image(entries, target.languages)
        if chosen is None:
            run.count(target.category, "not_found")
            continue
        extension = chosen["file_path"].rsplit(".", 1)[1].lower()
        dest = target.folder / f"{target.stem}.{extension}"
        try:
            written = await client.download(target.size, chosen["file_path"], dest)
        except TmdbAuthError:
            raise
        except (TmdbError, OSError) as exc:
            log.warning("image download: %s %s: %s", what, target.category, exc)
            run.count(target.category, "failed")
            continue
        run.bytes += written
        run.count(target.category, "downloaded")


async def download_images(config: Config, snapshot_root: Path, images_dir: Path,
                          progress: ProgressCallback | None = None, *,
                          concurrency: int = DEFAULT_CONCURRENCY,
                          client: TmdbClient | None = None) -> dict:
    """Fetch every missing poster/backdrop/season poster of the titles in `snapshot_root`.

    Returns counts: downloaded, skipped_existing, missing_tmdb_id, not_found, failed, bytes,
    by_category (per CATEGORIES) and titles. Raises TmdbAuthError when TMDB rejects the key
    (or none is set) and ValueError for bad arguments. `progress(done, total)` counts files.
    """
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or not 1 <= concurrency <= 64:
        raise ValueError(f"concurrency must be a whole number from 1 to 64, got {concurrency!r}")
    snapshot_root, images_dir = Path(snapshot_root), Path(images_dir)
    if not snapshot_root.is_dir():
        raise ValueError(f"snapshot folder {snapshot_root} does not exist")
    if not config.tmdb_api_key:
        raise TmdbAuthError("TMDB_API_KEY is not set: cannot download images")

    def prepare() -> tuple[References, list[Job], dict[str, int]]:
        images_dir.mkdir(parents=True, exist_ok=True)
        _remove_stale_partials(images_dir)
        refs = collect_references(snapshot_root)
        jobs, skipped = plan_jobs(refs, images_dir)
        return refs, jobs, skipped

    refs, jobs, skipped = await asyncio.get_running_loop().run_in_executor(None, prepare)
    total = sum(skipped.values()) + sum(len(job.targets) for job in jobs)
    run = _Run(total, progress)
    for category, n in skipped.items():
        run.by_category[category]["skipped_existing"] = n
    run.done = sum(skipped.values())
    run.report_progress()

    own_client = client is None
    tmdb = client or TmdbClient(config)
    queue: asyncio.Queue[Job] = asyncio.Queue()
    for job in jobs:
        queue.put_nowait(job)

    async def worker() -> None:
        while True:
            try:
                job = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            await _run_job(tmdb, job, run)

    try:
        await tmdb.start()
        async with asyncio.TaskGroup() as group:
            for _ in range(min(concurrency, len(jobs))):
                group.create_task(worker())
    except BaseExceptionGroup as errors:
        # TaskGroup cancelled the other workers; hand the caller the first real error.
        auth = errors.subgroup(TmdbAuthError)
        first = (auth or errors).exceptions[0]
        raise first from None
    finally:
        if own_client:
            await tmdb.close()

    report = _report(run, refs)
    log.info("images: %d downloaded, %d already present, %d not on TMDB, %d failed, %d without TMDB id",
             report["downloaded"], report["skipped_existing"], report["not_found"], report["failed"],
             report["missing_tmdb_id"])
    return report


def _report(run: _Run, refs: References) -> dict:
    def total(outcome: str) -> int:
        return sum(counts[outcome] for counts in run.by_category.values())

    return {
        "downloaded": total("downloaded"),
        "skipped_existing": total("skipped_existing"),
        "missing_tmdb_id": len(refs.movies_without_id) + len(refs.shows_without_id),
        "not_found": total("not_found"),
        "failed": total("failed"),
        "bytes": run.bytes,
        "by_category": run.by_category,
        "titles": {
            "movies": len(refs.movies),
            "shows": len(refs.shows),
            "seasons": sum(len(s) for s in refs.seasons.values()),
            "movies_without_tmdb_id": len(refs.movies_without_id),
            "shows_without_tmdb_id": len(refs.shows_without_id),
        },
    }


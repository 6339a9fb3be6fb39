"""The sync: a complete, paginated, rate-limit-aware mirror of one Trakt account.

One run fetches every endpoint (every page, `limit=250`), then writes a new snapshot beside the
served one and switches over in one step — only when everything succeeded. A failure, a timeout,
a cancellation or a killed process changes nothing that is served. Each attempt leaves a report
(see `services/sync_report.py`).

`SyncService` runs inside the server (daily schedule, `POST /api/trakt/sync`); `run_sync_command`
is `trakt-watch sync`.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import inspect
import logging
import os
import random
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from services.data import layout
from services.config import Config
from services.errors import NotReady
from services.data.snapshots import DataFolder
from services.trakt.report import (
    CANCELLED,
    FAILED,
    SNAPSHOT_REPORT,
    SUCCESS,
    EndpointReport,
    SyncReport,
    read_history,
    read_last_attempt,
    read_sync_status,
    save_report,
    utc_now,
)
from services.trakt.client import (
    RequestBudget,
    RetryPolicy,
    TraktBadResponse,
    TraktClient,
    TraktError,
    first_error,
)

log = logging.getLogger("trakt_watch.sync")

__all__ = ["SyncService", "SyncProgress", "SyncAlreadyRunning", "run_sync_command", "read_sync_status",
           "FIXED_ENDPOINTS"]

ImageDownloader = Callable[..., Awaitable[dict]]
ProgressCallback = Callable[["SyncProgress"], Any]

FIRST_RUN_JITTER_SECONDS = (10.0, 120.0)  # a restart storm never hits Trakt at the same second
RETRY_AFTER_FAILURE_SECONDS = 3600.0  # a failed scheduled sync is tried again within the hour
LOCK_FILE = "sync.lock"


@dataclass(frozen=True)
class Endpoint:
    """One file of the snapshot and the Trakt call that fills it."""

    name: str  # key in the report
    file: str  # path inside the snapshot (services/layout.py)
    path: str  # Trakt path, `{u}` is the username
    params: tuple[tuple[str, str], ...] = ()
    paged: bool = True


FIXED_ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("profile", layout.PROFILE, "/users/{u}", (("extended", "full"),), paged=False),
    Endpoint("stats", layout.STATS, "/users/{u}/stats", paged=False),
    Endpoint("history/movies", layout.HISTORY["movies"], "/users/{u}/history/movies"),
    Endpoint("history/shows", layout.HISTORY["shows"], "/users/{u}/history/shows"),
    Endpoint("watched/movies", layout.WATCHED["movies"], "/users/{u}/watched/movies"),
    Endpoint("watched/shows", layout.WATCHED["shows"], "/users/{u}/watched/shows"),
    Endpoint("watchlist/movies", layout.WATCHLIST["movies"], "/users/{u}/watchlist/movies"),
    Endpoint("watchlist/shows", layout.WATCHLIST["shows"], "/users/{u}/watchlist/shows"),
    Endpoint("watchlist/all", layout.WATCHLIST["all"], "/users/{u}/watchlist"),
    Endpoint("lists", layout.LISTS, "/users/{u}/lists"),
    Endpoint("comments", layout.COMMENTS, "/users/{u}/comments"),
    Endpoint("ratings", layout.RATINGS, "/users/{u}/ratings"),
)


@dataclass(frozen=True)
class SyncProgress:
    """Where a running sync is: `files_done` of `files_total` (grows once the lists are known)."""

    stage: str  # fetch | write | images | done
    files_done: int
    files_total: int
    requests: int
    items: int
    current: str = ""


class SyncAlreadyRunning(Exception):
    """Another sync holds the lock (in this process or another one)."""


class _ProcessLock:
    """An exclusive `flock` on DATA_DIR/sync/sync.lock: one sync per data folder across processes.

    The kernel drops it when the holder dies, so a SIGKILLed sync never blocks the next one.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


class SyncService:
    """Runs syncs for one data folder: on a schedule, on demand, or once from the CLI.

    `on_committed(path)` is called (awaited if it is a coroutine function) after a snapshot is
    committed — the server passes `store.reload`; `on_finished(report_dict)` after every attempt.
    `images` is `services.images.downloads.download_images` (or None to skip images).
    `retry`, `request_timeout` and `budget` tune the Trakt client (tests use short ones).
    """

    def __init__(self, config: Config, folder: DataFolder, *,
                 on_committed: Callable[[Path], Any] | None = None,
                 on_finished: Callable[[dict], Any] | None = None,
                 images: ImageDownloader | None = None,
                 retry: RetryPolicy | None = None,
                 request_timeout: float = 30.0,
                 budget: RequestBudget | None = None,
                 max_concurrency: int = 4) -> None:
        if request_timeout <= 0:
            raise ValueError(f"request_timeout must be positive, got {request_timeout}")
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be at least 1, got {max_concurrency}")
        self.config = config
        self.folder = folder
        self.on_committed = on_committed
        self.on_finished = on_finished
        self.images = images
        self.retry = retry
        self.request_timeout = request_timeout
        self.budget = budget
        self.max_concurrency = max_concurrency
        self.last_report: dict | None = None
        self.progress: SyncProgress | None = None
        self._active = False
        self._current: SyncReport | None = None
        self._scheduler: asyncio.Task | None = None
        self._tasks: set[asyncio.Task] = set()

    # --- lifecycle -------------------------------------------------------------------------
    @property
    def scheduled(self) -> bool:
        """Whether `start()` runs syncs by itself (a Trakt key, a username and an interval)."""
        return self.config.has_trakt and self.config.sync_interval_hours > 0 and not self.config.demo

    async def start(self) -> None:
        """Clean up after a killed sync and start the schedule when one is configured."""
        await asyncio.to_thread(self._remove_partials_if_idle)
        self.last_report = await asyncio.to_thread(read_last_attempt, self.folder)
        if self.scheduled and self._scheduler is None:
            self._scheduler = asyncio.create_task(self._schedule(), name="sync-schedule")

    async def stop(self) -> None:
        """Stop the schedule and cancel a running sync (nothing partial is committed)."""
        tasks = [t for t in (self._scheduler, *self._tasks) if t is not None and not t.done()]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._scheduler = None
        self._tasks.clear()

    # --- running ---------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._active

    def start_now(self, trigger: str = "manual") -> bool:
        """Start a sync in the background; False when one is already running."""
        if not self.config.has_trakt:
            raise NotReady("Sync needs TRAKT_API_KEY and TRAKT_USERNAME to be set")
        if self._active:
            return False
        self._active = True  # taken now, so a second call before the task runs sees it
        task = asyncio.create_task(self._guarded_run(trigger, None), name="sync-now")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def run_once(self, progress: ProgressCallback | None = None, *, trigger: str = "manual") -> SyncReport:
        """One full sync now; returns its report (outcome success or failed; raises on cancel)."""
        if self._active:
            raise SyncAlreadyRunning("A sync is already running")
        self._active = True
        return await self._guarded_run(trigger, progress)

    def status(self) -> dict[str, Any]:
        """read_sync_status() with `running` from this process (for /api/trakt metadata, /healthz)."""
        status = read_sync_status(self.folder)
        status["running"] = self._active
        return status

    def details(self) -> dict[str, Any]:
        """status() plus the current run's progress, the schedule and recent attempts (GET /api/trakt/sync)."""
        status = self.status()
        if self._active and self._current is not None:
            status["current"] = {"started_at": self._current.started_at, "trigger": self._current.trigger,
                                 "progress": self.progress.__dict__ if self.progress else None}
        status["scheduled"] = self.scheduled
        status["interval_hours"] = self.config.sync_interval_hours
        status["history"] = read_history(self.folder)[:5]
        return status

    async def _guarded_run(self, trigger: str, progress: ProgressCallback | None) -> SyncReport:
        try:
            return await self._run(trigger, progress)
        finally:
            self._active = False
            self._current = None
            self.progress = None

    async def _schedule(self) -> None:
        delay = await asyncio.to_thread(self._first_delay)
        log.info("scheduled sync: first run in %.0f s, then every %g h", delay, self.config.sync_interval_hours)
        interval = self.config.sync_interval_hours * 3600
        while True:
            await asyncio.sleep(delay)
            if self._active:
                delay = min(interval, RETRY_AFTER_FAILURE_SECONDS)
                continue
            self._active = True
            try:
                report = await self._guarded_run("schedule", None)
            except Exception:  # noqa: BLE001 - the schedule must survive any single run
                log.exception("scheduled sync crashed")
                report = None
            delay = interval if report is not None and report.succeeded else min(interval, RETRY_AFTER_FAILURE_SECONDS)

    def _first_delay(self) -> float:
        """Immediately when there is no data at all; otherwise when the last success is due, plus jitter."""
        if self.folder.served_root() is None:
            return 0.0
        interval = self.config.sync_interval_hours * 3600
        jitter = random.uniform(*FIRST_RUN_JITTER_SECONDS)
        jitter = min(jitter, interval)
        last_success = _timestamp(read_sync_status(self.folder).get("last_success_at"))
        if last_success is None:
            return jitter
        return max(0.0, last_success + interval - time.time()) + jitter

    def _remove_partials_if_idle(self) -> None:
        if not self.folder.snapshots_dir.is_dir():
            return  # never synced here: nothing to clean, and nothing to create (the folder may be read-only)
        lock = _ProcessLock(self.folder.sync_dir / LOCK_FILE)
        try:
            if not lock.acquire():
                return  # a sync in another process is writing its partial folder right now
        except OSError as exc:
            log.warning("cannot check %s for interrupted syncs: %s", self.folder.root, exc)
            return
        try:
            self._remove_partials_locked()
        finally:
            lock.release()

    # --- one sync ----------------------------------------------------------------------------
    async def _run(self, trigger: str, progress: ProgressCallback | None) -> SyncReport:
        config = self.config
        report = SyncReport(username=config.trakt_username, trigger=trigger)
        self._current = report
        if not config.has_trakt:
            report.finish(FAILED, "Sync needs TRAKT_API_KEY and TRAKT_USERNAME to be set")
            return report
        lock = _ProcessLock(self.folder.sync_dir / LOCK_FILE)
        try:
            acquired = lock.acquire()
        except OSError as exc:
            report.finish(FAILED, f"Cannot use the data folder {self.folder.root}: {exc.strerror or exc}")
            log.error("sync not started: %s", report.error)
            return report  # not recorded: the folder cannot be written
        if not acquired:
            report.finish(FAILED, "Another sync of this data folder is already running (in another process)")
            log.warning("sync not started: %s", report.error)
            return report  # not recorded: the running sync will write its own report
        log.info("sync started (%s) for %s", trigger, config.trakt_username)
        try:
            await asyncio.to_thread(self._remove_partials_locked)
            path = await self._fetch_and_commit(report, progress)
        except asyncio.CancelledError:
            if report.outcome != SUCCESS:
                report.finish(CANCELLED, "The sync was cancelled; the served data is unchanged")
            self._record(report)
            raise
        except TimeoutError:
            report.finish(FAILED, f"The sync took longer than SYNC_TIMEOUT_MINUTES={config.sync_timeout_minutes:g} "
                                  "and was stopped; the served data is unchanged")
        except TraktError as exc:
            report.finish(FAILED, f"{exc}; the served data is unchanged")
        except OSError as exc:
            report.finish(FAILED, f"Cannot write the snapshot: {exc}; the served data is unchanged")
        except Exception as exc:  # noqa: BLE001 - a bug must still end in a recorded, failed attempt
            log.exception("sync crashed")
            report.finish(FAILED, f"Unexpected error: {type(exc).__name__}: {exc}; the served data is unchanged")
        else:
            report.finish(SUCCESS)
            self._record(report)
            await self._after_commit(path, report, progress)
        finally:
            lock.release()
        if not report.succeeded:
            log.error("sync failed: %s", report.error)
        self._record(report)
        await self._notify_finished(report)
        return report

    def _remove_partials_locked(self) -> None:
        for path in self.folder.remove_partials():
            log.warning("removed %s left by an interrupted sync", path)

    async def _fetch_and_commit(self, report: SyncReport, progress: ProgressCallback | None) -> Path:
        client = TraktClient(self.config, budget=self.budget, retry=self.retry, timeout=self.request_timeout,
                             max_concurrency=self.max_concurrency)
        await client.start()
        try:
            async with asyncio.timeout(self.config.sync_timeout_minutes * 60):
                files = await self._fetch_all(client, report, progress)
        finally:
            report.http = dict(client.totals.__dict__)
            await client.close()
        self._progress(progress, "write", report, "snapshot")
        return await self._write_snapshot(files, report)

    async def _fetch_all(self, client: TraktClient, report: SyncReport,
                         progress: ProgressCallback | None) -> dict[str, Any]:
        """Every endpoint, every page; returns {snapshot file: data}. Raises on the first failure."""
        user = self.config.trakt_username
        files: dict[str, Any] = {}
        total = [len(FIXED_ENDPOINTS)]

        async def fetch(endpoint: Endpoint) -> Any:
            path = endpoint.path.format(u=user)
            entry = report.endpoints[endpoint.name] = EndpointReport(file=endpoint.file, path=path)
            params = dict(endpoint.params)
            if endpoint.paged:
                result = await client.get_all_pages(path, params)
                data = result.items
                entry.pages, entry.item_count_reported = result.pages, result.item_count
                stats = result.stats
                if result.item_count is not None and result.item_count != len(data):
                    report.warn(f"{endpoint.name}: Trakt reported {result.item_count} items "
                                f"(X-Pagination-Item-Count) but {len(data)} came back")
            else:
                data, _, stats = await client.get_with_stats(path, params)
                entry.pages = 1
                if not isinstance(data, dict):
                    raise _bad_shape(path, "a JSON object", data)
            entry.items = layout.item_count(data)
            entry.requests, entry.retries, entry.rate_limited = stats.requests, stats.retries, stats.rate_limited
            files[endpoint.file] = data
            self._progress(progress, "fetch", report, endpoint.name, total[0])
            return data

        try:
            async with asyncio.TaskGroup() as group:
                fixed = {e.name: group.create_task(fetch(e)) for e in FIXED_ENDPOINTS}
                lists = await fixed["lists"]
                item_endpoints = self._list_item_endpoints(lists, report)
                total[0] += len(item_endpoints)
                for endpoint in item_endpoints:
                    group.create_task(fetch(endpoint))
        except BaseExceptionGroup as errors:
            raise first_error(errors) from None
        return files

    def _list_item_endpoints(self, lists: list, report: SyncReport) -> list[Endpoint]:
        """One items endpoint per list with a safe, unique slug; the others are skipped with a warning."""
        endpoints = []
        seen: set[str] = set()
        for position, entry in enumerate(lists):
            ids = entry.get("ids") if isinstance(entry, dict) else None
            name = entry.get("name") if isinstance(entry, dict) else None
            trakt_id = ids.get("trakt") if isinstance(ids, dict) else None
            slug = ids.get("slug") if isinstance(ids, dict) else None
            label = f"list {name!r}" if name else f"list number {position + 1}"
            if isinstance(trakt_id, bool) or not isinstance(trakt_id, int) or trakt_id <= 0:
                report.warn(f"{label} has no numeric Trakt id: its items were skipped")
                continue
            if not isinstance(slug, str) or not layout.is_safe_slug(slug):
                report.warn(f"{label} (id {trakt_id}) has a slug that is not safe as a file name "
                            f"({str(slug)[:60]!r}): its items were skipped")
                continue
            if slug in seen:
                report.warn(f"{label} (id {trakt_id}) repeats the slug {slug!r}: its items were skipped")
                continue
            seen.add(slug)
            endpoints.append(Endpoint(f"lists/{slug}", layout.list_items_endpoint(slug),
                                      f"/users/{{u}}/lists/{trakt_id}/items"))
        return endpoints

    async def _write_snapshot(self, files: dict[str, Any], report: SyncReport) -> Path:
        """Write and commit in a worker thread; a cancellation waits for the disk work to end."""
        snapshot_report = dict(report.as_json(), outcome=SUCCESS, finished_at=utc_now())

        def write() -> Path:
            with self.folder.new_snapshot(username=self.config.trakt_username,
                                          source=layout.SOURCE_TRAKT) as writer:
                report.snapshot = writer.snapshot_id
                snapshot_report["snapshot"] = writer.snapshot_id
                for endpoint in sorted(files):
                    writer.write(endpoint, files[endpoint])
                writer.write_index()
                writer.write_extra(SNAPSHOT_REPORT, snapshot_report)
                return writer.commit()

        work = asyncio.ensure_future(asyncio.to_thread(write))
        try:
            return await asyncio.shield(work)
        except asyncio.CancelledError:
            # Let the thread finish: either it committed (then the snapshot stands) or it aborted.
            with contextlib.suppress(Exception):
                await asyncio.wait([work])
            if work.done() and not work.cancelled() and work.exception() is None:
                report.finish(SUCCESS)
            raise

    async def _after_commit(self, path: Path, report: SyncReport, progress: ProgressCallback | None) -> None:
        log.info("%s", report.one_line())
        if self.on_committed is not None:
            try:
                await _maybe_await(self.on_committed(path))
            except Exception as exc:  # noqa: BLE001 - the snapshot is committed; the store checks disk too
                report.warn(f"reloading the served data failed: {exc}")
        if self.images is not None and self.config.tmdb_api_key:
            self._progress(progress, "images", report, "images")

            def image_progress(done: int, total: int) -> None:
                totals = report.totals()
                self._emit(progress, SyncProgress(stage="images", files_done=done, files_total=total,
                                                  requests=totals["requests"], items=totals["items"],
                                                  current="images"))

            try:
                report.images = await self.images(self.config, path, self.folder.images_dir, progress=image_progress)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - images never undo a committed snapshot
                report.warn(f"image download failed: {type(exc).__name__}: {exc}")
        self._progress(progress, "done", report, "")

    def _record(self, report: SyncReport) -> None:
        self.last_report = report.as_json()
        try:
            save_report(self.folder, report)
        except OSError as exc:
            log.error("cannot save the sync report in %s: %s", self.folder.sync_dir, exc)

    async def _notify_finished(self, report: SyncReport) -> None:
        if self.on_finished is None:
            return
        try:
            await _maybe_await(self.on_finished(report.as_json()))
        except Exception:  # noqa: BLE001 - a listener must not turn a finished sync into a crash
            log.exception("sync on_finished listener failed")

    def _progress(self, callback: ProgressCallback | None, stage: str, report: SyncReport, current: str,
                  total: int | None = None) -> None:
        totals = report.totals()
        done = sum(1 for r in report.endpoints.values() if r.pages)
        self._emit(callback, SyncProgress(stage=stage, files_done=done, files_total=max(total or done, done),
                                          requests=totals["requests"], items=totals["items"], current=current))

    def _emit(self, callback: ProgressCallback | None, progress: SyncProgress) -> None:
        self.progress = progress
        if callback is not None:
            try:
                callback(progress)
            except Exception:  # noqa: BLE001 - a broken progress display must not fail the sync
                log.exception("sync progress callback failed")


def _bad_shape(path: str, expected: str, data: Any) -> TraktError:
    return TraktBadResponse(f"{path}: expected {expected}, got {type(data).__name__}")


async def _maybe_await(value: Any) -> Any:
    if inspect.isawaitable(value):
        return await value
    return value


def _timestamp(value: Any) -> float | None:
    from services.ops.health import parse_time

    parsed = parse_time(value)
    return parsed.timestamp() if parsed else None


# --- the CLI -----------------------------------------------------------------------------------
class TerminalProgress:
    """A one-line progress bar on a terminal (stderr), redrawn with `\\r`."""

    def __init__(self, stream: TextIO, width: int = 24) -> None:
        self.stream = stream
        self.width = width
        self._last = ""

    def __call__(self, p: SyncProgress) -> None:
        total = max(p.files_total, 1)
        filled = int(self.width * min(p.files_done, total) / total)
        bar = "#" * filled + "-" * (self.width - filled)
        line = (f"\r[{bar}] {p.files_done}/{p.files_total} files  {p.requests} requests  "
                f"{p.items:,} items  {p.stage}: {p.current}")[:160]
        padding = " " * max(0, len(self._last) - len(line))
        self._last = line
        self.stream.write(line + padding)
        self.stream.flush()

    def close(self) -> None:
        if self._last:
            self.stream.write("\n")
            self.stream.flush()


def load_image_downloader() -> ImageDownloader | None:
    """`services.images.downloads.download_images`, or None when that module is not available."""
    try:
        from services.images.downloads import download_images
    except ImportError as exc:
        log.warning("image downloads unavailable: %s", exc)
        return None
    return download_images


async def run_sync_command(config: Config, images: bool | None = None, *,
                           stdout: TextIO | None = None, stderr: TextIO | None = None,
                           retry: RetryPolicy | None = None, request_timeout: float = 30.0) -> int:
    """`trakt-watch sync`: 0 a snapshot was committed, 1 the sync failed, 2 configuration error.

    `images`: True/False from --images/--no-images; None means "when TMDB_API_KEY is set".
    SIGINT/SIGTERM cancel the sync cleanly (exit 1, nothing served changes).
    """
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    missing = [name for name, value in (("TRAKT_API_KEY", config.trakt_api_key),
                                        ("TRAKT_USERNAME", config.trakt_username)) if not value]
    if missing:
        stderr.write(f"trakt-watch sync: {' and '.join(missing)} must be set (environment or .env)\n")
        return 2
    if images and not config.tmdb_api_key:
        stderr.write("trakt-watch sync: --images needs TMDB_API_KEY to be set\n")
        return 2
    use_images = bool(config.tmdb_api_key) if images is None else images
    downloader = load_image_downloader() if use_images else None
    if use_images and downloader is None:
        stderr.write("trakt-watch sync: image downloads are not available in this installation; syncing data only\n")

    try:
        folder = DataFolder(config.data_dir)
        folder.root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        stderr.write(f"trakt-watch sync: cannot use DATA_DIR {config.data_dir}: {exc.strerror or exc}\n")
        return 2
    service = SyncService(config, folder, images=downloader, retry=retry, request_timeout=request_timeout)
    bar = TerminalProgress(stderr) if _isatty(stderr) else None

    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    handled = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, task.cancel)  # type: ignore[union-attr]
            handled.append(sig)
    try:
        report = await service.run_once(progress=bar, trigger="cli")
    except asyncio.CancelledError:
        if bar:
            bar.close()
        stderr.write("trakt-watch sync: cancelled; the served data is unchanged\n")
        return 1
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)
    if bar:
        bar.close()
    for warning in report.warnings:
        stderr.write(f"warning: {warning}\n")
    if report.succeeded:
        stdout.write(report.one_line() + "\n")
        return 0
    stderr.write(report.one_line() + "\n")
    return 1


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False

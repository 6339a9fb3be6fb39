"""`SyncService`: runs syncs of one data folder — on the server's schedule, on demand
(`POST /api/trakt/sync`) or once from `trakt-watch sync` — and keeps every attempt's report.

A failure, a timeout, a cancellation or a killed process changes nothing that is served
(README "Sync"). The pieces: `endpoints` (what is fetched), `fetch` (fetching and committing),
`lock` (one sync per data folder), `schedule` (when), `report` (what happened).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from services.config import Config
from services.data.snapshots import DataFolder
from services.errors import Conflict, NotReady
from services.trakt import schedule
from services.trakt.client import RequestBudget, RetryPolicy, TraktClient, TraktError
from services.trakt.fetch import fetch_all, write_snapshot
from services.trakt.shows import fetch_show_data
from services.trakt.lock import LOCK_FILE, ProcessLock
from services.trakt.progress import SyncProgress
from services.trakt.report import (
    CANCELLED,
    FAILED,
    SUCCESS,
    SyncReport,
    read_history,
    read_last_attempt,
    read_sync_status,
    save_report,
)

log = logging.getLogger("trakt_watch.sync")

ImageDownloader = Callable[..., Awaitable[dict]]
ProgressCallback = Callable[[SyncProgress], Any]


class SyncAlreadyRunning(Conflict):
    """Another sync holds the lock (in this process or another one); the message says which."""


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

    def start_now(self, trigger: str = "manual") -> None:
        """Start a sync in the background. Raises SyncAlreadyRunning when one runs here or holds the
        data folder's lock in another process (the lock is taken here, before answering)."""
        if not self.config.has_trakt:
            raise NotReady("Sync needs TRAKT_API_KEY and TRAKT_USERNAME to be set")
        if self._active:
            raise SyncAlreadyRunning("A sync is already running")
        lock = ProcessLock(self.folder.sync_dir / LOCK_FILE)
        try:
            acquired = lock.acquire(trigger)
        except OSError:
            acquired = True  # the run itself fails and says why the folder cannot be used
        if not acquired:
            raise SyncAlreadyRunning(f"A sync is already running in another process: {lock.holder().describe()}")
        self._active = True  # taken now, so a second call before the task runs sees it
        task = asyncio.create_task(self._guarded_run(trigger, None, lock), name="sync-now")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(lambda _task: lock.release())  # also when cancelled before it ran

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

    async def _guarded_run(self, trigger: str, progress: ProgressCallback | None,
                           lock: ProcessLock | None = None) -> SyncReport:
        try:
            return await self._run(trigger, progress, lock)
        finally:
            self._active = False
            self._current = None
            self.progress = None

    async def _schedule(self) -> None:
        interval = self.config.sync_interval_hours * 3600
        delay = await asyncio.to_thread(schedule.first_delay, self.folder, interval)
        log.info("scheduled sync: first run in %.0f s, then every %g h", delay, self.config.sync_interval_hours)
        while True:
            await asyncio.sleep(delay)
            if self._active:
                delay = schedule.delay_after(False, interval)
                log.info("a sync is already running; next scheduled sync in %.0f s", delay)
                continue
            self._active = True
            try:
                report = await self._guarded_run("schedule", None)
            except Exception:  # noqa: BLE001 - the schedule must survive any single run
                log.exception("scheduled sync crashed")
                report = None
            delay = schedule.delay_after(report is not None and report.succeeded, interval)
            log.info("next scheduled sync in %.0f s", delay)

    def _remove_partials_if_idle(self) -> None:
        if not self.folder.snapshots_dir.is_dir():
            return  # never synced here: nothing to clean, and nothing to create (the folder may be read-only)
        lock = ProcessLock(self.folder.sync_dir / LOCK_FILE)
        try:
            if not lock.acquire("cleanup"):
                return  # a sync in another process is writing its partial folder right now
        except OSError as exc:
            log.warning("cannot check %s for interrupted syncs: %s", self.folder.root, exc)
            return
        try:
            self._remove_partials_locked()
        finally:
            lock.release()

    # --- one sync ----------------------------------------------------------------------------
    async def _run(self, trigger: str, progress: ProgressCallback | None,
                   lock: ProcessLock | None = None) -> SyncReport:
        """One attempt; `lock` is the data folder's lock when the caller took it already."""
        config = self.config
        report = SyncReport(username=config.trakt_username, trigger=trigger, secrets=tuple(config.secrets()))
        self._current = report
        if not config.has_trakt:
            report.finish(FAILED, "Sync needs TRAKT_API_KEY and TRAKT_USERNAME to be set")
            return report
        if lock is None or not lock.held:
            lock = ProcessLock(self.folder.sync_dir / LOCK_FILE)
            try:
                acquired = lock.acquire(trigger)
            except OSError as exc:
                report.finish(FAILED, f"Cannot use the data folder {self.folder.root}: {exc.strerror or exc}")
                log.error("sync not started: %s", report.error)
                return report  # not recorded: the folder cannot be written
            if not acquired:
                report.finish(FAILED, "Another sync of this data folder is already running in another process: "
                                      f"{lock.holder().describe()}")
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
                files = await fetch_all(client, self.config.trakt_username, report,
                                        lambda name, total: self._progress(progress, "fetch", report, name, total))
                files.update(await fetch_show_data(client, self.config.trakt_username, report, self.folder.served_root()))
        finally:
            report.http = dict(client.totals.__dict__)
            await client.close()
        self._progress(progress, "write", report, "snapshot")
        return await write_snapshot(self.folder, self.config.trakt_username, files, report)

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


async def _maybe_await(value: Any) -> Any:
    if inspect.isawaitable(value):
        return await value
    return value

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
from services.data import layout
from services.data.snapshots import DataFolder
from services.errors import Conflict, NotReady
from services.trakt import schedule
from services.trakt.auth import LOST, REFUSED, SIGNED_IN, TokenManager
from services.trakt.client import (MAX_CONCURRENCY, REQUEST_TIMEOUT_SECONDS, SIGNED_IN_USER, RequestBudget, RetryPolicy,
                                   TraktClient, TraktError)
from services.trakt.fetch import write_snapshot
from services.trakt.incremental import STATE_FILE, keep_unchanged, plan_sync
from services.trakt.shows import update_show_data
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
# After playback ends, checks run this many seconds later (each counted from the end) until the
# play is in the mirrored history (README "Sync", fresh within a minute).
PLAYBACK_CHECK_DELAYS = (20.0, 60.0, 180.0, 600.0)


class SyncAlreadyRunning(Conflict):
    """Another sync holds the lock (in this process or another one); the message says which."""


class SyncService:
    """Runs syncs for one data folder: on a schedule, on demand, or once from the CLI.

    `on_committed(path)` is called (awaited if it is a coroutine function) after a snapshot is
    committed — the server passes `store.reload`; `on_finished(report_dict)` after every attempt.
    `images` is `services.images.downloads.download_images` (or None to skip images).
    `retry`, `request_timeout` and `budget` tune the Trakt client (tests use short ones).
    `auth` is the sign-in (shared with the watcher): signed in, the sync reads the token's own
    account (`/users/me/...`) and TRAKT_USERNAME may be left out.
    `on_data_changed(changed, last_updated)` is called after every commit with the collections
    whose files changed (the server sends the WebSocket `data` message). `signed_in()` says whether
    the Trakt client carries a token (default: the client's own `signed_in`, False without one).
    """

    def __init__(self, config: Config, folder: DataFolder, *,
                 on_committed: Callable[[Path], Any] | None = None,
                 on_finished: Callable[[dict], Any] | None = None,
                 images: ImageDownloader | None = None,
                 retry: RetryPolicy | None = None,
                 request_timeout: float = REQUEST_TIMEOUT_SECONDS,
                 budget: RequestBudget | None = None,
                 max_concurrency: int = MAX_CONCURRENCY,
                 auth: TokenManager | None = None,
                 on_data_changed: Callable[[list[str], str], Any] | None = None,
                 signed_in: Callable[[], bool] | None = None,
                 playback_check_delays: tuple[float, ...] = PLAYBACK_CHECK_DELAYS) -> None:
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
        self.auth = auth
        self.on_data_changed = on_data_changed
        self.signed_in = signed_in
        self.playback_check_delays = tuple(playback_check_delays)
        self._checker: asyncio.Task | None = None
        self._follower: asyncio.Task | None = None
        self.last_report: dict | None = None
        self.progress: SyncProgress | None = None
        self._active = False
        self._current: SyncReport | None = None
        self._scheduler: asyncio.Task | None = None
        self._waiter: asyncio.Task | None = None
        self._tasks: set[asyncio.Task] = set()

    # --- lifecycle -------------------------------------------------------------------------
    @property
    def scheduled(self) -> bool:
        """Whether `start()` runs syncs by itself (a Trakt key, a username or a sign-in, and an interval)."""
        return self.configured and self.config.sync_interval_hours > 0 and not self.config.demo

    # --- whose account -----------------------------------------------------------------------
    @property
    def configured(self) -> bool:
        """A Trakt key, and an account to read: TRAKT_USERNAME or the sign-in."""
        return self.missing_settings() is None

    def sign_in(self) -> dict[str, Any] | None:
        """The sign-in's state (`TokenManager.state()`, never a token); None without a TokenManager."""
        return self.auth.state() if self.auth is not None else None

    def missing_settings(self) -> str | None:
        """What keeps a sync from starting, as one line (None: it can run)."""
        return missing_settings(self.config, self.auth)

    def _account_name(self) -> str:
        """The name the report and the snapshot carry: the signed-in user's, else TRAKT_USERNAME."""
        state = self.sign_in()
        if state is not None and state["state"] == SIGNED_IN and state["username"]:
            return state["username"]
        return self.config.trakt_username

    @property
    def checks_scheduled(self) -> bool:
        """Whether `start()` runs the cheap incremental check every SYNC_CHECK_MINUTES."""
        return self.configured and self.config.sync_check_minutes > 0 and not self.config.demo

    async def start(self) -> None:
        """Clean up after a killed sync and start the schedules when configured."""
        try:
            await asyncio.to_thread(self._remove_partials_if_idle)
            self.last_report = await asyncio.to_thread(read_last_attempt, self.folder)
        except OSError as exc:  # an unreadable DATA_DIR: /healthz says so; the server still starts
            log.warning("cannot read the sync state in %s: %s", self.folder.root, exc.strerror or exc)
        self._start_schedules()
        if self._waits_for_sign_in and self._waiter is None:
            self._waiter = asyncio.create_task(self._wait_for_sign_in(), name="sync-wait-for-sign-in")

    def _start_schedules(self) -> None:
        if self.scheduled and self._scheduler is None:
            self._scheduler = asyncio.create_task(self._schedule(), name="sync-schedule")
        if self.checks_scheduled and self._checker is None:
            self._checker = asyncio.create_task(self._check_schedule(), name="sync-check")

    @property
    def _waits_for_sign_in(self) -> bool:
        """A Trakt key and a schedule, but no account yet (no TRAKT_USERNAME, not signed in)."""
        schedules = self.config.sync_interval_hours > 0 or self.config.sync_check_minutes > 0
        return bool(self.config.trakt_api_key) and schedules and not self.config.demo and not self.configured

    async def _wait_for_sign_in(self) -> None:
        """`trakt-watch login` in another process writes the token file: start the schedules then,
        without a restart (README "Signing in"). A look at one file every DATA_CHECK_SECONDS."""
        log.info("the sync waits for a sign-in: %s", self.missing_settings())
        while not self.configured:
            await asyncio.sleep(self.config.data_check_seconds)
        log.info("signed in to Trakt as %s: the sync starts now", self._account_name() or "an unknown user")
        self._start_schedules()

    def not_synced_reason(self) -> str:
        """Why there is no data to serve yet, for a person (the answers' 503 and /healthz)."""
        problem = self.missing_settings()
        if problem:
            state = self.sign_in() or {}
            if not self.config.trakt_api_key or state.get("state") == LOST:
                return f"No data yet: {problem}"
            refused = f" ({state['message']})" if state.get("state") == REFUSED else ""
            return (f"No data yet: sign in with `trakt-watch login`{refused}; the server starts syncing "
                    "by itself, no restart needed. Or set TRAKT_USERNAME to mirror a public profile")
        if self._active:
            return "No data yet: the first sync is running (GET /api/trakt/sync shows its progress)"
        last = self.last_report or {}
        if last.get("outcome") == FAILED and last.get("error"):
            return f"No data yet: the last sync failed: {last['error']}"
        if self.scheduled:
            return "No data yet: the first sync starts in a moment"
        return "No data yet: run `trakt-watch sync` (SYNC_INTERVAL_HOURS=0: the server does not sync by itself)"

    async def stop(self) -> None:
        """Stop the schedules and cancel a running sync (nothing partial is committed)."""
        tasks = [t for t in (self._waiter, self._scheduler, self._checker, self._follower, *self._tasks)
                 if t is not None and not t.done()]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._waiter = self._scheduler = self._checker = self._follower = None
        self._tasks.clear()

    def follow_playback(self) -> None:
        """Playback ended (the watcher says so): check soon, and again a few times, until a check
        commits new history (README "Sync"). A new end restarts the series."""
        if not self.configured or self.config.demo or not self.playback_check_delays:
            return
        if self._follower is not None and not self._follower.done():
            self._follower.cancel()
        self._follower = asyncio.create_task(self._follow(), name="sync-after-playback")

    async def _follow(self) -> None:
        elapsed = 0.0
        for delay in self.playback_check_delays:
            await asyncio.sleep(max(0.0, delay - elapsed))
            elapsed = delay
            while self._active:  # a running sync may already bring the play; check after it
                await asyncio.sleep(0.2)
            report = await self._check("playback")
            if report is not None and report.committed and "history" in (report.changed or []):
                log.info("the play that just ended is in the mirrored history")
                return
        log.info("no new play reached the history within %.0f s of playback ending", elapsed)

    async def _check_schedule(self) -> None:
        interval = self.config.sync_check_minutes * 60
        log.info("incremental check every %g min", self.config.sync_check_minutes)
        while True:
            await asyncio.sleep(interval)
            if self._active:
                continue
            await self._check("check")

    async def _check(self, trigger: str) -> SyncReport | None:
        if self._active:
            return None
        self._active = True
        try:
            return await self._guarded_run(trigger, None)
        except Exception:  # noqa: BLE001 - the schedule must survive any single run
            log.exception("incremental check crashed")
            return None

    # --- running ---------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._active

    def start_now(self, trigger: str = "manual", *, full: bool = False) -> None:
        """Start a sync in the background. Raises SyncAlreadyRunning when one runs here or holds the
        data folder's lock in another process (the lock is taken here, before answering)."""
        problem = self.missing_settings()
        if problem:
            raise NotReady(f"Sync cannot start: {problem}")
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
        task = asyncio.create_task(self._guarded_run(trigger, None, lock, full=full), name="sync-now")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(lambda _task: lock.release())  # also when cancelled before it ran

    async def run_once(self, progress: ProgressCallback | None = None, *, trigger: str = "manual",
                       full: bool = False) -> SyncReport:
        """One sync now (incremental once a snapshot exists, full with `full`); returns its
        report (outcome success or failed; raises on cancel)."""
        if self._active:
            raise SyncAlreadyRunning("A sync is already running")
        self._active = True
        return await self._guarded_run(trigger, progress, full=full)

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
        status["check_minutes"] = self.config.sync_check_minutes if self.checks_scheduled else 0
        status["full_interval_hours"] = self.config.sync_full_interval_hours
        status["history"] = read_history(self.folder)[:5]
        return status

    async def _guarded_run(self, trigger: str, progress: ProgressCallback | None,
                           lock: ProcessLock | None = None, *, full: bool = False) -> SyncReport:
        try:
            return await self._run(trigger, progress, lock, full=full)
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
                   lock: ProcessLock | None = None, *, full: bool = False) -> SyncReport:
        """One attempt; `lock` is the data folder's lock when the caller took it already."""
        config = self.config
        report = SyncReport(username=self._account_name(), trigger=trigger, secrets=tuple(config.secrets()))
        self._current = report
        problem = self.missing_settings()
        if problem:
            report.finish(FAILED, f"Sync cannot start: {problem}")
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
        log.info("sync started (%s) for %s", trigger, report.username or "the signed-in account")
        try:
            await asyncio.to_thread(self._remove_partials_locked)
            path = await self._fetch_and_commit(report, progress, full)
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
            if path is not None:
                await self._after_commit(path, report, progress)
            else:
                log.info("%s", report.one_line())
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

    async def _fetch_and_commit(self, report: SyncReport, progress: ProgressCallback | None,
                                full: bool = False) -> Path | None:
        """Fetch (all, or what moved) and commit; None when an incremental check found nothing to commit."""
        client = TraktClient(self.config, budget=self.budget, retry=self.retry, timeout=self.request_timeout,
                             max_concurrency=self.max_concurrency, auth=self.auth)
        # Signed in: the token's own account through `me` (it reads a private profile and follows a
        # renamed slug); TRAKT_USERNAME then only names it when the sign-in did not record a name.
        user = client.user_id(self.config.trakt_username)
        configured = self.config.trakt_username.lower()
        signed_in_names = {str(name).lower() for name in (report.username, (self.sign_in() or {}).get("slug")) if name}
        if user == SIGNED_IN_USER and configured and configured not in signed_in_names:
            report.warn(f"TRAKT_USERNAME={self.config.trakt_username} is not the signed-in account "
                        f"({report.username}); the signed-in account was mirrored")
        await client.start()
        try:
            async with asyncio.timeout(self.config.sync_timeout_minutes * 60):
                plan = await plan_sync(
                    client, user, self.folder, report, account=report.username or self.config.trakt_username,
                    signed_in=self._is_signed_in(client), force_full=full,
                    full_interval_hours=self.config.sync_full_interval_hours,
                    on_fetched=lambda name, total: self._progress(progress, "fetch", report, name, total))
                # up next's show data: fetched with the watched shows, refreshed when due, else carried
                await update_show_data(client, user, report, plan, self.folder.served_root())
        finally:
            report.http = dict(client.totals.__dict__)
            await client.close()
        if not plan.commit:
            return None
        if not report.username:  # signed in, but the login could not read the account's name
            profile = plan.files.get(layout.PROFILE)
            report.username = str(profile.get("username") or "") if isinstance(profile, dict) else ""
        # Unchanged files keep their bytes: a full re-mirror serves what the checks served.
        last_updated = await asyncio.to_thread(keep_unchanged, plan)
        self._progress(progress, "write", report, "snapshot")
        return await write_snapshot(self.folder, report.username, plan.files, report,
                                    carried=plan.carried, extras={STATE_FILE: plan.state}, last_updated=last_updated)

    def _is_signed_in(self, client: TraktClient) -> bool:
        if self.signed_in is not None:
            return bool(self.signed_in())
        return bool(getattr(client, "signed_in", False))

    async def _after_commit(self, path: Path, report: SyncReport, progress: ProgressCallback | None) -> None:
        log.info("%s", report.one_line())
        if self.on_committed is not None:
            try:
                await _maybe_await(self.on_committed(path))
            except Exception as exc:  # noqa: BLE001 - the snapshot is committed; the store checks disk too
                report.warn(f"reloading the served data failed: {exc}")
        if self.on_data_changed is not None:
            try:
                await _maybe_await(self.on_data_changed(list(report.changed or []), report.last_updated or ""))
            except Exception:  # noqa: BLE001 - a listener must not undo a committed snapshot
                log.exception("sync on_data_changed listener failed")
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


def missing_settings(config: Config, auth: TokenManager | None) -> str | None:
    """What keeps a sync from starting, as one line (None: it can run): a Trakt key, and an account
    to read, TRAKT_USERNAME or the sign-in (README "Signing in")."""
    signed_in = auth is not None and auth.signed_in
    if config.trakt_api_key and (config.trakt_username or signed_in):
        return None
    if not config.trakt_api_key:
        both = "" if config.trakt_username or signed_in else " and TRAKT_USERNAME"
        return (f"TRAKT_API_KEY{both} must be set (environment or .env)"
                + ("; TRAKT_USERNAME may be left out once signed in with trakt-watch login" if both else ""))
    if auth is not None and auth.state()["state"] == LOST:
        return "the Trakt sign-in was lost and TRAKT_USERNAME is not set: sign in again: trakt-watch login"
    return "TRAKT_USERNAME must be set (environment or .env), or sign in with trakt-watch login"


async def _maybe_await(value: Any) -> Any:
    if inspect.isawaitable(value):
        return await value
    return value

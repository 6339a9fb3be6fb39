"""`trakt-watch sync`: one sync from the command line, its progress on a terminal, one summary line.

Exit codes (README "Sync"): 0 a snapshot was committed or the incremental check found nothing
new, 1 the sync failed or was interrupted, 2 configuration error. `--full` re-mirrors everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from typing import TextIO

from services.config import Config
from services.data.snapshots import DataFolder
from services.trakt.auth import LOST, TokenManager
from services.trakt.client import REQUEST_TIMEOUT_SECONDS, RequestBudget, RetryPolicy
from services.trakt.progress import TerminalProgress
from services.trakt.service import ImageDownloader, SyncService, missing_settings

log = logging.getLogger("trakt_watch.sync")


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
                           retry: RetryPolicy | None = None, request_timeout: float = REQUEST_TIMEOUT_SECONDS,
                           full: bool = False) -> int:
    """`trakt-watch sync [--full]`: 0 a snapshot was committed (or an incremental check found
    nothing new), 1 the sync failed, 2 configuration error.

    `images`: True/False from --images/--no-images; None means "when TMDB_API_KEY is set".
    SIGINT/SIGTERM cancel the sync cleanly (exit 1, nothing served changes).
    """
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    # The same build order as the server's: one budget, and the sign-in takes its slots too.
    budget = RequestBudget(config.trakt_rate_limit)
    auth = TokenManager(config, budget=budget)
    try:
        problem = missing_settings(config, auth)
        if problem:
            stderr.write(f"trakt-watch sync: {problem}\n")
            return 1 if auth.state()["state"] == LOST else 2
        return await _sync(config, images, SyncService(config, DataFolder(config.data_dir), retry=retry, budget=budget,
                                                       request_timeout=request_timeout, auth=auth), stdout, stderr,
                           full=full)
    finally:
        await auth.close()


async def _sync(config: Config, images: bool | None, service: SyncService, stdout: TextIO, stderr: TextIO, *,
                full: bool = False) -> int:
    if images and not config.tmdb_api_key:
        stderr.write("trakt-watch sync: --images needs TMDB_API_KEY to be set\n")
        return 2
    use_images = bool(config.tmdb_api_key) if images is None else images
    service.images = load_image_downloader() if use_images else None
    if use_images and service.images is None:
        stderr.write("trakt-watch sync: image downloads are not available in this installation; syncing data only\n")

    try:
        service.folder.root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        stderr.write(f"trakt-watch sync: cannot use DATA_DIR {config.data_dir}: {exc.strerror or exc}\n")
        return 2
    # A bar on a terminal only; elsewhere (a pipe, the journal) the log lines alone.
    bar = TerminalProgress(stderr) if _isatty(stderr) else None

    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    handled = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, task.cancel)  # type: ignore[union-attr]
            handled.append(sig)
    try:
        with bar if bar is not None else contextlib.nullcontext():
            report = await service.run_once(progress=bar, trigger="cli", full=full)
    except asyncio.CancelledError:
        stderr.write("trakt-watch sync: cancelled; the served data is unchanged\n")
        return 1
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)
    # The bar is gone: the warnings, then one summary line, are the last things printed.
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

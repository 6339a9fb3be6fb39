"""The sync: a complete, paginated, rate-limit-aware mirror of one Trakt account (README "Sync").

This module is the sync's one import path for the server and the command line; the work lives in
    service.py    SyncService: runs, the schedule, status (`POST`/`GET /api/trakt/sync`)
    fetch.py      fetching every endpoint and page, writing and committing the snapshot
    endpoints.py  what is fetched: the fixed endpoints and one per list
    schedule.py   when the server's own schedule syncs
    lock.py       one sync per data folder across processes
    report.py     what each attempt did, kept on disk
    progress.py   where a running sync is, and its terminal progress bar
    cli.py        `trakt-watch sync`
"""

from services.trakt.cli import load_image_downloader, run_sync_command
from services.trakt.progress import SyncProgress
from services.trakt.report import read_sync_status
from services.trakt.service import SyncAlreadyRunning, SyncService

__all__ = ["SyncService", "SyncProgress", "SyncAlreadyRunning", "run_sync_command", "load_image_downloader",
           "read_sync_status"]

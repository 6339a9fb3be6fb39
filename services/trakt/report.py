"""The sync report: what one sync did, kept on disk so a silently dead sync is impossible.

Every attempt is saved as `DATA_DIR/sync/last_attempt.json` and summarised in
`DATA_DIR/sync/history.json` (newest first, the last 20); a committed snapshot also carries its
report as `sync_report.json`. `read_sync_status()` turns these into what /healthz and the
/api/trakt metadata show.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ujson

from services import times
from services.data.snapshots import DataFolder, write_json_atomic
from services.redact import Redactor

log = logging.getLogger("trakt_watch.sync")

LAST_ATTEMPT = "last_attempt.json"
HISTORY = "history.json"
SNAPSHOT_REPORT = "sync_report.json"
HISTORY_LENGTH = 20

SUCCESS = "success"
FAILED = "failed"
CANCELLED = "cancelled"


def utc_now() -> str:
    """Now as ISO 8601 UTC with a trailing Z (what every report timestamp uses)."""
    return times.iso_z(times.now())


@dataclass
class EndpointReport:
    """What fetching one file took."""

    file: str
    path: str
    pages: int = 0
    items: int = 0
    item_count_reported: int | None = None  # X-Pagination-Item-Count, when Trakt sent it
    requests: int = 0
    retries: int = 0
    rate_limited: int = 0

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class SyncReport:
    """One sync attempt: timing, outcome, per-endpoint counts, warnings and the error."""

    username: str
    trigger: str = "manual"  # cli | schedule | check | playback | manual (POST /api/trakt/sync)
    started_at: str = field(default_factory=utc_now)
    finished_at: str | None = None
    outcome: str = "running"
    error: str | None = None
    snapshot: str | None = None
    endpoints: dict[str, EndpointReport] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    images: dict | None = None
    # Everything the client sent, failed calls included (the endpoints only count finished ones).
    http: dict[str, int] | None = None
    # The incremental sync (services/trakt/incremental.py): full or incremental, what was done
    # per collection and why ("unchanged since …", "moved: …", "fetched whole: …"), which
    # collections' files changed, and whether a snapshot was committed (an unchanged check is not).
    mode: str | None = None
    collections: dict[str, str] = field(default_factory=dict)
    changed: list[str] | None = None
    committed: bool = False
    last_updated: str | None = None  # the committed snapshot's `last_updated`
    # Up next's show data (services/trakt/shows.py): its requests, and why each show got what it got.
    show_data: dict[str, Any] | None = None
    _clock_start: float = field(default_factory=time.monotonic, repr=False)
    duration_seconds: float | None = None
    # Config.secrets(): an upstream may echo a key into a message; no recorded text keeps it.
    secrets: tuple[str, ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        self._redact = Redactor(self.secrets)

    def record_text(self, text: str) -> str:
        """What every warning and error goes through on its way into the report (and so into the
        report files, GET /api/trakt/sync, /healthz, the /api/trakt metadata and the CLI)."""
        return self._redact(text)

    def warn(self, message: str) -> None:
        message = self.record_text(message)
        log.warning("sync: %s", message)
        self.warnings.append(message)

    def finish(self, outcome: str, error: str | None = None) -> None:
        self.outcome = outcome
        self.error = self.record_text(error) if error is not None else None
        self.finished_at = utc_now()
        self.duration_seconds = round(time.monotonic() - self._clock_start, 3)

    @property
    def succeeded(self) -> bool:
        return self.outcome == SUCCESS

    def totals(self) -> dict[str, int]:
        reports = self.endpoints.values()
        totals = {
            "files": sum(1 for r in reports if r.pages and r.file),  # not the checks (last_activities, counts)
            "items": sum(r.items for r in reports),
            "pages": sum(r.pages for r in reports),
            "requests": sum(r.requests for r in reports),
            "retries": sum(r.retries for r in reports),
            "rate_limited": sum(r.rate_limited for r in reports),
        }
        if self.http:
            for key in ("requests", "retries", "rate_limited"):
                totals[key] = max(totals[key], self.http.get(key, 0))
        return totals

    def as_json(self) -> dict[str, Any]:
        return {
            "username": self.username,
            "trigger": self.trigger,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "duration_seconds": self.duration_seconds,
            "outcome": self.outcome,
            "error": self.error,
            "snapshot": self.snapshot,
            "mode": self.mode,
            "committed": self.committed,
            "changed": self.changed,
            "collections": dict(self.collections),
            "totals": self.totals(),
            "endpoints": {name: r.as_json() for name, r in self.endpoints.items()},
            "warnings": list(self.warnings),
            "images": self.images,
            "show_data": self.show_data,
        }

    def summary(self) -> dict[str, Any]:
        """The short form kept in history.json and shown by GET /api/trakt/sync."""
        totals = self.totals()
        return {
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "outcome": self.outcome,
            "trigger": self.trigger,
            "error": self.error,
            "snapshot": self.snapshot,
            "mode": self.mode,
            "changed": self.changed,
            "duration_seconds": self.duration_seconds,
            "requests": totals["requests"],
            "items": totals["items"],
            "warnings": len(self.warnings),
        }

    def one_line(self) -> str:
        """A one-line human summary for the CLI and the log."""
        totals = self.totals()
        took = f"{self.duration_seconds:.1f} s" if self.duration_seconds is not None else "?"
        if self.succeeded and not self.committed and self.mode == "incremental":
            line = (f"sync check: nothing changed, no new snapshot; {totals['requests']} requests "
                    f"({totals['retries']} retries, {totals['rate_limited']} rate limited) in {took}")
        elif self.succeeded:
            changed = f" ({self.mode}; changed: {', '.join(self.changed) or 'nothing'})" if self.mode else ""
            line = (f"sync committed snapshot {self.snapshot}: {totals['files']} files, {totals['items']:,} items, "
                    f"{totals['requests']} requests ({totals['retries']} retries, {totals['rate_limited']} rate limited) "
                    f"in {took}{changed}")
        else:
            line = f"sync {self.outcome} after {took} and {totals['requests']} requests: {self.error}"
        if self.images:
            line += "; images: " + _image_summary(self.images)
        if self.warnings:
            line += f"; {len(self.warnings)} warning(s)"
        return line


def _image_summary(images: dict) -> str:
    """`80 downloaded, 3 not on TMDB, 1 failed` (counts of services.images.downloads; zeros left out)."""
    parts = [f"{images.get('downloaded', 0):,} downloaded"]
    for key, label in (("skipped_existing", "already there"), ("not_found", "not on TMDB"),
                       ("missing_tmdb_id", "without a TMDB id"), ("failed", "failed")):
        if images.get(key):
            parts.append(f"{images[key]:,} {label}")
    return ", ".join(parts)


def save_report(folder: DataFolder, report: SyncReport, *, record_history: bool = True) -> None:
    """Write last_attempt.json and (once per attempt) prepend the summary to history.json."""
    write_json_atomic(folder.sync_dir / LAST_ATTEMPT, report.as_json())
    if record_history:
        history = [entry for entry in _read_json(folder.sync_dir / HISTORY, default=[]) if isinstance(entry, dict)]
        history = [entry for entry in history if entry.get("started_at") != report.started_at]
        history.insert(0, report.summary())
        write_json_atomic(folder.sync_dir / HISTORY, history[:HISTORY_LENGTH])


def read_history(folder: DataFolder) -> list[dict]:
    """The recorded attempts, newest first (empty when none or unreadable)."""
    history = _read_json(folder.sync_dir / HISTORY, default=[])
    return [entry for entry in history if isinstance(entry, dict)] if isinstance(history, list) else []


def read_last_attempt(folder: DataFolder) -> dict | None:
    report = _read_json(folder.sync_dir / LAST_ATTEMPT, default=None)
    return report if isinstance(report, dict) else None


def read_sync_status(folder: DataFolder) -> dict[str, Any]:
    """When the last sync succeeded, when the last one was tried, how it ended and why it failed.

    Keys: last_success_at, last_attempt_at, last_attempt_outcome, last_error, running (always
    False here: only the running SyncService knows better). Values are None when nothing says.
    """
    last = read_last_attempt(folder)
    history = read_history(folder)
    last_success_at = next((entry.get("finished_at") for entry in history
                            if entry.get("outcome") == SUCCESS and entry.get("finished_at")), None)
    if last is not None and last.get("outcome") == SUCCESS and last.get("finished_at"):
        last_success_at = max(filter(None, (last_success_at, last["finished_at"])))
    if last_success_at is None:
        try:
            served = folder.served_root()
        except OSError:  # an unreadable DATA_DIR: the store reports it (README "Health and metrics")
            served = None
        if served is not None:
            report = _read_json(served / SNAPSHOT_REPORT, default=None)
            if isinstance(report, dict) and report.get("outcome") == SUCCESS:
                last_success_at = report.get("finished_at")
    if last is None and history:
        last = history[0]
    return {
        "last_success_at": last_success_at,
        "last_attempt_at": (last.get("finished_at") or last.get("started_at")) if last else None,
        "last_attempt_outcome": last.get("outcome") if last else None,
        "last_error": last.get("error") if last else None,
        "running": False,
    }


def _read_json(path: Path, *, default: Any) -> Any:
    try:
        with open(path, "rb") as fh:
            return ujson.loads(fh.read())
    except FileNotFoundError:
        return default
    except (OSError, ValueError) as exc:
        log.warning("cannot read %s: %s", path, exc)
        return default

"""What `/healthz` reports: can data be served, how old is it, did the last sync work, is Trakt up.

`compute_health` takes plain values so it is tested without a server; `gather_health` reads
them from the running services.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from services import times
from services.trakt.report import read_sync_status

OK = "ok"
DEGRADED = "degraded"


@dataclass(frozen=True)
class SyncSummary:
    """The last sync attempt and the last successful one, as far as anything recorded them."""

    last_attempt_at: datetime | None = None
    last_success_at: datetime | None = None
    last_outcome: str | None = None  # "success", "failed", "running", "cancelled"…
    last_error: str | None = None
    running: bool = False

    def as_json(self) -> dict[str, Any] | None:
        if self.last_attempt_at is None and self.last_success_at is None and not self.running:
            return None
        return {
            "at": _iso(self.last_attempt_at),
            "outcome": self.last_outcome,
            "error": self.last_error,
            "last_success_at": _iso(self.last_success_at),
            "running": self.running,
        }


@dataclass(frozen=True)
class Health:
    """The `/healthz` body and whether any data can be served (the handler answers 503 when not)."""

    body: dict[str, Any]
    serving: bool = True
    reasons: list[str] = field(default_factory=list)




def _iso(value: datetime | None) -> str | None:
    return times.iso_z(value, timespec="seconds") if value else None


def compute_health(
    *,
    ready: bool,
    unavailable_reason: str | None = None,
    problems: list[str] | tuple[str, ...] = (),
    demo_fallback: str | None = None,
    data_last_updated: Any = None,
    is_demo: bool = False,
    sync: SyncSummary | None = None,
    sync_expected: bool = False,
    sync_interval_hours: float = 24.0,
    watcher: dict[str, Any] | None = None,
    sign_in: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> Health:
    """Decide ok / degraded and say why.

    - not `ready` (nothing to serve): degraded and `serving=False`, the handler answers 503;
    - `problems` (unusable files, a failed reload): degraded;
    - `demo_fallback` (synced data vanished, the demo replaced it): degraded;
    - the last sync failed, or the last success is older than 2 x `sync_interval_hours` while syncs
      are expected (`sync_expected`: a Trakt key and a schedule): degraded;
    - the watcher reports its upstream down: degraded;
    - the Trakt sign-in was lost, or its token file is refused (`sign_in`, `TokenManager.state()`):
      degraded, with its message.
    """
    now = now or datetime.now(UTC)
    reasons: list[str] = []
    if not ready:
        reasons.append(f"no data can be served: {unavailable_reason or 'nothing synced or imported yet'}")
    for problem in problems:
        if ready or problem != unavailable_reason:
            reasons.append(f"data problem: {problem}")
    if demo_fallback:
        reasons.append(demo_fallback)

    last_updated = times.parse(data_last_updated)
    age = max(0.0, (now - last_updated).total_seconds()) if last_updated else None

    sync = sync or SyncSummary()
    if sync.last_outcome in ("failed", "error", "timeout") and not sync.running:
        detail = f": {sync.last_error}" if sync.last_error else ""
        reasons.append(f"last sync failed{detail}")
    if sync_expected and sync_interval_hours > 0:
        limit = 2 * sync_interval_hours * 3600
        last_success = sync.last_success_at or (None if is_demo else last_updated)
        if last_success is None:
            if not is_demo:
                reasons.append("no successful sync recorded")
        elif (now - last_success).total_seconds() > limit:
            hours = (now - last_success).total_seconds() / 3600
            reasons.append(f"last successful sync was {hours:.1f} h ago "
                           f"(more than twice SYNC_INTERVAL_HOURS={sync_interval_hours:g})")

    watcher_state = dict(watcher) if watcher else {"enabled": False}
    if watcher_state.get("enabled", True) and watcher_upstream_down(watcher_state):
        error = watcher_state.get("last_error") or watcher_state.get("error")
        reasons.append("now-watching: Trakt is unreachable" + (f" ({error})" if error else ""))

    sign_in = {key: (sign_in or {}).get(key) for key in ("state", "username", "message")}
    if sign_in["state"] in ("lost", "refused"):
        # lost: "sign in again: trakt-watch login" (the dashboard header shows it too); refused: a
        # token file others can read or that cannot be read, and how to fix it (never its contents)
        reasons.append(sign_in["message"])

    status = DEGRADED if reasons else OK
    body = {
        "status": status,
        "data_age_seconds": round(age, 3) if age is not None else None,
        "last_sync": sync.as_json(),
        "watcher": watcher_state,
        "reasons": reasons,
        "demo": bool(is_demo),
        "sign_in": sign_in,
    }
    return Health(body=body, serving=ready, reasons=reasons)


def watcher_upstream_down(state: dict[str, Any]) -> bool:
    """Whether a watcher health dict says the Trakt poll is failing."""
    for key in ("upstream_ok", "healthy", "ok"):
        if key in state and isinstance(state[key], bool):
            return not state[key]
    upstream = state.get("upstream", state.get("status"))
    return isinstance(upstream, str) and upstream.lower() in ("down", "error", "failing", "unreachable")


def summarize_sync(status: dict[str, Any] | None, running: bool = False) -> SyncSummary:
    """`read_sync_status()`'s dict (plus whether a sync runs in this process) as a SyncSummary."""
    status = status or {}
    return SyncSummary(
        last_attempt_at=times.parse(status.get("last_attempt_at")),
        last_success_at=times.parse(status.get("last_success_at")),
        last_outcome=status.get("last_attempt_outcome"),
        last_error=status.get("last_error"),
        running=bool(running or status.get("running")),
    )


def sync_expectation(has_trakt: bool, interval_hours: float, ever_synced: bool) -> tuple[bool, float]:
    """Whether a sync is expected and how often: the in-process schedule, or (interval 0, syncs seen)
    the daily systemd timer."""
    if not has_trakt:
        return False, 0.0
    if interval_hours > 0:
        return True, interval_hours
    return ever_synced, 24.0


def gather_health(config: Any, store: Any, folder: Any, watcher: Any = None, sync: Any = None) -> Health:
    """Read the inputs of `compute_health` from the running services: the DataStore, the data
    folder (sync reports on disk), the Watcher and the SyncService (either may be None)."""
    status = None if store.is_demo else read_sync_status(folder)
    running = bool(sync is not None and sync.running)
    summary = summarize_sync(status, running)
    ever_synced = summary.last_attempt_at is not None or summary.last_success_at is not None
    # Signed in, TRAKT_USERNAME may be left out: the SyncService knows whether it can run.
    configured = bool(getattr(sync, "configured", config.has_trakt))
    expected, interval = sync_expectation(configured, config.sync_interval_hours, ever_synced)
    return compute_health(
        ready=store.ready,
        unavailable_reason=store.load_error,
        problems=store.problems,
        demo_fallback=store.demo_fallback,
        data_last_updated=store.data_last_updated,
        is_demo=store.is_demo,
        sync=summary,
        sync_expected=expected and not store.is_demo,
        sync_interval_hours=interval,
        watcher={**watcher.health(), **watcher.activity()} if watcher is not None else None,
        sign_in=sync.sign_in() if hasattr(sync, "sign_in") else None,
    )

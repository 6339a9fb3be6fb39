"""The data folder on disk and atomic snapshots.

Layout (README "Data folder" leaves it to us; the served view has that shape):

    DATA_DIR/current -> snapshots/<id>      a relative symlink, swapped with one rename
    DATA_DIR/snapshots/<id>/index.json ...  complete, never modified after commit
    DATA_DIR/snapshots/.partial-<id>/       a snapshot being written; removed on failure/start
    DATA_DIR/images/                        posters and backdrops (shared by all snapshots)
    DATA_DIR/sync/                          sync reports

A flat folder (index.json and user/ directly in DATA_DIR, as `demo --out` writes) is served
as it is when there is no `current` link.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

import ujson

from services import times
from services.data import layout

log = logging.getLogger(__name__)

PARTIAL_PREFIX = ".partial-"
KEEP_SNAPSHOTS = 3


def dumps(obj: Any) -> str:
    return ujson.dumps(obj, ensure_ascii=False, escape_forward_slashes=False)


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write JSON so that a reader sees the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(dumps(obj))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class DataFolder:
    """One DATA_DIR: which snapshot is served, and how a new one is written."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.snapshots_dir = self.root / "snapshots"
        self.current_link = self.root / "current"
        self.images_dir = self.root / "images"
        self.sync_dir = self.root / "sync"

    def served_root(self) -> Path | None:
        """The folder whose files are served now, or None when there is no data."""
        if self.current_link.is_symlink():
            target = self.current_link.resolve()
            if target.is_dir():
                return target
            log.warning("%s points at a missing snapshot %s", self.current_link, target)
        if (self.root / layout.INDEX).is_file() or (self.root / "user").is_dir():
            return self.root
        return None

    def snapshots(self) -> list[Path]:
        """Committed snapshots, oldest first."""
        if not self.snapshots_dir.is_dir():
            return []
        return sorted(p for p in self.snapshots_dir.iterdir()
                      if p.is_dir() and not p.name.startswith("."))

    def remove_partials(self) -> list[Path]:
        """Delete snapshots left half-written by a killed sync; returns what was removed."""
        removed = []
        if self.snapshots_dir.is_dir():
            for path in self.snapshots_dir.iterdir():
                if path.name.startswith(PARTIAL_PREFIX):
                    shutil.rmtree(path, ignore_errors=True)
                    removed.append(path)
        for stale in self.root.glob(".current.*.tmp"):
            stale.unlink(missing_ok=True)
        return removed

    def new_snapshot(self, *, username: str, source: str, last_updated: str | None = None) -> "SnapshotWriter":
        stamp = times.compact(times.now())
        snapshot_id = f"{stamp}-{secrets.token_hex(3)}"
        return SnapshotWriter(self, snapshot_id, username=username, source=source,
                              last_updated=last_updated or layout.utc_now_iso())

    def point_current_at(self, snapshot: Path) -> None:
        """Swap the `current` link in one rename (atomic on POSIX)."""
        tmp = self.root / f".current.{secrets.token_hex(4)}.tmp"
        os.symlink(os.path.relpath(snapshot, self.root), tmp)
        os.replace(tmp, self.current_link)

    def prune(self, keep: int = KEEP_SNAPSHOTS) -> list[Path]:
        """Keep the newest `keep` snapshots (never the served one)."""
        served = self.served_root()
        old = self.snapshots()[:-keep] if keep > 0 else self.snapshots()
        removed = []
        for path in old:
            if served is not None and path.resolve() == served:
                continue
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
        return removed


class SnapshotWriter:
    """Writes a complete set of files into a hidden folder; `commit()` makes it the served one.

    Use as a context manager: leaving the block without `commit()` (an exception, a cancelled
    task) removes the partial folder, so nothing served ever changes on failure.
    """

    def __init__(self, folder: DataFolder, snapshot_id: str, *, username: str, source: str,
                 last_updated: str) -> None:
        self.folder = folder
        self.snapshot_id = snapshot_id
        self.username = username
        self.source = source
        self.last_updated = last_updated
        self.path = folder.snapshots_dir / f"{PARTIAL_PREFIX}{snapshot_id}"
        self.final_path = folder.snapshots_dir / snapshot_id
        self.counts: dict[str, int] = {}
        self.committed = False
        self.path.mkdir(parents=True)

    def write(self, endpoint: str, data: Any, *, extra_metadata: dict | None = None) -> dict:
        """Write one wrapped data file (`endpoint` relative to the snapshot); returns its metadata."""
        document = layout.wrap(endpoint, data, username=self.username, source=self.source,
                               last_updated=self.last_updated, extra=extra_metadata)
        self._write_file(endpoint, document)
        self.counts[endpoint] = document["metadata"]["count"]
        return document["metadata"]

    def write_index(self, *, extra_metadata: dict | None = None) -> None:
        """index.json listing every file written so far; call it last."""
        data = layout.index_document(username=self.username, last_updated=self.last_updated,
                                     counts=dict(self.counts))
        self.write(layout.INDEX, data, extra_metadata=extra_metadata)

    def carry(self, endpoint: str, source: Path, count: int) -> None:
        """Take an unchanged file over from the served snapshot (a hard link, a copy where links
        fail): an incremental sync's result is still a complete snapshot (README "Sync")."""
        target = (self.path / endpoint).resolve()
        if not target.is_relative_to(self.path.resolve()):
            raise ValueError(f"refusing to write outside the snapshot: {endpoint!r}")
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(source, target)
        except OSError:
            shutil.copy2(source, target)
        self.counts[endpoint] = count

    def write_extra(self, name: str, obj: Any) -> None:
        """An unwrapped file beside the data, e.g. the sync report."""
        self._write_file(name, obj)

    def _write_file(self, relative: str, obj: Any) -> None:
        target = (self.path / relative).resolve()
        if not target.is_relative_to(self.path.resolve()):
            raise ValueError(f"refusing to write outside the snapshot: {relative!r}")
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "w", encoding="utf-8") as fh:
            fh.write(dumps(obj))

    def commit(self, keep: int = KEEP_SNAPSHOTS) -> Path:
        """Flush, move into place, point `current` at it, drop old snapshots."""
        if layout.INDEX not in self.counts:
            self.write_index()
        _fsync_tree(self.path)
        os.rename(self.path, self.final_path)
        self.folder.point_current_at(self.final_path)
        self.committed = True
        self.folder.prune(keep)
        return self.final_path

    def abort(self) -> None:
        if not self.committed:
            shutil.rmtree(self.path, ignore_errors=True)

    def __enter__(self) -> "SnapshotWriter":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.abort()


def _fsync_tree(root: Path) -> None:
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def write_flat_folder(out_dir: Path, files: Mapping[str, Any], *, username: str, source: str,
                      last_updated: str) -> dict[str, int]:
    """Write a complete flat data folder (index.json last); returns item counts per file."""
    out_dir = Path(out_dir)
    counts: dict[str, int] = {}
    for endpoint, data in files.items():
        if endpoint == layout.INDEX:
            continue
        document = layout.wrap(endpoint, data, username=username, source=source, last_updated=last_updated)
        write_json_atomic(out_dir / endpoint, document)
        counts[endpoint] = document["metadata"]["count"]
    index = layout.index_document(username=username, last_updated=last_updated, counts=counts)
    write_json_atomic(out_dir / layout.INDEX, layout.wrap(layout.INDEX, index, username=username,
                                                          source=source, last_updated=last_updated))
    return counts

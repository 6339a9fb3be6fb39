"""One loaded data folder, turned into ready-to-send bytes (runs in a worker thread).

Everything a request needs is computed here once: the body and ETag of every file, item
offsets for paging, the search index, the activity statistics, the list lookup table. Large
files are not kept as Python objects (a 300,000-row history would cost a gigabyte of RAM);
only their bytes, offsets and the compact title catalogue stay in memory.
"""

from __future__ import annotations

import hashlib
import logging
from array import array
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone, tzinfo
from pathlib import Path
from typing import Any, Iterator
from zoneinfo import ZoneInfo

import ujson

from services import layout
from services.search import Catalogue, SearchIndex
from services.snapshots import dumps

log = logging.getLogger(__name__)

# Files whose parsed form is kept (small); the rest are parsed on demand via `documents`.
SMALL_FILES = (layout.INDEX, layout.PROFILE, layout.STATS, layout.LISTS)
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
ACTIVITY_MONTHS = 24


class Body:
    """A response serialised once: one or more byte chunks and a strong ETag."""

    __slots__ = ("chunks", "etag", "length")

    def __init__(self, chunks: tuple[bytes, ...], etag: str) -> None:
        self.chunks = chunks
        self.etag = etag
        self.length = sum(len(c) for c in chunks)


def etag_of(*chunks: bytes) -> str:
    digest = hashlib.blake2b(digest_size=16)
    for chunk in chunks:
        digest.update(chunk)
    return f'"{digest.hexdigest()}"'


def json_body(obj: Any) -> Body:
    raw = dumps(obj).encode()
    return Body((raw,), etag_of(raw))


@dataclass
class ArrayFile:
    """A wrapped file whose `data` is a list: its bytes and where each item starts."""

    endpoint: str
    body: Body
    metadata: dict
    offsets: array  # offsets[k] = start of item k; offsets[n] = where the closing "]" stands
    prefix_length: int  # bytes before the first item

    @property
    def count(self) -> int:
        return len(self.offsets) - 1

    def page(self, page: int, limit: int) -> Body:
        """Items [(page-1)*limit, page*limit) in the same wrapper, with paging metadata."""
        raw = self.body.chunks[0]
        total = self.count
        first = min((page - 1) * limit, total)
        last = min(first + limit, total)
        items = raw[self.offsets[first]:self.offsets[last]].rstrip(b",") if last > first else b""
        metadata = dict(self.metadata, count=last - first, page=page, limit=limit, total=total,
                        page_count=max(1, -(-total // limit)))
        chunk = b'{"metadata":' + dumps(metadata).encode() + b',"data":[' + items + b"]}"
        return Body((chunk,), etag_of(chunk))


@dataclass
class Dataset:
    """Everything served from one data folder. Never modified after it is built."""

    root: Path | None
    is_demo: bool
    bodies: dict[str, Body] = field(default_factory=dict)
    arrays: dict[str, ArrayFile] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)
    small_documents: dict[str, Any] = field(default_factory=dict)
    list_endpoints: dict[str, str] = field(default_factory=dict)  # slug or trakt id -> endpoint
    search: SearchIndex = field(default_factory=lambda: SearchIndex(Catalogue()))
    activity: dict = field(default_factory=dict)
    index_metadata: dict = field(default_factory=dict)
    last_updated: str | None = None
    raw_files: dict[str, bytes] = field(default_factory=dict, repr=False)

    @property
    def documents(self) -> "LazyDocuments":
        return LazyDocuments(self)


class LazyDocuments(Mapping):
    """Parsed files by endpoint. Small ones are cached; large ones are parsed on each access,
    so use it for occasional work (the demo schedule), never per request."""

    def __init__(self, dataset: Dataset) -> None:
        self._dataset = dataset

    def __getitem__(self, endpoint: str) -> Any:
        if endpoint in self._dataset.small_documents:
            return self._dataset.small_documents[endpoint]
        raw = self._dataset.raw_files.get(endpoint)
        if raw is None or endpoint in self._dataset.problems:
            raise KeyError(endpoint)
        return ujson.loads(raw)

    def __iter__(self) -> Iterator[str]:
        return (e for e in self._dataset.raw_files if e not in self._dataset.problems)

    def __len__(self) -> int:
        return sum(1 for _ in self)


def build_dataset(root: Path | None, files: dict[str, bytes], *, is_demo: bool, zone: str) -> Dataset:
    """Parse every file once and prepare all responses. Bad files become `problems`, never errors."""
    dataset = Dataset(root=root, is_demo=is_demo, raw_files=files)
    catalogue = Catalogue()
    activity = _ActivityCounter(_zone(zone))
    list_names: dict[str, str] = {}
    for endpoint in sorted(files, key=_load_order):
        raw = files[endpoint]
        try:
            document = ujson.loads(raw)
        except (ValueError, OverflowError) as exc:
            dataset.problems[endpoint] = f"{endpoint} is not valid JSON ({exc})"
            continue
        if not isinstance(document, dict) or "data" not in document:
            dataset.problems[endpoint] = f"{endpoint} has no 'data' field (expected the metadata/data wrapper)"
            continue
        data = document["data"]
        metadata = document.get("metadata") if isinstance(document.get("metadata"), dict) else {}
        if endpoint in SMALL_FILES:
            dataset.small_documents[endpoint] = document
        if endpoint == layout.INDEX:
            dataset.index_metadata = metadata
            dataset.last_updated = metadata.get("last_updated") or (data or {}).get("last_updated")
            continue  # index.json gets status metadata added per load; see DataStore
        if isinstance(data, list):
            dataset.arrays[endpoint] = _array_file(endpoint, raw, metadata, data)
            dataset.bodies[endpoint] = dataset.arrays[endpoint].body
        else:
            dataset.bodies[endpoint] = Body((raw,), etag_of(raw))
        _collect(endpoint, data, catalogue, activity, list_names)
        if endpoint == layout.LISTS and isinstance(data, list):
            for entry in data:
                ids = entry.get("ids") if isinstance(entry, dict) else None
                if isinstance(ids, dict) and layout.is_safe_slug(str(ids.get("slug", ""))):
                    endpoint_for_list = layout.list_items_endpoint(ids["slug"])
                    list_names[endpoint_for_list] = entry.get("name") or ids["slug"]
                    if ids.get("trakt") is not None:
                        dataset.list_endpoints[str(ids["trakt"])] = endpoint_for_list
    for endpoint in files:
        if endpoint.startswith(layout.LISTS_DIR + "/") and endpoint.endswith(layout.LIST_ITEMS_SUFFIX):
            slug = endpoint[len(layout.LISTS_DIR) + 1:-len(layout.LIST_ITEMS_SUFFIX)]
            dataset.list_endpoints.setdefault(slug, endpoint)
    dataset.search = SearchIndex(catalogue)
    dataset.activity = activity.result(dataset.last_updated, zone)
    return dataset


def _load_order(endpoint: str) -> tuple[int, str]:
    # user_lists.json first so list item files know their list's name; ratings before the rest.
    first = (layout.LISTS, layout.RATINGS)
    return (0 if endpoint in first else 1, endpoint)


def _array_file(endpoint: str, raw: bytes, metadata: dict, items: list) -> ArrayFile:
    """Find each item's byte range. Files we wrote ourselves are verified in place; anything
    else (a hand-made file with other spacing) is re-serialised once, canonically."""
    offsets = array("Q")
    head = b'{"metadata":' + dumps(metadata).encode() + b',"data":['
    if raw.startswith(head):
        cursor = len(head)
        for item in items:
            piece = dumps(item).encode()
            if raw[cursor:cursor + len(piece)] != piece:
                break
            offsets.append(cursor)
            cursor += len(piece) + 1
        else:
            end = cursor - 1 if items else cursor  # where "]" stands
            if raw[end:] == b"]}":
                offsets.append(end)
                return ArrayFile(endpoint, Body((raw,), etag_of(raw)), metadata, offsets, len(head))
    offsets = array("Q")
    pieces = [dumps(item).encode() for item in items]
    cursor = len(head)
    for piece in pieces:
        offsets.append(cursor)
        cursor += len(piece) + 1
    offsets.append(cursor - 1 if pieces else cursor)
    body = head + b",".join(pieces) + b"]}"
    return ArrayFile(endpoint, Body((body,), etag_of(body)), metadata, offsets, len(head))


def _collect(endpoint: str, data: Any, catalogue: Catalogue, activity: "_ActivityCounter",
             list_names: dict[str, str]) -> None:
    """Feed the search catalogue and the activity statistics from one file."""
    if not isinstance(data, list):
        return
    rows = [row for row in data if isinstance(row, dict)]
    if endpoint in layout.WATCHED.values():
        for row in rows:
            kind = "movie" if "movie" in row else "show"
            entry = catalogue.entry(kind, row.get(kind))
            if entry:
                entry.add_source("watched")
                entry.plays = row.get("plays", entry.plays)
                entry.last_watched_at = row.get("last_watched_at", entry.last_watched_at)
    elif endpoint in (layout.WATCHLIST["movies"], layout.WATCHLIST["shows"], layout.WATCHLIST["all"]):
        for row in rows:
            kind = row.get("type")
            if kind in ("movie", "show"):
                entry = catalogue.entry(kind, row.get(kind))
                if entry:
                    entry.add_source("watchlist")
                    entry.rank = row.get("rank", entry.rank)
                    entry.listed_at = row.get("listed_at", entry.listed_at)
    elif endpoint in layout.HISTORY.values():
        for row in rows:
            kind = "movie" if row.get("type") == "movie" or "movie" in row else "show"
            media = row.get(kind)
            entry = catalogue.entry(kind, media)
            if entry:
                entry.add_source("history")
                watched_at = row.get("watched_at")
                if watched_at and (entry.last_watched_at is None or watched_at > entry.last_watched_at):
                    entry.last_watched_at = watched_at
            runtime = (row.get("episode") or {}).get("runtime") if kind == "show" else (media or {}).get("runtime")
            activity.add(row.get("watched_at"), "movies" if kind == "movie" else "episodes", runtime)
    elif endpoint == layout.RATINGS:
        for row in rows:
            kind = row.get("type")
            if kind in ("movie", "show"):
                entry = catalogue.entry(kind, row.get(kind))
                if entry and isinstance(row.get("rating"), int):
                    entry.rating = row["rating"]
    elif endpoint.startswith(layout.LISTS_DIR + "/") and endpoint.endswith(layout.LIST_ITEMS_SUFFIX):
        slug = endpoint[len(layout.LISTS_DIR) + 1:-len(layout.LIST_ITEMS_SUFFIX)]
        info = {"name": list_names.get(endpoint, slug), "slug": slug}
        for row in rows:
            kind = row.get("type")
            # season/episode items belong to their show
            media_kind = "show" if kind in ("season", "episode") else kind
            if media_kind in ("movie", "show"):
                entry = catalogue.entry(media_kind, row.get(media_kind))
                if entry:
                    entry.add_source("list")
                    if info not in entry.lists:
                        entry.lists.append(info)


def _zone(name: str) -> tzinfo:
    if name:
        return ZoneInfo(name)
    local = datetime.now().astimezone().tzinfo
    return local or timezone.utc


class _ActivityCounter:
    """Plays per month and a weekday x hour heatmap, in the configured time zone."""

    def __init__(self, zone: tzinfo) -> None:
        self.zone = zone
        self.months: dict[str, dict[str, int]] = {}
        self.heatmap = [[0] * 24 for _ in range(7)]
        self.totals = {"movies": 0, "episodes": 0, "minutes": 0}

    def add(self, watched_at: Any, kind: str, runtime: Any) -> None:
        if not isinstance(watched_at, str):
            return
        try:
            when = datetime.fromisoformat(watched_at)
        except ValueError:
            return
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        local = when.astimezone(self.zone)
        month = self.months.setdefault(f"{local.year:04d}-{local.month:02d}", {"movies": 0, "episodes": 0, "minutes": 0})
        minutes = runtime if isinstance(runtime, int) and runtime > 0 else 0
        month[kind] += 1
        month["minutes"] += minutes
        self.totals[kind] += 1
        self.totals["minutes"] += minutes
        self.heatmap[local.weekday()][local.hour] += 1

    def result(self, last_updated: str | None, zone_name: str) -> dict:
        """The last 24 months up to the data's own date (so an old snapshot still shows its activity)."""
        reference = None
        if last_updated:
            try:
                reference = datetime.fromisoformat(last_updated).astimezone(self.zone)
            except ValueError:
                reference = None
        if reference is None:
            reference = datetime.now(self.zone)
        year, month = reference.year, reference.month
        keys = []
        for _ in range(ACTIVITY_MONTHS):
            keys.append(f"{year:04d}-{month:02d}")
            month -= 1
            if month == 0:
                year, month = year - 1, 12
        months = [{"month": key, **self.months.get(key, {"movies": 0, "episodes": 0, "minutes": 0})}
                  for key in reversed(keys)]
        return {
            "timezone": zone_name or str(self.zone),
            "months": months,
            "heatmap": {"days": list(WEEKDAYS), "hours": list(range(24)), "counts": self.heatmap},
            "totals": dict(self.totals),
        }

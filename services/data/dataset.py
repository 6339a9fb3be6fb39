"""One loaded data folder, turned into ready-to-send bytes (runs in a worker thread).

Everything a request needs is computed here once: the body and ETag of every file, item
offsets for paging, the search index, the activity statistics, the list lookup table. Large
files are not kept as Python objects (a 300,000-row history would cost a gigabyte of RAM);
only their bytes, offsets and the compact title catalogue stay in memory.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import json
import re
import logging
import struct
import zlib
from array import array
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timezone, tzinfo
from pathlib import Path
from typing import Any, Callable, Iterator
from zoneinfo import ZoneInfo

import ujson

from services import times
from services.data import layout
from services.data.insights import Insights, InsightsCollector
from services.data.search import Catalogue, SearchIndex
from services.data.upnext import UpNextView, build_shows, shift_air_dates, shift_release_dates
from services.data.snapshots import dumps

log = logging.getLogger(__name__)

# Files whose parsed form is kept (small); the rest are parsed on demand via `documents`.
SMALL_FILES = (layout.INDEX, layout.PROFILE, layout.STATS, layout.LISTS)
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
ACTIVITY_MONTHS = 24


GZIP_LEVEL = 6  # zlib's default: most of level 9's saving at half its time
PAGE_CACHE_SIZE = 64  # pages of one file kept ready (with their gzip form) per data load
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # deflate, no name, no mtime, unknown OS
_LAST_BLOCK = b"\x03\x00"  # an empty final deflate block


class Body:
    """A response serialised once: one or more byte chunks and a strong ETag, plus the same bytes
    gzip-compressed with their own ETag, so a request only picks one (README "Performance").

    The gzip form is a stream of independent deflate pieces, each ending on a byte boundary, so
    bodies joined from other bodies (`joined`) reuse their parts' compressed bytes."""

    __slots__ = ("chunks", "etag", "length", "gzip", "gzip_etag")

    def __init__(self, chunks: tuple[bytes, ...], etag: str,
                 deflated: tuple[bytes | memoryview, ...] | None = None) -> None:
        self.chunks = chunks
        self.etag = etag
        self.length = sum(len(c) for c in chunks)
        crc = 0
        for chunk in chunks:
            crc = zlib.crc32(chunk, crc)
        pieces = deflated if deflated is not None else (_deflate(*chunks),)
        self.gzip = b"".join((_GZIP_HEADER, *pieces, _LAST_BLOCK,
                              struct.pack("<II", crc, self.length & 0xFFFFFFFF)))
        self.gzip_etag = etag[:-1] + '-gz"'

    @property
    def deflated(self) -> memoryview:
        """The deflate pieces of the gzip form, without header, final block and trailer."""
        return memoryview(self.gzip)[len(_GZIP_HEADER):-len(_LAST_BLOCK) - 8]

    @classmethod
    def joined(cls, parts: tuple[bytes | Body, ...], etag: str) -> Body:
        """Bytes and other bodies one after the other, with no copy of the bodies' bytes and no
        second compression of them."""
        chunks = tuple(c for part in parts for c in (part.chunks if isinstance(part, Body) else (part,)))
        deflated = tuple(part.deflated if isinstance(part, Body) else _deflate_separator(part) for part in parts)
        return cls(chunks, etag, deflated)


def _deflate(*chunks: bytes) -> bytes:
    """Raw deflate ending in a sync flush: byte-aligned and not final, so pieces concatenate."""
    packer = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
    return b"".join([*(packer.compress(chunk) for chunk in chunks), packer.flush(zlib.Z_SYNC_FLUSH)])


@functools.lru_cache(maxsize=32)
def _deflate_separator(text: bytes) -> bytes:
    """The few constant pieces between joined bodies, compressed once per process."""
    return _deflate(text)


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
    pages: dict[tuple[int, int], Body] = field(default_factory=dict, repr=False)

    @property
    def count(self) -> int:
        return len(self.offsets) - 1

    def page(self, page: int, limit: int) -> Body:
        """Items [(page-1)*limit, page*limit) in the same wrapper, with paging metadata. Made (and
        compressed) on the first request for it, then kept while the data stays loaded."""
        body = self.pages.get((page, limit))
        if body is None:
            if len(self.pages) >= PAGE_CACHE_SIZE:
                del self.pages[next(iter(self.pages))]  # the oldest
            body = self.pages[(page, limit)] = self._make_page(page, limit)
        return body

    def _make_page(self, page: int, limit: int) -> Body:
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
    activity_body: Body | None = None  # `activity` as ready bytes, gzip form included
    insights: Insights | None = None
    insights_bodies: dict[int | None, Body] = field(default_factory=dict, repr=False)  # year (None: all time)
    index_metadata: dict = field(default_factory=dict)
    last_updated: str | None = None
    raw_files: dict[str, bytes] = field(default_factory=dict, repr=False)
    combined: dict[tuple[str, str], Body] = field(default_factory=dict, repr=False)  # type=all answers
    upnext: UpNextView | None = None  # None when the snapshot has no show data

    def __post_init__(self) -> None:
        # One mapping per dataset: users may cache derived values keyed on its identity.
        self.documents = LazyDocuments(self)


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
    collector = _Collector(_zone(zone), zone)
    for endpoint in sorted(files, key=_load_order):
        raw = files[endpoint]
        on_row = collector.row_handler(endpoint)
        try:
            streamed = None if endpoint in SMALL_FILES else _stream_array(endpoint, raw, on_row)
            if streamed is not None:
                dataset.arrays[endpoint] = streamed
                dataset.bodies[endpoint] = streamed.body
                continue
            document = ujson.loads(raw)
        except (ValueError, OverflowError, StopIteration) as exc:
            dataset.problems[endpoint] = f"{endpoint} is not valid JSON ({exc or 'unexpected end of data'})"
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
            dataset.arrays[endpoint] = _canonical_array_file(endpoint, metadata, data)
            dataset.bodies[endpoint] = dataset.arrays[endpoint].body
            if on_row is not None:
                for row in data:
                    if isinstance(row, dict):
                        on_row(row)
        else:
            dataset.bodies[endpoint] = Body((raw,), etag_of(raw))
        if endpoint == layout.LISTS and isinstance(data, list):
            collector.note_lists(data, dataset.list_endpoints)
    for endpoint in files:
        if endpoint.startswith(layout.LISTS_DIR + "/") and endpoint.endswith(layout.LIST_ITEMS_SUFFIX):
            slug = endpoint[len(layout.LISTS_DIR) + 1:-len(layout.LIST_ITEMS_SUFFIX)]
            dataset.list_endpoints.setdefault(slug, endpoint)
    dataset.search = SearchIndex(collector.catalogue)
    dataset.activity = collector.activity.result(dataset.last_updated, zone)
    dataset.activity_body = json_body(dataset.activity)
    dataset.insights = collector.insights.result(times.parse(dataset.last_updated) or times.now(),
                                                 lambda stamp: _history_row(dataset, stamp))
    dataset.insights_bodies = {year: json_body(doc) for year, doc in dataset.insights.documents.items()}
    dataset.upnext = _up_next_view(dataset, zone)
    return dataset


def _history_row(dataset: Dataset, watched_at: str) -> dict | None:
    """The history row played at `watched_at`, found in the files' bytes (the insights' first and
    last play: no row is kept as an object while loading). History is newest first, so a bisection
    over the items' `watched_at` finds it in a few small reads; a file in another order is searched."""
    stamp = dumps(watched_at).encode()
    for endpoint in layout.HISTORY.values():
        array_file = dataset.arrays.get(endpoint)
        if array_file is None or endpoint in dataset.problems or array_file.count == 0:
            continue
        raw, offsets = array_file.body.chunks[0], array_file.offsets

        def stamp_of(item: int) -> bytes:
            found = _WATCHED_AT.search(raw, offsets[item], offsets[item + 1])
            return found.group(1) if found else b""

        low, high = 0, array_file.count
        while low < high:  # the first item not newer than the stamp
            middle = (low + high) // 2
            if stamp_of(middle) > stamp:
                low = middle + 1
            else:
                high = middle
        candidates = [low] if low < array_file.count else []
        if not candidates or stamp_of(low) != stamp:
            at = raw.find(b'"watched_at":' + stamp)
            candidates = [bisect.bisect_right(offsets, at) - 1] if at >= 0 else []
        for item in candidates:
            if 0 <= item < array_file.count:
                return ujson.loads(raw[offsets[item]:offsets[item + 1]].rstrip(b","))
    return None


_WATCHED_AT = re.compile(rb'"watched_at":\s*("[^"]*")')


def _up_next_view(dataset: Dataset, zone_name: str) -> UpNextView | None:
    """The shows' progress for up next and the calendar, from the watched shows, the show data and
    the hidden shows (README "Up next and the calendar")."""
    if layout.SHOW_SEASONS not in dataset.raw_files or layout.SHOW_SEASONS in dataset.problems:
        return None

    def document(endpoint: str) -> dict:
        try:
            parsed = dataset.documents[endpoint]
        except (KeyError, ValueError):
            return {}
        return parsed if isinstance(parsed, dict) else {}

    def rows(parsed: dict) -> list:
        return parsed.get("data") if isinstance(parsed.get("data"), list) else []

    seasons = document(layout.SHOW_SEASONS)
    show_data = rows(seasons)
    # Watchlist movies with release dates (the sync's extended=full copy), else the watchlist itself.
    movies = rows(document(layout.CALENDAR_MOVIES)) or rows(document(layout.WATCHLIST["movies"]))
    reference = (seasons.get("metadata") or {}).get("last_updated")
    if dataset.is_demo and isinstance(reference, str):
        try:  # the demo's air dates are relative to its own date: its upcoming fortnight starts today
            days = (times.now().date() - date.fromisoformat(reference[:10])).days
            show_data, movies = shift_air_dates(show_data, days), shift_release_dates(movies, days)
        except ValueError:
            pass
    shows = build_shows(rows(document(layout.WATCHED["shows"])), show_data, rows(document(layout.SHOW_HIDDEN)))
    return UpNextView(shows, movies, _zone(zone_name), zone_name or "system", dataset.last_updated)


def _load_order(endpoint: str) -> tuple[int, str]:
    # user_lists.json first so list item files know their list's name; ratings last, because a
    # rating only annotates a title found elsewhere (a rating alone is not a search result).
    if endpoint == layout.LISTS:
        return (0, endpoint)
    return (2 if endpoint == layout.RATINGS else 1, endpoint)


_HEAD = '{"metadata":'
_DATA = ',"data":['
_scanner = json.JSONDecoder().scan_once  # the C scanner: one value at a time, with its end offset


def _stream_array(endpoint: str, raw: bytes, on_row: Callable[[dict], None] | None) -> ArrayFile | None:
    """Walk a compact `{"metadata":…,"data":[…]}` file one item at a time.

    Only one item is alive at a time (a 200,000-row history never exists as Python objects), and
    each item's byte range is recorded for paging. Returns None when the file has another shape
    (pretty-printed, `data` first, an object): the caller then parses it whole."""
    if not raw.startswith(_HEAD.encode()):
        return None
    data_at = raw.find(_DATA.encode())
    try:
        metadata = ujson.loads(raw[len(_HEAD):data_at]) if data_at > 0 else None
    except ValueError:  # `,"data":[` inside a metadata string: let the exact scanner find it
        metadata = None
    if metadata is None:
        text = raw.decode("utf-8")
        metadata, data_at = _scanner(text, len(_HEAD))
        if not text.startswith(_DATA, data_at):
            return None
        data_at = len(text[:data_at].encode())
    if not isinstance(metadata, dict):
        return None
    byte_start = data_at + len(_DATA)
    offsets, resume_at = _split_items(raw, byte_start, on_row)
    if resume_at is not None:  # the fast path stopped: the exact scanner goes on from there
        text = raw.decode("utf-8")
        ascii_only = len(text) == len(raw)  # then character offsets are byte offsets
        char_position = resume_at if ascii_only else len(raw[:resume_at].decode("utf-8"))
        rest = _scan_items(text, char_position, resume_at, ascii_only, on_row)
        if rest is None:
            return None
        offsets.extend(rest)
    return ArrayFile(endpoint, Body((raw,), etag_of(raw)), metadata, offsets)


_MAX_MERGES = 16  # a separator inside a string: join the next piece and try again, a few times


def _split_items(raw: bytes, start: int, on_row: Callable[[dict], None] | None) -> tuple[array, int | None]:
    """The fast path for files we wrote: every item begins with the same key, so items are
    separated by `},{"<that key>":` and each piece parses on its own (ujson, on bytes, so the
    offsets are byte offsets). Returns the offsets found and, when a piece will not parse even
    joined with the next few (items with another first key…), where the exact scanner must
    take over (None when the whole array was read)."""
    offsets = array("Q")
    end = len(raw) - 2  # where "]" stands in a well-formed file
    key_end = raw.find(b'":', start)
    if raw[end:] != b"]}" or start == end or raw[start:start + 2] != b'{"' or key_end < 0:
        return offsets, start
    separator = b"}," + raw[start:key_end + 2]
    find, loads = raw.find, ujson.loads
    piece_start = start
    while True:
        boundary = find(separator, piece_start, end)
        for _ in range(_MAX_MERGES):
            piece_end = end if boundary < 0 else boundary + 1
            try:
                item = loads(raw[piece_start:piece_end])
                break
            except ValueError:
                if boundary < 0:
                    return offsets, piece_start
                boundary = find(separator, boundary + 1, end)
        else:
            return offsets, piece_start
        if type(item) is not dict:
            return offsets, piece_start
        offsets.append(piece_start)
        if on_row is not None:
            on_row(item)
        if boundary < 0:
            offsets.append(end)
            return offsets, None
        piece_start = boundary + 2


def _scan_items(text: str, position: int, byte_position: int, ascii_only: bool,
                on_row: Callable[[dict], None] | None) -> array | None:
    """The exact path: the C scanner reads one value at a time and says where it ended."""
    offsets = array("Q")
    scan = _scanner
    while text[position] != "]":
        item, end = scan(text, position)
        offsets.append(byte_position)
        if on_row is not None and type(item) is dict:
            on_row(item)
        byte_position = end if ascii_only else byte_position + len(text[position:end].encode())
        if text[end] == ",":
            position, byte_position = end + 1, byte_position + 1
        else:
            position = end
    if text[position:].rstrip() != "]}":
        return None
    offsets.append(byte_position)
    return offsets


def _canonical_array_file(endpoint: str, metadata: dict, items: list) -> ArrayFile:
    """For a file in another layout: serialise it once, compactly, and serve that."""
    head = (_HEAD + dumps(metadata) + _DATA).encode()
    offsets = array("Q")
    pieces = [dumps(item).encode() for item in items]
    cursor = len(head)
    for piece in pieces:
        offsets.append(cursor)
        cursor += len(piece) + 1
    offsets.append(cursor - 1 if pieces else cursor)
    body = head + b",".join(pieces) + b"]}"
    return ArrayFile(endpoint, Body((body,), etag_of(body)), metadata, offsets)


class _Collector:
    """Feeds the search catalogue and the activity statistics one row at a time."""

    def __init__(self, zone: tzinfo, zone_name: str) -> None:
        self.catalogue = Catalogue()
        self.activity = _ActivityCounter(zone)
        self.insights = InsightsCollector(zone, zone_name or str(zone))
        self.list_names: dict[str, str] = {}

    def row_handler(self, endpoint: str) -> Callable[[dict], None] | None:
        if endpoint in layout.WATCHED.values():
            return self._watched
        if endpoint in layout.WATCHLIST.values():
            return self._watchlist
        if endpoint in layout.HISTORY.values():
            return self._history
        if endpoint == layout.RATINGS:
            return self._rating
        if endpoint.startswith(layout.LISTS_DIR + "/") and endpoint.endswith(layout.LIST_ITEMS_SUFFIX):
            slug = endpoint[len(layout.LISTS_DIR) + 1:-len(layout.LIST_ITEMS_SUFFIX)]
            info = {"name": self.list_names.get(endpoint, slug), "slug": slug}
            return lambda row: self._list_item(row, info)
        if endpoint == layout.LISTS:
            return self._user_list
        return None

    def note_lists(self, lists: list, list_endpoints: dict[str, str]) -> None:
        """Map each list's numeric Trakt id to its items file."""
        for entry in lists:
            ids = entry.get("ids") if isinstance(entry, dict) else None
            if isinstance(ids, dict) and layout.is_safe_slug(str(ids.get("slug", ""))):
                endpoint = layout.list_items_endpoint(ids["slug"])
                if ids.get("trakt") is not None:
                    list_endpoints[str(ids["trakt"])] = endpoint

    def _user_list(self, entry: dict) -> None:
        ids = entry.get("ids")
        if isinstance(ids, dict) and layout.is_safe_slug(str(ids.get("slug", ""))):
            self.list_names[layout.list_items_endpoint(ids["slug"])] = entry.get("name") or ids["slug"]

    def _watched(self, row: dict) -> None:
        kind = "movie" if "movie" in row else "show"
        entry = self.catalogue.entry(kind, row.get(kind))
        if entry:
            entry.add_source("watched")
            entry.plays = row.get("plays", entry.plays)
            entry.last_watched_at = row.get("last_watched_at", entry.last_watched_at)
        self.insights.add_watched(row)

    def _watchlist(self, row: dict) -> None:
        kind = row.get("type")
        if kind in ("movie", "show"):
            entry = self.catalogue.entry(kind, row.get(kind))
            if entry:
                entry.add_source("watchlist")
                entry.rank = row.get("rank", entry.rank)
                entry.listed_at = row.get("listed_at", entry.listed_at)

    def _history(self, row: dict) -> None:
        # The hottest loop of a load (one call per history row): plain lookups only.
        movie = row.get("movie")
        watched_at = row.get("watched_at")
        if movie is not None:
            entry = self.catalogue.entry("movie", movie)
            runtime = movie.get("runtime") if type(movie) is dict else None
            kind = "movies"
            self.insights.add_movie_play(watched_at, movie)
        else:
            show = row.get("show")
            entry = self.catalogue.entry("show", show)
            episode = row.get("episode")
            runtime = episode.get("runtime") if type(episode) is dict else None
            kind = "episodes"
            self.insights.add_episode_play(watched_at, show, episode)
        if entry is not None:
            if "history" not in entry.sources:
                entry.sources.append("history")
            if type(watched_at) is str and (entry.last_watched_at is None or watched_at > entry.last_watched_at):
                entry.last_watched_at = watched_at
        self.activity.add(watched_at, kind, runtime)

    def _rating(self, row: dict) -> None:
        kind = row.get("type")
        if kind in ("movie", "show"):
            entry = self.catalogue.find(kind, row.get(kind))
            if entry and isinstance(row.get("rating"), int):
                entry.rating = row["rating"]
        self.insights.add_rating(row)

    def _list_item(self, row: dict, info: dict) -> None:
        kind = row.get("type")
        media_kind = "show" if kind in ("season", "episode") else kind  # seasons/episodes belong to their show
        if media_kind in ("movie", "show"):
            entry = self.catalogue.entry(media_kind, row.get(media_kind))
            if entry:
                entry.add_source("list")
                if info not in entry.lists:
                    entry.lists.append(info)


def _whole_hour_offsets(zone: tzinfo) -> bool:
    """Whether the zone's UTC offset has been a whole number of hours (January and July, 1970-2040)."""
    for year in range(1970, 2041):
        for month in (1, 7):
            offset = datetime(year, month, 1, 12, tzinfo=timezone.utc).astimezone(zone).utcoffset()
            if offset is None or offset.total_seconds() % 3600:
                return False
    return True


def _zone(name: str) -> tzinfo:
    if name:
        return ZoneInfo(name)
    local = datetime.now().astimezone().tzinfo
    return local or timezone.utc


class _ActivityCounter:
    """Plays per month and a weekday x hour heatmap, in the configured time zone.

    Trakt's times are UTC ("…Z"). Rows are first counted per UTC hour (per minute for zones with
    half-hour offsets), a dictionary update per row; the time-zone arithmetic then runs once per
    hour bucket, not once per row."""

    def __init__(self, zone: tzinfo) -> None:
        self.zone = zone
        self.months: dict[str, dict[str, int]] = {}
        self.heatmap = [[0] * 24 for _ in range(7)]
        self.totals = {"movies": 0, "episodes": 0, "minutes": 0}
        self._key_length = 13 if _whole_hour_offsets(zone) else 16  # "2026-10-31T21" / "…T21:30"
        self._buckets: dict[str, list[int]] = {}  # UTC hour (or minute) -> [movies, episodes, minutes]

    def add(self, watched_at: Any, kind: str, runtime: Any) -> None:
        if type(watched_at) is not str:
            return
        minutes = runtime if type(runtime) is int and runtime > 0 else 0
        if watched_at.endswith("Z") and len(watched_at) > self._key_length:
            key = watched_at[:self._key_length]
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = [0, 0, 0]
            bucket[0 if kind == "movies" else 1] += 1
            bucket[2] += minutes
            return
        slot = self._slot(watched_at)  # an explicit offset: place it on its own
        if slot is not None:
            counts = (1, 0) if kind == "movies" else (0, 1)
            self._count(slot, *counts, minutes)

    def _count(self, slot: tuple[str, int, int], movies: int, episodes: int, minutes: int) -> None:
        month_key, weekday, hour = slot
        month = self.months.get(month_key)
        if month is None:
            month = self.months[month_key] = {"movies": 0, "episodes": 0, "minutes": 0}
        month["movies"] += movies
        month["episodes"] += episodes
        month["minutes"] += minutes
        self.totals["movies"] += movies
        self.totals["episodes"] += episodes
        self.totals["minutes"] += minutes
        self.heatmap[weekday][hour] += movies + episodes

    def _slot(self, watched_at: str) -> tuple[str, int, int] | None:
        try:
            local = times.parse_iso(watched_at).astimezone(self.zone)
        except ValueError:
            return None
        return (f"{local.year:04d}-{local.month:02d}", local.weekday(), local.hour)

    def _flush(self) -> None:
        suffix = ":00:00Z" if self._key_length == 13 else ":00Z"
        for key, (movies, episodes, minutes) in self._buckets.items():
            slot = self._slot(key + suffix)
            if slot is not None:
                self._count(slot, movies, episodes, minutes)
        self._buckets.clear()

    def result(self, last_updated: str | None, zone_name: str) -> dict:
        """The last 24 months up to the data's own date (so an old snapshot still shows its activity)."""
        self._flush()
        reference = times.parse(last_updated) or times.now()
        reference = reference.astimezone(self.zone)
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

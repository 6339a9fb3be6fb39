"""One loaded data folder, turned into ready-to-send bytes (runs in worker threads).

Everything a request needs is computed here once, in two parts (README "Performance"):
`prepare_dataset` makes what the file routes need — the body and ETag of every file, item offsets
for paging, the list lookup table — and `Dataset.finish` the rest: each row parsed once for the
search index, the activity statistics, the insights and up next, and the gzip form of every body.
The server is ready after the first part; for a large account the second runs afterwards in two
background threads (`Dataset.finish_in_background`), and what needs it waits for it. Large files
are not kept as Python objects (a 300,000-row history would cost a gigabyte of RAM); only their
bytes, offsets and the compact title catalogue stay in memory.
"""

from __future__ import annotations

import bisect
import ctypes
import functools
import gc
import hashlib
import json
import re
import logging
import os
import struct
import sys
import threading
import time
import weakref
import zlib
from array import array
from concurrent.futures import Future
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
# Accounts with more bytes than this are ready after `prepare_dataset` and finished in the
# background; smaller ones (the demo: 3 MB, a few hundred milliseconds) are finished before ready.
BACKGROUND_FROM_BYTES = 16 * 2**20
BACKGROUND_NICENESS = 10  # of the compressing thread
BACKGROUND_SWITCH_SECONDS = 0.001
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # deflate, no name, no mtime, unknown OS
_LAST_BLOCK = b"\x03\x00"  # an empty final deflate block


class Body:
    """A response serialised once: one or more byte chunks and a strong ETag, plus the same bytes
    gzip-compressed with their own ETag, so a request only picks one (README "Performance").

    The gzip form is a stream of independent deflate pieces, each ending on a byte boundary, so
    bodies joined from other bodies (`joined`) reuse their parts' compressed bytes: a large body's
    gzip form is kept as three chunks (header, deflate stream, final block and trailer), and a
    joined body's chunks are its own header, separators and trailer around its parts' deflate
    streams, the same bytes objects (the `type=all` answers copy nothing). A small body's gzip form
    is one chunk, written with the headers. A body made with `compress=False` has no gzip form
    (`gzip` is None: answer identity) until `compress()`."""

    __slots__ = ("chunks", "etag", "length", "gzip", "gzip_length", "gzip_etag", "_parts")

    def __init__(self, chunks: tuple[bytes, ...], etag: str,
                 deflated: tuple[bytes, ...] | None = None, *, compress: bool = True) -> None:
        self.chunks = chunks
        self.etag = etag
        self.length = sum(len(c) for c in chunks)
        self.gzip: tuple[bytes, ...] | None = None
        self.gzip_length = 0
        self.gzip_etag = etag[:-1] + '-gz"'
        self._parts: tuple[bytes | Body, ...] | None = None
        if compress:
            self.compress(deflated)

    def compress(self, deflated: tuple[bytes, ...] | None = None) -> None:
        """Make the gzip form (zlib releases the GIL while it works: a worker thread can do it
        beside the event loop)."""
        if self.gzip is not None:
            return
        if deflated is None and self._parts is not None:
            for part in self._parts:
                if isinstance(part, Body):
                    part.compress()
            deflated = _deflated_parts(self._parts)
        crc = 0
        for chunk in self.chunks:
            crc = zlib.crc32(chunk, crc)
        trailer = _LAST_BLOCK + struct.pack("<II", crc, self.length & 0xFFFFFFFF)
        if deflated is None:
            # One join: no intermediate copy of the compressed bytes (tens of MB for the history).
            stream = b"".join(_deflate_pieces(*self.chunks))
            if len(stream) <= SINGLE_GZIP_CHUNK_LIMIT:
                self.gzip = (b"".join((_GZIP_HEADER, stream, trailer)),)
            else:
                self.gzip = (_GZIP_HEADER, stream, trailer)
        else:
            self.gzip = _coalesced((_GZIP_HEADER, *deflated, trailer))
        self.gzip_length = sum(len(c) for c in self.gzip)
        self._parts = None

    @property
    def deflated(self) -> tuple[bytes, ...]:
        """The deflate pieces of the gzip form, without header, final block and trailer: the
        same bytes objects for a large body, a copy of the few bytes of a small one."""
        self.compress()
        assert self.gzip is not None
        if len(self.gzip) == 1:
            return (self.gzip[0][len(_GZIP_HEADER):-len(_LAST_BLOCK) - 8],)
        first, *middle, last = self.gzip
        return (*_pieces_after(first, len(_GZIP_HEADER)), *middle,
                *_pieces_before(last, len(_LAST_BLOCK) + 8))

    @classmethod
    def joined(cls, parts: tuple[bytes | Body, ...], etag: str, *, compress: bool = True) -> Body:
        """Bytes and other bodies one after the other, with no copy of the bodies' bytes and no
        second compression of them."""
        chunks = tuple(c for part in parts for c in (part.chunks if isinstance(part, Body) else (part,)))
        if compress:
            return cls(chunks, etag, _deflated_parts(parts))
        body = cls(chunks, etag, compress=False)
        body._parts = parts
        return body


SINGLE_GZIP_CHUNK_LIMIT = 64 * 1024  # a larger deflate stream stays its own bytes object, shared by joins
_SMALL_PIECE = 4096  # pieces this short are joined into their neighbours (fewer writes per answer)


def _pieces_after(chunk: bytes, skip: int) -> tuple[bytes, ...]:
    return (chunk[skip:],) if len(chunk) > skip else ()


def _pieces_before(chunk: bytes, drop: int) -> tuple[bytes, ...]:
    return (chunk[:-drop],) if len(chunk) > drop else ()


def _coalesced(pieces: tuple[bytes, ...]) -> tuple[bytes, ...]:
    """Runs of short pieces joined into one chunk; long pieces kept as they are (not copied)."""
    out: list[bytes] = []
    run: list[bytes] = []
    for piece in pieces:
        if len(piece) < _SMALL_PIECE:
            run.append(piece)
            continue
        if run:
            out.append(b"".join(run))
            run = []
        out.append(piece)
    if run:
        out.append(b"".join(run))
    return tuple(out)


def _deflated_parts(parts: tuple[bytes | Body, ...]) -> tuple[bytes, ...]:
    return tuple(piece for part in parts
                 for piece in (part.deflated if isinstance(part, Body) else (_deflate_separator(part),)))


def _deflate(*chunks: bytes) -> bytes:
    """Raw deflate ending in a sync flush: byte-aligned and not final, so pieces concatenate."""
    return b"".join(_deflate_pieces(*chunks))


def _deflate_pieces(*chunks: bytes) -> list[bytes]:
    packer = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
    return [*(packer.compress(chunk) for chunk in chunks), packer.flush(zlib.Z_SYNC_FLUSH)]


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
    """Everything served from one data folder. Never modified after it is finished; until then
    (`finished` not done) only the fields `prepare_dataset` fills may be read, and the offsets of
    a file may still be replaced by verified ones."""

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
    zone_name: str = ""
    # Set when everything a request may need is built (the rows' figures), and when the gzip forms are.
    finished: Future = field(default_factory=Future, repr=False)
    compressed: Future = field(default_factory=Future, repr=False)

    def __post_init__(self) -> None:
        # One mapping per dataset: users may cache derived values keyed on its identity.
        self.documents = LazyDocuments(self)
        self._started = False
        self._built = False  # `finished` done without error, once someone saw it (see wait())

    @property
    def large(self) -> bool:
        """Whether the rest is worth building after ready (BACKGROUND_FROM_BYTES)."""
        return sum(len(raw) for raw in self.raw_files.values()) >= BACKGROUND_FROM_BYTES

    def wait(self) -> Dataset:
        """This dataset once finished (at once, except in the seconds after start-up). Asked on
        every request that needs the rows' figures: once the build is seen to have succeeded, a
        flag answers, not the Future (whose done() and result() take its lock: 1.7 µs)."""
        if not self._built:
            self.finished.result()  # waits, or raises what the build raised (every time)
            self._built = True
        return self

    def is_finished(self) -> bool:
        """Whether wait() would return (or raise) at once."""
        return self._built or self.finished.done()

    def finish(self) -> Dataset:
        """Build the rest now, in this thread."""
        self._start()
        _run_into(self.finished, _derive, self)
        _run_into(self.compressed, _compress_all, self)
        return self

    def finish_in_background(self) -> None:
        """Build the rest in two worker threads: one parses the rows (Python, holding the GIL in
        short steps), the other compresses (zlib, without the GIL: the second core, at a lower
        priority). Meanwhile the event loop's thread asks for the GIL back after 1 ms instead of
        5: each of a request's system calls gives it away and takes it back."""
        self._start()
        switch = _ShorterSwitchInterval()
        for name, future, work, nice in (("data-finish", self.finished, _derive, 0),
                                         ("data-compress", self.compressed, _compress_all, BACKGROUND_NICENESS)):
            future.add_done_callback(switch.done)
            threading.Thread(target=_run_into, args=(future, work, self, nice), name=name, daemon=True).start()

    def _start(self) -> None:
        if self._started:
            raise RuntimeError("this dataset is already being finished")
        self._started = True


class _ShorterSwitchInterval:
    """sys.setswitchinterval(BACKGROUND_SWITCH_SECONDS) until both background threads are done
    (the interval is the process's: the last one to finish restores it)."""

    _lock = threading.Lock()
    _running = 0
    _saved = 0.005

    def __init__(self) -> None:
        self._left = 2
        with self._lock:
            if _ShorterSwitchInterval._running == 0:
                _ShorterSwitchInterval._saved = sys.getswitchinterval()
                sys.setswitchinterval(BACKGROUND_SWITCH_SECONDS)
            _ShorterSwitchInterval._running += 1

    def done(self, _future: Future) -> None:
        with self._lock:
            self._left -= 1
            if self._left:
                return
            _ShorterSwitchInterval._running -= 1
            if _ShorterSwitchInterval._running == 0:
                sys.setswitchinterval(_ShorterSwitchInterval._saved)


def _run_into(future: Future, work: Callable[[Dataset], None], dataset: Dataset, nice: int = 0) -> None:
    if not future.set_running_or_notify_cancel():
        return
    if nice and sys.platform.startswith("linux"):
        # A lower priority for this thread alone (Linux schedules threads as tasks). Only for the
        # thread that works without the GIL: a low-priority thread holding the GIL would be slow
        # to hand it back.
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
        except OSError:
            pass
    try:
        work(dataset)
    except BaseException as exc:  # the waiting requests answer 500; the log has the traceback
        log.exception("Building the data of %s failed", dataset.root)
        future.set_exception(exc)
    else:
        future.set_result(None)


class LazyDocuments(Mapping):
    """Parsed files by endpoint. Small ones are cached; large ones are parsed on each access,
    so use it for occasional work (the demo schedule), never per request."""

    def __init__(self, dataset: Dataset) -> None:
        # A weak reference: no cycle, so a replaced dataset (and its bytes) is freed at once.
        self._dataset = weakref.ref(dataset)

    def _data(self) -> Dataset:
        dataset = self._dataset()
        if dataset is None:
            raise KeyError("the data was replaced")
        return dataset

    def __getitem__(self, endpoint: str) -> Any:
        dataset = self._data()
        if endpoint in dataset.small_documents:
            return dataset.small_documents[endpoint]
        raw = dataset.raw_files.get(endpoint)
        if raw is None or endpoint in dataset.problems:
            raise KeyError(endpoint)
        return ujson.loads(raw)

    def __iter__(self) -> Iterator[str]:
        dataset = self._dataset()
        if dataset is None:
            return iter(())
        return (e for e in dataset.raw_files if e not in dataset.problems)

    def __len__(self) -> int:
        return sum(1 for _ in self)


def build_dataset(root: Path | None, files: dict[str, bytes], *, is_demo: bool, zone: str) -> Dataset:
    """Parse every file once and prepare all responses, in this thread. Bad files become
    `problems`, never errors."""
    return prepare_dataset(root, files, is_demo=is_demo, zone=zone).finish()


def prepare_dataset(root: Path | None, files: dict[str, bytes], *, is_demo: bool, zone: str) -> Dataset:
    """The first part: what the file routes answer (bytes, ETags, offsets) and the small files
    parsed. A compact list file is split into items by its separator alone, without parsing its
    rows (`_quick_offsets`); `finish` parses them and verifies the offsets."""
    dataset = Dataset(root=root, is_demo=is_demo, raw_files=files, zone_name=zone)
    for endpoint in sorted(files, key=_load_order):
        raw = files[endpoint]
        try:
            streamed = None if endpoint in SMALL_FILES else _stream_array(endpoint, raw, None, quick=True)
            if streamed is not None:
                dataset.arrays[endpoint] = streamed
                dataset.bodies[endpoint] = streamed.body
                continue
            document = ujson.loads(raw)
        except (ValueError, OverflowError, StopIteration) as exc:
            dataset.problems[endpoint] = _invalid(endpoint, exc)
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
        else:
            dataset.bodies[endpoint] = Body((raw,), etag_of(raw), compress=False)
        if endpoint == layout.LISTS and isinstance(data, list):
            _note_lists(data, dataset.list_endpoints)
    for endpoint in files:
        if endpoint.startswith(layout.LISTS_DIR + "/") and endpoint.endswith(layout.LIST_ITEMS_SUFFIX):
            slug = endpoint[len(layout.LISTS_DIR) + 1:-len(layout.LIST_ITEMS_SUFFIX)]
            dataset.list_endpoints.setdefault(slug, endpoint)
    return dataset


def _invalid(endpoint: str, exc: BaseException) -> str:
    return f"{endpoint} is not valid JSON ({exc or 'unexpected end of data'})"


def _derive(dataset: Dataset) -> None:
    """The second part: every row parsed once (verifying the quick offsets) and fed to the search
    catalogue, the activity statistics and the insights; then their results and up next.

    The garbage collector is paused meanwhile: the rows are freed by reference counting, and a
    collection pass over the hundreds of thousands of short-lived objects would only cost time.
    What the build keeps is then frozen (gc.freeze): the first collection after it would otherwise
    look at all of it at once, holding the GIL for a tenth of a second. A dataset holds no reference
    cycle (tests/data/test_startup.py), so a replaced one is freed by reference counting alone."""
    started = time.perf_counter()
    paused = gc.isenabled()
    gc.disable()
    try:
        zone = dataset.zone_name
        collector = _Collector(_zone(zone), zone)
        for endpoint in sorted(dataset.arrays, key=_derive_order):
            if endpoint in dataset.problems:
                continue
            array_file = dataset.arrays[endpoint]
            try:
                verified = _item_offsets(array_file.body.chunks[0], collector.row_handler(endpoint))
            except (ValueError, OverflowError, StopIteration, IndexError) as exc:
                dataset.problems[endpoint] = _invalid(endpoint, exc)
                continue
            if verified is None:
                dataset.problems[endpoint] = f"{endpoint} is not valid JSON (its items could not be read)"
            elif verified != array_file.offsets:  # a separator inside an item: the verified ones count
                array_file.offsets = verified
                array_file.pages.clear()
        dataset.activity = collector.activity.result(dataset.last_updated, zone)
        dataset.activity_body = json_body(dataset.activity)
        dataset.insights = collector.insights.result(times.parse(dataset.last_updated) or times.now(),
                                                     lambda stamp: _history_row(dataset, stamp))
        dataset.insights_bodies = {year: json_body(doc) for year, doc in dataset.insights.documents.items()}
        dataset.upnext = _up_next_view(dataset, zone)
        dataset.search = SearchIndex(collector.catalogue)
    finally:
        if paused:
            gc.freeze()
            gc.enable()
    _return_free_memory()
    log.info("Loaded %d files from %s in %.2f s (%d titles indexed%s)", len(dataset.raw_files), dataset.root,
             time.perf_counter() - started, len(dataset.search),
             f", {len(dataset.problems)} unusable" if dataset.problems else "")


def _return_free_memory() -> None:
    """Give the heap's free pages back to the system (glibc keeps what the parsed rows used)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
        pass


def _compress_all(dataset: Dataset) -> None:
    """The gzip form of every file, smallest first (the first answers are small ones), then the
    `type=all` answers joined from them."""
    for body in sorted(dataset.bodies.values(), key=lambda b: b.length):
        body.compress()
    for files in (layout.HISTORY, layout.WATCHED, layout.WATCHLIST):
        movies, shows = dataset.bodies.get(files["movies"]), dataset.bodies.get(files["shows"])
        if movies is not None and shows is not None:
            dataset.combined[(files["movies"], files["shows"])] = combined_body(movies, shows)
    _return_free_memory()


def combined_body(movies: Body, shows: Body, *, compress: bool = True) -> Body:
    """`{"movies": wrapper, "shows": wrapper}` from the two files' bytes, no re-serialising."""
    return Body.joined((b'{"movies":', movies, b',"shows":', shows, b"}"),
                       etag_of(movies.etag.encode(), shows.etag.encode()), compress=compress)


def _note_lists(lists: list, list_endpoints: dict[str, str]) -> None:
    """Map each list's numeric Trakt id to its items file."""
    for entry in lists:
        ids = entry.get("ids") if isinstance(entry, dict) else None
        if isinstance(ids, dict) and layout.is_safe_slug(str(ids.get("slug", ""))):
            endpoint = layout.list_items_endpoint(ids["slug"])
            if ids.get("trakt") is not None:
                list_endpoints[str(ids["trakt"])] = endpoint


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

        def stamp_of(item: int, raw: bytes = raw, offsets: array = offsets) -> bytes:
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

    def each_row(endpoint: str) -> Iterator[Any]:
        # Item by item: one parse of a whole large file would hold the GIL (and the event loop) long.
        array_file = dataset.arrays.get(endpoint)
        if array_file is None or endpoint in dataset.problems:
            return
        raw, offsets = array_file.body.chunks[0], array_file.offsets
        for k in range(array_file.count):
            yield ujson.loads(raw[offsets[k]:offsets[k + 1]].rstrip(b","))

    def rows(endpoint: str) -> list:
        return list(each_row(endpoint))

    show_data = rows(layout.SHOW_SEASONS)
    # Watchlist movies with release dates (the sync's extended=full copy), else the watchlist itself.
    movies = rows(layout.CALENDAR_MOVIES) or rows(layout.WATCHLIST["movies"])
    seasons = dataset.arrays.get(layout.SHOW_SEASONS)
    reference = seasons.metadata.get("last_updated") if seasons is not None else None
    if dataset.is_demo and isinstance(reference, str):
        try:  # the demo's air dates are relative to its own date: its upcoming fortnight starts today
            days = (times.now().date() - date.fromisoformat(reference[:10])).days
            show_data, movies = shift_air_dates(show_data, days), shift_release_dates(movies, days)
        except ValueError:
            pass
    # The watched shows one row at a time: as a list, the largest file after the history would
    # exist whole as objects for a moment, and what up next keeps of it would be scattered over
    # the heap that held it (memory the allocator cannot give back).
    shows = build_shows(each_row(layout.WATCHED["shows"]), show_data, rows(layout.SHOW_HIDDEN))
    return UpNextView(shows, movies, _zone(zone_name), zone_name or "system", dataset.last_updated)


def _load_order(endpoint: str) -> tuple[int, str]:
    # user_lists.json first so list item files know their list's name; ratings last, because a
    # rating only annotates a title found elsewhere (a rating alone is not a search result).
    if endpoint == layout.LISTS:
        return (0, endpoint)
    return (2 if endpoint == layout.RATINGS else 1, endpoint)


def _derive_order(endpoint: str) -> tuple[int, tuple[int, str]]:
    # The watched collections before the history: a play's minutes may be its title's runtime,
    # which they carry (insights.InsightsCollector).
    return (0 if endpoint in layout.WATCHED.values() else 1, _load_order(endpoint))


_HEAD = '{"metadata":'
_DATA = ',"data":['
_scanner = json.JSONDecoder().scan_once  # the C scanner: one value at a time, with its end offset


def _stream_array(endpoint: str, raw: bytes, on_row: Callable[[dict], None] | None, *,
                  quick: bool = False) -> ArrayFile | None:
    """Walk a compact `{"metadata":…,"data":[…]}` file one item at a time (`quick`: split it by
    its separator, parsing nothing, when that is safe).

    Only one item is alive at a time (a 200,000-row history never exists as Python objects), and
    each item's byte range is recorded for paging. Returns None when the file has another shape
    (pretty-printed, `data` first, an object): the caller then parses it whole."""
    head = _array_head(raw)
    if head is None:
        return None
    metadata, byte_start = head
    offsets = _quick_offsets(raw, byte_start, metadata.get("count")) if quick else None
    if offsets is None:
        offsets = _offsets_from(raw, byte_start, on_row)
        if offsets is None:
            return None
    return ArrayFile(endpoint, Body((raw,), etag_of(raw), compress=False), metadata, offsets)


def _item_offsets(raw: bytes, on_row: Callable[[dict], None] | None) -> array | None:
    """Every item of a compact wrapper parsed (and given to `on_row`): their exact offsets."""
    head = _array_head(raw)
    return None if head is None else _offsets_from(raw, head[1], on_row)


def _array_head(raw: bytes) -> tuple[dict, int] | None:
    """The metadata of a compact wrapper and where its first item starts, or None."""
    if not raw.startswith(_HEAD.encode()):
        return None
    data_at = raw.find(_DATA.encode())
    try:
        metadata = ujson.loads(raw[len(_HEAD):data_at]) if data_at > 0 else None
    except ValueError:  # `,"data":[` inside a metadata string: let the exact scanner find it
        metadata = None
    if metadata is None:
        text = raw.decode("utf-8")
        try:
            metadata, data_at = _scanner(text, len(_HEAD))
        except (StopIteration, ValueError):  # not compact (`{"metadata": {…`): the caller parses it whole
            return None
        if not text.startswith(_DATA, data_at):
            return None
        data_at = len(text[:data_at].encode())
    if not isinstance(metadata, dict):
        return None
    return metadata, data_at + len(_DATA)


def _offsets_from(raw: bytes, byte_start: int, on_row: Callable[[dict], None] | None) -> array | None:
    offsets, resume_at = _split_items(raw, byte_start, on_row)
    if resume_at is not None:  # the fast path stopped: the exact scanner goes on from there
        text = raw.decode("utf-8")
        ascii_only = len(text) == len(raw)  # then character offsets are byte offsets
        char_position = resume_at if ascii_only else len(raw[:resume_at].decode("utf-8"))
        rest = _scan_items(text, char_position, resume_at, ascii_only, on_row, len(raw))
        if rest is None:
            return None
        offsets.extend(rest)
    return offsets


def _offset_array(size: int) -> array:
    """For the item offsets of a file of `size` bytes: 4 bytes each below 4 GiB, not 8."""
    return array("I" if size < 2**32 else "Q")


def _quick_offsets(raw: bytes, start: int, count: Any) -> array | None:
    """Item offsets of a compact list found with the separator `},{"<first key>":` alone.

    In JSON `,{` stands only between array elements, and a string cannot hold `{"` unescaped, so
    the separator can stand inside an item only in a nested array of objects, where it makes one
    piece more. Files we write say in their metadata how many items they hold (layout.wrap): when
    the pieces are exactly that many, every separator is between two items. Otherwise None: the
    items are parsed instead. `finish` parses every item anyway and keeps the exact offsets
    should these differ (a file whose `count` lies)."""
    end = len(raw) - 2
    key_end = raw.find(b'":', start, start + 1000)
    if (type(count) is not int or count < 1 or raw[end:] != b"]}" or raw[start:start + 2] != b'{"'
            or raw[end - 1:end] != b"}" or key_end < 0):
        return None
    separator = b"}," + raw[start:key_end + 2]
    offsets = _offset_array(len(raw))
    append, find = offsets.append, raw.find
    piece = start
    while piece >= 0:
        append(piece)
        if len(offsets) > count:
            return None
        boundary = find(separator, piece, end)
        piece = boundary + 2 if boundary >= 0 else -1
    if len(offsets) != count:
        return None
    append(end)
    return offsets


_MAX_MERGES = 16  # a separator inside a string: join the next piece and try again, a few times


def _split_items(raw: bytes, start: int, on_row: Callable[[dict], None] | None) -> tuple[array, int | None]:
    """The fast path for files we wrote: every item begins with the same key, so items are
    separated by `},{"<that key>":` and each piece parses on its own (ujson, on bytes, so the
    offsets are byte offsets). Returns the offsets found and, when a piece will not parse even
    joined with the next few (items with another first key…), where the exact scanner must
    take over (None when the whole array was read)."""
    offsets = _offset_array(len(raw))
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
                on_row: Callable[[dict], None] | None, size: int) -> array | None:
    """The exact path: the C scanner reads one value at a time and says where it ended."""
    offsets = _offset_array(size)
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
    pieces = [dumps(item).encode() for item in items]
    offsets = _offset_array(len(head) + sum(len(piece) + 1 for piece in pieces) + 2)
    cursor = len(head)
    for piece in pieces:
        offsets.append(cursor)
        cursor += len(piece) + 1
    offsets.append(cursor - 1 if pieces else cursor)
    body = head + b",".join(pieces) + b"]}"
    return ArrayFile(endpoint, Body((body,), etag_of(body), compress=False), metadata, offsets)


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
                entry.add_source("history")
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
                entry.add_list(info)


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

"""The in-memory data store behind every /api/trakt route.

It reads the served data folder asynchronously (aiofiles), builds a `Dataset` of ready bytes in
worker threads, and swaps it in with one assignment, so a request sees either the old data or
the new, never a mix. It reloads by itself when a new snapshot appears on disk.

At start-up a large account is served as soon as its files' bytes, ETags and offsets are ready;
the rest (search, activity, insights, up next, gzip forms) is built after ready in the background
(`Dataset.finish_in_background`), and a request that needs it waits for it: the handlers await
`when_finished()` without holding the event loop. A reload builds everything before the swap.
"""

from __future__ import annotations

import asyncio
import logging
import os
import stat
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Awaitable, Callable

import aiofiles
import ujson
from tornado.ioloop import PeriodicCallback

from services import times
from services.data import layout
from services.config import Config
from services.data.dataset import (ArrayFile, Body, Dataset, LazyDocuments, combined_body,
                                   json_body, prepare_dataset)
from services.errors import BrokenData, InvalidRequest, NotFound, NotReady
from services.data.search import SearchIndex
from services.data.upnext import UpNextView
from services.data.snapshots import DataFolder, dumps

log = logging.getLogger(__name__)

Listener = Callable[["DataStore"], Any]


class DataStore:
    """Serves one data folder (or the bundled demo account) from memory."""

    def __init__(self, config: Config, folder: DataFolder, demo_dir: Path, *,
                 sync_status: Callable[[], dict | None] | None = None, on_reload: Listener | None = None,
                 no_data_reason: Callable[[], str] | None = None) -> None:
        """`sync_status()` is shown in /api/trakt metadata; `on_reload(store)` runs after every
        successful (re)load and may be a coroutine function; `no_data_reason()` says why nothing
        is synced yet (the sync's view: sign in, running, failed)."""
        self.config = config
        self.folder = folder
        self.demo_dir = demo_dir
        self._sync_status = sync_status or (lambda: None)
        self._on_reload = on_reload
        self._no_data_reason = no_data_reason or (lambda: "No data yet: run `trakt-watch sync` (or wait for the "
                                                          "scheduled sync), or start with --demo")
        self._dataset: Dataset | None = None
        self._index_body: Body | None = None
        self._fingerprint: tuple | None = None
        self._checker: PeriodicCallback | None = None
        self._reload_lock = asyncio.Lock()
        self.loaded_at: float | None = None
        self.load_error: str | None = None
        self._failure: str | None = None  # the cause last logged
        self.demo_fallback: str | None = None  # why the demo replaced synced data, while it does
        self.clock: Callable[[], datetime] = times.now  # "now" of up next and the calendar (tests set it)

    # --- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        await self.reload()
        self._checker = PeriodicCallback(self._check_for_changes, self.config.data_check_seconds * 1000)
        self._checker.start()

    async def stop(self) -> None:
        if self._checker is not None:
            self._checker.stop()
            self._checker = None

    # --- state -----------------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        return self._dataset is not None and self._dataset.root is not None

    @property
    def is_demo(self) -> bool:
        return bool(self._dataset and self._dataset.is_demo)

    @property
    def root(self) -> Path | None:
        return self._dataset.root if self._dataset else None

    @property
    def images_dir(self) -> Path:
        """Where this data's images live: the demo's own, or DATA_DIR/images."""
        return self.demo_dir / "images" if self.is_demo else self.folder.images_dir

    @property
    def problems(self) -> list[str]:
        problems = list(self._dataset.problems.values()) if self._dataset else []
        if self.load_error:
            problems.insert(0, self.load_error)
        return problems

    @property
    def data_last_updated(self) -> str | None:
        return self._dataset.last_updated if self._dataset else None

    @property
    def documents(self) -> LazyDocuments:
        return self._require().documents

    @property
    def search_index(self) -> SearchIndex:
        return self._finished().search

    def when_finished(self) -> Awaitable[None] | None:
        """None when everything of the served data is built; else what to await until it is (the
        seconds after start-up of a large account). Handlers of the answers built last await it,
        so waiting never holds the event loop."""
        dataset = self._dataset
        if dataset is None or dataset.root is None or dataset.is_finished():
            return None  # nothing to wait for (no data is a 503 at once)
        return asyncio.wrap_future(dataset.finished)

    def data_age_seconds(self) -> float | None:
        stamp = times.to_epoch(self.data_last_updated)
        return None if stamp is None else max(0.0, time.time() - stamp)

    # --- loading ---------------------------------------------------------------------------
    def _choose_root(self) -> tuple[Path | None, bool]:
        """The folder to serve and whether it is the demo; raises OSError when DATA_DIR cannot be
        read (that is never "no data": it must not turn into the demo account)."""
        if self.config.demo:
            return self.demo_dir, True
        served = self.folder.served_root()
        if served is not None:
            return served, False
        if not self.config.trakt_api_key:  # a Trakt key means a real account: never its look-alike
            return self.demo_dir, True
        return None, False

    async def reload(self) -> bool:
        """Load the served folder again; returns True when the new data is being served.

        A file that cannot be used (unreadable, a directory, a broken symlink, bad JSON) becomes a
        problem of its own route; a folder that cannot be read keeps the previous data served and
        sets `load_error` (README "Health and metrics")."""
        async with self._reload_lock:
            root: Path | None = self.folder.root
            try:
                root, is_demo = await asyncio.to_thread(self._choose_root)
                if root is None:
                    self._swap(Dataset(root=None, is_demo=False), None)
                    self._fail(self._no_data_reason(), logging.WARNING)
                    return False
                fingerprint, files, unusable = await asyncio.to_thread(_list_files, root)
                contents = await asyncio.gather(*(_read(root / endpoint) for endpoint in files))
            except OSError as exc:  # keep serving what we had
                self._fail(f"Could not read {root}: {_why(exc)}")
                return False
            readable = {endpoint: data for endpoint, data in zip(files, contents) if isinstance(data, bytes)}
            unusable.update({endpoint: f"{endpoint} could not be read: {_why(data)}"
                             for endpoint, data in zip(files, contents) if isinstance(data, OSError)})
            started = time.perf_counter()
            dataset = await asyncio.to_thread(
                prepare_dataset, root, readable, is_demo=is_demo, zone=self.config.timezone)
            dataset.problems.update(unusable)  # before anyone sees the dataset
            if not dataset.large:
                await asyncio.to_thread(dataset.finish)
            else:
                dataset.finish_in_background()
                if self.ready:  # a reload: the old data stays served until the new is complete
                    await asyncio.wrap_future(dataset.finished)
                    await asyncio.wrap_future(dataset.compressed)
            self._failure = self.load_error = None
            self._note_demo_fallback(is_demo, root)
            self._swap(dataset, fingerprint)
            if not dataset.finished.done():  # nothing was served yet: serve the files now, the rest follows
                log.info("Serving %d files from %s after %.2f s (search, activity, insights and up next follow)",
                         len(readable), root, time.perf_counter() - started)
            for problem in dataset.problems.values():
                log.error("Data problem: %s", problem)
        await self._notify()
        return True

    async def reload_on_request(self) -> dict:
        """POST /api/trakt: reload now and say what could not be loaded (README "API")."""
        if not await self.reload():
            raise NotReady(f"Reload failed: {self.load_error}")
        problems = self.problems
        if not problems:
            return {"message": "Cache cleared successfully"}
        files = "file" if len(problems) == 1 else "files"
        return {"message": f"Cache cleared, but {len(problems)} data {files} could not be loaded",
                "problems": problems}

    def _fail(self, message: str, level: int = logging.ERROR) -> None:
        """Record why the data cannot be (re)loaded; logged once per distinct cause, not on every
        check of an unreadable folder."""
        if message != self._failure:
            log.log(level, "%s", message)
        self._failure = message
        if self.ready and self.loaded_at is not None:
            loaded = datetime.fromtimestamp(self.loaded_at, timezone.utc).isoformat(timespec="seconds")
            message += f"; still serving the data loaded at {loaded}"
        self.load_error = message

    def _note_demo_fallback(self, is_demo: bool, root: Path) -> None:
        """Synced data that disappears (DATA_DIR deleted or emptied, no Trakt key) is replaced by the
        demo account: say so in the log and in /healthz, instead of silently."""
        previous = self._dataset
        if not is_demo or self.config.demo:
            self.demo_fallback = None
        elif previous is not None and previous.root is not None and not previous.is_demo:
            self.demo_fallback = (f"{self.folder.root} no longer holds any data (it served {previous.root}): "
                                  f"serving the bundled demo account instead")
            log.warning("%s", self.demo_fallback)
        elif previous is None or not previous.is_demo:
            log.warning("Serving the bundled demo account from %s (%s)", root,
                        "--demo given" if self.config.demo else
                        f"no synced data in {self.folder.root} and no TRAKT_API_KEY")

    def _swap(self, dataset: Dataset, fingerprint: tuple | None) -> None:
        self._dataset = dataset
        self._fingerprint = fingerprint
        self._index_body = self._build_index_body(dataset)
        self.loaded_at = time.time()

    async def _notify(self) -> None:
        if self._on_reload is None:
            return
        try:
            result = self._on_reload(self)
            if isinstance(result, Awaitable):
                await result
        except Exception:
            log.exception("reload listener %r failed", self._on_reload)

    async def _check_for_changes(self) -> None:
        """Reload when the served folder or its files changed (a sync committed, files edited)."""
        if self._reload_lock.locked():
            return
        nothing = False
        try:
            root, _ = await asyncio.to_thread(self._choose_root)
            nothing = root is None
            fingerprint = None if root is None else (await asyncio.to_thread(_list_files, root))[0]
        except OSError:
            fingerprint = None
        if fingerprint != self._fingerprint:
            await self.reload()
        elif nothing and not self.ready:
            self._fail(self._no_data_reason(), logging.WARNING)  # signed in meanwhile, a sync running...
        else:
            self.refresh_status()

    def refresh_status(self) -> None:
        """Rebuild the index answer (sync status, staleness) without reloading the data."""
        if self._dataset is not None:
            self._index_body = self._build_index_body(self._dataset)

    def _build_index_body(self, dataset: Dataset) -> Body | None:
        document = dataset.small_documents.get(layout.INDEX)
        if document is None:
            return None
        metadata = dict(document.get("metadata") or {})
        if dataset.is_demo:
            metadata["source"] = layout.SOURCE_DEMO
        metadata["demo"] = dataset.is_demo
        metadata["calendar_feed"] = bool(self.config.calendar_token)  # whether /calendar.ics is on, never the token
        status = None if dataset.is_demo else self._sync_status()
        if status:
            metadata["sync"] = status
        metadata["stale"] = self._is_stale(dataset)
        return json_body({"metadata": metadata, "data": document.get("data")})

    def _is_stale(self, dataset: Dataset) -> bool:
        if dataset.is_demo or not self.config.sync_interval_hours:
            return False
        stamp = times.to_epoch(dataset.last_updated)
        return stamp is not None and time.time() - stamp > 2 * self.config.sync_interval_hours * 3600

    # --- answers ---------------------------------------------------------------------------
    def _require(self) -> Dataset:
        if self._dataset is None or self._dataset.root is None:
            raise NotReady(self.load_error or "Data is still loading")
        return self._dataset

    def _finished(self) -> Dataset:
        """The served data with its rows' figures: blocks until they are built when a caller did
        not await `when_finished()` first."""
        return self._require().wait()

    def index(self) -> Body:
        dataset = self._require()
        if layout.INDEX in dataset.problems:
            raise BrokenData(f"Data file is damaged: {dataset.problems[layout.INDEX]}")
        if self._index_body is None:
            raise NotFound("Data not found: index.json is missing")
        return self._index_body

    def file(self, endpoint: str) -> Body:
        """The whole wrapped file."""
        dataset = self._require()
        if endpoint in dataset.problems:
            raise BrokenData(f"Data file is damaged: {dataset.problems[endpoint]}")
        body = dataset.bodies.get(endpoint)
        if body is None:
            raise NotFound(f"Data not found: {endpoint} has not been synced")
        return body

    def page(self, endpoint: str, page: int, limit: int) -> Body:
        """One page of a list-shaped file."""
        self.file(endpoint)
        array_file = self._require().arrays.get(endpoint)
        if array_file is None:
            raise InvalidRequest(f"{endpoint} is not a list, it cannot be paged")
        return array_file.page(page, limit)

    def both(self, files: dict[str, str], page: int | None = None, limit: int | None = None) -> Body:
        """`{"movies": wrapper, "shows": wrapper}` built from the two files' bytes, no re-serialising.
        The whole-file answer is made once per load; pages are made per request."""
        if page:
            return combined_body(self.page(files["movies"], page, limit), self.page(files["shows"], page, limit))
        dataset = self._require()
        key = (files["movies"], files["shows"])
        combined = dataset.combined.get(key)
        if combined is None:
            movies, shows = self.file(files["movies"]), self.file(files["shows"])
            if not dataset.compressed.done():  # made with the gzip forms: until then identity only
                return combined_body(movies, shows, compress=False)
            combined = dataset.combined[key] = combined_body(movies, shows)
        return combined

    def list_items(self, list_id: str, page: int | None = None, limit: int | None = None) -> Body:
        """Items of the list whose slug or numeric Trakt id is `list_id` (a dict lookup only), all
        of them or one page."""
        if not layout.is_safe_slug(list_id):
            raise InvalidRequest(f"Invalid list id {list_id[:80]!r}: use a list slug or numeric Trakt id")
        endpoint = self._require().list_endpoints.get(list_id)
        if endpoint is None:
            raise NotFound(f"List not found: {list_id}")
        return self.file(endpoint) if page is None else self.page(endpoint, page, limit)

    def first_rows(self, endpoint: str, limit: int) -> list:
        """The first `limit` items of a list-shaped file, parsed; for occasional work that needs
        a sample (the demo schedule), without turning a 200,000-row file into Python objects."""
        dataset = self._dataset
        array_file = dataset.arrays.get(endpoint) if dataset else None
        if array_file is None or endpoint in dataset.problems:
            return []
        return ujson.loads(array_file.page(1, limit).chunks[0])["data"]

    def activity(self) -> Body:
        """Plays per month and the heatmap, serialised (and compressed) once per data load."""
        return self._finished().activity_body

    def insights(self, year: int | None) -> Body:
        """The year's insights (None: all time), made when the data loaded; a year without plays
        gets its zero document, made on first request and kept until the next load."""
        dataset = self._finished()
        body = dataset.insights_bodies.get(year)
        if body is None:
            body = dataset.insights_bodies[year] = json_body(dataset.insights.zero_document(year))
        return body

    def summary(self, watching: dict, now: datetime | None = None) -> dict:
        """The home-dashboard summary (README "Insights"): `watching` is the Watcher's state."""
        dataset = self._finished()
        return dataset.insights.summary(watching, now or self.clock(), dataset.upnext)

    def search_json(self, query: str, kind: str, limit: int) -> bytes:
        return self._finished().search.search_json(query, kind, limit)

    # --- up next and the calendar (README "Up next and the calendar") -------------------------
    def _upnext(self) -> UpNextView:
        dataset = self._finished()
        if layout.SHOW_SEASONS in dataset.problems:
            raise BrokenData(f"Data file is damaged: {dataset.problems[layout.SHOW_SEASONS]}")
        if dataset.upnext is None:
            raise NotFound(f"Data not found: {layout.SHOW_SEASONS} has not been synced")
        return dataset.upnext

    def up_next(self, include_completed: bool) -> Body:
        view = self._upnext()
        return view.cached(("up-next", include_completed), self.clock(),
                           lambda now: json_body(view.up_next_document(now, include_completed)))

    def calendar(self, days: int) -> Body:
        view = self._upnext()
        return view.cached(("calendar", days), self.clock(), lambda now: json_body(view.calendar_document(now, days)))

    def calendar_rows(self, days: int, *, in_progress_only: bool, premieres_only: bool) -> list[dict]:
        """The calendar's rows for the .ics feed (filters of README "Calendar feed")."""
        return self._upnext().calendar_rows(self.clock(), days, in_progress_only=in_progress_only,
                                            premieres_only=premieres_only)


def _list_files(root: Path) -> tuple[tuple, list[str], dict[str, str]]:
    """The data files under `root`, a fingerprint (paths, sizes, mtimes) to notice changes, and
    the files that are there but cannot be used (a directory, a broken symlink...) with why.
    Raises OSError when `root` itself cannot be listed."""
    os.listdir(root)  # an unreadable folder fails the whole load, not each file
    endpoints: list[str] = []
    unusable: dict[str, str] = {}
    stats: list[tuple] = []
    for endpoint in (*layout.ALL_FIXED_FILES, *layout.UPNEXT_FILES):
        problem = _unusable(root / endpoint, endpoint)
        if problem is None:
            endpoints.append(endpoint)
        elif problem:
            unusable[endpoint] = problem
    lists_dir = root / layout.LISTS_DIR
    if lists_dir.is_dir():
        endpoints += sorted(f"{layout.LISTS_DIR}/{entry.name}" for entry in os.scandir(lists_dir)
                            if entry.name.endswith(layout.LIST_ITEMS_SUFFIX) and entry.is_file()
                            and layout.is_safe_slug(entry.name[:-len(layout.LIST_ITEMS_SUFFIX)]))
    for endpoint in endpoints:
        st = (root / endpoint).stat()
        stats.append((endpoint, st.st_size, st.st_mtime_ns))
    stats += [(endpoint, problem) for endpoint, problem in sorted(unusable.items())]
    return (str(root.resolve()), tuple(stats)), endpoints, unusable


def _unusable(path: Path, endpoint: str) -> str | None:
    """None for a regular file, "" when nothing is there (not synced), else what is wrong."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return f"{endpoint} is a broken symlink" if os.path.islink(path) else ""
    except NotADirectoryError:
        return ""  # a parent folder is missing (a file stands in its place): not synced
    except OSError as exc:
        return f"{endpoint} could not be read: {_why(exc)}"
    if stat.S_ISREG(st.st_mode):
        return None
    return f"{endpoint} is a directory, not a file" if stat.S_ISDIR(st.st_mode) else f"{endpoint} is not a regular file"


async def _read(path: Path) -> bytes | OSError:
    """The file's bytes, or the error that prevented reading it."""
    try:
        async with aiofiles.open(path, "rb") as fh:
            return await fh.read()
    except OSError as exc:
        return exc


def _why(exc: OSError) -> str:
    return exc.strerror or str(exc)


__all__ = ["DataStore", "Body", "ArrayFile", "dumps"]

"""The in-memory image index: which posters, backdrops and season posters exist, and their URLs.

Built by scanning the image folder (README "Data folder") off the event loop, plus the entries of
`images/manifest.json` (the original app's media_index.json, written by `import`). A lookup is a
dictionary access; nothing touches the disk per request. Refreshed by a `PeriodicCallback` every
IMAGE_INDEX_REFRESH_HOURS, after every data reload and on demand (`reload()`).

Construct it from a script with a fixed folder: `ImageIndex(Config(), Path("data/images"))`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import tornado.ioloop
import ujson

from services.config import Config
from services.data.dataset import Body, json_body
from services.errors import ServiceError

log = logging.getLogger(__name__)

KINDS = ("movies", "shows")
CATEGORIES = ("posters", "backdrops")
# What the /images/ route serves and the index accepts; anything else in the folder is ignored.
IMAGE_TYPES = {
    "jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp",
    "gif": "image/gif", "avif": "image/avif", "svg": "image/svg+xml",
}
# When one title has several files (say a .jpg download and an .svg demo picture), the first
# extension in this order wins, so the choice does not depend on directory order.
_EXTENSION_ORDER = {ext: rank for rank, ext in enumerate(("jpg", "jpeg", "webp", "png", "avif", "gif", "svg"))}
MANIFEST = "manifest.json"
WSRV = "https://wsrv.nl/"
DEFAULT_PROXY_QUALITY = 85
DEFAULT_PROXY_OUTPUT = "webp"
DEFAULT_PROXY_MAXAGE = "7d"

_TITLE_FILE = re.compile(r"^([0-9]{1,10})_(poster|backdrop)\.([A-Za-z0-9]{2,5})\Z")
_SEASON_FILE = re.compile(r"^season_([0-9]{1,5})_poster\.([A-Za-z0-9]{2,5})\Z")
_NUMBER = re.compile(r"^[0-9]{1,10}\Z")
_PLAIN_PATH = re.compile(r"^[A-Za-z0-9_./-]*\Z")

ImagesDirProvider = Callable[[], Path]


class ImageIndexError(ServiceError):
    """The image folder could not be scanned; the previous index stays in use."""


class IndexData:
    """One immutable build of the index (swapped in whole, so readers never see half a build).

    `tables[(kind, category)]` maps a TMDB id to the file extension; `seasons` maps
    (show id, season) to the extension. Paths are rebuilt from their fixed pattern on lookup,
    which keeps 100,000 entries small.
    """

    __slots__ = ("tables", "seasons", "backdrops", "built_at", "build_seconds", "problems", "available")

    def __init__(self) -> None:
        self.tables: dict[tuple[str, str], dict[int, str]] = {(k, c): {} for k in KINDS for c in CATEGORIES}
        self.seasons: dict[tuple[int, int], str] = {}
        self.backdrops: list[tuple[str, int]] = []
        self.built_at = 0.0
        self.build_seconds = 0.0
        self.problems: list[str] = []
        self.available: Body = json_body(_availability(self))

    def add(self, kind: str, category: str, tmdb_id: int, ext: str) -> None:
        table = self.tables[(kind, category)]
        current = table.get(tmdb_id)
        if current is None or _EXTENSION_ORDER[ext] < _EXTENSION_ORDER[current]:
            table[tmdb_id] = sys.intern(ext)

    def add_season(self, tmdb_id: int, season: int, ext: str) -> None:
        current = self.seasons.get((tmdb_id, season))
        if current is None or _EXTENSION_ORDER[ext] < _EXTENSION_ORDER[current]:
            self.seasons[(tmdb_id, season)] = sys.intern(ext)

    def stats(self) -> dict[str, int]:
        return {
            "moviePosters": len(self.tables[("movies", "posters")]),
            "movieBackdrops": len(self.tables[("movies", "backdrops")]),
            "showPosters": len(self.tables[("shows", "posters")]),
            "showBackdrops": len(self.tables[("shows", "backdrops")]),
            "seasonPosters": len(self.seasons),
        }


def title_path(kind: str, category: str, tmdb_id: int, ext: str) -> str:
    """`movies/posters/27205_poster.jpg` — the README "Data folder" path of a title image."""
    return f"{kind}/{category}/{tmdb_id}_{category[:-1]}.{ext}"


def season_path(tmdb_id: int, season: int, ext: str) -> str:
    """`shows/posters/1399/1/season_1_poster.jpg`."""
    return f"shows/posters/{tmdb_id}/{season}/season_{season}_poster.{ext}"


def _extension(raw: str) -> str | None:
    ext = raw.lower()
    return ext if ext in IMAGE_TYPES else None


def _scan_titles(data: IndexData, folder: Path, kind: str, category: str) -> None:
    try:
        entries = os.scandir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return
    with entries:
        for entry in entries:
            match = _TITLE_FILE.match(entry.name)
            if match is None or match.group(2) != category[:-1]:
                continue
            ext = _extension(match.group(3))
            if ext and entry.is_file():
                data.add(kind, category, int(match.group(1)), ext)


def _scan_seasons(data: IndexData, posters: Path) -> None:
    """`shows/posters/<tmdb>/<season>/season_<season>_poster.<ext>`."""
    show_dirs = _numbered_dirs(str(posters))
    for tmdb_id, show_path in show_dirs:
        for season, season_folder in _numbered_dirs(show_path):
            for name, is_file in _files(season_folder):
                match = _SEASON_FILE.match(name)
                if match is None or int(match.group(1)) != season:
                    continue
                ext = _extension(match.group(2))
                if ext and is_file:
                    data.add_season(tmdb_id, season, ext)


def _numbered_dirs(folder: str) -> list[tuple[int, str]]:
    """Sub-folders named by a number; a folder removed while we scan is simply empty."""
    try:
        with os.scandir(folder) as entries:
            return [(int(e.name), e.path) for e in entries if _NUMBER.match(e.name) and e.is_dir()]
    except (FileNotFoundError, NotADirectoryError):
        return []


def _files(folder: str) -> list[tuple[str, bool]]:
    try:
        with os.scandir(folder) as entries:
            return [(e.name, e.is_file()) for e in entries]
    except (FileNotFoundError, NotADirectoryError):
        return []


def _add_manifest(data: IndexData, manifest: Any, where: Path) -> None:
    """Entries of media_index.json/manifest.json; anything malformed is skipped and reported."""
    if not isinstance(manifest, dict):
        data.problems.append(f"{where}: not a JSON object")
        return
    skipped = 0
    for kind in KINDS:
        section = manifest.get(kind)
        if not isinstance(section, dict):
            continue
        for category in CATEGORIES:
            names = section.get(category)
            for name in names if isinstance(names, list) else ():
                match = _TITLE_FILE.match(name) if isinstance(name, str) else None
                ext = _extension(match.group(3)) if match else None
                if match is None or ext is None or match.group(2) != category[:-1]:
                    skipped += 1
                    continue
                data.add(kind, category, int(match.group(1)), ext)
        if kind != "shows" or not isinstance(section.get("season_posters"), dict):
            continue
        for show_id, seasons in section["season_posters"].items():
            if not (isinstance(show_id, str) and _NUMBER.match(show_id) and isinstance(seasons, dict)):
                skipped += 1
                continue
            for season, names in seasons.items():
                if not (isinstance(season, str) and _NUMBER.match(season) and isinstance(names, list)):
                    skipped += 1
                    continue
                for name in names:
                    match = _SEASON_FILE.match(name) if isinstance(name, str) else None
                    ext = _extension(match.group(2)) if match else None
                    if match is None or ext is None or int(match.group(1)) != int(season):
                        skipped += 1
                        continue
                    data.add_season(int(show_id), int(season), ext)
    if skipped:
        data.problems.append(f"{where}: skipped {skipped} malformed entries")


def build_index(images_dir: Path) -> IndexData:
    """Scan one image folder (and its manifest) into a fresh IndexData. Blocking: run it in a thread."""
    started = time.perf_counter()
    data = IndexData()
    images_dir = Path(images_dir)
    if images_dir.is_dir():
        for kind in KINDS:
            for category in CATEGORIES:
                _scan_titles(data, images_dir / kind / category, kind, category)
        _scan_seasons(data, images_dir / "shows" / "posters")
        manifest_path = images_dir / MANIFEST
        try:
            manifest = ujson.loads(manifest_path.read_bytes())
        except FileNotFoundError:
            pass
        except (OSError, ValueError) as exc:
            data.problems.append(f"{manifest_path}: cannot be read ({exc})")
        else:
            _add_manifest(data, manifest, manifest_path)
    for kind in KINDS:
        data.backdrops.extend((kind, tmdb_id) for tmdb_id in data.tables[(kind, "backdrops")])
    data.available = json_body(_availability(data))
    data.built_at = time.time()
    data.build_seconds = time.perf_counter() - started
    return data


def _availability(data: IndexData) -> dict:
    """Which ids have which pictures, so a page can skip the requests that would 404."""
    seasons: dict[str, list[int]] = {}
    for (show_id, season) in sorted(data.seasons):
        seasons.setdefault(str(show_id), []).append(season)
    document: dict[str, Any] = {kind: {category: sorted(data.tables[(kind, category)]) for category in CATEGORIES}
                                for kind in KINDS}
    document["shows"]["seasons"] = seasons
    return document


class ImageIndex:
    """The service: holds the current IndexData, rebuilds it on a timer and on request."""

    def __init__(self, config: Config, images_dir: ImagesDirProvider | Path | str) -> None:
        self.config = config
        if callable(images_dir):
            self._images_dir: ImagesDirProvider = images_dir
        else:
            fixed = Path(images_dir)
            self._images_dir = lambda: fixed
        self._data = IndexData()
        self._timer: tornado.ioloop.PeriodicCallback | None = None
        self._lock = asyncio.Lock()
        self._scanned_dir: Path | None = None
        self._started = False
        self.reloads = 0

    # --- lifecycle ------------------------------------------------------------------------
    async def start(self) -> None:
        """First build now (a PeriodicCallback waits a full interval), then every N hours."""
        self._started = True
        try:
            await self.reload()
        except ImageIndexError:
            log.exception("initial image index build failed; serving no images until the next refresh")
        hours = self.config.image_index_refresh_hours
        if hours > 0 and self._timer is None:
            self._timer = tornado.ioloop.PeriodicCallback(self._periodic_reload, hours * 3600 * 1000)
            self._timer.start()

    async def stop(self) -> None:
        self._started = False
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        async with self._lock:  # let a running scan finish before the loop goes away
            pass

    async def _periodic_reload(self) -> None:
        try:
            await self.reload()
        except ImageIndexError:
            log.exception("periodic image index refresh failed; keeping the previous index")

    async def on_data_reloaded(self, _store: Any = None) -> None:
        """Store/sync listener: the served data (and maybe its image folder) changed.
        Before `start()` this does nothing: `start()` builds the index itself."""
        if self._started:
            await self._periodic_reload()

    # --- building -------------------------------------------------------------------------
    def images_dir(self) -> Path:
        """The folder scanned now (the store decides: demo images or DATA_DIR/images)."""
        return Path(self._images_dir())

    async def reload(self) -> dict[str, int]:
        """Rescan off the event loop and swap the new index in; returns its stats.

        On failure the previous index stays and ImageIndexError is raised."""
        async with self._lock:
            folder: Path | str = "the image folder"
            try:
                folder = self.images_dir()
                data = await asyncio.get_running_loop().run_in_executor(None, build_index, folder)
            except OSError as exc:
                log.error("image index: cannot scan %s: %s", folder, exc)
                raise ImageIndexError("The image folder could not be scanned; the previous index is still in use") from exc
            for problem in data.problems:
                log.warning("image index: %s", problem)
            self._data = data
            self._scanned_dir = folder
            self.reloads += 1
            log.info("image index: %s from %s in %.3fs", data.stats(), folder, data.build_seconds)
            return data.stats()

    # --- queries --------------------------------------------------------------------------
    def lookup(self, kind: str, category: str, tmdb_id: int, season: int | None = None) -> str | None:
        """Relative path of an indexed image, or None. A season poster falls back to the show poster."""
        data = self._data
        table = data.tables.get((kind, category))
        if table is None:
            raise ValueError(f"no such image kind/category: {kind!r}/{category!r}")
        if season is not None:
            if (kind, category) != ("shows", "posters"):
                raise ValueError("a season applies to show posters only")
            ext = data.seasons.get((tmdb_id, season))
            if ext is not None:
                return season_path(tmdb_id, season, ext)
        ext = table.get(tmdb_id)
        return None if ext is None else title_path(kind, category, tmdb_id, ext)

    def url_for(self, relative_path: str, w: int | None = None, q: int | None = None,
                output: str | None = None, maxage: str | None = None) -> str:
        """Where the browser finds the image: `/images/<path>`, `IMAGE_BASE_URL/<path>`, or that
        absolute URL wrapped by the wsrv proxy (which needs an absolute URL, so local files are
        never proxied). `w`, `q`, `output` and `maxage` only apply to the proxy."""
        # Index paths are digits, fixed words and an extension: nothing to escape (quote() is slow).
        path = relative_path if _PLAIN_PATH.match(relative_path) else quote(relative_path)
        base = self.config.image_base_url
        if not base:
            return f"/images/{path}"
        url = f"{base}/{path}"
        if self.config.image_proxy != "wsrv":
            return url
        query = f"?url={quote(url, safe='')}"
        if w is not None:
            query += f"&w={w}"
        query += f"&output={output or DEFAULT_PROXY_OUTPUT}"
        query += f"&q={q if q is not None else DEFAULT_PROXY_QUALITY}"
        query += f"&maxage={maxage or DEFAULT_PROXY_MAXAGE}"
        return WSRV + query

    def stats(self) -> dict[str, int]:
        """Counts per kind of image (README "API" reload-cache `stats`)."""
        return self._data.stats()

    def available(self) -> Body:
        """`{"movies": {"posters": [ids], "backdrops": [ids]}, "shows": {…, "seasons": {id: [n]}}}`,
        serialised once per build."""
        return self._data.available

    def random_backdrop(self) -> dict | None:
        """`{"url", "tmdbId", "type"}` of a random indexed backdrop (type movies|shows), or None."""
        data = self._data
        if not data.backdrops:
            return None
        kind, tmdb_id = random.choice(data.backdrops)
        ext = data.tables[(kind, "backdrops")][tmdb_id]
        return {"url": self.url_for(title_path(kind, "backdrops", tmdb_id, ext)), "tmdbId": tmdb_id, "type": kind}

    def status(self) -> dict:
        """For health/metrics: when the index was built, how long it took, what it holds."""
        data = self._data
        return {"built_at": data.built_at or None, "build_seconds": round(data.build_seconds, 4),
                "images_dir": str(self._scanned_dir) if self._scanned_dir else None,
                "problems": list(data.problems), "stats": data.stats()}

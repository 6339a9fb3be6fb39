"""A fake TMDB: a real HTTP server on 127.0.0.1 that answers like api.themoviedb.org and
image.tmdb.org for the calls this project makes.

    fake = FakeTmdb()                      # api key "tmdb-test-key"
    base = await fake.start()              # "http://127.0.0.1:<port>"
    config = replace(Config(), tmdb_api_key=fake.api_key,
                     tmdb_api_url=fake.api_url, tmdb_image_url=fake.image_url)
    ...
    await fake.stop()

or, for code that runs its own event loop (a subprocess, a CLI test):

    with FakeTmdb().running_in_thread() as fake: ...

Routes: `/3/movie/{id}/images`, `/3/tv/{id}/images`, `/3/tv/{id}/season/{n}/images` (honouring
`include_image_language`), image files under `/t/p/{size}/{file}` (small valid JPEG/PNG bytes).
Every id is known (with generated, deterministic entries in several languages) unless it was
passed to `forget()`; `add_title()` / `add_season()` set exact entries. A wrong key answers 401
(`status_code` 7), an unknown id 404 (`status_code` 34). `fail_next(n, status)`,
`rate_limit_next(n, retry_after)` (seconds or an HTTP date) and `gzip_bomb_next(n)` inject
failures; `requests` records every request, `max_in_flight` the most answered at once (with
`latency` seconds per request).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import struct
import threading
import zlib
from typing import Any

import tornado.httpserver
import tornado.netutil
import tornado.web

from tests.fakes.bomb import gzip_bomb
from tests.fakes.server import LoopbackServer

SIZES = ("w92", "w154", "w185", "w300", "w342", "w500", "w780", "w1280", "h632", "original")
_FILE = re.compile(r"^[A-Za-z0-9_-]+\.(jpg|png)\Z")

NOT_FOUND = {"success": False, "status_code": 34,
             "status_message": "The resource you requested could not be found."}
BAD_KEY = {"success": False, "status_code": 7,
           "status_message": "Invalid API key: You must be granted a valid key."}
RATE_LIMITED = {"success": False, "status_code": 25,
                "status_message": "Your request count (41) is over the allowed limit of 40."}
UNAVAILABLE = {"success": False, "status_code": 9,
               "status_message": "Service offline - This service is temporarily offline, try again later."}


# --- tiny image encoders (solid colour; enough for any decoder) ------------------------
def png_bytes(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A valid truecolour PNG filled with one colour."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" + bytes(rgb) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(row * height)) + chunk(b"IEND", b""))


def jpeg_bytes(width: int, height: int, grey: int) -> bytes:
    """A valid baseline greyscale JPEG filled with one shade (width/height multiples of 8)."""
    blocks = (width // 8) * (height // 8)
    dc = 8 * (grey - 128)  # the DC coefficient of a flat 8x8 block with an all-ones quant table
    category = abs(dc).bit_length()
    bits = "00" + (format(dc if dc >= 0 else dc + (1 << category) - 1, f"0{category}b") if category else "")
    bits += "0"  # end of block
    bits += ("01" + "0") * (blocks - 1)  # following blocks: DC difference 0, end of block
    bits += "1" * (-len(bits) % 8)
    scan = bytearray()
    for i in range(0, len(bits), 8):
        byte = int(bits[i:i + 8], 2)
        scan.append(byte)
        if byte == 0xFF:
            scan.append(0x00)

    def segment(marker: int, payload: bytes) -> bytes:
        return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload

    dc_table = bytes([0x00]) + bytes([0, 2] + [0] * 14) + bytes([category, 0])
    ac_table = bytes([0x10]) + bytes([1] + [0] * 15) + bytes([0x00])
    return (b"\xff\xd8"
            + segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")
            + segment(0xDB, bytes([0x00]) + bytes([1] * 64))
            + segment(0xC0, struct.pack(">BHHB", 8, height, width, 1) + bytes([1, 0x11, 0]))
            + segment(0xC4, dc_table) + segment(0xC4, ac_table)
            + segment(0xDA, bytes([1, 1, 0x00, 0, 63, 0]))
            + bytes(scan) + b"\xff\xd9")


def _shade(name: str) -> int:
    return 40 + hashlib.sha256(name.encode()).digest()[0] % 176


def image_bytes(file_name: str) -> tuple[bytes, str]:
    """Deterministic small image for a TMDB file name: (bytes, content type)."""
    shade = _shade(file_name)
    if file_name.endswith(".png"):
        return png_bytes(4, 6, (shade, 255 - shade, 128)), "image/png"
    return jpeg_bytes(16, 24, shade), "image/jpeg"


def _entry(file_path: str, language: str | None, vote: float, width: int, height: int) -> dict:
    return {"aspect_ratio": round(width / height, 3), "height": height, "iso_639_1": language,
            "file_path": file_path, "vote_average": vote, "vote_count": int(vote * 3), "width": width}


def generated_entries(kind: str, tmdb_id: int, season: int | None = None) -> dict[str, list[dict]]:
    """TMDB-like entries for any id: posters in en/fr/none, backdrops in none/en/de."""
    stem = f"{kind[0]}{tmdb_id}" + (f"s{season}" if season is not None else "")
    posters = [
        _entry(f"/{stem}p_fr.jpg", "fr", 9.0, 2000, 3000),
        _entry(f"/{stem}p_en.jpg", "en", 5.5, 2000, 3000),
        _entry(f"/{stem}p_en_low.jpg", "en", 5.1, 1000, 1500),
        _entry(f"/{stem}p_none.png", None, 5.3, 2000, 3000),
    ]
    if season is not None:
        return {"posters": posters}
    backdrops = [
        _entry(f"/{stem}b_de.jpg", "de", 8.0, 3840, 2160),
        _entry(f"/{stem}b_none.jpg", None, 5.6, 3840, 2160),
        _entry(f"/{stem}b_en.jpg", "en", 5.4, 1920, 1080),
    ]
    return {"posters": posters, "backdrops": backdrops}


class FakeTmdb(LoopbackServer):
    """The fake server and its knobs; safe to poke from the test thread while it runs."""

    name = "fake TMDB"

    def __init__(self, api_key: str = "tmdb-test-key") -> None:
        self.api_key = api_key
        self.requests: list[tuple[str, str]] = []  # (path, query string without api_key)
        self.forgotten: set[tuple[str, int]] = set()
        self.titles: dict[tuple[str, int], dict[str, list[dict]]] = {}
        self.seasons: dict[tuple[int, int], dict[str, list[dict]]] = {}
        self._lock = threading.Lock()
        self._failures: list[tuple[int, float | str | None]] = []  # (status, retry_after) per next request
        self._bombs = 0  # next requests answered with a gzip bomb
        self.latency = 0.0  # seconds each request waits before it is answered
        self.in_flight = 0
        self.max_in_flight = 0

    # --- configuration -----------------------------------------------------------------
    @property
    def api_url(self) -> str:
        return f"{self.base_url}/3"

    @property
    def image_url(self) -> str:
        return f"{self.base_url}/t/p"

    def forget(self, kind: str, tmdb_id: int) -> None:
        """TMDB will answer 404 for this movie/show (and its seasons)."""
        with self._lock:
            self.forgotten.add((kind, tmdb_id))

    def add_title(self, kind: str, tmdb_id: int, *, posters: list[dict] | None = None,
                  backdrops: list[dict] | None = None) -> None:
        """Exact entries for one movie/show (use `entry()` to build them)."""
        with self._lock:
            self.titles[(kind, tmdb_id)] = {"posters": posters or [], "backdrops": backdrops or []}

    def add_season(self, tv_id: int, season: int, *, posters: list[dict]) -> None:
        with self._lock:
            self.seasons[(tv_id, season)] = {"posters": posters}

    @staticmethod
    def entry(file_path: str, language: str | None = "en", vote: float = 5.0,
              width: int = 1000, height: int = 1500) -> dict:
        return _entry(file_path, language, vote, width, height)

    def fail_next(self, count: int, status: int = 503) -> None:
        """The next `count` requests (API or image) answer `status`."""
        with self._lock:
            self._failures.extend([(status, None)] * count)

    def rate_limit_next(self, count: int, retry_after: float | str = 0) -> None:
        """The next `count` requests answer 429 with `Retry-After: retry_after` (seconds, or a
        string sent as it is, such as an HTTP date)."""
        with self._lock:
            self._failures.extend([(429, retry_after)] * count)

    def gzip_bomb_next(self, count: int = 1) -> None:
        """The next `count` requests answer 200 with a gzip bomb (tests/fakes/bomb.py) under the
        content type the route normally has (JSON, or an image for files)."""
        with self._lock:
            self._bombs += count

    def _take_bomb(self) -> bool:
        with self._lock:
            if self._bombs <= 0:
                return False
            self._bombs -= 1
            return True

    def count(self, prefix: str = "") -> int:
        """How many requests had a path starting with `prefix`."""
        with self._lock:
            return sum(1 for path, _ in self.requests if path.startswith(prefix))

    # --- lookups used by the handlers ----------------------------------------------------
    def _title(self, kind: str, tmdb_id: int) -> dict[str, list[dict]] | None:
        with self._lock:
            if (kind, tmdb_id) in self.forgotten:
                return None
            if (kind, tmdb_id) in self.titles:
                return self.titles[(kind, tmdb_id)]
        return generated_entries(kind, tmdb_id)

    def _season(self, tv_id: int, season: int) -> dict[str, list[dict]] | None:
        if self._title("tv", tv_id) is None:
            return None
        with self._lock:
            if (tv_id, season) in self.seasons:
                return self.seasons[(tv_id, season)]
        return generated_entries("tv", tv_id, season)

    def _next_failure(self) -> tuple[int, float | str | None] | None:
        with self._lock:
            return self._failures.pop(0) if self._failures else None

    def _record(self, path: str, query: str) -> None:
        kept = "&".join(p for p in query.split("&") if p and not p.startswith("api_key="))
        with self._lock:
            self.requests.append((path, kept))

    # --- server -----------------------------------------------------------------------
    def make_app(self) -> tornado.web.Application:
        kwargs = {"fake": self}
        return tornado.web.Application([
            (r"/3/(movie|tv)/([0-9]+)/images", _TitleImages, kwargs),
            (r"/3/tv/([0-9]+)/season/([0-9]+)/images", _SeasonImages, kwargs),
            (r"/t/p/([^/]+)/([^/]+)", _ImageFile, kwargs),
            (r"/.*", _Unknown, kwargs),
        ], log_function=_log_without_query)


def _log_without_query(handler: tornado.web.RequestHandler) -> None:
    """Access log of the fake: the path only, since the query string carries the API key."""
    logging.getLogger("tests.fakes.tmdb").debug("%d %s %s", handler.get_status(),
                                                handler.request.method, handler.request.path)


class _FakeHandler(tornado.web.RequestHandler):
    fake: FakeTmdb
    content_type = "application/json;charset=utf-8"

    def initialize(self, fake: FakeTmdb) -> None:
        self.fake = fake
        self._counted = False

    def send_json(self, obj: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json;charset=utf-8")
        self.finish(json.dumps(obj))

    async def prepare(self) -> None:
        self.fake._record(self.request.path, self.request.query)
        with self.fake._lock:
            self.fake.in_flight += 1
            self.fake.max_in_flight = max(self.fake.max_in_flight, self.fake.in_flight)
        self._counted = True
        if self.fake.latency:
            await asyncio.sleep(self.fake.latency)
        if self.fake._take_bomb():
            self.set_header("Content-Type", self.content_type)
            self.set_header("Content-Encoding", "gzip")
            self.finish(gzip_bomb())
            return
        failure = self.fake._next_failure()
        if failure is not None:
            status, retry_after = failure
            if retry_after is not None:
                self.set_header("Retry-After", retry_after if isinstance(retry_after, str) else f"{retry_after:g}")
            self.send_json(RATE_LIMITED if status == 429 else UNAVAILABLE, status)

    def on_finish(self) -> None:
        if self._counted:
            with self.fake._lock:
                self.fake.in_flight -= 1

    def check_key(self) -> bool:
        supplied = self.get_query_argument("api_key", None)
        header = self.request.headers.get("Authorization", "")
        if supplied == self.fake.api_key or header == f"Bearer {self.fake.api_key}":
            return True
        self.send_json(BAD_KEY, 401)
        return False

    def send_entries(self, tmdb_id: int, found: dict[str, list[dict]] | None) -> None:
        if found is None:
            self.send_json(NOT_FOUND, 404)
            return
        raw = self.get_query_argument("include_image_language", None)
        body: dict[str, Any] = {"id": tmdb_id}
        for category, entries in found.items():
            if raw is not None:
                wanted = {None if part.strip() == "null" else part.strip() for part in raw.split(",")}
                entries = [e for e in entries if e.get("iso_639_1") in wanted]
            body[category] = entries
        if "backdrops" in found:
            body["logos"] = []
        self.send_json(body)


class _TitleImages(_FakeHandler):
    def get(self, kind: str, tmdb_id: str) -> None:
        if self.check_key():
            self.send_entries(int(tmdb_id), self.fake._title(kind, int(tmdb_id)))


class _SeasonImages(_FakeHandler):
    def get(self, tv_id: str, season: str) -> None:
        if self.check_key():
            self.send_entries(int(tv_id), self.fake._season(int(tv_id), int(season)))


class _ImageFile(_FakeHandler):
    content_type = "image/jpeg"

    def get(self, size: str, file_name: str) -> None:
        # image.tmdb.org needs no key; unknown sizes and odd names are plain 404s.
        if size not in SIZES or not _FILE.match(file_name):
            self.set_status(404)
            self.finish("Not Found")
            return
        body, content_type = image_bytes(file_name)
        self.set_header("Content-Type", content_type)
        self.set_header("Cache-Control", "public, max-age=31536000")
        self.finish(body)


class _Unknown(_FakeHandler):
    def get(self) -> None:
        self.send_json(NOT_FOUND, 404)

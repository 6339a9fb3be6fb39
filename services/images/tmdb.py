"""TMDB v3 client: image lists of movies, shows and seasons, and image file downloads.

One aiohttp session per client (created by `start()`, closed by `close()`), a `ClientTimeout`,
the retry policy of services/retry.py (backoff on 5xx, timeouts and dropped connections; 429s
wait for `Retry-After`, in seconds or as an HTTP date), answers bounded after decompression, and a
small exception tree that the image download step and the now-watching service decide on. The
API key never appears in an exception message or a log line.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import secrets
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import aiofiles
import aiohttp
import ujson

from services.http_session import SessionOwner
from services.config import Config
from services.images import urls
from services.retry import (
    TRANSIENT_ERRORS,
    AnswerTooLarge,
    RetryPolicy,
    describe_bytes,
    iter_bounded,
    read_bounded,
    retryable_status,
)

log = logging.getLogger(__name__)

ImageKind = Literal["movie", "tv"]
IMAGE_KINDS: tuple[str, ...] = ("movie", "tv")

# TMDB's size names are `w<width>`, `h<height>` or `original` (see /configuration).
_SIZE = re.compile(r"^(?:w[1-9][0-9]{1,3}|h[1-9][0-9]{1,3}|original)\Z")
# TMDB file paths are one flat name such as `/kqjL17yufvn9OVLyXYpvtyrFfak.jpg`.
_FILE_PATH = re.compile(r"^/[A-Za-z0-9_-]{1,128}\.[A-Za-z0-9]{2,5}\Z")

# TMDB's defaults (README "Images"): 4 retries, backoff from 0.5 s; a 429 waits for its
# Retry-After (1 s without one), never more than 30 s, at most 4 times per request.
TMDB_RETRY = RetryPolicy(retries=4, base_delay=0.5, max_delay=30.0, rate_limit_retries=4,
                         default_retry_after=1.0, max_retry_after=30.0)
TIMEOUT_SECONDS = 30.0
# Largest answers read, counted after decompression (README "Images"): an images list is tens of
# KiB and a w1280 backdrop under 1 MiB, so a gzip bomb or an endless body stops here.
MAX_JSON_BYTES = 2 * 1024 * 1024
MAX_IMAGE_BYTES = 16 * 1024 * 1024


class TmdbError(Exception):
    """Any TMDB failure; subclasses say which kind."""


class TmdbAuthError(TmdbError):
    """401: the TMDB_API_KEY is missing or not accepted; retrying will not help."""


class TmdbNotFound(TmdbError):
    """404: TMDB does not know this id (or file)."""


class TmdbRateLimited(TmdbError):
    """429 after every retry; `retry_after` is TMDB's last `Retry-After` in seconds."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TmdbUnavailable(TmdbError):
    """5xx, a timeout or a connection failure after every retry."""


def _positive_id(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def _check_size(size: str) -> str:
    if not isinstance(size, str) or not _SIZE.match(size):
        raise ValueError(f"image size must look like 'w780', 'h632' or 'original', got {size!r}")
    return size


def _check_file_path(file_path: str) -> str:
    if not isinstance(file_path, str) or not _FILE_PATH.match(file_path):
        raise ValueError(f"TMDB file path must look like '/abc123.jpg', got {file_path!r}")
    return file_path


def is_tmdb_file_path(file_path: Any) -> bool:
    """True for a flat TMDB file path such as `/abc.jpg` (nothing that could escape a folder)."""
    return isinstance(file_path, str) and bool(_FILE_PATH.match(file_path))


def best_image(entries: Iterable[dict] | None,
               prefer: Sequence[str | None] = ("en", None)) -> dict | None:
    """The entry to download: preferred language first (in `prefer` order), then the highest
    vote_average, then the widest. Entries without a usable `file_path` are ignored."""
    ranked = []
    for entry in entries or ():
        if not isinstance(entry, dict) or not is_tmdb_file_path(entry.get("file_path")):
            continue
        language = entry.get("iso_639_1") or None
        rank = prefer.index(language) if language in prefer else len(prefer)
        vote = entry.get("vote_average")
        width = entry.get("width")
        vote = float(vote) if isinstance(vote, (int, float)) and not isinstance(vote, bool) else 0.0
        width = int(width) if isinstance(width, (int, float)) and not isinstance(width, bool) else 0
        ranked.append(((rank, -vote, -width), entry))
    if not ranked:
        return None
    return min(ranked, key=lambda pair: pair[0])[1]


def _images_only(document: Any, categories: tuple[str, ...]) -> dict:
    """Keep the lists we use from an images response, dropping malformed entries."""
    if not isinstance(document, dict):
        raise TmdbError("TMDB answered with something that is not a JSON object")
    result: dict[str, list[dict]] = {}
    for category in categories:
        entries = document.get(category)
        result[category] = [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []
    return result


class TmdbClient(SessionOwner):
    """Async TMDB client for one API key. Use `await start()` … `await close()` (or `async with`)."""

    def __init__(self, config: Config, *, retry: RetryPolicy | None = None,
                 timeout_seconds: float = TIMEOUT_SECONDS,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep) -> None:
        if timeout_seconds <= 0:
            raise ValueError(f"timeout_seconds must be positive, got {timeout_seconds!r}")
        self.config = config
        self.api_url = config.tmdb_api_url.rstrip("/")
        self.image_base = config.tmdb_image_url.rstrip("/")
        self.retry = retry or TMDB_RETRY
        self._sleep = sleep  # tests pass a virtual sleep to see the waits without waiting
        self.timeout = aiohttp.ClientTimeout(total=timeout_seconds, sock_connect=min(10.0, timeout_seconds))
        self._session: aiohttp.ClientSession | None = None
        self.requests_made = 0

    @property
    def has_key(self) -> bool:
        return bool(self.config.tmdb_api_key)

    # --- lifecycle ----------------------------------------------------------------------
    def _new_session(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            timeout=self.timeout,
            headers={"User-Agent": "trakt-watch-dashboard", "Accept": "application/json"},
            raise_for_status=False,
        )

    async def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # A caller that forgot start() still gets a working client; close() ends it.
            await self.start()
        assert self._session is not None
        return self._session

    # --- public API ---------------------------------------------------------------------
    def image_url(self, size: str, file_path: str) -> str:
        """Absolute URL of an image file, e.g. `<TMDB_IMAGE_URL>/w780/abc.jpg`."""
        return urls.tmdb_file(self.image_base, _check_size(size), _check_file_path(file_path))

    async def images(self, kind: ImageKind, tmdb_id: int) -> dict:
        """Posters and backdrops of a movie (`kind="movie"`) or show (`"tv"`), English or
        language-less only: `{"posters": [...], "backdrops": [...]}` entries as TMDB sends them."""
        if kind not in IMAGE_KINDS:
            raise ValueError(f"kind must be 'movie' or 'tv', got {kind!r}")
        tmdb_id = _positive_id("tmdb_id", tmdb_id)
        document = await self._get_json(f"/{kind}/{tmdb_id}/images", {"include_image_language": "en,null"})
        return _images_only(document, ("posters", "backdrops"))

    async def season_images(self, tv_id: int, season: int) -> dict:
        """Posters of one season of a show: `{"posters": [...]}` (English or language-less)."""
        tv_id = _positive_id("tv_id", tv_id)
        if isinstance(season, bool) or not isinstance(season, int) or season < 0:
            raise ValueError(f"season must be a non-negative integer, got {season!r}")
        document = await self._get_json(f"/tv/{tv_id}/season/{season}/images",
                                         {"include_image_language": "en,null"})
        return _images_only(document, ("posters",))

    async def download(self, size: str, file_path: str, dest: Path) -> int:
        """Download one image file to `dest`; returns its size in bytes.

        Written to a hidden temp file beside `dest` and renamed into place, so a half-written
        image is never visible under its final name (and never indexed)."""
        url = self.image_url(size, file_path)
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.{secrets.token_hex(4)}.part")
        try:
            written = await self._request(url, None, lambda response: self._save(response, tmp),
                                          authenticated=False)
            os.replace(tmp, dest)
            return written
        finally:
            # After a successful rename the temp name is gone; otherwise drop the partial file.
            tmp.unlink(missing_ok=True)

    # --- internals ----------------------------------------------------------------------
    async def _save(self, response: aiohttp.ClientResponse, tmp: Path) -> int:
        content_type = response.headers.get("Content-Type", "")
        if not content_type.startswith("image/"):
            raise TmdbError(f"expected an image from {response.url.path}, got {content_type or 'no content type'}")
        written = 0
        try:
            async with aiofiles.open(tmp, "wb") as fh:
                async for chunk in iter_bounded(response.content, MAX_IMAGE_BYTES):
                    await fh.write(chunk)
                    written += len(chunk)
        except AnswerTooLarge:
            raise TmdbError(f"TMDB's image {response.url.path} is larger than {describe_bytes(MAX_IMAGE_BYTES)} "
                            "after decompression, the limit per image; refused") from None
        if written == 0:
            raise TmdbError(f"TMDB sent an empty image for {response.url.path}")
        return written

    async def _get_json(self, path: str, params: dict[str, str]) -> Any:
        async def parse(response: aiohttp.ClientResponse) -> Any:
            try:
                return ujson.loads(await read_bounded(response.content, MAX_JSON_BYTES))
            except AnswerTooLarge:
                raise TmdbError(f"TMDB's answer for {path} is larger than {describe_bytes(MAX_JSON_BYTES)} "
                                "after decompression, the limit per answer; refused") from None
            except ValueError:
                raise TmdbError(f"TMDB sent invalid JSON for {path}") from None

        return await self._request(self.api_url + path, params, parse, authenticated=True)

    def _auth(self, params: dict[str, str] | None) -> tuple[dict[str, str], dict[str, str]]:
        key = self.config.tmdb_api_key
        if not key:
            raise TmdbAuthError("TMDB_API_KEY is not set")
        params = dict(params or {})
        headers: dict[str, str] = {}
        if key.count(".") == 2 and len(key) > 64:
            headers["Authorization"] = f"Bearer {key}"  # a v4 read access token (JWT)
        else:
            params["api_key"] = key  # a v3 API key
        return params, headers

    async def _request(self, url: str, params: dict[str, str] | None, handle: Any, *,
                       authenticated: bool) -> Any:
        """GET with retries; `handle(response)` reads a 200 answer. Maps failures to TmdbError."""
        headers: dict[str, str] = {}
        if authenticated:
            params, headers = self._auth(params)
        session = await self._get_session()
        # Only the path goes into messages: the query string carries the key.
        where = url.split("?", 1)[0].replace(self.api_url, "").replace(self.image_base, "") or url
        failures = limited = 0
        while True:
            try:
                self.requests_made += 1
                async with session.get(url, params=params, headers=headers) as response:
                    status = response.status
                    if status == 200:
                        return await handle(response)
                    retry_after = response.headers.get("Retry-After")
                    message = await _tmdb_message(response)
            except TRANSIENT_ERRORS as exc:
                status, retry_after = 0, None
                message = f"{type(exc).__name__}"
            if status == 401:
                raise TmdbAuthError(f"TMDB rejected the API key (401{': ' + message if message else ''})")
            if status == 404:
                raise TmdbNotFound(f"TMDB has no {where}")
            if status == 429:
                delay = self.retry.rate_limit_delay(retry_after)
                if limited >= self.retry.rate_limit_retries:
                    raise TmdbRateLimited(f"TMDB rate limit persisted for {where} after "
                                          f"{failures + limited + 1} tries", delay)
                limited += 1
                log.info("TMDB 429 for %s; retry %d/%d in %.1fs (Retry-After)", where,
                         limited, self.retry.rate_limit_retries, delay)
                await self._sleep(delay)
                continue
            if status == 0 or retryable_status(status):
                if failures >= self.retry.retries:
                    what = f"HTTP {status}" if status else message
                    raise TmdbUnavailable(f"TMDB unavailable for {where} after {failures + limited + 1} tries ({what})")
                delay = self.retry.backoff(failures)
                failures += 1
                log.info("TMDB %s for %s; retry %d/%d in %.1fs", status or message, where,
                         failures, self.retry.retries, delay)
                await self._sleep(delay)
                continue
            raise TmdbError(f"TMDB answered {status} for {where}{': ' + message if message else ''}")


async def _tmdb_message(response: aiohttp.ClientResponse) -> str:
    """TMDB's `status_message` from an error body, if it sent one (never echoes the key)."""
    try:
        body = ujson.loads(await read_bounded(response.content, MAX_JSON_BYTES))
    except (ValueError, aiohttp.ClientError, AnswerTooLarge):
        return ""
    if isinstance(body, dict) and isinstance(body.get("status_message"), str):
        return body["status_message"][:200]
    return ""

"""Every image URL the server hands out, built in one place (README "Images", `IMAGE_PROXY`).

An indexed file is served at `/images/<path>`, or at `IMAGE_BASE_URL/<path>` when a CDN mirrors
the folder; with `IMAGE_PROXY=wsrv` an absolute URL (a CDN's or TMDB's) is wrapped in the wsrv
proxy URL. Local files are never proxied: wsrv needs a public URL.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import quote, urlencode

if TYPE_CHECKING:  # services/config.py imports the demo schedule, which builds URLs here
    from services.config import Config

WSRV = "https://wsrv.nl/"
DEFAULT_PROXY_QUALITY = 85
DEFAULT_PROXY_OUTPUT = "webp"
DEFAULT_PROXY_MAXAGE = "7d"

_PLAIN_PATH = re.compile(r"[A-Za-z0-9_./-]*")


def wsrv(url: str, w: int | None = None, q: int | None = None, output: str | None = None,
         maxage: str | None = None) -> str:
    """`https://wsrv.nl/?url=<url>&w=&output=&q=&maxage=` (`w` only when given)."""
    query = f"?url={quote(url, safe='')}"
    if w is not None:
        query += f"&w={w}"
    query += f"&output={output or DEFAULT_PROXY_OUTPUT}"
    query += f"&q={q if q is not None else DEFAULT_PROXY_QUALITY}"
    query += f"&maxage={maxage or DEFAULT_PROXY_MAXAGE}"
    return WSRV + query


def proxied(config: Config, url: str, w: int | None = None) -> str:
    """An absolute image URL, wrapped for the configured proxy (or as it is without one)."""
    return wsrv(url, w=w) if config.image_proxy == "wsrv" else url


def served(config: Config, relative_path: str, w: int | None = None, q: int | None = None,
           output: str | None = None, maxage: str | None = None) -> str:
    """Where the browser finds an indexed file: `/images/<path>`, `IMAGE_BASE_URL/<path>`, or
    that CDN URL through the proxy. `w`, `q`, `output` and `maxage` only apply to the proxy."""
    # Index paths are digits, fixed words and an extension: nothing to escape (quote() is slow).
    path = relative_path if _PLAIN_PATH.fullmatch(relative_path) else quote(relative_path)
    base = config.image_base_url
    if not base:
        return f"/images/{path}"
    url = f"{base}/{path}"
    if config.image_proxy != "wsrv":
        return url
    return wsrv(url, w=w, q=q, output=output, maxage=maxage)


def tmdb_file(image_base: str, size: str, file_path: str) -> str:
    """`<TMDB_IMAGE_URL>/w780/abc.jpg` (`file_path` starts with a slash, as TMDB sends it)."""
    return f"{image_base.rstrip('/')}/{size}{file_path}"


def api_redirect(kind: str, category: str, tmdb_id: int, w: int | None = None) -> str:
    """`/api/images?type=&category=&tmdb_id=[&w=]`: the redirect route, for pages and demo payloads."""
    query: dict[str, object] = {"type": kind, "category": category, "tmdb_id": tmdb_id}
    if w:
        query["w"] = w
    return "/api/images?" + urlencode(query)

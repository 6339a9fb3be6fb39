"""Query parameters of `GET /api/images` (README "Images"), declared once: handlers/images.py
parses with them and services/ops/openapi.py documents them."""

from __future__ import annotations

from services.images.naming import CATEGORIES, KINDS
from services.query import Param, Query, Requires

MAX_ID = 999_999_999
MAX_SEASON = 9_999
OUTPUTS = ("webp", "jpg", "png")
# A cache duration for the proxy: seconds, or a number with a unit (7d, 24h, 30m, 2w, 1y).
MAXAGE = r"[1-9][0-9]{0,5}[mhdwy]?"

IMAGE = Query(
    (
        Param("type", "movies or shows.", required=True, choices=KINDS),
        Param("category", "posters or backdrops.", required=True, choices=CATEGORIES),
        Param("tmdb_id", "TMDB id of the movie or show.", type="integer", required=True, minimum=0, maximum=MAX_ID),
        Param("season", "Season number (type=shows&category=posters only); falls back to the show poster.",
              type="integer", minimum=0, maximum=MAX_SEASON),
        Param("w", "Width (IMAGE_PROXY=wsrv).", type="integer", minimum=16, maximum=2000),
        Param("q", "Quality (IMAGE_PROXY=wsrv).", type="integer", minimum=1, maximum=100),
        Param("output", "Format (IMAGE_PROXY=wsrv).", choices=OUTPUTS),
        Param("maxage", "Cache duration for the proxy: seconds or 30m, 24h, 7d, 2w, 1y (IMAGE_PROXY=wsrv).",
              pattern=MAXAGE, pattern_hint="use a duration like 7d, 24h or 3600 (seconds)"),
    ),
    rules=(Requires("season", {"type": "shows", "category": "posters"}, group="picture"),),
)

"""How image files are named in the image folder (README "Data folder"), in one place.

    movies/posters/<tmdb>_poster.<ext>      movies/backdrops/<tmdb>_backdrop.<ext>
    shows/posters/<tmdb>_poster.<ext>       shows/backdrops/<tmdb>_backdrop.<ext>
    shows/posters/<tmdb>/<season>/season_<season>_poster.<ext>

The index scans and the manifest are read with `parse_*`; the downloads, the demo artwork and the
index's lookups build names with the other functions. Imports nothing of ours.
"""

from __future__ import annotations

import re

KINDS = ("movies", "shows")
CATEGORIES = ("posters", "backdrops")
# What the /images/ route serves and the index accepts; anything else in the folder is ignored.
IMAGE_TYPES = {
    "jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp",
    "gif": "image/gif", "avif": "image/avif", "svg": "image/svg+xml",
}

_TITLE_FILE = re.compile(r"([0-9]{1,10})_(poster|backdrop)\.([A-Za-z0-9]{2,5})")
_SEASON_FILE = re.compile(r"season_([0-9]{1,5})_poster\.([A-Za-z0-9]{2,5})")


def title_stem(category: str, tmdb_id: int) -> str:
    """`27205_poster` (category `posters`) or `27205_backdrop`: the name without its extension."""
    return f"{tmdb_id}_{category[:-1]}"


def season_stem(season: int) -> str:
    """`season_1_poster`."""
    return f"season_{season}_poster"


def title_folder(kind: str, category: str) -> str:
    """`movies/posters`: where the title images of one kind and category live."""
    return f"{kind}/{category}"


def season_folder(tmdb_id: int, season: int) -> str:
    """`shows/posters/1399/1`."""
    return f"shows/posters/{tmdb_id}/{season}"


def title_path(kind: str, category: str, tmdb_id: int, ext: str) -> str:
    """`movies/posters/27205_poster.jpg`."""
    return f"{title_folder(kind, category)}/{title_stem(category, tmdb_id)}.{ext}"


def season_path(tmdb_id: int, season: int, ext: str) -> str:
    """`shows/posters/1399/1/season_1_poster.jpg`."""
    return f"{season_folder(tmdb_id, season)}/{season_stem(season)}.{ext}"


def image_extension(raw: str) -> str | None:
    """The lower-case extension if it is an image type we serve, else None."""
    ext = raw.lower()
    return ext if ext in IMAGE_TYPES else None


def parse_title_file(name: str, category: str) -> tuple[int, str] | None:
    """`27205_poster.jpg` in `posters` -> (27205, "jpg"); None for any other name or category."""
    match = _TITLE_FILE.fullmatch(name) if isinstance(name, str) else None
    if match is None or match.group(2) != category[:-1]:
        return None
    ext = image_extension(match.group(3))
    return None if ext is None else (int(match.group(1)), ext)


def parse_season_file(name: str, season: int) -> str | None:
    """The extension of `season_<season>_poster.<ext>` for that season; None otherwise."""
    match = _SEASON_FILE.fullmatch(name) if isinstance(name, str) else None
    if match is None or int(match.group(1)) != season:
        return None
    return image_extension(match.group(2))

"""`trakt-watch import SRC`: move over from the original Next.js dashboard in one command.

The original app keeps its files under `SRC/json/` (`index.json`, `user/...`, list items as
`user/lists/<slug>_items.json`), with metadata carrying `fetched_at` or `last_updated`, and lists its
CDN images in `SRC/media_index.json`. The import writes one atomic snapshot (so a failed import
changes nothing served) and turns the media index into `images/manifest.json` for the image index.
Rows are copied as they are: runtimes, genres, countries and languages (README "Insights") are there
when the original fetched them and stay absent otherwise; the insights count such plays as of
unknown runtime rather than guess.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ujson

from services.data import layout
from services.data.snapshots import DataFolder, write_json_atomic
from services.images.naming import parse_season_file, parse_title_file


class ImportFailed(Exception):
    """The source folder cannot be imported at all (the message says why)."""


@dataclass
class ImportReport:
    source: Path
    snapshot: Path | None = None
    imported: dict[str, int] = field(default_factory=dict)
    unknown: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    derived: list[str] = field(default_factory=list)
    manifest_images: int | None = None

    def summary(self) -> str:
        lines = [f"Imported {len(self.imported)} files from {self.source} into {self.snapshot}"]
        for endpoint, count in sorted(self.imported.items()):
            lines.append(f"  {endpoint}: {count} item{'s' if count != 1 else ''}")
        for endpoint in self.derived:
            lines.append(f"  {endpoint}: derived from the watchlist's all.json")
        if self.manifest_images is not None:
            lines.append(f"Image manifest: {self.manifest_images} images listed (serve them with IMAGE_BASE_URL)")
        for name in self.unknown:
            lines.append(f"Skipped unknown file: {name}")
        for problem in self.problems:
            lines.append(f"Problem: {problem}")
        return "\n".join(lines)


def import_folder(source: Path, folder: DataFolder) -> ImportReport:
    """Import `source` into `folder` as a new served snapshot."""
    source = Path(source)
    if not source.is_dir():
        raise ImportFailed(f"{source} is not a folder")
    json_root = source / "json" if (source / "json").is_dir() else source
    if not (json_root / layout.INDEX).is_file() and not (json_root / "user").is_dir():
        raise ImportFailed(f"{source} does not look like the original dashboard's data "
                           "(expected json/index.json or json/user/)")
    report = ImportReport(source=source)
    documents: dict[str, Any] = {}
    stamps: list[str] = []
    username = ""
    original_source = layout.SOURCE_TRAKT

    for path in sorted(json_root.rglob("*.json")):
        relative = path.relative_to(json_root).as_posix()
        if not _is_known(relative):
            if relative != "media_index.json":
                report.unknown.append(relative)
            continue
        try:
            document = ujson.loads(path.read_bytes())
        except (ValueError, OSError) as exc:
            report.problems.append(f"{relative} could not be read ({exc}); skipped")
            continue
        data, metadata = _unwrap(document)
        stamp = metadata.get("last_updated") or metadata.get("fetched_at")
        if isinstance(stamp, str):
            stamps.append(stamp)
        username = username or str(metadata.get("username") or "")
        original_source = str(metadata.get("source") or original_source)
        if relative == layout.INDEX:
            continue  # rebuilt for the new snapshot
        documents[relative] = data

    if not documents:
        raise ImportFailed(f"no data files found under {json_root}")
    _derive_watchlist_halves(documents, report)
    profile = documents.get(layout.PROFILE)
    if isinstance(profile, dict):
        username = username or str(profile.get("username") or "")
    if not username:
        raise ImportFailed("cannot tell whose account this is: no username in the metadata or the profile")

    last_updated = max(stamps) if stamps else layout.utc_now_iso()
    folder.root.mkdir(parents=True, exist_ok=True)
    folder.remove_partials()
    with folder.new_snapshot(username=username, source=original_source, last_updated=last_updated) as writer:
        for endpoint, data in sorted(documents.items()):
            writer.write(endpoint, data)
            report.imported[endpoint] = layout.item_count(data)
        writer.write_index(extra_metadata={"imported_from": "nextjs-dashboard"})
        report.snapshot = writer.commit()

    media_index = next((p for p in (source / "media_index.json", json_root / "media_index.json") if p.is_file()), None)
    if media_index is not None:
        try:
            manifest = _manifest(ujson.loads(media_index.read_bytes()))
        except (ValueError, OSError) as exc:
            report.problems.append(f"media_index.json could not be read ({exc}); no image manifest written")
        else:
            write_json_atomic(folder.images_dir / "manifest.json", manifest)
            report.manifest_images = _manifest_size(manifest)
    return report


def _is_known(relative: str) -> bool:
    if relative in layout.ALL_FIXED_FILES:
        return True
    if relative.startswith(layout.LISTS_DIR + "/") and relative.endswith(layout.LIST_ITEMS_SUFFIX):
        slug = relative[len(layout.LISTS_DIR) + 1:-len(layout.LIST_ITEMS_SUFFIX)]
        return layout.is_safe_slug(slug)
    return False


def _unwrap(document: Any) -> tuple[Any, dict]:
    """The original wraps like we do; a bare list/object is taken as the data itself."""
    if isinstance(document, dict) and "data" in document and isinstance(document.get("metadata", {}), dict):
        return document["data"], document.get("metadata") or {}
    return document, {}


def _derive_watchlist_halves(documents: dict[str, Any], report: ImportReport) -> None:
    """The original wrote watchlist/all.json but not always shows.json: split it by type."""
    everything = documents.get(layout.WATCHLIST["all"])
    if not isinstance(everything, list):
        return
    for kind, endpoint in (("movie", layout.WATCHLIST["movies"]), ("show", layout.WATCHLIST["shows"])):
        if endpoint not in documents:
            documents[endpoint] = [row for row in everything if isinstance(row, dict) and row.get("type") == kind]
            report.derived.append(endpoint)


def _manifest(media_index: Any) -> dict:
    """Keep only well-formed image names: the manifest becomes URLs, never paths to open."""
    if not isinstance(media_index, dict):
        raise ValueError("expected an object with 'movies' and 'shows'")
    manifest: dict[str, Any] = {"last_updated": media_index.get("last_updated"),
                                "movies": {"posters": [], "backdrops": []},
                                "shows": {"posters": [], "backdrops": [], "season_posters": {}}}
    for kind in ("movies", "shows"):
        section = media_index.get(kind) if isinstance(media_index.get(kind), dict) else {}
        for category in ("posters", "backdrops"):
            names = section.get(category) if isinstance(section.get(category), list) else []
            manifest[kind][category] = sorted({n for n in names if parse_title_file(n, category)})
    seasons = (media_index.get("shows") or {}).get("season_posters")
    if isinstance(seasons, dict):
        for show_id, by_season in seasons.items():
            if not (isinstance(show_id, str) and show_id.isdigit() and isinstance(by_season, dict)):
                continue
            kept = {season: sorted({n for n in names if parse_season_file(n, int(season))})
                    for season, names in by_season.items()
                    if isinstance(season, str) and season.isascii() and season.isdigit() and isinstance(names, list)}
            kept = {season: names for season, names in kept.items() if names}
            if kept:
                manifest["shows"]["season_posters"][show_id] = kept
    return manifest


def _manifest_size(manifest: dict) -> int:
    flat = sum(len(manifest[k][c]) for k in ("movies", "shows") for c in ("posters", "backdrops"))
    seasons = sum(len(names) for by_season in manifest["shows"]["season_posters"].values()
                  for names in by_season.values())
    return flat + seasons

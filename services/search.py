"""Title search over everything the account references (watched, watchlist, history, lists).

One entry per title (deduplicated by type and Trakt id) remembers every place it was found.
Matching is case- and accent-insensitive ("amelie" finds "Amélie", "spider man" finds
"Spider-Man"). Ranking: exact title > title prefix > word prefix > substring; ties are
alphabetical. The titles of each type are kept sorted in one newline-separated string so a
query is a handful of C-speed `str.find` calls per matching title, not a Python loop over
the whole library.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Any, Iterable

SOURCES = ("watched", "watchlist", "history", "list")
TYPES = ("movies", "shows")
DEFAULT_LIMIT = 50
MAX_LIMIT = 500

_NON_ALNUM = re.compile(r"[^0-9a-z]+")


def normalize(text: str) -> str:
    """Fold case and accents, turn punctuation into single spaces."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _NON_ALNUM.sub(" ", stripped.casefold()).strip()


@dataclass
class TitleEntry:
    """What we know about one movie or show across the account."""

    kind: str  # "movie" | "show"
    media: dict  # the Trakt movie/show object (title, year, ids)
    sources: list[str] = field(default_factory=list)
    lists: list[dict] = field(default_factory=list)
    plays: int | None = None
    last_watched_at: str | None = None
    rank: int | None = None
    listed_at: str | None = None
    rating: int | None = None

    def add_source(self, source: str) -> None:
        if source not in self.sources:
            self.sources.append(source)

    def row(self, score: str) -> dict:
        ordered = [s for s in SOURCES if s in self.sources]
        row: dict[str, Any] = {"type": self.kind, self.kind: self.media, "source": ordered[0],
                               "sources": ordered, "score": score}
        if self.lists:
            row["lists"] = self.lists
        for key in ("plays", "last_watched_at", "rank", "listed_at", "rating"):
            value = getattr(self, key)
            if value is not None:
                row[key] = value
        return row


def title_key(kind: str, media: dict) -> tuple:
    ids = media.get("ids") or {}
    if ids.get("trakt") is not None:
        return (kind, "trakt", ids["trakt"])
    if ids.get("slug"):
        return (kind, "slug", ids["slug"])
    return (kind, "title", media.get("title"), media.get("year"))


class Catalogue:
    """Collects TitleEntry objects while the data files are read."""

    def __init__(self) -> None:
        self.entries: dict[tuple, TitleEntry] = {}

    def entry(self, kind: str, media: Any) -> TitleEntry | None:
        if not isinstance(media, dict) or not isinstance(media.get("title"), str):
            return None
        key = title_key(kind, media)
        found = self.entries.get(key)
        if found is None:
            found = self.entries[key] = TitleEntry(kind=kind, media=_slim(media))
        return found

    def of_kind(self, kind: str) -> Iterable[TitleEntry]:
        return (e for e in self.entries.values() if e.kind == kind)


def _slim(media: dict) -> dict:
    """Keep what a search result shows; extended fields (overview, genres…) stay in the files."""
    slim = {"title": media.get("title"), "year": media.get("year"), "ids": media.get("ids") or {}}
    return slim


class _TypeIndex:
    """Sorted normalized titles of one type, joined into one string."""

    def __init__(self, entries: Iterable[TitleEntry]) -> None:
        pairs = sorted(((normalize(e.media["title"]), e) for e in entries), key=lambda p: (p[0], p[1].media.get("year") or 0))
        self.titles = [p[0] for p in pairs]
        self.entries = [p[1] for p in pairs]
        self.haystack = "\n".join(self.titles) + "\n"
        self.starts = []
        offset = 0
        for title in self.titles:
            self.starts.append(offset)
            offset += len(title) + 1
        self.starts.append(offset)

    def matches(self, query: str) -> tuple[list[int], list[int], list[int], list[int]]:
        """Indices of entries by match class: exact, prefix, word, substring (each alphabetical)."""
        exact: list[int] = []
        prefix: list[int] = []
        word: list[int] = []
        substring: list[int] = []
        hay, starts = self.haystack, self.starts
        find = hay.find
        qlen = len(query)
        spaced = " " + query
        pos = find(query)
        while pos != -1:
            i = bisect_right(starts, pos) - 1
            line_start, line_end = starts[i], starts[i + 1] - 1
            if pos == line_start:
                (exact if line_end - pos == qlen else prefix).append(i)
            elif hay[pos - 1] == " " or find(spaced, pos, line_end) != -1:
                word.append(i)
            else:
                substring.append(i)
            pos = find(query, line_end + 1)
        return exact, prefix, word, substring


class SearchIndex:
    """Immutable once built; a new one is made whenever the data is reloaded."""

    def __init__(self, catalogue: Catalogue) -> None:
        self._by_type = {"movies": _TypeIndex(catalogue.of_kind("movie")),
                         "shows": _TypeIndex(catalogue.of_kind("show"))}

    def __len__(self) -> int:
        return sum(len(index.entries) for index in self._by_type.values())

    def search(self, query: str, kind: str = "all", limit: int = DEFAULT_LIMIT) -> dict:
        """The body of GET /api/trakt/search. `query` must not be blank (the handler checks)."""
        needle = normalize(query)
        results: dict[str, list] = {"movies": [], "shows": []}
        total = 0
        if needle:
            types = TYPES if kind == "all" else (kind,)
            matched = {t: self._by_type[t].matches(needle) for t in types}
            total = sum(len(indices) for classes in matched.values() for indices in classes)
            # `limit` caps the rows of the whole answer: better classes of either type come first.
            budget = limit
            for class_number, score in enumerate(("exact", "prefix", "word", "substring")):
                for type_name in types:
                    entries = self._by_type[type_name].entries
                    for i in matched[type_name][class_number][:budget]:
                        results[type_name].append(entries[i].row(score))
                    budget = limit - len(results["movies"]) - len(results["shows"])
        return {"query": query, "type": kind, "results": results, "total_results": total}

"""Title search over everything the account references (watched, watchlist, history, lists).

One entry per title (deduplicated by type and Trakt id) remembers every place it was found.
Matching is case- and accent-insensitive ("amelie" finds "Amélie", "spider man" finds
"Spider-Man"). Ranking: exact title > title prefix > word prefix > substring; ties are
alphabetical. One- and two-character queries match title and word starts only (a substring
"a" matches nearly everything and helps nobody). Each class is found with bisects on sorted
lists or C-speed string search, never a Python loop per title for a rare query.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

SOURCES = ("watched", "watchlist", "history", "list")
TYPES = ("movies", "shows")
DEFAULT_LIMIT = 50
MAX_LIMIT = 500

_NON_WORD = re.compile(r"[\W_]+")  # Unicode-aware: CJK and other scripts stay searchable


def normalize(text: str) -> str:
    """Fold case and accents, turn punctuation into single spaces."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _NON_WORD.sub(" ", stripped.casefold()).strip()


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
    ids = media.get("ids") if isinstance(media.get("ids"), dict) else {}
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
        """The entry for this movie/show, created on first sight (called once per data row)."""
        try:
            key = (kind, "trakt", media["ids"]["trakt"])  # the common case, without title_key()
            if key[2] is None:
                raise KeyError
        except (TypeError, KeyError, IndexError):
            if not isinstance(media, dict):
                return None
            key = title_key(kind, media)
        found = self.entries.get(key)
        if found is None:
            if not isinstance(media.get("title"), str):
                return None
            found = self.entries[key] = TitleEntry(kind=kind, media=_slim(media))
        return found

    def find(self, kind: str, media: Any) -> TitleEntry | None:
        """The entry if this title was already seen; never creates one."""
        if not isinstance(media, dict):
            return None
        return self.entries.get(title_key(kind, media))

    def of_kind(self, kind: str) -> Iterable[TitleEntry]:
        return (e for e in self.entries.values() if e.kind == kind)


def _slim(media: dict) -> dict:
    """Keep what a search result shows; extended fields (overview, genres…) stay in the files."""
    slim = {"title": media.get("title"), "year": media.get("year"), "ids": media.get("ids") or {}}
    return slim


_AFTER_EVERYTHING = "\U0010ffff"  # sorts after any continuation of a prefix
SUBSTRING_MIN_LENGTH = 3  # shorter queries match the start of a title or of a word only
_FIND_LOOP_LIMIT = 2000  # above this many occurrences one pass over all titles is cheaper


class _TypeIndex:
    """The titles of one type, normalized and sorted, with three views for the match classes:
    the sorted list (exact and prefix: one bisect), the sorted word suffixes ("star wars" ->
    "wars": word prefix, one bisect) and one joined string (substring: C-speed `str.find`)."""

    def __init__(self, entries: Iterable[TitleEntry]) -> None:
        pairs = sorted(((normalize(e.media["title"]), e) for e in entries),
                       key=lambda p: (p[0], p[1].media.get("year") or 0))
        self.titles = [p[0] for p in pairs]
        self.entries = [p[1] for p in pairs]
        # Sorted by (suffix, owner): made in owner order, so a stable sort on the strings alone
        # does it, and string comparisons are several times cheaper than tuple ones (the sort holds
        # the GIL from start to end, and it runs beside the event loop).
        pairs_in_order = [(title[i + 1:], owner) for owner, title in enumerate(self.titles)
                          for i, char in enumerate(title) if char == " "]
        keys = [suffix for suffix, _ in pairs_in_order]
        order = sorted(range(len(keys)), key=keys.__getitem__)
        self.suffixes = [keys[k] for k in order]
        self.suffix_owners = [pairs_in_order[k][1] for k in order]
        self.haystack = "\n".join(self.titles) + "\n"
        self.starts = []
        offset = 0
        for title in self.titles:
            self.starts.append(offset)
            offset += len(title) + 1
        self.starts.append(offset)

    def matches(self, query: str) -> tuple[Sequence[int], Sequence[int], list[int], list[int]]:
        """Indices of entries by match class: exact, prefix, word, substring (each alphabetical)."""
        titles = self.titles
        low = bisect_left(titles, query)
        high = bisect_left(titles, query + _AFTER_EVERYTHING, low)
        exact_end = low
        while exact_end < high and titles[exact_end] == query:
            exact_end += 1
        starts_with = range(low, high)
        word_low = bisect_left(self.suffixes, query)
        word_high = bisect_left(self.suffixes, query + _AFTER_EVERYTHING, word_low)
        word_set = set(self.suffix_owners[word_low:word_high]).difference(starts_with)
        substring: list[int] = []
        if len(query) >= SUBSTRING_MIN_LENGTH:
            found = self._containing(query)
            found.difference_update(starts_with)
            found.difference_update(word_set)
            substring = sorted(found)
        return range(low, exact_end), range(exact_end, high), sorted(word_set), substring

    def _containing(self, query: str) -> set[int]:
        """Every title containing `query`: a find loop when it is rare, one pass when it is common."""
        occurrences = self.haystack.count(query)
        if occurrences == 0:
            return set()
        if occurrences > _FIND_LOOP_LIMIT:
            return {i for i, title in enumerate(self.titles) if query in title}
        found = set()
        starts, find = self.starts, self.haystack.find
        position = find(query)
        while position != -1:
            line = bisect_right(starts, position) - 1
            found.add(line)
            position = find(query, starts[line + 1])
        return found


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

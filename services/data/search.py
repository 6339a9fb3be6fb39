"""Title search over everything the account references (watched, watchlist, history, lists).

One entry per title (deduplicated by type and Trakt id) remembers every place it was found.
Matching is case- and accent-insensitive ("amelie" finds "Amélie", "spider man" finds
"Spider-Man"). Ranking: exact title > title prefix > word prefix > substring; ties are
alphabetical. One- and two-character queries match title and word starts only (a substring
"a" matches nearly everything and helps nobody). Each class is found with bisects on sorted
lists, or (substrings) in the titles that hold the query's rarest three letters, never a scan of
every title.
"""

from __future__ import annotations

import re
import unicodedata
from array import array
from bisect import bisect_left
from itertools import repeat
from operator import contains
from typing import Any, Iterable, Sequence

import ujson

from services.data.snapshots import dumps

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


class TitleEntry:
    """What we know about one movie or show across the account.

    Kept for every title of the account, so kept small (README "Performance"): the Trakt object
    is its compact JSON text, parsed again only for the rows a search answers (a parsed copy of
    its `ids` costs a kilobyte: ujson makes new key strings for every object); `sources` and
    `lists` are shared tuples until a title has some of its own."""

    __slots__ = ("kind", "media", "sources", "lists", "plays", "last_watched_at", "rank", "listed_at", "rating",
                 "_row_text")

    def __init__(self, kind: str, media: dict) -> None:
        self.kind = kind  # "movie" | "show"
        self.media: str | dict = _compact(media)  # the Trakt movie/show object (title, year, ids)
        self.sources: tuple[str, ...] = ()
        self.lists: tuple[dict, ...] = ()
        self.plays: int | None = None
        self.last_watched_at: str | None = None
        self.rank: int | None = None
        self.listed_at: str | None = None
        self.rating: int | None = None
        self._row_text: tuple[str, str] | None = None  # row_json's two halves, made on first use

    @property
    def media_object(self) -> dict:
        return self.media if type(self.media) is dict else ujson.loads(self.media)

    def add_source(self, source: str) -> None:
        if source not in self.sources:
            self.sources = _SOURCE_SETS.setdefault((*self.sources, source), (*self.sources, source))

    def add_list(self, info: dict) -> None:
        if info not in self.lists:
            self.lists = (*self.lists, info)

    def row(self, score: str) -> dict:
        ordered = [s for s in SOURCES if s in self.sources]
        row: dict[str, Any] = {"type": self.kind, self.kind: self.media_object, "source": ordered[0],
                               "sources": ordered, "score": score}
        if self.lists:
            row["lists"] = list(self.lists)
        for key in ("plays", "last_watched_at", "rank", "listed_at", "rating"):
            value = getattr(self, key)
            if value is not None:
                row[key] = value
        return row

    def row_json(self, score: str) -> str:
        """`dumps(self.row(score))`, from text made the first time this title is answered: its
        row is the same for every query but the score, which sits between the two halves."""
        halves = self._row_text
        if halves is None:
            marker = "\x00score\x00"  # where the score goes: in JSON text, no title can hold this key and value
            head, tail = dumps(self.row(marker)).split(f',"score":{dumps(marker)}', 1)
            halves = self._row_text = (head + ',"score":"', '"' + tail)
        return halves[0] + score + halves[1]

    def __repr__(self) -> str:
        return f"TitleEntry({self.kind!r}, {self.media_object!r}, sources={self.sources!r})"


_SOURCE_SETS: dict[tuple[str, ...], tuple[str, ...]] = {}  # one tuple per combination, shared by titles


def _compact(media: dict) -> str | dict:
    """The object as JSON text when it reads back equal; otherwise (NaN, anything ujson cannot
    write) the object as it is."""
    try:
        text = ujson.dumps(media)
    except (OverflowError, UnicodeError, TypeError, ValueError):
        return media
    return text if ujson.loads(text) == media else media


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


class _TypeIndex:
    """The titles of one type, normalized and sorted, with three views for the match classes:
    the sorted list (exact and prefix: one bisect), the sorted word suffixes ("star wars" ->
    "wars": word prefix, one bisect) and, for each three letters any title holds, the titles
    holding them (substring: the candidates of the query's rarest three letters, checked in C)."""

    def __init__(self, entries: Iterable[TitleEntry]) -> None:
        triples = []
        for entry in entries:
            media = entry.media_object
            triples.append((normalize(media["title"]), media.get("year") or 0, entry))
        triples.sort(key=lambda t: (t[0], t[1]))
        self.titles = [t[0] for t in triples]
        self.entries = [t[2] for t in triples]
        del triples
        # Sorted by (suffix, owner): made in owner order, so a stable sort on the strings alone
        # does it, and string comparisons are several times cheaper than tuple ones (the sort holds
        # the GIL from start to end, and it runs beside the event loop).
        pairs_in_order = [(title[i + 1:], owner) for owner, title in enumerate(self.titles)
                          for i, char in enumerate(title) if char == " "]
        keys = [suffix for suffix, _ in pairs_in_order]
        order = sorted(range(len(keys)), key=keys.__getitem__)
        self.suffixes = [keys[k] for k in order]
        # Positions as 4-byte arrays, not lists of int objects (kept for every title).
        self.suffix_owners = array("I", [pairs_in_order[k][1] for k in order])
        self.grams = _grams(self.titles)

    def matches(self, query: str) -> _Matches:
        """The titles matching `query`, by class: counted now, listed on demand (`first`)."""
        return _Matches(self, query)

    def holding(self, query: str) -> Sequence[int]:
        """Ascending numbers of the titles that may hold `query` (at least GRAM letters long): those
        holding its rarest GRAM letters. Every title that holds `query` is among them."""
        grams = self.grams
        return min((grams.get(query[i:i + GRAM], _NONE) for i in range(len(query) - GRAM + 1)), key=len)


GRAM = SUBSTRING_MIN_LENGTH  # the letters a substring index is keyed by
_NONE = array("I")


def _grams(titles: Sequence[str]) -> dict[str, array]:
    """Each GRAM letters any title holds -> the ascending numbers of the titles holding them."""
    found: dict[str, list[int]] = {}
    for number, title in enumerate(titles):
        for gram in {title[i:i + GRAM] for i in range(len(title) - GRAM + 1)}:
            holders = found.get(gram)
            if holders is None:
                found[gram] = [number]
            else:
                holders.append(number)
    return {gram: array("I", holders) for gram, holders in found.items()}  # 4 bytes a title, not 36


class _Matches:
    """What one query matches in one _TypeIndex. Counting is C-speed work (bisects, a set built from
    a slice, `in` over the candidates of the query's rarest letters); listing a class walks only as
    far as the rows asked for, so a query that matches thousands of titles costs about what one that
    matches fifty does."""

    def __init__(self, index: _TypeIndex, query: str) -> None:
        self.index, self.query = index, query
        titles = index.titles
        low = bisect_left(titles, query)
        high = bisect_left(titles, query + _AFTER_EVERYTHING, low)
        exact_end = low
        while exact_end < high and titles[exact_end] == query:
            exact_end += 1
        self.starts_with = range(low, high)
        self.exact, self.prefix = range(low, exact_end), range(exact_end, high)
        word_low = bisect_left(index.suffixes, query)
        word_high = bisect_left(index.suffixes, query + _AFTER_EVERYTHING, word_low)
        self.words = set(index.suffix_owners[word_low:word_high])
        self.words.difference_update(self.starts_with)
        self.substring = len(query) >= SUBSTRING_MIN_LENGTH
        self.candidates = index.holding(query) if self.substring else _NONE
        # Every title of the other classes contains the query too: all of them are the titles containing it.
        self.total = self._containing() if self.substring else len(self.starts_with) + len(self.words)

    def _containing(self) -> int:
        """How many titles contain the query: its candidates, checked with `in` when the query is
        longer than the letters they were found by."""
        if len(self.query) == GRAM:
            return len(self.candidates)
        return sum(map(contains, map(self.index.titles.__getitem__, self.candidates), repeat(self.query)))

    def first(self, class_number: int, count: int) -> Sequence[int]:
        """The first `count` entries of a class (0 exact, 1 prefix, 2 word, 3 substring), alphabetical."""
        if count <= 0:
            return ()
        if class_number == 0:
            return self.exact[:count]
        if class_number == 1:
            return self.prefix[:count]
        if class_number == 2:
            return sorted(self.words)[:count]
        found: list[int] = []
        titles, query, better, words = self.index.titles, self.query, self.starts_with, self.words
        for number in self.candidates:  # ascending: alphabetical
            if query in titles[number] and number not in better and number not in words:
                found.append(number)
                if len(found) == count:
                    break
        return found


class SearchIndex:
    """Immutable once built; a new one is made whenever the data is reloaded."""

    def __init__(self, catalogue: Catalogue) -> None:
        self._by_type = {"movies": _TypeIndex(catalogue.of_kind("movie")),
                         "shows": _TypeIndex(catalogue.of_kind("show"))}

    def __len__(self) -> int:
        return sum(len(index.entries) for index in self._by_type.values())

    def search(self, query: str, kind: str = "all", limit: int = DEFAULT_LIMIT) -> dict:
        """The answer of GET /api/trakt/search as objects. `query` must not be blank (the handler checks)."""
        rows, total = self._ranked(query, kind, limit)
        results = {type_name: [entry.row(score) for entry, score in found] for type_name, found in rows.items()}
        return {"query": query, "type": kind, "results": results, "total_results": total}

    def search_json(self, query: str, kind: str = "all", limit: int = DEFAULT_LIMIT) -> bytes:
        """`dumps(search(...))` encoded, joined from each row's text (README "Performance"): making
        fifty row objects and serialising them was most of a search request's cost."""
        rows, total = self._ranked(query, kind, limit)
        results = ",".join(f'"{type_name}":[{",".join(entry.row_json(score) for entry, score in found)}]'
                           for type_name, found in rows.items())
        return (f'{{"query":{dumps(query)},"type":{dumps(kind)},"results":{{{results}}},'
                f'"total_results":{total}}}').encode()

    def _ranked(self, query: str, kind: str, limit: int) -> tuple[dict[str, list[tuple[TitleEntry, str]]], int]:
        """The entries answering `query` with their scores, by type, and how many titles match."""
        needle = normalize(query)
        rows: dict[str, list[tuple[TitleEntry, str]]] = {"movies": [], "shows": []}
        total = 0
        if needle:
            types = TYPES if kind == "all" else (kind,)
            matched = {t: self._by_type[t].matches(needle) for t in types}
            total = sum(m.total for m in matched.values())
            # `limit` caps the rows of the whole answer: better classes of either type come first.
            budget = limit
            for class_number, score in enumerate(("exact", "prefix", "word", "substring")):
                for type_name in types:
                    entries = self._by_type[type_name].entries
                    rows[type_name].extend((entries[i], score) for i in matched[type_name].first(class_number, budget))
                    budget = limit - len(rows["movies"]) - len(rows["shows"])
        return rows, total

"""Search's query path on an index built in memory: totals count titles (not occurrences), rows
stay within the limit in class order, however many titles a query matches."""

from __future__ import annotations

from services.data.search import Catalogue, SearchIndex


def index_of(titles: list[str]) -> SearchIndex:
    catalogue = Catalogue()
    for number, title in enumerate(titles):
        add(catalogue, "movie", title, number)
    return SearchIndex(catalogue)


def add(catalogue: Catalogue, kind: str, title: str, trakt: int) -> None:
    entry = catalogue.entry(kind, {"title": title, "year": 2000, "ids": {"trakt": trakt}})
    entry.add_source("watched")


def test_a_title_holding_the_query_twice_counts_once():
    index = index_of(["Banana Bandana", "Anaconda", "Cabana", "Nothing"])
    answer = index.search("ana", "movies")
    assert answer["total_results"] == 3
    assert [(row["movie"]["title"], row["score"]) for row in answer["results"]["movies"]] == [
        ("Anaconda", "prefix"), ("Banana Bandana", "substring"), ("Cabana", "substring")]


def test_a_query_matching_thousands_of_titles_lists_the_limit_in_class_order():
    # 3,000 titles: 1,000 start with "the", 1,000 have a word starting with it, 1,000 contain it inside a word
    titles = [f"The Film {n:04d}" for n in range(1000)] + [f"Film of the {n:04d}" for n in range(1000)] \
        + [f"Mother {n:04d}" for n in range(1000)]
    index = index_of(titles)
    answer = index.search("the", "movies", limit=50)
    rows = answer["results"]["movies"]
    assert answer["total_results"] == 3000
    assert len(rows) == 50 and {row["score"] for row in rows} == {"prefix"}
    assert rows[0]["movie"]["title"] == "The Film 0000" and rows[-1]["movie"]["title"] == "The Film 0049"
    tail = index.search("other", "movies", limit=5)  # only substrings ("mOTHER"), found from the first title on
    assert tail["total_results"] == 1000
    assert [row["movie"]["title"] for row in tail["results"]["movies"]] == [f"Mother {n:04d}" for n in range(5)]


def test_the_limit_spans_both_kinds_with_better_classes_first():
    catalogue = Catalogue()
    for kind, title, trakt in (("movie", "Solaris", 1), ("movie", "Persona", 2), ("show", "Sons", 3),
                               ("show", "Lessons", 4)):
        add(catalogue, kind, title, trakt)
    answer = SearchIndex(catalogue).search("so", "all", limit=2)  # two letters: starts of titles and words only
    assert answer["total_results"] == 2
    assert [row["score"] for kind in ("movies", "shows") for row in answer["results"][kind]] == ["prefix", "prefix"]
    three = SearchIndex(catalogue).search("son", "all", limit=3)
    assert three["total_results"] == 3  # Sons, and inside Lessons and Persona
    assert [(row["score"], row[row["type"]]["title"]) for kind in ("movies", "shows")
            for row in three["results"][kind]] == [("substring", "Persona"), ("prefix", "Sons"), ("substring", "Lessons")]


def test_a_title_holding_every_three_letters_of_a_query_but_not_the_query_is_no_match():
    # "oth the her" holds "oth", "the" and "her", each a piece of "other", but not "other" itself;
    # the substring index finds it as a candidate, and only the check of the whole query drops it.
    index = index_of(["Oth The Her", "Brother", "Otherworld"])
    answer = index.search("other", "movies")
    assert answer["total_results"] == 2
    assert [(row["movie"]["title"], row["score"]) for row in answer["results"]["movies"]] == [
        ("Otherworld", "prefix"), ("Brother", "substring")]
    assert index.search("xyz", "movies")["total_results"] == 0  # three letters no title holds

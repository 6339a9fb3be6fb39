"""Up next and calendar rows of the hand-made account (tests/helpers/upnext_account.py), by hand."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from services.data.upnext import build_shows, calendar, up_next
from tests.helpers.upnext_account import (ALPHA, BRAVO, CHARLIE, ECHO, HIDDEN, NOW, PREMIERE_MOVIE, SHOW_DATA,
                                          WATCHED_SHOWS, WATCHLIST_MOVIES, ZONE)

LA = ZoneInfo(ZONE)


def shows():
    return build_shows(WATCHED_SHOWS, SHOW_DATA, HIDDEN)


def brief(row):
    return {"title": row["show"]["title"], "next": row["next_episode"] and (
        row["next_episode"]["season"], row["next_episode"]["number"]), "left": row["aired_left"],
        "last": row["last_watched_at"], "status": row["status"]}


def test_up_next_lists_shows_in_progress_newest_first_counting_only_since_the_reset():
    rows = up_next(shows(), NOW)
    assert [brief(r) for r in rows] == [
        # restarted: only S01E01 was watched since reset_at, so S01E02 and S01E03 are left
        {"title": "Charlie", "next": (1, 2), "left": 2, "last": "2026-06-08T21:00:00.000Z", "status": "ended"},
        # S02E02 airs tonight, not yet: one aired episode left; the watched special changes nothing
        {"title": "Alpha", "next": (2, 1), "left": 1, "last": "2026-06-05T21:00:00.000Z",
         "status": "returning series"},
    ]
    assert rows[1]["next_episode"] == {"season": 2, "number": 1, "title": "Episode 2x1",
                                       "first_aired": "2026-06-04T02:00:00.000Z", "runtime": 45}
    assert rows[1]["show"] == {"title": "Alpha", "year": 2020, "ids": ALPHA["ids"]}
    assert (rows[1]["watched"], rows[1]["aired"]) == (3, 4)


def test_hidden_shows_and_unaired_specials_never_make_a_show_in_progress():
    titles = [r["show"]["title"] for r in up_next(shows(), NOW, include_completed=True)]
    assert "Delta" not in titles  # hidden, though it has aired episodes left
    echo = next(r for r in up_next(shows(), NOW, include_completed=True) if r["show"] == {
        "title": "Echo", "year": 2019, "ids": ECHO["ids"]})
    assert echo["next_episode"] is None and echo["aired_left"] == 0  # only a special is unwatched


def test_include_completed_adds_finished_shows_in_the_same_order():
    rows = up_next(shows(), NOW, include_completed=True)
    assert [(r["show"]["title"], r["aired_left"]) for r in rows] == [
        ("Charlie", 2), ("Alpha", 1), ("Echo", 0), ("Bravo", 0)]
    assert rows[-1]["show"]["ids"] == BRAVO["ids"] and rows[-1]["next_episode"] is None


def test_an_episode_airing_becomes_the_next_one_once_it_has_aired():
    later = NOW + timedelta(days=1)  # S02E02 aired at 02:00 UTC on June 11
    alpha = next(r for r in up_next(shows(), later) if r["show"]["ids"] == ALPHA["ids"])
    assert alpha["aired_left"] == 2 and alpha["next_episode"]["number"] == 1


def test_calendar_places_each_episode_on_its_local_day():
    rows = calendar(shows(), WATCHLIST_MOVIES, NOW, LA, 14)
    assert [(r["type"], r["title"], r["date"], r["local_time"], r["premiere"], r["finale"]) for r in rows] == [
        # 02:00 UTC on June 11 is 19:00 on June 10 in Los Angeles: still today
        ("episode", "Episode 2x2", "2026-06-10", "19:00", False, False),
        ("episode", "Episode 2x1", "2026-06-12", "13:00", True, False),  # Echo's season premiere
        ("movie", "June Movie", "2026-06-15", None, False, False),
        ("episode", "Episode 2x3", "2026-06-17", "19:00", False, True),  # Alpha's season finale
    ]
    first = rows[0]
    assert first["first_aired"] == "2026-06-11T02:00:00.000Z" and first["runtime"] == 50
    assert first["show"]["title"] == "Alpha" and (first["season"], first["number"]) == (2, 2)
    assert first["episode"] == {"season": 2, "number": 2, "title": "Episode 2x2"}
    assert rows[2]["movie"] == {"title": "June Movie", "year": 2026, "ids": PREMIERE_MOVIE["ids"]}


def test_calendar_in_utc_puts_the_evening_episode_on_the_next_day():
    rows = calendar(shows(), [], NOW, ZoneInfo("UTC"), 1)
    assert rows == []  # June 10 UTC has nothing; the episode is at 02:00 on June 11
    rows = calendar(shows(), [], NOW, ZoneInfo("UTC"), 2)
    assert [(r["date"], r["local_time"]) for r in rows] == [("2026-06-11", "02:00")]


def test_calendar_days_and_filters():
    assert [r["date"] for r in calendar(shows(), WATCHLIST_MOVIES, NOW, LA, 1)] == ["2026-06-10"]
    premieres = calendar(shows(), WATCHLIST_MOVIES, NOW, LA, 14, premieres_only=True)
    assert [(r["show"]["title"], r["season"], r["number"]) for r in premieres] == [("Echo", 2, 1)]
    in_progress = calendar(shows(), WATCHLIST_MOVIES, NOW, LA, 14, in_progress_only=True)
    assert {r.get("show", {}).get("title") for r in in_progress if r["type"] == "episode"} == {"Alpha"}
    # Charlie is in progress but ended: nothing upcoming; Delta is hidden
    assert all(r.get("show", {}).get("title") not in ("Delta", "Charlie") for r in calendar(
        shows(), WATCHLIST_MOVIES, NOW, LA, 90))


def test_shows_without_show_data_are_skipped():
    assert build_shows(WATCHED_SHOWS, SHOW_DATA[:1]) and len(build_shows(WATCHED_SHOWS, SHOW_DATA[:1])) == 1
    assert [r["show"]["ids"] for r in up_next(build_shows(WATCHED_SHOWS, SHOW_DATA[2:3]), NOW)] == [CHARLIE["ids"]]


def test_a_release_date_on_the_row_counts_as_well_as_on_the_movie():
    rows = [{"movie": {"title": "Row Dated", "year": 2026, "ids": {"trakt": 9}}, "released": "2026-06-12"},
            {"movie": {"title": "Undated", "year": 2026, "ids": {"trakt": 10}}}]
    found = calendar([], rows, NOW, LA, 14)
    assert [(r["title"], r["date"], r["type"]) for r in found] == [("Row Dated", "2026-06-12", "movie")]


def test_a_show_the_sync_fetched_no_episodes_for_is_finished_with_trakts_aired_count():
    # Bravo ended and was watched to the end: the sync keeps its row without seasons (README "Up next
    # and the calendar"), with Trakt's aired_episodes, 2, for the progress bar.
    data = [dict(row, seasons=None, aired_episodes=2) if row["show"]["ids"] == BRAVO["ids"] else row
            for row in SHOW_DATA]
    rows = up_next(build_shows(WATCHED_SHOWS, data, HIDDEN), NOW, include_completed=True)
    bravo = next(r for r in rows if r["show"]["ids"] == BRAVO["ids"])
    assert (bravo["next_episode"], bravo["aired_left"], bravo["watched"], bravo["aired"]) == (None, 0, 2, 2)
    assert [r["show"]["title"] for r in up_next(build_shows(WATCHED_SHOWS, data, HIDDEN), NOW)] == ["Charlie", "Alpha"]
    assert not [r for r in calendar(build_shows(WATCHED_SHOWS, data, HIDDEN), [], NOW, LA, 90)
                if r.get("show", {}).get("ids") == BRAVO["ids"]]


def test_upcoming_episodes_from_the_calendar_alone_air_into_up_next_and_are_never_a_finale():
    # Echo, signed in: watched to the end, so only its upcoming episodes are known (`partial`).
    premiere = {"season": 2, "number": 1, "title": "Episode 2x1", "first_aired": "2026-06-12T20:00:00.000Z",
                "runtime": None, "ids": {"trakt": 201}}
    data = [dict(row, seasons=[{"number": 2, "episodes": [premiere]}], partial=True, aired_episodes=1)
            if row["show"]["ids"] == ECHO["ids"] else row for row in SHOW_DATA]
    shows = build_shows(WATCHED_SHOWS, data, HIDDEN)
    rows = [r for r in calendar(shows, [], NOW, LA, 14) if r.get("show", {}).get("ids") == ECHO["ids"]]
    assert [(r["season"], r["number"], r["date"], r["premiere"], r["finale"], r["runtime"]) for r in rows] == [
        (2, 1, "2026-06-12", True, False, 60)]  # the only known episode of its season, yet no finale
    after = NOW + timedelta(days=3)
    echo = next(r for r in up_next(shows, after) if r["show"]["ids"] == ECHO["ids"])
    assert echo["next_episode"]["first_aired"] == "2026-06-12T20:00:00.000Z" and echo["aired_left"] == 1
    assert (echo["watched"], echo["aired"]) == (1, 2)  # S01E01 and the premiere

"""GET /api/trakt/user/insights and /summary on a small hand-made account whose answers are known.

The account lives in America/St_Johns (UTC-3:30, daylight time UTC-2:30 from 9 March to 2 November
2025): a half-hour zone with both daylight-saving changes, a play at 23:30 local time that is the next
day in UTC, rewatches, a streak across New Year and plays with no runtime anywhere. Every expected
figure below was worked out by hand from the rows (the comments show how).
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timezone

import pytest

from services.config import Config
from services.data import layout
from services.data.snapshots import write_flat_folder
from tests.helpers.serving import get

ZONE = "America/St_Johns"
LAST_UPDATED = "2025-11-02T12:00:00.000000+00:00"  # 09:00 local on 2 November 2025: "today"

# Minimal objects, as the history carries them; the watched collections add runtimes and genres.
M1 = {"title": "Harbour Lights", "year": 1994, "ids": {"trakt": 11, "slug": "harbour-lights-1994", "tmdb": 111}}
M2 = {"title": "No Runtime Known", "year": 2001, "ids": {"trakt": 12, "slug": "no-runtime-known-2001", "tmdb": 112}}
S1 = {"title": "Fog Island", "year": 2019, "ids": {"trakt": 21, "slug": "fog-island", "tmdb": 221}}
S2 = {"title": "Silent Tide", "year": 2008, "ids": {"trakt": 22, "slug": "silent-tide", "tmdb": 222}}
S1E1 = {"season": 1, "number": 1, "title": "Pilot", "ids": {"trakt": 2101}, "runtime": 28}
S1E2 = {"season": 1, "number": 2, "title": "Second", "ids": {"trakt": 2102}}  # no runtime: the show's 30
S2E1 = {"season": 1, "number": 1, "title": "Quiet", "ids": {"trakt": 2201}}  # nothing anywhere: 0 minutes


def movie_play(row_id: int, when: str, movie: dict) -> dict:
    return {"id": row_id, "watched_at": when, "action": "watch", "type": "movie", "movie": movie}


def episode_play(row_id: int, when: str, show: dict, episode: dict) -> dict:
    return {"id": row_id, "watched_at": when, "action": "watch", "type": "episode", "episode": episode, "show": show}


HISTORY_MOVIES = [  # newest first, as Trakt lists them
    movie_play(6, "2025-11-02T04:00:00.000Z", M1),   # 01:30 NDT, 2 Nov (a rewatch)
    movie_play(8, "2025-03-09T06:00:00.000Z", M1),   # 03:30 NDT, 9 Mar, just after the spring change (a rewatch)
    movie_play(5, "2025-01-02T20:00:00.000Z", M2),   # 16:30 NST, 2 Jan, no runtime
    movie_play(1, "2024-12-30T23:00:00.000Z", M1),   # 19:30 NST, 30 Dec 2024, 100 min
]
HISTORY_SHOWS = [
    episode_play(7, "2025-11-02T04:45:00.000Z", S2, S2E1),   # 01:15 NST, 2 Nov, after the autumn change, 0 min
    episode_play(9, "2025-03-09T05:15:00.000Z", S1, S1E1),   # 01:45 NST, 9 Mar, before the spring change (rewatch)
    episode_play(4, "2025-01-02T03:00:00.000Z", S1, S1E1),   # 23:30 NST on 1 Jan: 2 Jan in UTC (a rewatch)
    episode_play(3, "2025-01-01T04:00:00.000Z", S1, S1E2),   # 00:30 NST, 1 Jan 2025, 30 min (the show's)
    episode_play(2, "2025-01-01T02:00:00.000Z", S1, S1E1),   # 22:30 NST, 31 Dec 2024, 28 min
]
WATCHED_MOVIES = [
    {"plays": 3, "last_watched_at": "2025-11-02T04:00:00.000Z",
     "movie": {**M1, "runtime": 100, "genres": ["drama"], "country": "ca", "language": "en"}},
    {"plays": 1, "last_watched_at": "2025-01-02T20:00:00.000Z", "movie": M2},
]
WATCHED_SHOWS = [
    {"plays": 4, "last_watched_at": "2025-03-09T05:15:00.000Z",
     "show": {**S1, "runtime": 30, "genres": ["comedy", "drama"], "country": "ca", "language": "fr"}, "seasons": []},
    {"plays": 1, "last_watched_at": "2025-11-02T04:45:00.000Z", "show": S2, "seasons": []},
]
RATINGS = [
    {"rated_at": "2025-05-01T12:00:00.000Z", "rating": 9, "type": "movie", "movie": M1},
    {"rated_at": "2025-01-02T03:00:00.000Z", "rating": 4, "type": "movie", "movie": M2},  # 23:30 on 1 Jan: 2025
    {"rated_at": "2024-12-31T12:00:00.000Z", "rating": 7, "type": "show", "show": S1},
]


@pytest.fixture
def data_dir(tmp_path):
    files = {
        layout.PROFILE: {"username": "sam", "private": False, "name": "Sam", "ids": {"slug": "sam"}},
        layout.STATS: {},
        layout.HISTORY["movies"]: HISTORY_MOVIES,
        layout.HISTORY["shows"]: HISTORY_SHOWS,
        layout.WATCHED["movies"]: WATCHED_MOVIES,
        layout.WATCHED["shows"]: WATCHED_SHOWS,
        layout.RATINGS: RATINGS,
    }
    write_flat_folder(tmp_path / "data", files, username="sam", source=layout.SOURCE_TRAKT, last_updated=LAST_UPDATED)
    return tmp_path / "data"


@pytest.fixture
def config(data_dir) -> Config:
    return replace(Config(), data_dir=data_dir, timezone=ZONE, data_check_seconds=0.1)


async def insights(http_client, base_url, query: str = "") -> dict:
    response = await get(http_client, base_url, "/api/trakt/user/insights" + query)
    assert response.code == 200, response.body
    assert response.headers["Content-Type"] == "application/json; charset=UTF-8"
    return json.loads(response.body)


@pytest.mark.gen_test
async def test_a_year_counts_its_local_plays_minutes_titles_and_rewatches(http_client, base_url):
    document = await insights(http_client, base_url, "?year=2025")
    assert document["year"] == 2025 and document["timezone"] == ZONE
    assert document["years"] == [2025, 2024]
    # 2025 local: plays 3, 4 (S1 episodes), 5 (M2), 9 (S1E1), 8 (M1), 6 (M1), 7 (S2E1).
    # Minutes: 30 + 28 + 0 + 28 + 100 + 100 + 0; rewatches: 4, 9 (S1E1 seen in 2024), 8, 6 (M1 seen in 2024).
    assert document["totals"] == {"plays": 7, "movie_plays": 3, "episode_plays": 4, "minutes": 286, "movies": 2,
                                  "shows": 2, "episodes": 3, "rewatches": 4, "unknown_runtime_plays": 2}
    assert document["first_play"]["id"] == 3 and document["last_play"]["id"] == 7


@pytest.mark.gen_test
async def test_the_play_at_half_past_eleven_local_belongs_to_the_local_day_and_hour(http_client, base_url):
    document = await insights(http_client, base_url, "?year=2025")
    # Play 4 (03:00Z on 2 Jan) is 23:30 on 1 Jan; plays 8 and 9 straddle the spring change on 9 Mar,
    # plays 6 and 7 the autumn one on 2 Nov (both at 01:xx local, one each side of the change).
    assert document["days"] == {"2025-01-01": 2, "2025-01-02": 1, "2025-03-09": 2, "2025-11-02": 2}
    hours = {row["hour"]: (row["plays"], row["minutes"]) for row in document["by_hour"] if row["plays"]}
    assert hours == {0: (1, 30), 1: (3, 128), 3: (1, 100), 16: (1, 0), 23: (1, 28)}
    assert [row["hour"] for row in document["by_hour"]] == list(range(24))
    # 1 Jan 2025 a Wednesday, 2 Jan a Thursday, 9 Mar and 2 Nov Sundays.
    assert [row["plays"] for row in document["by_weekday"]] == [0, 0, 2, 1, 0, 0, 4]
    assert document["by_weekday"][0]["weekday"] == "Mon"
    months = {row["month"]: (row["plays"], row["minutes"]) for row in document["by_month"]}
    assert len(months) == 12 and months["2025-01"] == (3, 58) and months["2025-03"] == (2, 128)
    assert months["2025-11"] == (2, 100) and months["2025-06"] == (0, 0)
    # Three days have 2 plays; 9 Mar has the most minutes.
    assert document["busiest_day"] == {"date": "2025-03-09", "plays": 2, "minutes": 128}
    assert document["busiest_month"] == {"month": "2025-01", "plays": 3, "minutes": 58}
    assert document["busiest_week"] == {"week": "2025-W01", "start": "2024-12-30", "plays": 3, "minutes": 58}


@pytest.mark.gen_test
async def test_a_streak_across_new_year_gives_each_year_its_days_and_all_time_the_whole(http_client, base_url):
    last_year = await insights(http_client, base_url, "?year=2024")
    assert last_year["streaks"]["longest"] == {"days": 2, "start": "2024-12-30", "end": "2024-12-31"}
    assert last_year["streaks"]["current"] == {"days": 2, "start": "2024-12-30", "end": "2024-12-31"}
    this_year = await insights(http_client, base_url, "?year=2025")
    assert this_year["streaks"]["longest"] == {"days": 2, "start": "2025-01-01", "end": "2025-01-02"}
    assert this_year["streaks"]["current"] == {"days": 1, "start": "2025-11-02", "end": "2025-11-02"}
    everything = await insights(http_client, base_url)
    assert everything["streaks"]["longest"] == {"days": 4, "start": "2024-12-30", "end": "2025-01-02"}
    assert everything["streaks"]["current"] == {"days": 1, "start": "2025-11-02", "end": "2025-11-02"}


@pytest.mark.gen_test
async def test_all_time_adds_the_years_and_counts_each_title_once(http_client, base_url):
    document = await insights(http_client, base_url)
    assert document["year"] is None
    # 9 plays of 5 items (M1, M2, S1E1, S1E2, S2E1): 4 rewatches; 414 = 128 (2024) + 286 (2025).
    assert document["totals"] == {"plays": 9, "movie_plays": 4, "episode_plays": 5, "minutes": 414, "movies": 2,
                                  "shows": 2, "episodes": 3, "rewatches": 4, "unknown_runtime_plays": 2}
    assert document["first_play"]["id"] == 1 and document["last_play"]["id"] == 7
    assert [row["month"] for row in document["by_month"]][:2] == ["2024-12", "2025-01"]
    assert len(document["by_month"]) == 12  # December 2024 to November 2025


@pytest.mark.gen_test
async def test_genres_decades_countries_and_languages_come_from_the_watched_collections(http_client, base_url):
    document = await insights(http_client, base_url, "?year=2025")
    # drama: M1 (2 plays, 200 min) and S1 (3 plays, 86 min); comedy: S1 only. M2 and S2 have none.
    assert document["genres"] == [{"genre": "drama", "plays": 5, "minutes": 286},
                                  {"genre": "comedy", "plays": 3, "minutes": 86}]
    # M1 1994, M2 2001, S1 2019, S2 2008.
    assert document["decades"] == [{"decade": 1990, "plays": 2}, {"decade": 2000, "plays": 2},
                                   {"decade": 2010, "plays": 3}]
    assert document["countries"] == [{"country": "ca", "plays": 5}]
    assert document["languages"] == [{"language": "fr", "plays": 3}, {"language": "en", "plays": 2}]


@pytest.mark.gen_test
async def test_top_shows_by_minutes_and_top_movies_by_plays(http_client, base_url):
    document = await insights(http_client, base_url, "?year=2025")
    assert [(row["show"]["title"], row["plays"], row["minutes"], row["episodes"]) for row in document["top_shows"]] == [
        ("Fog Island", 3, 86, 2), ("Silent Tide", 1, 0, 1)]
    assert [(row["movie"]["title"], row["plays"], row["minutes"]) for row in document["top_movies"]] == [
        ("Harbour Lights", 2, 200), ("No Runtime Known", 1, 0)]
    assert document["top_movies"][0]["movie"]["ids"]["tmdb"] == 111


@pytest.mark.gen_test
async def test_ratings_given_in_the_period_by_local_date(http_client, base_url):
    document = await insights(http_client, base_url, "?year=2025")
    ratings = document["ratings"]
    assert (ratings["count"], ratings["average"]) == (2, 6.5)
    assert ratings["distribution"] == {str(n): int(n in (4, 9)) for n in range(1, 11)}
    assert [(r["rating"], r["movie"]["title"]) for r in ratings["highest"]] == [(9, "Harbour Lights"),
                                                                                (4, "No Runtime Known")]
    last_year = await insights(http_client, base_url, "?year=2024")
    assert last_year["ratings"]["count"] == 1 and last_year["ratings"]["highest"][0]["show"]["title"] == "Fog Island"


@pytest.mark.gen_test
async def test_a_year_without_plays_is_200_with_zeros(http_client, base_url):
    document = await insights(http_client, base_url, "?year=2019")
    assert document["year"] == 2019 and document["years"] == [2025, 2024]
    assert set(document["totals"].values()) == {0}
    assert document["days"] == {} and document["top_shows"] == [] and document["genres"] == []
    assert document["first_play"] is None and document["busiest_day"] is None
    assert document["streaks"]["longest"] == {"days": 0, "start": None, "end": None}
    assert [row["plays"] for row in document["by_month"]] == [0] * 12
    assert document["ratings"] == {"count": 0, "average": None,
                                   "distribution": {str(n): 0 for n in range(1, 11)}, "highest": []}


@pytest.mark.parametrize("query,message", [
    ("?year=abc", "must be a whole number"),
    ("?year=2025.0", "must be a whole number"),
    ("?year=-2025", "must be a whole number"),
    ("?year=1899", "between 1900 and 2100"),
    ("?year=2101", "between 1900 and 2100"),
    ("?year=2024&year=2025", "send it once"),
])
@pytest.mark.gen_test
async def test_a_malformed_or_out_of_range_year_is_400_with_a_message(http_client, base_url, query, message):
    response = await get(http_client, base_url, "/api/trakt/user/insights" + query)
    assert response.code == 400
    assert message in json.loads(response.body)["error"]


@pytest.mark.gen_test
async def test_a_blank_year_is_all_time(http_client, base_url):
    assert (await insights(http_client, base_url, "?year="))["year"] is None


@pytest.mark.gen_test
async def test_insights_carry_an_etag_and_answer_304(http_client, base_url):
    first = await get(http_client, base_url, "/api/trakt/user/insights?year=2025")
    again = await get(http_client, base_url, "/api/trakt/user/insights?year=2025",
                      headers={"If-None-Match": first.headers["Etag"]})
    assert again.code == 304
    other = await get(http_client, base_url, "/api/trakt/user/insights?year=2024")
    assert other.headers["Etag"] != first.headers["Etag"]
    assert first.headers["Access-Control-Allow-Origin"] == "*"


@pytest.mark.gen_test
async def test_the_summary_counts_from_the_real_day_and_names_the_last_play(http_client, base_url, services):
    # Asked on 2 Nov 2025 at 20:00 local: two plays that day, the week of 27 Oct–2 Nov, 2025 so far.
    now = datetime(2025, 11, 2, 22, 30, tzinfo=timezone.utc)
    summary = services.store.summary({"isWatching": False}, now)
    assert summary == {
        "timezone": ZONE, "now_watching": None, "plays_today": 2, "plays_this_week": 2, "plays_this_year": 7,
        "minutes_this_year": 286, "current_streak": 1, "current_streak_start": "2025-11-02",
        "last_watched": {"type": "episode", "title": "Silent Tide", "subtitle": "S1E1 - Quiet",
                         "watched_at": "2025-11-02T04:45:00.000Z"},
        "next_up": None,
    }
    # The next evening nothing was watched yet: the streak still stands; a day later it is over.
    later = services.store.summary({"isWatching": False}, datetime(2025, 11, 3, 22, 0, tzinfo=timezone.utc))
    assert (later["plays_today"], later["plays_this_week"], later["current_streak"]) == (0, 0, 1)
    gone = services.store.summary({"isWatching": False}, datetime(2025, 11, 4, 22, 0, tzinfo=timezone.utc))
    assert (gone["current_streak"], gone["current_streak_start"]) == (0, None)


@pytest.mark.gen_test
async def test_the_summary_route_shows_what_plays_now_with_its_percentage(http_client, base_url, services):
    watching = {"isWatching": True, "content": {"type": "movie", "title": "Harbour Lights", "subtitle": "1994",
                                                "progress": {"percentage": 41.26}}}
    assert services.store.summary(watching)["now_watching"] == {
        "type": "movie", "title": "Harbour Lights", "subtitle": "1994", "percentage": 41.3}
    response = await get(http_client, base_url, "/api/trakt/user/summary")
    assert response.code == 200 and response.headers["Cache-Control"] == "no-cache"
    summary = json.loads(response.body)
    assert summary["now_watching"] is None and summary["plays_this_year"] >= 0
    assert summary["last_watched"]["title"] == "Silent Tide"

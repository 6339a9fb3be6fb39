"""Insights of the demo account agree with a play-by-play count made here, in several time zones.

The expected figures are computed from the history rows with zoneinfo, one play at a time, without
any of the code under test.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from services.data import layout
from services.data.dataset import build_dataset

DEMO = Path(__file__).resolve().parents[2] / "data" / "demo"
ZONES = ["America/New_York", "Asia/Kolkata", "Australia/Lord_Howe", "America/St_Johns"]


def load(endpoint: str) -> list:
    return json.loads((DEMO / endpoint).read_text())["data"]


@pytest.fixture(scope="module")
def raw_files() -> dict[str, bytes]:
    return {p.relative_to(DEMO).as_posix(): p.read_bytes() for p in DEMO.rglob("*.json")}


def expected(zone: str, year: int | None) -> dict:
    local = ZoneInfo(zone)
    watched = {("movie", r["movie"]["ids"]["trakt"]): r["movie"] for r in load(layout.WATCHED["movies"])}
    watched.update({("show", r["show"]["ids"]["trakt"]): r["show"] for r in load(layout.WATCHED["shows"])})
    rows = load(layout.HISTORY["movies"]) + load(layout.HISTORY["shows"])
    rows.sort(key=lambda r: r["watched_at"])
    seen: set = set()
    totals = Counter()
    days: Counter = Counter()
    hours: Counter = Counter()
    genres: Counter = Counter()
    genre_minutes: Counter = Counter()
    decades: Counter = Counter()
    movies, shows, episodes = set(), set(), set()
    for row in rows:
        when = datetime.fromisoformat(row["watched_at"].replace("Z", "+00:00")).astimezone(local)
        if "movie" in row:
            item = ("movie", row["movie"]["ids"]["trakt"])
            title = watched.get(item, row["movie"])
            minutes = row["movie"].get("runtime") or title.get("runtime") or 0
        else:
            item = ("episode", row["episode"]["ids"]["trakt"])
            title = watched.get(("show", row["show"]["ids"]["trakt"]), row["show"])
            minutes = row["episode"].get("runtime") or row["show"].get("runtime") or title.get("runtime") or 0
        rewatch = item in seen
        seen.add(item)
        if year is not None and when.year != year:
            continue
        totals["plays"] += 1
        totals["movie_plays" if "movie" in row else "episode_plays"] += 1
        totals["minutes"] += minutes
        totals["rewatches"] += rewatch
        totals["unknown_runtime_plays"] += not minutes
        (movies if "movie" in row else shows).add(title["ids"]["trakt"])
        if "episode" in row:
            episodes.add(row["episode"]["ids"]["trakt"])
        days[when.date().isoformat()] += 1
        hours[when.hour] += 1
        for genre in title.get("genres", []):
            genres[genre] += 1
            genre_minutes[genre] += minutes
        decades[title["year"] // 10 * 10] += 1
    totals.update(movies=len(movies), shows=len(shows), episodes=len(episodes))
    longest = run = 0
    previous = None
    for day in sorted(date.fromisoformat(d) for d in days):
        run = run + 1 if previous is not None and day - previous == timedelta(days=1) else 1
        longest = max(longest, run)
        previous = day
    return {"totals": totals, "days": dict(days), "hours": hours, "genres": genres, "genre_minutes": genre_minutes,
            "decades": decades, "longest": longest}


@pytest.mark.parametrize("zone", ZONES)
def test_every_demo_year_and_all_time_match_a_play_by_play_count(raw_files, zone):
    insights = build_dataset(DEMO, raw_files, is_demo=True, zone=zone).insights
    assert insights.years == sorted({y for y in insights.years}, reverse=True) and len(insights.years) >= 3
    for year in [*insights.years, None]:
        document = insights.documents[year]
        want = expected(zone, year)
        assert document["totals"] == {k: want["totals"][k] for k in document["totals"]}, year
        assert document["days"] == want["days"], year
        assert {r["hour"]: r["plays"] for r in document["by_hour"] if r["plays"]} == dict(want["hours"]), year
        assert {g["genre"]: (g["plays"], g["minutes"]) for g in document["genres"]} == {
            g: (want["genres"][g], want["genre_minutes"][g]) for g in want["genres"]}, year
        assert {d["decade"]: d["plays"] for d in document["decades"]} == dict(want["decades"]), year
        assert document["streaks"]["longest"]["days"] == want["longest"], year
        busiest = max(want["days"].values())
        assert document["busiest_day"]["plays"] == busiest, year


def test_the_demo_has_every_field_filled(raw_files):
    document = build_dataset(DEMO, raw_files, is_demo=True, zone="Europe/Paris").insights.documents[2025]
    for name in ("genres", "decades", "countries", "languages", "top_shows", "top_movies"):
        assert document[name], name
    assert document["totals"]["unknown_runtime_plays"] == 0
    assert document["ratings"]["count"] > 0 and document["ratings"]["highest"]
    assert len(document["top_shows"]) == len(document["top_movies"]) == 10
    minutes = [row["minutes"] for row in document["top_shows"]]
    assert minutes == sorted(minutes, reverse=True)
    plays = [row["plays"] for row in document["top_movies"]]
    assert plays == sorted(plays, reverse=True)


@pytest.mark.parametrize("zone,change", [
    ("Australia/Lord_Howe", "2025-04-05T14:00"),  # half-hour zone whose clocks go back half an hour (15:00Z)
    ("Australia/Lord_Howe", "2025-10-04T15:00"),  # ... and forward again (15:30Z)
    ("America/St_Johns", "2025-03-09T05:00"),
    ("Asia/Kathmandu", "2025-06-01T00:00"),       # +05:45, no daylight saving
    ("Europe/London", "2025-10-26T00:00"),
])
def test_every_minute_around_a_change_gets_the_local_date_and_hour_zoneinfo_gives(zone, change):
    from services.data.insights import InsightsCollector

    collector = InsightsCollector(ZoneInfo(zone), zone)
    start = datetime.fromisoformat(change + ":00+00:00")
    for minute in range(0, 3 * 60):
        moment = start + timedelta(minutes=minute, seconds=17)
        stamp = moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")
        local = moment.astimezone(ZoneInfo(zone))
        assert collector.local_slot(stamp) == (local.year, local.toordinal(), local.hour), stamp

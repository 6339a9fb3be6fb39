"""The bundled demo's up next and calendar: shows in every state, and a fortnight that starts today."""

from __future__ import annotations

from datetime import date, timedelta
import ujson

from services import resources, times
from services.data import layout
from services.data.dataset import build_dataset
from services.demo.account import ANCHOR

BUNDLED = resources.demo_data_dir()


def bundled_files() -> dict[str, bytes]:
    return {p.relative_to(BUNDLED).as_posix(): p.read_bytes() for p in sorted(BUNDLED.rglob("*.json"))
            if p.relative_to(BUNDLED).parts[0] != "images"}


def shows_file(endpoint: str) -> list:
    return ujson.loads((BUNDLED / endpoint).read_bytes())["data"]


def test_the_demo_has_shows_in_progress_finished_hidden_restarted_and_returning():
    dataset = build_dataset(BUNDLED, bundled_files(), is_demo=True, zone="UTC")
    now = times.now()
    in_progress = dataset.upnext.up_next_document(now, False)["data"]
    everything = dataset.upnext.up_next_document(now, True)["data"]
    assert len(in_progress) >= 5 and all(r["aired_left"] > 0 for r in in_progress)
    assert any(r["next_episode"] is None for r in everything)  # finished shows
    assert {r["status"] for r in everything} >= {"returning series", "ended"}
    hidden = {row["show"]["ids"]["trakt"] for row in shows_file(layout.SHOW_HIDDEN)}
    assert hidden and not hidden & {r["show"]["ids"]["trakt"] for r in everything}
    restarted = {row["show"]["ids"]["trakt"] for row in shows_file(layout.SHOW_SEASONS) if row.get("reset_at")}
    assert restarted and restarted <= {r["show"]["ids"]["trakt"] for r in in_progress}


def test_the_demo_calendar_is_an_upcoming_fortnight_from_the_day_it_is_loaded():
    dataset = build_dataset(BUNDLED, bundled_files(), is_demo=True, zone="UTC")
    now = times.now()
    rows = dataset.upnext.calendar_document(now, 14)["data"]
    today = now.date()
    days = sorted({date.fromisoformat(r["date"]) for r in rows})
    assert len(rows) >= 6 and days[0] >= today and days[-1] < today + timedelta(days=14)
    assert days[0] <= today + timedelta(days=2)  # something airs in the first days
    assert any(r["premiere"] for r in rows)
    movies = [r for r in rows if r["type"] == "movie"]
    assert len(movies) == 3 and all(r["first_aired"] is None and r["local_time"] is None for r in movies)


def test_the_air_dates_move_only_for_the_demo():
    files = bundled_files()
    now = times.now()
    shift = timedelta(days=(now.date() - ANCHOR.date()).days)
    as_synced = build_dataset(BUNDLED, files, is_demo=False, zone="UTC").upnext.calendar_document(ANCHOR, 14)
    as_demo = build_dataset(BUNDLED, files, is_demo=True, zone="UTC").upnext.calendar_document(now, 14)
    assert as_synced["data"], "upcoming episodes from the account's own date"
    def key(row, moved=timedelta(0)):
        return (row.get("show", row.get("movie"))["title"], row.get("season"), row.get("number"),
                date.fromisoformat(row["date"]) + moved)

    assert [key(r, shift) for r in as_synced["data"]] == [key(r) for r in as_demo["data"]]

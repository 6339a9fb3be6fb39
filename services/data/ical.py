"""The calendar rows as an RFC 5545 feed (README "Calendar feed"), built with `icalendar`.

Each row is one event whose UID names the episode or movie, so a calendar app that refreshes the
feed updates an event (a new air time) instead of adding a second one.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from icalendar import Calendar, Event

from services import times

PRODUCT = "-//trakt-watch//Upcoming episodes//EN"
UID_DOMAIN = "trakt-watch"
TRAKT_WEB = "https://trakt.tv"
REFRESH = timedelta(hours=6)  # how often calendar apps are asked to fetch it again (RFC 7986)


def event_uid(row: dict) -> str:
    if row["type"] == "movie":
        return f"movie-{row['movie']['ids'].get('trakt')}@{UID_DOMAIN}"
    return f"episode-{row['show']['ids'].get('trakt')}-s{row['season']}e{row['number']}@{UID_DOMAIN}"


def summary(row: dict) -> str:
    """"Show — S02E05 Title" for an episode; the title for a movie release."""
    if row["type"] == "movie":
        return str(row.get("title") or "Movie release")
    code = f"S{row['season']:02d}E{row['number']:02d}"
    title = f" {row['title']}" if row.get("title") else ""
    return f"{row['show'].get('title') or 'Show'} — {code}{title}"


def trakt_url(row: dict) -> str | None:
    media = row.get("movie" if row["type"] == "movie" else "show") or {}
    slug = (media.get("ids") or {}).get("slug") or (media.get("ids") or {}).get("trakt")
    if slug is None:
        return None
    if row["type"] == "movie":
        return f"{TRAKT_WEB}/movies/{slug}"
    return f"{TRAKT_WEB}/shows/{slug}/seasons/{row['season']}/episodes/{row['number']}"


def feed(rows: list[dict], stamp: datetime, name: str = "Trakt: upcoming") -> bytes:
    """The VCALENDAR of `rows`; `stamp` is every event's DTSTAMP (when the data was made)."""
    calendar = Calendar()
    calendar.add("prodid", PRODUCT)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("x-wr-calname", name)
    calendar.add("refresh-interval", REFRESH, parameters={"VALUE": "DURATION"})
    calendar.add("x-published-ttl", REFRESH)
    stamp = stamp.astimezone(UTC)
    for row in rows:
        event = Event()
        event.add("uid", event_uid(row))
        event.add("dtstamp", stamp)
        event.add("summary", summary(row))
        if row["type"] == "movie":
            day = date.fromisoformat(row["date"])
            event.add("dtstart", day)  # an all-day event: a release is a day, not a moment
            event.add("dtend", day + timedelta(days=1))
        else:
            event.add("dtstart", times.parse_iso(row["first_aired"]))
            if row.get("runtime"):
                event.add("duration", timedelta(minutes=row["runtime"]))
        url = trakt_url(row)
        if url:
            event.add("url", url)
            event.add("description", url)
        event.add("transp", "TRANSPARENT")  # an air time does not make you busy
        calendar.add_component(event)
    return calendar.to_ical()

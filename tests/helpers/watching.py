"""What the fake Trakt's /watching answers while a movie plays (the sign-in tests start playback with it)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def watching_payload() -> dict:
    now = datetime.now(UTC)
    fmt = "%Y-%m-%dT%H:%M:%S.000Z"
    return {"expires_at": (now + timedelta(minutes=90)).strftime(fmt),
            "started_at": (now - timedelta(minutes=10)).strftime(fmt), "action": "scrobble", "type": "movie",
            "movie": {"title": "Heat", "year": 1995, "ids": {"trakt": 5, "slug": "heat-1995", "tmdb": 949}}}

"""The web layer's README numbers: every security header README "Security and reliability"
lists, and the `/api/trakt` metadata `stale` and `sync` of README "API", each checked over HTTP
with the values written in the README."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from tornado.httpclient import AsyncHTTPClient

from services.config import Config
from tests.fakes.tmdb import jpeg_bytes
from tests.helpers import accounts
from tests.helpers.files import touch
from tests.helpers.serving import serving

# README "Security and reliability", word for word.
DASHBOARD_HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}
EVERY_ANSWER_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
IMAGE_FILE_CSP = "default-src 'none'; style-src 'unsafe-inline'; sandbox"
AVATAR_HOSTS = ["https://*.trakt.tv", "https://secure.gravatar.com"]


async def fetch(url, **kwargs):
    response = await AsyncHTTPClient().fetch(url, raise_error=False, follow_redirects=False, **kwargs)
    assert response.code != 599, response.error
    return response


def policy(response) -> dict[str, str]:
    return dict(part.split(" ", 1) for part in response.headers["Content-Security-Policy"].split("; "))


@pytest.mark.parametrize("settings, image_hosts", [
    ({}, ["https://image.tmdb.org", *AVATAR_HOSTS]),
    ({"image_base_url": "https://cdn.example.org/watch", "image_proxy": "wsrv"},
     ["https://cdn.example.org", "https://image.tmdb.org", *AVATAR_HOSTS, "https://wsrv.nl"]),
])
@pytest.mark.gen_test(timeout=20)
async def test_every_security_header_the_readme_lists_is_sent(account_dir, settings, image_hosts):
    touch(account_dir / "images", "movies/posters/1_poster.jpg", jpeg_bytes(4, 4, 1))
    config = replace(Config(), data_dir=account_dir, timezone="UTC", **settings)
    async with serving(config) as url:
        dashboard = [await fetch(url + "/"), await fetch(url + "/static/style.css")]
        others = [await fetch(url + path) for path in ("/api/trakt/user/stats", "/api/nothing", "/healthz",
                                                       "/metrics", "/images/movies/posters/1_poster.jpg")]
    for response in dashboard:
        assert response.code == 200
        csp = policy(response)
        for directive in ("default-src", "script-src", "style-src", "connect-src", "font-src"):
            assert csp[directive] == "'self'", directive
        assert csp["img-src"].split() == ["'self'", "data:", *image_hosts]
        assert csp["frame-ancestors"] == "'none'" and csp["object-src"] == "'none'"
        assert csp["form-action"] == "'self'" and csp["base-uri"] == "'self'"
        for name, value in DASHBOARD_HEADERS.items():
            assert response.headers[name] == value, name
    for response in others:
        for name, value in EVERY_ANSWER_HEADERS.items():
            assert response.headers[name] == value, (response.effective_url, name)
    assert others[-1].code == 200 and others[-1].headers["Content-Security-Policy"] == IMAGE_FILE_CSP


def iso_hours_ago(hours: float) -> str:
    return (datetime.now(timezone.utc) - timedelta(hours=hours)).isoformat(timespec="seconds")


@pytest.mark.parametrize("age_hours, interval_hours, stale", [
    (47, 24, False),   # younger than twice SYNC_INTERVAL_HOURS
    (49, 24, True),    # older than twice SYNC_INTERVAL_HOURS
    (9, 4, True),
    (5000, 0, False),  # SYNC_INTERVAL_HOURS=0: the systemd timer syncs, never "stale" here
])
@pytest.mark.gen_test(timeout=20)
async def test_api_trakt_metadata_stale_is_older_than_twice_the_sync_interval(tmp_path, age_hours,
                                                                             interval_hours, stale):
    folder = accounts.write_account(tmp_path / "data", last_updated=iso_hours_ago(age_hours))
    config = replace(Config(), data_dir=folder, timezone="UTC", sync_interval_hours=interval_hours)
    async with serving(config) as url:
        metadata = json.loads((await fetch(url + "/api/trakt")).body)["metadata"]
    assert metadata["stale"] is stale
    assert metadata["demo"] is False


@pytest.mark.gen_test(timeout=20)
async def test_the_demo_account_is_never_stale_and_has_no_sync(tmp_path):
    config = replace(Config(), data_dir=tmp_path / "empty", timezone="UTC", sync_interval_hours=1)
    async with serving(config) as url:
        metadata = json.loads((await fetch(url + "/api/trakt")).body)["metadata"]
    assert metadata["demo"] is True and metadata["stale"] is False
    assert "sync" not in metadata


@pytest.mark.gen_test(timeout=20)
async def test_api_trakt_metadata_sync_shows_the_last_success_and_the_last_attempt(account_dir):
    sync_dir = account_dir / "sync"
    sync_dir.mkdir()
    success = {"started_at": "2026-11-20T03:00:00Z", "finished_at": "2026-11-20T03:02:00Z", "outcome": "success",
               "error": None}
    failure = {"started_at": "2026-11-21T03:00:00Z", "finished_at": "2026-11-21T03:00:09Z", "outcome": "failed",
               "error": "Trakt answered 503"}
    (sync_dir / "last_attempt.json").write_text(json.dumps(failure))
    (sync_dir / "history.json").write_text(json.dumps([failure, success]))
    config = replace(Config(), data_dir=account_dir, timezone="UTC", sync_interval_hours=0)
    async with serving(config) as url:
        metadata = json.loads((await fetch(url + "/api/trakt")).body)["metadata"]
    assert metadata["sync"] == {
        "last_success_at": "2026-11-20T03:02:00Z",
        "last_attempt_at": "2026-11-21T03:00:09Z",
        "last_attempt_outcome": "failed",
        "last_error": "Trakt answered 503",
        "running": False,
    }

"""An open dashboard refreshes what changed after a play ends, without a reload (README "Sync",
fresh within a minute; the WebSocket `data` message and static/js/live-data.js)."""

from __future__ import annotations

import asyncio
import concurrent.futures
from datetime import UTC, datetime, timedelta

from services.config import Config
from services.data.snapshots import DataFolder
from services.trakt.service import SyncService
from tests.fakes.trakt import FakeAccount, FakeTrakt
from tests.helpers.browser import start_server

WINDOW_MS = 60_000


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def test_a_play_that_ends_on_trakt_shows_on_the_open_dashboard_within_a_minute(tmp_path, open_page):
    fake = FakeTrakt(FakeAccount.build(history=30, watched_movies=8, shows=2, lists=1, watchlist=4))
    with fake.running_in_thread() as url:
        data = tmp_path / "data"
        config = Config(trakt_api_key="test-key", trakt_username="fakeuser", trakt_api_url=url, data_dir=data)
        with concurrent.futures.ThreadPoolExecutor(1) as pool:  # Playwright's loop runs in this thread
            report = pool.submit(asyncio.run, SyncService(config, DataFolder(data)).run_once(full=True)).result()
        assert report.outcome == "success", report.error
        server = start_server(tmp_path / "work", args=["--data-dir", str(data)], env={
            "TRAKT_API_KEY": "test-key", "TRAKT_USERNAME": "fakeuser", "TRAKT_API_URL": url,
            "SYNC_CHECK_MINUTES": "0", "WATCHING_POLL_SECONDS": "0.5"})
        try:
            page = open_page(server.url).page
            count = page.locator("#history [data-tab=episodes] .tab-count")
            before = len(fake.account.history_shows)
            page.wait_for_function(f"() => document.querySelector('#history [data-tab=episodes] .tab-count')"
                                   f"?.textContent === '{before}'")
            show = fake.account.watched_shows[0]["show"]
            now = datetime.now(UTC)
            fake.watching = {"expires_at": iso(now + timedelta(minutes=40)), "started_at": iso(now - timedelta(minutes=5)),
                             "action": "scrobble", "type": "episode", "show": show,
                             "episode": {"season": 1, "number": 1, "title": "Episode 1", "ids": {"trakt": 1}}}
            page.locator("#now-watching").get_by_text(show["title"]).first.wait_for()
            fake.watching = None
            fake.add_play("episode", index=0)  # Trakt records the scrobble as it stops
            page.wait_for_function(f"() => document.querySelector('#history [data-tab=episodes] .tab-count')"
                                   f"?.textContent === '{before + 1}'", timeout=WINDOW_MS)
            assert count.inner_text() == str(before + 1)
            assert page.evaluate("() => document.documentElement.dataset.lastDataUpdate")
            assert page.locator("#history-body [role=tablist]").count() == 1  # refreshed in place, not added twice
        finally:
            server.stop()

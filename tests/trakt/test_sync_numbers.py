"""The numbers README "Sync" promises, checked through a whole sync against the fake Trakt.

Expected values are the README's words, never the code's constants."""

from __future__ import annotations

import io
from dataclasses import replace

import pytest

from services.config import Config
from services.trakt.sync import run_sync_command
from tests.fakes.trakt import FakeAccount, FakeTrakt

README_CONCURRENCY = 4  # "At most TRAKT_RATE_LIMIT GET requests per 5 minutes …, 4 at a time"


@pytest.fixture
def fake(io_loop):
    server = FakeTrakt(FakeAccount.build(history=3000, watched_movies=20, shows=4, lists=6), latency=0.05)
    io_loop.run_sync(server.start)
    yield server
    io_loop.run_sync(server.stop)


@pytest.mark.gen_test(timeout=60)
async def test_a_sync_sends_at_most_4_requests_at_a_time(fake, tmp_path):
    config = replace(Config(), trakt_api_key="test-key", trakt_username="fakeuser", trakt_api_url=fake.url,
                     data_dir=tmp_path / "data", sync_interval_hours=0)
    err = io.StringIO()
    assert await run_sync_command(config, images=False, stdout=io.StringIO(), stderr=err) == 0, err.getvalue()
    assert fake.max_in_flight == README_CONCURRENCY

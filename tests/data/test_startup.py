"""Start-up of a large account (README "Performance"): the files are served as soon as their bytes,
ETags and offsets are ready; search, activity, insights, up next and the gzip forms follow in the
background, and a request that needs them waits for them without holding the event loop.

The account here is the small hand-written one, made to take the large-account path by lowering
the threshold, and its background build is held back by an event until each test lets it go.
"""

from __future__ import annotations

import asyncio
import gc
import gzip
import json
import threading
import weakref

import pytest

from services.data import dataset as dataset_module
from services.data import layout
from services.data.dataset import build_dataset, prepare_dataset
from tests.helpers import accounts
from tests.helpers.serving import get as answer


@pytest.fixture
def held(monkeypatch):
    """Both background threads wait for this event before they start."""
    release = threading.Event()

    def held_back(work):
        def waiting(dataset):
            assert release.wait(30), "the test never released the build"
            work(dataset)
        return waiting

    monkeypatch.setattr(dataset_module, "BACKGROUND_FROM_BYTES", 0)
    for name in ("_derive", "_compress_all"):
        monkeypatch.setattr(dataset_module, name, held_back(getattr(dataset_module, name)))
    yield release
    release.set()


@pytest.fixture
def services(io_loop, config, held):
    from server import build_services

    built = build_services(config)
    io_loop.run_sync(built.store.start)  # the store alone: the watcher and the sync stay out of it
    yield built
    held.set()
    io_loop.run_sync(built.store.stop)


async def fetch(http_client, base_url, path, **kwargs):
    return await answer(http_client, base_url, path, decompress_response=False, **kwargs)


def file_data(data_dir, endpoint: str) -> list:
    return json.loads((data_dir / endpoint).read_text())["data"]


@pytest.mark.gen_test(timeout=30)
async def test_files_are_served_before_the_rest_is_built(http_client, base_url, data_dir, services):
    assert services.store.when_finished() is not None  # still held back
    health = await fetch(http_client, base_url, "/healthz")
    assert health.code == 200
    stats = await fetch(http_client, base_url, "/api/trakt/user/stats", headers={"Accept-Encoding": "gzip"})
    # No gzip form yet: the identity answer, with its own ETag, never a wrong encoding.
    assert stats.code == 200 and "Content-Encoding" not in stats.headers
    assert json.loads(stats.body)["data"] == json.loads((data_dir / layout.STATS).read_text())["data"]
    history = file_data(data_dir, layout.HISTORY["movies"])
    page = await fetch(http_client, base_url, "/api/trakt/user/history?type=movies&page=2&limit=2")
    assert json.loads(page.body)["data"] == history[2:4]
    both = await fetch(http_client, base_url, "/api/trakt/user/history?type=all")
    assert json.loads(both.body)["movies"]["data"] == history


@pytest.mark.gen_test(timeout=30)
async def test_a_request_for_insights_waits_for_them_and_the_loop_stays_free(
        http_client, base_url, data_dir, services, held):
    pending = asyncio.ensure_future(fetch(http_client, base_url, "/api/trakt/user/insights?year=2025"))
    search = asyncio.ensure_future(fetch(http_client, base_url, "/api/trakt/search?q=star"))
    await asyncio.sleep(0.3)
    assert not pending.done() and not search.done()
    health = await fetch(http_client, base_url, "/healthz")  # answered meanwhile: nothing blocks the loop
    assert health.code == 200
    held.set()
    insights, found = await pending, await search
    assert insights.code == 200 and found.code == 200
    files = {endpoint: (data_dir / endpoint).read_bytes()
             for endpoint in (*layout.ALL_FIXED_FILES, *layout.UPNEXT_FILES) if (data_dir / endpoint).is_file()}
    expected = build_dataset(data_dir, files, is_demo=False, zone="UTC").insights.documents[2025]
    assert json.loads(insights.body) == expected
    titles = {row["movie"]["title"] for row in json.loads(found.body)["results"]["movies"]}
    assert {"Star", "Star Wars", "Lone Star"} <= titles
    # Once built, the gzip forms are there too.
    await asyncio.wrap_future(services.store._dataset.compressed)
    packed = await fetch(http_client, base_url, "/api/trakt/user/stats", headers={"Accept-Encoding": "gzip"})
    assert packed.headers["Content-Encoding"] == "gzip"
    assert json.loads(gzip.decompress(packed.body))["data"] == file_data(data_dir, layout.STATS)


def wrapped(items: list, count: int) -> bytes:
    return json.dumps({"metadata": {"count": count}, "data": items}, separators=(",", ":")).encode()


def test_a_separator_inside_an_item_is_never_taken_for_a_boundary():
    # The nested array's objects start with the items' own first key: `},{"id":` inside item 1.
    items = [{"id": 1, "x": [{"id": 2}, {"id": 3}]}, {"id": 4}]
    endpoint = layout.HISTORY["movies"]
    honest = prepare_dataset(None, {endpoint: wrapped(items, 2)}, is_demo=False, zone="UTC")
    assert honest.arrays[endpoint].count == 2  # three pieces for a count of two: parsed instead
    # A file whose count lies (3) is split by its separator at first, and put right by the rest of the build.
    lying = prepare_dataset(None, {endpoint: wrapped(items, 3)}, is_demo=False, zone="UTC")
    assert lying.arrays[endpoint].count == 3
    lying.finish()
    assert lying.arrays[endpoint].count == 2
    assert json.loads(lying.arrays[endpoint].page(1, 10).chunks[0])["data"] == items


def test_a_file_written_with_spaces_is_served_not_called_invalid():
    endpoint = layout.WATCHLIST["movies"]
    items = [{"rank": 1, "type": "movie", "movie": accounts.AMELIE}]
    loaded = build_dataset(None, {endpoint: json.dumps({"metadata": {"count": 1}, "data": items}).encode()},
                           is_demo=False, zone="UTC")
    assert loaded.problems == {}
    assert json.loads(loaded.arrays[endpoint].page(1, 5).chunks[0])["data"] == items


def test_a_replaced_dataset_is_freed_by_reference_counting_alone(account_dir):
    # The build freezes what it keeps (gc.freeze): a cycle through a dataset would never be collected.
    files = {endpoint: (account_dir / endpoint).read_bytes()
             for endpoint in (*layout.ALL_FIXED_FILES, *layout.UPNEXT_FILES) if (account_dir / endpoint).is_file()}
    loaded = build_dataset(account_dir, files, is_demo=False, zone="UTC")
    assert loaded.search.search("star", "all", 5)["total_results"] > 0
    gone = weakref.ref(loaded)
    gc.disable()
    try:
        del loaded
        assert gone() is None
    finally:
        gc.enable()


def test_a_failed_build_fails_every_wait_and_a_good_one_answers_from_then_on(monkeypatch):
    """wait() keeps a flag once the build is seen to succeed (requests ask it every time); a
    build that failed must never set it: every wait raises the build's error."""
    endpoint = layout.HISTORY["movies"]

    def broken(dataset):
        raise RuntimeError("rows unreadable")

    monkeypatch.setattr(dataset_module, "_derive", broken)
    failed = prepare_dataset(None, {endpoint: wrapped([{"id": 1}], 1)}, is_demo=False, zone="UTC")
    assert not failed.is_finished()
    failed.finish()
    assert failed.is_finished()
    for _ in range(3):
        with pytest.raises(RuntimeError, match="rows unreadable"):
            failed.wait()
    monkeypatch.undo()
    good = prepare_dataset(None, {endpoint: wrapped([{"id": 1}], 1)}, is_demo=False, zone="UTC")
    good.finish()
    assert good.wait() is good and good.is_finished()
    good.finished = None  # the Future is no longer asked once the build was seen to succeed
    assert good.wait() is good and good.is_finished()

"""Answers and dashboard files gzip-compressed once, chosen per request by Accept-Encoding, each
encoding with its own ETag and its own cheap 304 (README "Performance")."""

from __future__ import annotations

import gzip
import hashlib
import json
import os

import pytest

from handlers.dashboard import PrecompressedFiles
from services import resources
from services.data import layout
from tests.helpers.serving import get as answer

GZIP = {"Accept-Encoding": "gzip"}


async def get(http_client, base_url, path, headers=None):
    """The answer exactly as sent: Tornado's client neither asks for nor undoes compression."""
    return await answer(http_client, base_url, path, headers=headers or {}, decompress_response=False)


async def assert_both_encodings(http_client, base_url, path, expected: bytes):
    """gzip to a client that asks, identity to one that does not, the same content; two ETags;
    each ETag revalidates only its own encoding."""
    packed = await get(http_client, base_url, path, GZIP)
    assert packed.code == 200
    assert packed.headers["Content-Encoding"] == "gzip"
    assert packed.headers["Vary"] == "Accept-Encoding"
    assert gzip.decompress(packed.body) == expected
    assert len(packed.body) < len(expected)
    assert int(packed.headers["Content-Length"]) == len(packed.body)

    plain = await get(http_client, base_url, path)
    assert plain.code == 200 and plain.body == expected
    assert "Content-Encoding" not in plain.headers
    assert plain.headers["Vary"] == "Accept-Encoding"

    gzip_etag, plain_etag = packed.headers["Etag"], plain.headers["Etag"]
    assert gzip_etag == plain_etag[:-1] + '-gz"'

    again = await get(http_client, base_url, path, {**GZIP, "If-None-Match": gzip_etag})
    assert again.code == 304 and again.body == b""
    again_plain = await get(http_client, base_url, path, {"If-None-Match": plain_etag})
    assert again_plain.code == 304 and again_plain.body == b""
    # The other encoding's validator does not match: the client gets the bytes it can read.
    crossed = await get(http_client, base_url, path, {**GZIP, "If-None-Match": plain_etag})
    assert crossed.code == 200 and gzip.decompress(crossed.body) == expected
    crossed_plain = await get(http_client, base_url, path, {"If-None-Match": gzip_etag})
    assert crossed_plain.code == 200 and crossed_plain.body == expected


@pytest.mark.gen_test
async def test_a_cached_answer_is_gzip_for_who_asks_with_its_own_etag_and_304(http_client, base_url, data_dir):
    await assert_both_encodings(http_client, base_url, "/api/trakt/user/stats",
                                (data_dir / layout.STATS).read_bytes())



@pytest.mark.gen_test
async def test_activity_is_a_cached_answer_gzip_with_its_own_etag_and_304(http_client, base_url, data_dir, services):
    plain = await get(http_client, base_url, "/api/trakt/user/activity")
    totals = json.loads(plain.body)["totals"]
    history = {kind: json.loads((data_dir / path).read_text())["data"] for kind, path in layout.HISTORY.items()}
    assert (totals["movies"], totals["episodes"]) == (len(history["movies"]), len(history["shows"]))
    await assert_both_encodings(http_client, base_url, "/api/trakt/user/activity", plain.body)
    # Serialised and compressed once per data load, not per request.
    assert services.store.activity() is services.store.activity()

@pytest.mark.gen_test
async def test_a_large_answer_joined_from_two_files_is_one_valid_gzip_stream(http_client, base_url, data_dir, services):
    from handlers.base import INLINE_BODY_LIMIT
    from services.data.snapshots import dumps

    document = json.loads((data_dir / layout.WATCHED["movies"]).read_text())
    # Titles that compress poorly, so even the gzip form is above the inline limit.
    document["data"] = [{"plays": i, "movie": {"title": hashlib.sha256(str(i).encode()).hexdigest(), "year": 2000,
                                               "ids": {"trakt": 10_000 + i}}} for i in range(3000)]
    movies = dumps(document).encode()
    (data_dir / layout.WATCHED["movies"]).write_bytes(movies)
    await services.store.reload()
    shows = (data_dir / layout.WATCHED["shows"]).read_bytes()
    expected = b'{"movies":' + movies + b',"shows":' + shows + b"}"
    await assert_both_encodings(http_client, base_url, "/api/trakt/user/watched", expected)
    packed = await get(http_client, base_url, "/api/trakt/user/watched", GZIP)
    assert len(packed.body) > INLINE_BODY_LIMIT  # the path that writes headers and body separately


@pytest.mark.gen_test
async def test_a_page_is_compressed_too(http_client, base_url, data_dir):
    rows = json.loads((data_dir / layout.HISTORY["shows"]).read_text())["data"]
    packed = await get(http_client, base_url, "/api/trakt/user/history?type=shows&page=1&limit=2", GZIP)
    assert packed.headers["Content-Encoding"] == "gzip"
    assert json.loads(gzip.decompress(packed.body))["data"] == rows[:2]


@pytest.mark.gen_test
async def test_a_client_that_refuses_gzip_gets_identity(http_client, base_url, data_dir):
    for header in ("gzip;q=0", "br", "identity"):
        response = await get(http_client, base_url, "/api/trakt/user/stats", {"Accept-Encoding": header})
        assert "Content-Encoding" not in response.headers, header
        assert response.body == (data_dir / layout.STATS).read_bytes()


@pytest.mark.parametrize("path,file", [("/static/style.css", "style.css"), ("/", "index.html"),
                                       ("/static/js/app.js", "js/app.js")])
@pytest.mark.gen_test
async def test_a_dashboard_file_is_gzip_for_who_asks_with_its_own_etag_and_304(http_client, base_url, path, file):
    await assert_both_encodings(http_client, base_url, path, (resources.static_dir() / file).read_bytes())


@pytest.mark.gen_test
async def test_a_byte_range_of_a_dashboard_file_is_taken_from_the_file(http_client, base_url):
    response = await get(http_client, base_url, "/static/style.css", {**GZIP, "Range": "bytes=0-9"})
    assert response.code == 206
    assert "Content-Encoding" not in response.headers
    assert response.body == (resources.static_dir() / "style.css").read_bytes()[:10]


def test_a_file_changed_after_start_is_not_served_from_its_stale_gzip(tmp_path):
    page = tmp_path / "page.html"
    page.write_text("<p>first</p>" * 50)
    (tmp_path / "logo.png").write_bytes(b"\x89PNG not text")
    files = PrecompressedFiles(tmp_path)
    assert gzip.decompress(files.lookup(str(page), page.stat())) == page.read_bytes()
    assert not files.covers(str(tmp_path / "logo.png"))
    page.write_text("<p>second</p>" * 50)
    os.utime(page, ns=(page.stat().st_atime_ns, page.stat().st_mtime_ns + 1_000_000))
    assert files.lookup(str(page), page.stat()) is None


def test_a_page_is_made_once_per_load_and_only_the_newest_pages_are_kept():
    from services.data.dataset import PAGE_CACHE_SIZE, build_dataset
    from services.data.snapshots import dumps

    endpoint = layout.WATCHED["movies"]
    rows = [{"plays": 1, "movie": {"title": f"Film {i}", "ids": {"trakt": i}}} for i in range(300)]
    raw = dumps({"metadata": {"endpoint": endpoint}, "data": rows}).encode()
    array_file = build_dataset(None, {endpoint: raw}, is_demo=False, zone="UTC").arrays[endpoint]
    first = array_file.page(1, 2)
    assert array_file.page(1, 2) is first  # the bytes and their gzip form are not made again
    assert json.loads(gzip.decompress(b"".join(first.gzip)))["data"] == rows[:2]
    for page in range(2, PAGE_CACHE_SIZE + 2):
        array_file.page(page, 2)
    again = array_file.page(1, 2)
    assert again is not first and again.chunks == first.chunks  # evicted as the oldest, made anew


def _poorly_compressible_rows(kind: str, count: int, first_id: int) -> list[dict]:
    return [{"id": first_id + i, "watched_at": f"2025-01-{1 + i % 28:02d}T20:00:00.000Z", "action": "watch",
             "type": kind, kind: {"title": hashlib.sha256(f"{kind}{i}".encode()).hexdigest(), "year": 2000,
                                  "ids": {"trakt": first_id + i}}} for i in range(count)]


def test_a_joined_gzip_form_reuses_the_files_compressed_bytes_and_is_one_valid_stream():
    from services.data.dataset import SINGLE_GZIP_CHUNK_LIMIT, build_dataset
    from services.data.snapshots import dumps

    files = {layout.HISTORY["movies"]: dumps({"metadata": {"endpoint": "movies"},
                                              "data": _poorly_compressible_rows("movie", 3000, 1)}).encode(),
             layout.HISTORY["shows"]: dumps({"metadata": {"endpoint": "shows"},
                                             "data": _poorly_compressible_rows("show", 2000, 10_000)}).encode()}
    dataset = build_dataset(None, files, is_demo=False, zone="UTC")
    movies, shows = dataset.bodies[layout.HISTORY["movies"]], dataset.bodies[layout.HISTORY["shows"]]
    combined = dataset.combined[(layout.HISTORY["movies"], layout.HISTORY["shows"])]
    expected = b'{"movies":' + files[layout.HISTORY["movies"]] + b',"shows":' + files[layout.HISTORY["shows"]] + b"}"
    assert b"".join(combined.chunks) == expected
    packed = b"".join(combined.gzip)
    assert gzip.decompress(packed) == expected  # the CRC32 and length of the trailer are checked too
    assert combined.gzip_length == len(packed)
    for part in (movies, shows):
        assert gzip.decompress(b"".join(part.gzip)) == files[layout.HISTORY["movies" if part is movies else "shows"]]
        stream = part.gzip[1]  # a large file's deflate stream is its own bytes object...
        assert len(stream) > SINGLE_GZIP_CHUNK_LIMIT
        assert any(chunk is stream for chunk in combined.gzip)  # ...which the joined answer holds, not a copy
    assert sum(len(chunk) for chunk in combined.gzip) < len(movies.gzip[1]) + len(shows.gzip[1]) + 200


@pytest.mark.gen_test
async def test_a_large_history_of_both_kinds_and_its_pages_are_valid_gzip(http_client, base_url, data_dir, services):
    from services.data.snapshots import dumps

    for kind, path, first_id in (("movie", layout.HISTORY["movies"], 1), ("show", layout.HISTORY["shows"], 50_000)):
        (data_dir / path).write_bytes(dumps({"metadata": {"endpoint": path},
                                             "data": _poorly_compressible_rows(kind, 2500, first_id)}).encode())
    await services.store.reload()
    movies, shows = ((data_dir / layout.HISTORY[kind]).read_bytes() for kind in ("movies", "shows"))
    await assert_both_encodings(http_client, base_url, "/api/trakt/user/history?type=all",
                                b'{"movies":' + movies + b',"shows":' + shows + b"}")
    plain_page = await get(http_client, base_url, "/api/trakt/user/history?type=all&page=2&limit=3")
    page = json.loads(plain_page.body)
    assert [row["id"] for row in page["movies"]["data"]] == [4, 5, 6]
    assert [row["id"] for row in page["shows"]["data"]] == [50_003, 50_004, 50_005]
    await assert_both_encodings(http_client, base_url, "/api/trakt/user/history?type=all&page=2&limit=3",
                                plain_page.body)

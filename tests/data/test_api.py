"""The /api/trakt routes, spoken to over HTTP on the real application."""

from __future__ import annotations

import json

import pytest

from services.data import layout
from tests.helpers import accounts
from tests.helpers.serving import get


def body(response) -> dict:
    assert response.headers["Content-Type"] == "application/json; charset=UTF-8"
    return json.loads(response.body)


def on_disk(data_dir, endpoint) -> dict:
    return json.loads((data_dir / endpoint).read_text())


@pytest.mark.gen_test
async def test_index_is_the_wrapper_with_status_metadata(http_client, base_url):
    response = await get(http_client, base_url, "/api/trakt")
    assert response.code == 200
    document = body(response)
    assert document["metadata"]["endpoint"] == "index.json"
    assert document["metadata"]["username"] == accounts.USERNAME
    assert document["metadata"]["source"] == layout.SOURCE_TRAKT
    assert document["metadata"]["demo"] is False
    assert document["data"]["data_type"] == "personal_user_data"
    assert document["data"]["files"][layout.HISTORY["movies"]] == 3


@pytest.mark.parametrize("path,endpoint", [
    ("/api/trakt/user/profile", layout.PROFILE),
    ("/api/trakt/user/stats", layout.STATS),
    ("/api/trakt/user/comments", layout.COMMENTS),
    ("/api/trakt/user/lists", layout.LISTS),
    ("/api/trakt/user/ratings", layout.RATINGS),
])
@pytest.mark.gen_test
async def test_file_routes_answer_the_file(http_client, base_url, data_dir, path, endpoint):
    response = await get(http_client, base_url, path)
    assert response.code == 200
    assert body(response) == on_disk(data_dir, endpoint)
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert response.headers["Etag"].startswith('"')


@pytest.mark.parametrize("route,files", [
    ("history", layout.HISTORY), ("watched", layout.WATCHED), ("watchlist", layout.WATCHLIST),
])
@pytest.mark.gen_test
async def test_typed_routes_for_every_type_value(http_client, base_url, data_dir, route, files):
    for kind in ("movies", "shows"):
        response = await get(http_client, base_url, f"/api/trakt/user/{route}?type={kind}")
        assert response.code == 200
        assert body(response) == on_disk(data_dir, files[kind])
    expected = {"movies": on_disk(data_dir, files["movies"]), "shows": on_disk(data_dir, files["shows"])}
    for query in ("", "?type=all", "?type="):
        response = await get(http_client, base_url, f"/api/trakt/user/{route}{query}")
        assert response.code == 200
        assert body(response) == expected


@pytest.mark.parametrize("value", ["episodes", "MOVIES", "all,movies", "%00", "x" * 300])
@pytest.mark.gen_test
async def test_other_type_values_are_400_naming_the_choices(http_client, base_url, value):
    response = await get(http_client, base_url, f"/api/trakt/user/history?type={value}")
    assert response.code == 400
    message = body(response)["error"]
    assert "type" in message and "movies, shows, all" in message


@pytest.mark.gen_test
async def test_paging_slices_items_in_the_same_wrapper(http_client, base_url, data_dir):
    full = on_disk(data_dir, layout.WATCHED["movies"])["data"]
    pages = []
    for page in (1, 2):
        response = await get(http_client, base_url, f"/api/trakt/user/watched?type=movies&page={page}&limit=2")
        document = body(response)
        assert document["metadata"]["total"] == 3
        assert document["metadata"]["page_count"] == 2
        assert document["metadata"]["page"] == page and document["metadata"]["limit"] == 2
        assert document["metadata"]["count"] == len(document["data"])
        pages += document["data"]
    assert pages == full
    beyond = body(await get(http_client, base_url, "/api/trakt/user/watched?type=movies&page=9&limit=2"))
    assert beyond["data"] == [] and beyond["metadata"]["total"] == 3
    both = body(await get(http_client, base_url, "/api/trakt/user/history?limit=1"))
    assert len(both["movies"]["data"]) == 1 and len(both["shows"]["data"]) == 1
    assert both["movies"]["data"][0] == on_disk(data_dir, layout.HISTORY["movies"])["data"][0]


@pytest.mark.parametrize("query,fragment", [
    ("page=0", "page"), ("page=-1", "page"), ("page=abc", "page"), ("limit=0", "limit"),
    ("limit=1001", "limit"), ("limit=1.5", "limit"), ("page=%D9%A3", "page"),
])
@pytest.mark.gen_test
async def test_bad_paging_parameters_are_400(http_client, base_url, query, fragment):
    response = await get(http_client, base_url, f"/api/trakt/user/watched?type=movies&{query}")
    assert response.code == 400
    assert fragment in body(response)["error"]


@pytest.mark.gen_test
async def test_list_items_by_slug_and_by_numeric_id(http_client, base_url, data_dir):
    expected = on_disk(data_dir, layout.list_items_endpoint("best-movies"))
    by_slug = await get(http_client, base_url, "/api/trakt/user/lists/best-movies")
    by_id = await get(http_client, base_url, "/api/trakt/user/lists/4242")
    assert body(by_slug) == expected == body(by_id)
    empty = body(await get(http_client, base_url, "/api/trakt/user/lists/empty"))
    assert empty["data"] == [] and empty["metadata"]["count"] == 0


@pytest.mark.gen_test
async def test_unknown_list_slug_is_404(http_client, base_url):
    for list_id in ("no-such-list", "999999"):
        response = await get(http_client, base_url, f"/api/trakt/user/lists/{list_id}")
        assert response.code == 404
        assert body(response)["error"] == f"List not found: {list_id}"


TRAVERSAL_IDS = [
    "..%2F..%2Fetc%2Fpasswd", "..%2Fprofile%2Fbasic", "%2Fetc%2Fpasswd", "%00", "best-movies%00",
    "....%2F%2F", "..", ".", "%2E%2E", "..%5C..%5Cwindows", "best-movies.json", "~root",
    "a" * 5000, "%C0%AE%C0%AE", "best%20movies", "user_lists",
]


@pytest.mark.parametrize("list_id", TRAVERSAL_IDS)
@pytest.mark.gen_test
async def test_traversal_ids_never_reach_the_filesystem(http_client, base_url, list_id, monkeypatch):
    import builtins

    opened = []
    real_open = builtins.open
    monkeypatch.setattr(builtins, "open", lambda *a, **k: opened.append(a[0]) or real_open(*a, **k))
    response = await get(http_client, base_url, f"/api/trakt/user/lists/{list_id}")
    assert response.code in (400, 404)
    document = body(response)
    assert "error" in document and "root:" not in document["error"]
    assert opened == []


@pytest.mark.gen_test
async def test_user_lists_file_is_not_reachable_as_a_list(http_client, base_url):
    # "user_lists" is a safe slug shape but no list has it: its file is not a list's items.
    response = await get(http_client, base_url, "/api/trakt/user/lists/user_lists")
    assert response.code == 404


@pytest.mark.gen_test
async def test_etag_revalidation_answers_304(http_client, base_url):
    for path in ("/api/trakt/user/stats", "/api/trakt/user/history?type=all", "/api/trakt",
                 "/api/trakt/search?q=star"):
        first = await get(http_client, base_url, path)
        etag = first.headers["Etag"]
        again = await get(http_client, base_url, path, headers={"If-None-Match": etag})
        assert again.code == 304, path
        assert again.body == b""
        other = await get(http_client, base_url, path, headers={"If-None-Match": '"something-else"'})
        assert other.code == 200 and other.body == first.body


@pytest.mark.gen_test
async def test_cors_on_get_and_preflight(http_client, base_url):
    response = await get(http_client, base_url, "/api/trakt/user/profile", headers={"Origin": "https://x.example"})
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in response.headers
    preflight = await get(http_client, base_url, "/api/trakt/user/profile", method="OPTIONS")
    assert preflight.code == 204
    assert "GET" in preflight.headers["Access-Control-Allow-Methods"]


@pytest.mark.gen_test
async def test_unknown_api_path_is_json_404(http_client, base_url):
    for path in ("/api/nope", "/api/trakt/user/nothing", "/api/trakt/user/lists/a/b"):
        response = await get(http_client, base_url, path)
        assert response.code == 404
        assert body(response)["error"].startswith("No such endpoint")


@pytest.mark.gen_test
async def test_wrong_method_is_json_405(http_client, base_url):
    response = await get(http_client, base_url, "/api/trakt/user/stats", method="DELETE")
    assert response.code == 405
    assert body(response)["error"] == "Method Not Allowed"


@pytest.mark.gen_test
async def test_missing_file_is_404_for_its_route_only(http_client, base_url, data_dir, services):
    (data_dir / layout.COMMENTS).unlink()
    await services.store.reload()
    response = await get(http_client, base_url, "/api/trakt/user/comments")
    assert response.code == 404
    assert body(response)["error"] == f"Data not found: {layout.COMMENTS} has not been synced"
    assert (await get(http_client, base_url, "/api/trakt/user/stats")).code == 200


@pytest.mark.gen_test
async def test_malformed_file_is_500_for_its_route_only(http_client, base_url, data_dir, services):
    (data_dir / layout.STATS).write_text('{"metadata": {"count": 1}, "data": {"movies": ')
    await services.store.reload()
    response = await get(http_client, base_url, "/api/trakt/user/stats")
    assert response.code == 500
    message = body(response)["error"]
    assert layout.STATS in message and "not valid JSON" in message and "Traceback" not in message
    assert services.store.problems and layout.STATS in services.store.problems[0]
    assert (await get(http_client, base_url, "/api/trakt/user/profile")).code == 200
    assert (await get(http_client, base_url, "/api/trakt/search?q=star")).code == 200


@pytest.mark.gen_test
async def test_file_without_wrapper_is_reported(http_client, base_url, data_dir, services):
    (data_dir / layout.PROFILE).write_text('["not", "a", "wrapper"]')
    await services.store.reload()
    response = await get(http_client, base_url, "/api/trakt/user/profile")
    assert response.code == 500
    assert "metadata/data wrapper" in body(response)["error"]


@pytest.mark.gen_test(timeout=10)
async def test_files_changed_on_disk_are_served_without_restart(http_client, base_url, data_dir):
    import asyncio

    before = body(await get(http_client, base_url, "/api/trakt/user/profile"))
    assert before["data"]["name"] == "Sam Example"
    document = on_disk(data_dir, layout.PROFILE)
    document["data"]["name"] = "Sam Renamed"
    (data_dir / layout.PROFILE).write_text(json.dumps(document))
    for _ in range(100):  # the store checks every 0.1 s in tests
        after = body(await get(http_client, base_url, "/api/trakt/user/profile"))
        if after["data"]["name"] == "Sam Renamed":
            break
        await asyncio.sleep(0.05)
    assert after["data"]["name"] == "Sam Renamed"


@pytest.mark.gen_test
async def test_post_reload_from_loopback_without_token(http_client, base_url, data_dir):
    document = on_disk(data_dir, layout.STATS)
    document["data"]["movies"]["plays"] = 99
    (data_dir / layout.STATS).write_text(json.dumps(document))
    response = await get(http_client, base_url, "/api/trakt", method="POST", body=b"")
    assert response.code == 200
    assert body(response) == {"message": "Cache cleared successfully"}
    stats = body(await get(http_client, base_url, "/api/trakt/user/stats"))
    assert stats["data"]["movies"]["plays"] == 99


@pytest.mark.gen_test
async def test_activity_counts_history_in_the_configured_zone(http_client, base_url):
    activity = body(await get(http_client, base_url, "/api/trakt/user/activity"))
    assert activity["timezone"] == "UTC"
    assert len(activity["months"]) == 24
    assert activity["months"][-1]["month"] == "2026-11"
    by_month = {m["month"]: m for m in activity["months"]}
    assert by_month["2026-10"]["movies"] == 2 and by_month["2026-10"]["episodes"] == 2
    assert by_month["2026-10"]["minutes"] == 2 * 100 + 2 * 47
    assert by_month["2025-06"]["movies"] == 1
    counts = activity["heatmap"]["counts"]
    assert sum(map(sum, counts)) == 5
    # 2026-10-31 was a Saturday, 21:00 UTC
    assert counts[5][21] == 1
    assert activity["totals"] == {"movies": 3, "episodes": 2, "minutes": 394}


@pytest.mark.gen_test
async def test_pretty_printed_file_is_served_and_paged(http_client, base_url, data_dir, services):
    """A hand-edited file (indented, `data` first) is served as the same JSON and pages correctly."""
    document = on_disk(data_dir, layout.WATCHED["movies"])
    tricky = {"plays": 1, "movie": {"title": 'Quote "],{" and ]} inside', "year": 2020, "ids": {"trakt": 77}}}
    document["data"].append(tricky)
    reordered = {"data": document["data"], "metadata": document["metadata"]}
    (data_dir / layout.WATCHED["movies"]).write_text(json.dumps(reordered, indent=2, ensure_ascii=False))
    await services.store.reload()
    whole = body(await get(http_client, base_url, "/api/trakt/user/watched?type=movies"))
    assert whole["data"] == document["data"] and whole["metadata"] == document["metadata"]
    last = body(await get(http_client, base_url, "/api/trakt/user/watched?type=movies&page=4&limit=1"))
    assert last["data"] == [tricky]


@pytest.mark.gen_test
async def test_items_with_brackets_in_strings_page_exactly(http_client, base_url, data_dir, services):
    from services.data.snapshots import dumps

    title = 'Tïtle "],[{" ü '
    rows = [{"plays": i, "movie": {"title": title + str(i), "year": 2000 + i, "ids": {"trakt": 500 + i}}}
            for i in range(7)]
    document = on_disk(data_dir, layout.WATCHED["movies"])
    document["data"] = rows
    (data_dir / layout.WATCHED["movies"]).write_text(dumps(document))
    await services.store.reload()
    pages = []
    for page in (1, 2, 3):
        pages += body(await get(http_client, base_url, f"/api/trakt/user/watched?type=movies&page={page}&limit=3"))["data"]
    assert pages == rows


@pytest.mark.gen_test
async def test_first_rows_is_a_parsed_sample_of_a_list_file(services, data_dir):
    rows = services.store.first_rows(layout.HISTORY["movies"], 2)
    assert rows == on_disk(data_dir, layout.HISTORY["movies"])["data"][:2]
    assert services.store.first_rows(layout.PROFILE, 2) == []  # not a list
    assert services.store.first_rows("user/nothing.json", 2) == []


@pytest.mark.gen_test
async def test_large_file_is_sent_whole_and_revalidates(http_client, base_url, data_dir, services):
    """Above 64 KB the headers and the body are written separately: same bytes, same 304."""
    from handlers.base import INLINE_BODY_LIMIT
    from services.data.snapshots import dumps

    document = on_disk(data_dir, layout.WATCHED["movies"])
    document["data"] = [{"plays": i, "movie": {"title": f"Film {i}", "year": 2000, "ids": {"trakt": 10_000 + i}}}
                        for i in range(3000)]
    raw = dumps(document).encode()
    assert len(raw) > INLINE_BODY_LIMIT
    (data_dir / layout.WATCHED["movies"]).write_bytes(raw)
    await services.store.reload()
    # Uncompressed (no Accept-Encoding): the large identity body is the one written in two steps.
    response = await get(http_client, base_url, "/api/trakt/user/watched?type=movies", decompress_response=False)
    assert response.code == 200 and response.body == raw
    assert int(response.headers["Content-Length"]) == len(raw)
    again = await get(http_client, base_url, "/api/trakt/user/watched?type=movies", decompress_response=False,
                      headers={"If-None-Match": response.headers["Etag"]})
    assert again.code == 304 and again.body == b""
    both = await get(http_client, base_url, "/api/trakt/user/watched")
    assert json.loads(both.body)["movies"] == document


@pytest.mark.gen_test
async def test_rows_are_read_once_whatever_their_shape(http_client, base_url, data_dir, services):
    """Rows with the item separator inside a string, and rows whose keys come in another order,
    are each read exactly once: paging, search and activity all agree with the file."""
    from services.data.snapshots import dumps

    def row(i: int) -> dict:
        title = 'Sep },{"id": inside ' + str(i) if i % 3 == 0 else f"Plain {i}"
        return {"id": i, "watched_at": f"2026-10-{1 + i % 28:02d}T20:00:00.000Z", "action": "watch",
                "type": "movie", "movie": {"title": title, "year": 2000, "ids": {"trakt": 7000 + i}}}

    rows = [row(i) for i in range(40)]
    rows[25] = {"watched_at": rows[25].pop("watched_at"), **rows[25]}  # another first key from here on
    document = on_disk(data_dir, layout.HISTORY["movies"])
    document["data"] = rows
    (data_dir / layout.HISTORY["movies"]).write_text(dumps(document))
    await services.store.reload()
    pages = []
    for page in range(1, 5):
        pages += body(await get(http_client, base_url, f"/api/trakt/user/history?type=movies&page={page}&limit=11"))["data"]
    assert pages == rows
    activity = body(await get(http_client, base_url, "/api/trakt/user/activity"))
    assert activity["totals"]["movies"] == 40
    found = body(await get(http_client, base_url, "/api/trakt/search?q=inside&type=movies&limit=500"))
    assert found["total_results"] == len([r for r in rows if "inside" in r["movie"]["title"]]) == 14


@pytest.mark.gen_test
async def test_unexpected_exception_is_json_500_without_traceback(http_client, base_url, services, monkeypatch):
    def explode(endpoint):
        raise RuntimeError("secret internals /etc/passwd")

    monkeypatch.setattr(services.store, "file", explode)
    response = await get(http_client, base_url, "/api/trakt/user/stats")
    assert response.code == 500
    assert body(response) == {"error": "Internal server error"}
    assert b"Traceback" not in response.body and b"secret internals" not in response.body


@pytest.mark.gen_test
async def test_no_data_and_no_key_serves_the_bundled_demo_and_says_so(tmp_path):
    from dataclasses import replace

    from server import build_services
    from services.config import Config

    demo = build_services(replace(Config(), data_dir=tmp_path / "empty"))  # nothing synced, no Trakt key
    await demo.store.start()
    try:
        assert demo.store.is_demo
        document = json.loads(demo.store.index().chunks[0])
        assert document["metadata"]["source"] == "demo" and document["metadata"]["demo"] is True
        assert demo.store.search_index.search("amelie", "all", 5)["total_results"] >= 1
    finally:
        await demo.store.stop()


@pytest.mark.gen_test
async def test_a_trakt_key_without_data_is_503_not_the_demo(tmp_path):
    """README "API": 503 (no data to serve yet) on every data route over HTTP, and /healthz 503."""
    from dataclasses import replace

    from tornado.httpclient import AsyncHTTPClient
    from tornado.httpserver import HTTPServer
    from tornado.testing import bind_unused_port

    from server import build_services, make_app
    from services.config import Config

    config = replace(Config(), data_dir=tmp_path / "empty", trakt_api_key="k", trakt_username="sam",
                     sync_interval_hours=0)
    services = build_services(config)
    await services.store.start()  # the store alone: no watcher polling, no sync
    sock, port = bind_unused_port()
    server = HTTPServer(make_app(config, services))
    server.add_sockets([sock])
    try:
        client = AsyncHTTPClient()
        for path in ("/api/trakt", "/api/trakt/user/stats", "/api/trakt/user/history?type=movies",
                     "/api/trakt/search?q=amelie", "/api/trakt/user/lists/best-movies"):
            response = await client.fetch(f"http://127.0.0.1:{port}{path}", raise_error=False)
            assert response.code == 503, path
            assert body(response)["error"].startswith("No data yet"), path
        health = await client.fetch(f"http://127.0.0.1:{port}/healthz", raise_error=False)
        assert health.code == 503 and json.loads(health.body)["demo"] is False
    finally:
        server.stop()
        await services.store.stop()

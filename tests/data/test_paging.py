"""`page` + `limit` on the comments and on a list's items (README "API"): the same byte-offset pages,
paging metadata, ETags, gzip forms and 304s as history / watched / watchlist; without them the whole
file as before."""

from __future__ import annotations

import gzip
import json

import pytest

from services.data import layout
from services.data.snapshots import write_flat_folder
from tests.helpers import accounts
from tests.helpers.serving import get as answer

COMMENTS = 7
ITEMS = 5
LIST_PATHS = ("/api/trakt/user/lists/best-movies", "/api/trakt/user/lists/4242")  # by slug and by Trakt id


@pytest.fixture
def account_dir(tmp_path):
    """The hand-written account with more comments and list items than one small page holds."""
    files = accounts.files()
    files[layout.COMMENTS] = [
        {"id": 100 + n, "comment": f"Comment number {n}", "spoiler": n == 3, "review": n == 5,
         "type": "movie", "movie": accounts.AMELIE} for n in range(COMMENTS)]
    files[layout.list_items_endpoint("best-movies")] = [
        {"rank": n + 1, "id": n + 1, "listed_at": f"2026-01-0{n + 1}T00:00:00.000Z", "type": "movie",
         "movie": accounts.movie(f"Film {n}", 2000 + n, 9000 + n)} for n in range(ITEMS)]
    folder = tmp_path / "data"
    write_flat_folder(folder, files, username=accounts.USERNAME, source=layout.SOURCE_TRAKT,
                      last_updated=accounts.LAST_UPDATED)
    return folder


async def get(http_client, base_url, path, headers=None, *, decompress=True):
    return await answer(http_client, base_url, path, headers=headers or {}, decompress_response=decompress)


def on_disk(data_dir, endpoint) -> dict:
    return json.loads((data_dir / endpoint).read_text())


ROUTES = [("/api/trakt/user/comments", layout.COMMENTS, COMMENTS),
          *((path, layout.list_items_endpoint("best-movies"), ITEMS) for path in LIST_PATHS)]


@pytest.mark.parametrize("path,endpoint,total", ROUTES)
@pytest.mark.gen_test
async def test_pages_slice_the_file_in_the_same_wrapper(http_client, base_url, data_dir, path, endpoint, total):
    whole = on_disk(data_dir, endpoint)
    assert len(whole["data"]) == total
    pages = []
    for page in (1, 2, 3):
        response = await get(http_client, base_url, f"{path}?page={page}&limit=3")
        assert response.code == 200
        document = json.loads(response.body)
        metadata = document["metadata"]
        assert metadata["endpoint"] == whole["metadata"]["endpoint"]
        assert (metadata["page"], metadata["limit"], metadata["total"]) == (page, 3, total)
        assert metadata["page_count"] == -(-total // 3)
        expected = whole["data"][(page - 1) * 3:page * 3]
        assert document["data"] == expected and metadata["count"] == len(expected)
        pages += document["data"]
    assert pages == whole["data"]


@pytest.mark.parametrize("path,endpoint,total", ROUTES)
@pytest.mark.gen_test
async def test_one_of_page_or_limit_gives_the_other_its_default(http_client, base_url, data_dir, path, endpoint,
                                                                total):
    whole = on_disk(data_dir, endpoint)["data"]
    only_page = json.loads((await get(http_client, base_url, f"{path}?page=1")).body)
    assert only_page["metadata"]["limit"] == 50 and only_page["data"] == whole  # README: limit 50 by default
    only_limit = json.loads((await get(http_client, base_url, f"{path}?limit=2")).body)
    assert only_limit["metadata"]["page"] == 1 and only_limit["data"] == whole[:2]
    beyond = json.loads((await get(http_client, base_url, f"{path}?page=40&limit=2")).body)
    assert beyond["data"] == [] and beyond["metadata"]["total"] == total and beyond["metadata"]["count"] == 0


@pytest.mark.parametrize("path,endpoint,total", ROUTES)
@pytest.mark.gen_test
async def test_without_paging_the_whole_file_as_before(http_client, base_url, data_dir, path, endpoint, total):
    for query in ("", "?page=&limit="):  # blank is the same as leaving it out
        document = json.loads((await get(http_client, base_url, path + query)).body)
        assert document == on_disk(data_dir, endpoint)
        assert "page" not in document["metadata"] and len(document["data"]) == total


@pytest.mark.parametrize("path", ["/api/trakt/user/comments", *LIST_PATHS])
@pytest.mark.parametrize("query,fragment", [
    ("page=0", "page"), ("page=-1", "page"), ("page=abc", "page"), ("limit=0", "limit"), ("limit=1001", "limit"),
    ("limit=1.5", "limit"), ("page=%D9%A3", "page"), ("page=1&page=2", "page"), ("page=1&limit=99999999999", "limit"),
])
@pytest.mark.gen_test
async def test_bad_paging_parameters_are_400_naming_them(http_client, base_url, path, query, fragment):
    response = await get(http_client, base_url, f"{path}?{query}")
    assert response.code == 400
    message = json.loads(response.body)["error"]
    assert message.startswith(f"Invalid {fragment} parameter"), message


@pytest.mark.gen_test
async def test_an_unknown_or_unsafe_list_stays_404_or_400_when_paged(http_client, base_url):
    assert (await get(http_client, base_url, "/api/trakt/user/lists/no-such-list?page=1&limit=2")).code == 404
    assert (await get(http_client, base_url, "/api/trakt/user/lists/..%2Fsecret?page=1")).code in (400, 404)


@pytest.mark.parametrize("path,endpoint", [(path, endpoint) for path, endpoint, _ in ROUTES])
@pytest.mark.gen_test
async def test_a_page_has_its_gzip_form_its_etags_and_its_304s(http_client, base_url, data_dir, path, endpoint):
    page = f"{path}?page=2&limit=2"
    expected = on_disk(data_dir, endpoint)["data"][2:4]
    packed = await get(http_client, base_url, page, {"Accept-Encoding": "gzip"}, decompress=False)
    assert packed.code == 200 and packed.headers["Content-Encoding"] == "gzip"
    assert json.loads(gzip.decompress(packed.body))["data"] == expected
    plain = await get(http_client, base_url, page, decompress=False)
    assert "Content-Encoding" not in plain.headers and json.loads(plain.body)["data"] == expected
    assert packed.headers["Etag"] != plain.headers["Etag"]
    whole = await get(http_client, base_url, path, decompress=False)
    assert whole.headers["Etag"] not in (plain.headers["Etag"], packed.headers["Etag"])
    for response, headers in ((packed, {"Accept-Encoding": "gzip"}), (plain, {})):
        again = await get(http_client, base_url, page, {**headers, "If-None-Match": response.headers["Etag"]},
                          decompress=False)
        assert again.code == 304 and again.body == b""
    other_page = await get(http_client, base_url, f"{path}?page=1&limit=2",
                           {"If-None-Match": plain.headers["Etag"]}, decompress=False)
    assert other_page.code == 200  # another page never matches this page's ETag

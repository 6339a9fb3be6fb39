"""The benchmark's own logic on fixed inputs (the wrk report parser, the ceiling app, the table), and
one real run of it for a few seconds."""

from __future__ import annotations

import argparse

import pytest

from bench.__main__ import parse_sections
from bench.ceiling import (
    READY_FIXTURE,
    SEPARATE_BODY_BYTES,
    Fixture,
    load_fixtures,
    make_ceiling_app,
    save_fixtures,
)
from bench.util import (
    Row,
    cpu_seconds,
    format_markdown,
    format_table,
    parse_wrk,
    percentile,
    rss_bytes,
)

WRK_WITH_LATENCY = """\
Running 3s test @ http://127.0.0.1:40123/api/trakt/user/stats
  1 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   812.35us  201.40us   9.87ms   95.12%
    Req/Sec     4.93k   310.22     5.31k    83.33%
  Latency Distribution
     50%  780.00us
     75%  850.00us
     90%  0.95ms
     99%    1.62ms
  14731 requests in 3.00s, 25.98MB read
Requests/sec:   4908.61
Transfer/sec:      8.66MB
"""

WRK_WITH_ERRORS = """\
Running 2s test @ http://127.0.0.1:40123/api/trakt/user/history?type=all
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.20s   300.00ms   1.90s    70.00%
    Req/Sec    12.00      5.00    20.00     60.00%
  50 requests in 2.01s, 1.20GB read
  Socket errors: connect 0, read 3, write 0, timeout 2
  Non-2xx or 3xx responses: 7
Requests/sec:     24.88
Transfer/sec:    611.00MB
"""

LARGE_BODY = b'{"movies":[' + b'{"id":1},' * 100_000 + b'{"id":2}]}'

RECORDED = {
    "/api/trakt/user/stats": Fixture.recorded(
        200,
        [("Server", "TornadoServer/6.6.1"), ("Date", "Fri, 27 Nov 2026 01:00:00 GMT"),
         ("Content-Type", "application/json; charset=UTF-8"), ("Etag", '"v1-stats"'),
         ("Access-Control-Allow-Origin", "*"), ("Content-Length", "21")],
        b'{"data": {"plays": 3}}',
    ),
    "/api/trakt/user/history?type=all": Fixture.recorded(
        200, [("Content-Type", "application/json; charset=UTF-8"), ("Etag", '"v1-all"')], LARGE_BODY),
    "/api/trakt/user/watched?type=movies": Fixture.recorded(
        200, [("Content-Type", "application/json; charset=UTF-8"), ("Etag", '"v1-movies"')], b"[]",
    ).with_not_modified([("Server", "TornadoServer/6.6.1"), ("X-Content-Type-Options", "nosniff"),
                         ("Access-Control-Allow-Origin", "*"), ("Vary", "Accept-Encoding"),
                         ("Etag", '"v1-movies"')]),
    "/api/images?type=movies&category=posters&tmdb_id=27205": Fixture.recorded(
        302, [("Location", "/images/movies/posters/27205_poster.jpg"), ("Content-Length", "0")], b""),
}


def test_wrk_report_with_latency_distribution_is_parsed_into_seconds():
    result = parse_wrk(WRK_WITH_LATENCY)
    assert result.requests == 14731
    assert result.duration_s == pytest.approx(3.0)
    assert result.requests_per_s == pytest.approx(4908.61)
    assert result.latency_avg_s == pytest.approx(812.35e-6)
    assert result.latency_max_s == pytest.approx(9.87e-3)
    assert result.percentiles_s == pytest.approx({50: 780e-6, 75: 850e-6, 90: 0.95e-3, 99: 1.62e-3})
    assert result.bytes_read == pytest.approx(25.98 * 2**20)
    assert result.errors == {}


def test_wrk_report_counts_socket_errors_and_bad_statuses():
    result = parse_wrk(WRK_WITH_ERRORS)
    assert result.requests == 50
    assert result.latency_avg_s == pytest.approx(1.2)
    assert result.latency_max_s == pytest.approx(1.9)
    assert result.percentiles_s == {}
    assert result.errors == {"read": 3, "timeout": 2, "status": 7}
    assert result.error_count == 12
    assert result.bytes_read == pytest.approx(1.2 * 2**30)


def test_text_that_is_not_a_wrk_report_is_refused():
    with pytest.raises(ValueError, match="not a wrk report"):
        parse_wrk("unable to connect to 127.0.0.1:1 Connection refused")


def test_recorded_fixture_drops_headers_tornado_writes_itself():
    fixture = RECORDED["/api/trakt/user/stats"]
    names = [name for name, _ in fixture.headers]
    assert names == ["Content-Type", "Etag", "Access-Control-Allow-Origin"]
    assert fixture.etag == '"v1-stats"'


def test_fixtures_survive_a_save_and_load(tmp_path):
    save_fixtures(tmp_path / "fx", RECORDED)
    assert load_fixtures(tmp_path / "fx") == RECORDED


@pytest.fixture
def app():
    return make_ceiling_app({**RECORDED, "/healthz": READY_FIXTURE})


@pytest.mark.gen_test(timeout=10)
async def test_ceiling_replays_body_and_headers(http_client, base_url):
    response = await http_client.fetch(base_url + "/api/trakt/user/stats")
    assert response.code == 200
    assert response.body == b'{"data": {"plays": 3}}'
    assert response.headers["Content-Type"] == "application/json; charset=UTF-8"
    assert response.headers["Etag"] == '"v1-stats"'
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert response.headers.get_list("Etag") == ['"v1-stats"']


@pytest.mark.gen_test(timeout=10)
async def test_ceiling_answers_matching_if_none_match_with_304(http_client, base_url):
    response = await http_client.fetch(base_url + "/api/trakt/user/stats",
                                       headers={"If-None-Match": '"v1-stats"'}, raise_error=False)
    assert response.code == 304
    assert response.body == b""
    stale = await http_client.fetch(base_url + "/api/trakt/user/stats", headers={"If-None-Match": '"old"'})
    assert stale.code == 200


@pytest.mark.gen_test(timeout=10)
async def test_ceiling_304_carries_the_headers_of_the_recorded_304(http_client, base_url):
    response = await http_client.fetch(base_url + "/api/trakt/user/watched?type=movies",
                                       headers={"If-None-Match": '"v1-movies"'}, raise_error=False)
    assert response.code == 304
    assert response.headers.get_list("Etag") == ['"v1-movies"']
    assert response.headers["Vary"] == "Accept-Encoding"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert response.headers.get_list("Server") == ["TornadoServer/6.6.1"]  # Tornado's own, once


@pytest.mark.gen_test(timeout=10)
async def test_ceiling_sends_a_large_body_whole_with_its_length(http_client, base_url):
    response = await http_client.fetch(base_url + "/api/trakt/user/history?type=all")
    assert response.code == 200
    assert int(response.headers["Content-Length"]) == len(LARGE_BODY) > SEPARATE_BODY_BYTES
    assert "Transfer-Encoding" not in response.headers
    assert response.body == LARGE_BODY
    revalidated = await http_client.fetch(base_url + "/api/trakt/user/history?type=all",
                                          headers={"If-None-Match": '"v1-all"'}, raise_error=False)
    assert revalidated.code == 304


@pytest.mark.gen_test(timeout=10)
async def test_ceiling_replays_redirects_without_following_them(http_client, base_url):
    response = await http_client.fetch(base_url + "/api/images?type=movies&category=posters&tmdb_id=27205",
                                       follow_redirects=False, raise_error=False)
    assert response.code == 302
    assert response.headers["Location"] == "/images/movies/posters/27205_poster.jpg"


@pytest.mark.gen_test(timeout=10)
async def test_ceiling_says_so_for_an_unrecorded_uri(http_client, base_url):
    response = await http_client.fetch(base_url + "/api/trakt/user/lists", raise_error=False)
    assert response.code == 404


def test_sections_accept_aliases_and_refuse_unknown_names():
    assert parse_sections("rest, search,ws") == ["rest", "scale", "websocket"]
    with pytest.raises(argparse.ArgumentTypeError, match="unknown section 'nope'"):
        parse_sections("rest,nope")


def test_percentile_is_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.99) == 99.0
    assert percentile([7.0], 0.99) == 7.0


def test_table_lines_up_columns_and_markdown_escapes_pipes():
    rows = [Row("rest", "stats req/s @64", "900 / 1000 = 0.90x", ">= 0.9x", "PASS"),
            Row("scale", "ready", "1.2 s", "<= 3 s", "PASS", note="a|b")]
    table = format_table(rows).splitlines()
    assert table[0].split() == ["section", "metric", "value", "target", "status", "note"]
    assert table[2].index("900") == table[3].index("1.2 s")
    assert "a\\|b" in format_markdown(rows)


def test_proc_readings_of_this_process_are_plausible():
    import os

    assert rss_bytes(os.getpid()) > 1_000_000
    assert cpu_seconds(os.getpid()) > 0


def test_large_answers_are_counted_in_bytes_small_ones_in_requests():
    from bench.rest import LARGE_BODY, requests_per_second

    small = parse_wrk(WRK_WITH_LATENCY)
    assert requests_per_second([small, small], 600) == pytest.approx(14731 / 3.0)
    big = parse_wrk(WRK_WITH_ERRORS)  # 1.20 GB read in 2.01 s
    assert requests_per_second([big], 60 * 2**20) == pytest.approx(1.2 * 2**30 / (60 * 2**20) / 2.01)
    assert LARGE_BODY == 2**20


def test_a_burst_of_load_on_one_cycle_does_not_move_the_ratio(monkeypatch, tmp_path):
    """Five ABBA cycles, the ceiling serving 1,000 req/s and ours 960, except in one cycle where
    a burst of other load halves ours: the ratio is the cycles' median, 0.96, while a ratio of
    all runs summed would have fallen to about 0.88."""
    from bench import rest
    from bench.util import Context, WrkResult

    class Server:
        def __init__(self, name: str) -> None:
            self.name, self.base_url = name, f"http://{name}"

        def cpu(self) -> float:
            return 0.0

        def wait_idle(self) -> None:
            pass

    ours, ceiling = Server("ours"), Server("ceiling")
    served = {"ours": 0}

    def fake_wrk(wrk, url, *, connections, duration, headers=None, latency=False, timeout_s=10):
        rate = 1000.0
        if url.startswith("http://ours"):
            served["ours"] += 1
            rate = 960.0 if served["ours"] not in (5, 6) or latency else 480.0  # cycle 3: a burst
        return WrkResult(int(rate * duration), duration, rate, 1e-3, 2e-3, {50: 1e-3, 99: 2e-3}, {}, 600.0 * rate)

    monkeypatch.setattr(rest, "run_wrk", fake_wrk)
    monkeypatch.setattr(rest, "single_request", lambda server, route: (0.001, 600))
    route = rest.Route("stats", "/api/trakt/user/stats", {}, cached=True)
    numbers = rest.measure("wrk", ours, ceiling, route, Context(quick=False, work_dir=tmp_path))
    assert len(numbers["cycle_ratios"]) == rest.CYCLES == 5
    assert numbers["ratio"] == pytest.approx(0.96)
    assert numbers["rps_ours"] / numbers["rps_ceiling"] == pytest.approx(0.864)  # (8 x 960 + 2 x 480) / 10
    assert rest.throughput_value(numbers) == "864 / 1000 req/s; 0.96x (median of 5, 0.48-0.96)"
    assert rest.route_rows(route, numbers, 600)[0].status == "PASS"


def test_a_callgrind_dump_is_read_by_its_totals_line_once_it_is_complete(tmp_path):
    """`summary:` wraps below zero after `callgrind_control -z` (seen: 18446744073709551431), and a
    dump being written has no `totals:` line yet."""
    from bench.instructions import dump_total, under_callgrind

    dump = "version: 1\ncmd: python server.py\nevents: Ir\nsummary: 18446744073709551431\n\nfn=(1) main\n0 5\n"
    assert dump_total(dump) is None
    assert dump_total(dump + "\ntotals: 674790321\n") == 674790321
    argv = under_callgrind(["python", "server.py"], tmp_path / "ours.out")
    assert argv[:3] == ["valgrind", "--tool=callgrind", "--instr-atstart=no"] and argv[-2:] == ["python", "server.py"]


def test_search_queries_are_distinct_deterministic_and_in_four_shapes():
    from bench.scale import make_queries

    firsts = ("Silent", "Crimson", "Golden", "Amélie", "Northern", "Paper", "Glass", "Midnight")
    titles = [f"{a} {b}" for a in firsts for b in ("River", "Empire", "Garden", "Signal", "Harbor", "Machine")]
    queries = make_queries(titles, count=30)
    assert len(queries) == len({q.lower() for q in queries}) == 30
    assert queries == make_queries(titles, count=30)
    assert queries[0] in titles  # shape 0: an exact title
    assert any(q in titles for q in queries) and any(q not in titles for q in queries)


def test_marking_an_account_as_synced_changes_only_the_index_source(tmp_path):
    import json

    from bench.accounts import mark_as_synced
    from services.data import layout

    index = {"metadata": {"source": layout.SOURCE_DEMO, "count": 1}, "data": {"username": "demo"}}
    (tmp_path / layout.INDEX).write_text(json.dumps(index))
    mark_as_synced(tmp_path)
    marked = json.loads((tmp_path / layout.INDEX).read_text())
    assert marked["metadata"] == {"source": layout.SOURCE_TRAKT, "count": 1}
    assert marked["data"] == index["data"]


# --- the real bench, for seconds --------------------------------------------------------------------

def test_the_bench_runs_for_real_and_fills_its_table_and_json(tmp_path):
    """`python -m bench --smoke --only rest`: our server and the ceiling on the demo account, wrk
    against both on loopback; a broken bench (an import, a parser, a section's plumbing) fails here."""
    import json
    import subprocess
    import sys
    import time

    from bench.util import REPO

    output = tmp_path / "latest.json"
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "bench", "--smoke", "--only", "rest", "--output", str(output)],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    took = time.monotonic() - started
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert took < 90, f"the smoke run took {took:.0f} s"
    result = json.loads(output.read_text())
    assert result["smoke"] is True and result["sections"] == ["rest"]
    rows = {row["metric"]: row for row in result["rows"]}
    for name in ("stats", "304 history all", "image redirect"):
        throughput = rows[f"{name} req/s @64"]
        assert throughput["status"] in ("PASS", "MISS") and throughput["target"] == ">= 0.95x"
        assert throughput["data"]["rps_ours"] > 0 and throughput["data"]["rps_ceiling"] > 0
        assert rows[f"{name} p50/p99 @4"]["status"] in ("PASS", "MISS")
    assert not [row for row in result["rows"] if row["status"] in ("FAIL", "SKIP")]
    table = done.stdout
    assert table.splitlines()[0].split() == ["section", "metric", "value", "target", "status", "note"]
    assert "stats req/s @64" in table and result["table"] in table


def test_every_file_a_bench_section_waits_for_exists():
    """A section whose file check names a moved module is skipped on every run, silently (the
    images section was, after the services were grouped by resource)."""
    import ast

    from bench.util import REPO

    named: list[str] = []
    for source in sorted((REPO / "bench").glob("*.py")):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "missing_modules":
                named += [arg.value for arg in node.args if isinstance(arg, ast.Constant)]
    assert "services/images/index.py" in named
    assert [name for name in named if not (REPO / name).exists()] == []


def test_the_p99_of_an_answer_of_megabytes_is_held_to_the_ceilings_not_to_5_ms():
    from bench import rest

    def numbers(ours_p99: float, ceiling_p99: float) -> dict:
        return {"rps_ours": 30.0, "rps_ceiling": 30.0, "ratio": 1.0, "cycle_ratios": [1.0], "by_bytes": True,
                "duration_s": 3.0, "cpu_per_request_ours": 0.03, "cpu_per_request_ceiling": 0.03,
                "latency_ours": {50: 0.08, 99: ours_p99}, "latency_ceiling": {50: 0.08, 99: ceiling_p99}}

    route = rest.Route("history all", "/api/trakt/user/history?type=all", {}, cached=True)
    big = 95 * 2**20
    assert rest.route_rows(route, numbers(0.250, 0.277), big)[1].status == "PASS"  # 0.90x the ceiling's
    assert rest.route_rows(route, numbers(0.330, 0.277), big)[1].status == "MISS"  # 1.19x
    assert rest.route_rows(route, numbers(0.0051, 0.0050), 2**20)[1].status == "PASS"  # 1.02x, over 5 ms
    small = rest.route_rows(route, numbers(0.0051, 0.0001), 600)[1]
    assert (small.status, small.target) == ("MISS", "p99 <= 5 ms")  # a small answer keeps the 5 ms bound

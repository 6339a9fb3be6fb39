"""Logging: redaction of secrets, JSON lines, the per-request access line and its route names."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import logging
import os

import pytest
import tornado.httpserver
import tornado.web
from prometheus_client.parser import text_string_to_metric_families

from services.config import Config
from services.ops.logs import ACCESS_LOGGER, REDACTED, RedactingFilter, access_log_function, setup_logging
from services.ops.metrics import AppMetrics

SECRETS = {"trakt_api_key": "trakt-key-5f1c9e", "tmdb_api_key": "tmdb-key-77aa01", "admin_token": "adm-3c3c3c3c"}


@pytest.fixture
def captured():
    """setup_logging on a buffer; removes the handler afterwards."""
    buffers = []

    def install(**overrides):
        config = dataclasses.replace(Config(), **{**SECRETS, **overrides})
        buffer = io.StringIO()
        handler = setup_logging(config, stream=buffer)
        buffers.append(handler)
        return buffer

    yield install
    root = logging.getLogger()
    for handler in buffers:
        root.removeHandler(handler)


@contextlib.contextmanager
def alone():
    """Our handler as the only one on the root logger, as in `serve` (pytest adds its own while a
    test runs, which makes access lines go through records)."""
    root = logging.getLogger()
    others = [h for h in root.handlers if h.get_name() != "trakt-watch"]
    for handler in others:
        root.removeHandler(handler)
    try:
        yield
    finally:
        for handler in others:
            root.addHandler(handler)


def test_secrets_are_redacted_in_messages_arguments_and_tracebacks(captured):
    buffer = captured()
    log = logging.getLogger("trakt_watch.test")
    log.warning("calling https://api.example/?key=%s", SECRETS["tmdb_api_key"])
    log.info("header trakt-api-key: " + SECRETS["trakt_api_key"])
    try:
        raise RuntimeError(f"token {SECRETS['admin_token']} rejected")
    except RuntimeError:
        log.exception("request failed")
    text = buffer.getvalue()
    for secret in SECRETS.values():
        assert secret not in text
    assert text.count(REDACTED) == 3
    assert "RuntimeError: token [REDACTED] rejected" in text


def test_json_lines_carry_fields_and_stay_redacted(captured):
    buffer = captured(log_format="json")
    logging.getLogger("trakt_watch.sync").info("sync done for %s", "alice",
                                               extra={"files": 14, "url": "x?k=" + SECRETS["trakt_api_key"]})
    line = json.loads(buffer.getvalue().strip())
    assert line["level"] == "INFO"
    assert line["logger"] == "trakt_watch.sync"
    assert line["message"] == "sync done for alice"
    assert line["files"] == 14
    assert line["url"] == "x?k=" + REDACTED
    assert line["time"].endswith("+00:00")


def test_log_level_is_applied(captured):
    buffer = captured(log_level="WARNING")
    logging.getLogger("trakt_watch.test").info("quiet")
    logging.getLogger("trakt_watch.test").warning("loud")
    assert "quiet" not in buffer.getvalue()
    assert "loud" in buffer.getvalue()


def test_setup_logging_twice_keeps_one_handler(captured):
    captured()
    second = captured()
    logging.getLogger("trakt_watch.test").warning("once")
    ours = [h for h in logging.getLogger().handlers if h.get_name() == "trakt-watch"]
    assert len(ours) == 1
    assert second.getvalue().count("once") == 1


def test_filter_without_secrets_leaves_records_alone():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "value %s", ("a",), None)
    assert RedactingFilter([]).filter(record)
    assert record.args == ("a",)


def test_longer_secret_containing_a_shorter_one_is_redacted_whole():
    redactor = RedactingFilter(["abc", "abcdef"])
    assert redactor.redact("x abcdef y abc") == f"x {REDACTED} y {REDACTED}"


# --- access log on a real server ------------------------------------------------------------------

class _Status(tornado.web.RequestHandler):
    def get(self, code: str = "200") -> None:
        self.set_status(int(code))
        self.finish("x")


class _Boom(tornado.web.RequestHandler):
    def get(self) -> None:
        raise RuntimeError("boom")


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


_access = logging.getLogger("trakt_watch.access.test")
_records = _Records()
_access.addHandler(_records)
_access.setLevel(logging.DEBUG)


@pytest.fixture
def app():
    _records.records.clear()
    metrics = AppMetrics()
    return tornado.web.Application(
        [(r"/status/(?P<code>[0-9]{3})", _Status), (r"/ok", _Status), (r"/boom", _Boom)],
        log_function=access_log_function(metrics, _access), metrics=metrics)


@pytest.mark.gen_test(timeout=10)
async def test_access_line_per_request_with_level_by_status(http_client, base_url):
    for path in ("/ok", "/status/404", "/boom", "/nowhere-12345"):
        await http_client.fetch(base_url + path, raise_error=False)
    lines = [(r.levelno, r.getMessage()) for r in _records.records]
    assert [level for level, _ in lines] == [logging.INFO, logging.WARNING, logging.ERROR, logging.WARNING]
    method, path, status, ms, ip = lines[0][1].split()
    assert (method, path, status, ip) == ("GET", "/ok", "200", "127.0.0.1")
    assert ms.endswith("ms") and float(ms[:-2]) >= 0
    assert [r.status for r in _records.records] == [200, 404, 500, 404]
    assert _records.records[1].route == "/status/{code}"


@pytest.mark.gen_test(timeout=10)
async def test_metrics_label_by_route_pattern_not_raw_path(app, http_client, base_url):
    for code in ("201", "202", "201"):
        await http_client.fetch(base_url + "/status/" + code, raise_error=False)
    for junk in ("/a", "/b/c", "/d?x=1"):
        await http_client.fetch(base_url + junk, raise_error=False)
    text = app.settings["metrics"].render()
    samples = {(s.name, s.labels.get("route"), s.labels.get("status")): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}
    assert samples[("trakt_watch_http_requests_total", "/status/{code}", "201")] == 2
    assert samples[("trakt_watch_http_requests_total", "unmatched", "404")] == 3
    assert "/b/c" not in text
    assert samples[("trakt_watch_http_request_duration_seconds_count", "/status/{code}", "202")] == 1


# --- a full run never logs a secret ----------------------------------------------------------------

def test_full_run_never_logs_a_secret(tmp_path):
    """CLI sync + server (JSON logs, DEBUG) with every secret configured, against the fakes:
    syncs, upstream failures, a now-watching poll with TMDB backdrops, admin requests right and
    wrong, shutdown. No secret value appears anywhere in the captured output."""
    import secrets as random_secrets
    import signal
    import subprocess
    import sys
    import time
    from datetime import UTC, datetime, timedelta

    import tornado.httpclient

    from tests.fakes.tmdb import FakeTmdb
    from tests.fakes.trakt import FakeAccount, FakeTrakt
    from tests.helpers.process import ROOT, SECRET_VARIABLES, serve_process

    values = {"TRAKT_API_KEY": "trk" + random_secrets.token_hex(16), "TMDB_API_KEY": "tmd" + random_secrets.token_hex(16),
              "ADMIN_TOKEN": "adm" + random_secrets.token_hex(16)}
    account = FakeAccount.build(history=40, watched_movies=8, shows=3, lists=2)
    trakt = FakeTrakt(account, api_key=values["TRAKT_API_KEY"])
    now = datetime.now(UTC)
    trakt.watching = {"expires_at": (now + timedelta(minutes=90)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                      "started_at": (now - timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                      "action": "scrobble", "type": "movie",
                      "movie": account.watched_movies[0]["movie"]}
    data = tmp_path / "data"
    with trakt.running_in_thread() as trakt_url, FakeTmdb(api_key=values["TMDB_API_KEY"]).running_in_thread() as tmdb:
        env = {**values, "TRAKT_USERNAME": account.username, "TRAKT_API_URL": trakt_url,
               "TMDB_API_URL": tmdb.api_url, "TMDB_IMAGE_URL": tmdb.image_url, "DATA_DIR": str(data),
               "LOG_LEVEL": "DEBUG"}
        environment = {k: v for k, v in os.environ.items() if k not in SECRET_VARIABLES} | env
        sync = subprocess.run([sys.executable, str(ROOT / "server.py"), "sync"], cwd=tmp_path, env=environment,
                              capture_output=True, text=True, timeout=120)
        assert sync.returncode == 0, sync.stdout + sync.stderr
        outputs = [sync.stdout, sync.stderr]

        trakt.inject("status", status=502, times=50)  # the next polls and the next sync fail upstream
        tmdb.fail_next(5, 500)
        with serve_process(tmp_path, {**env, "LOG_FORMAT": "json", "WATCHING_POLL_SECONDS": "0.2"}) as server:
            client = tornado.httpclient.HTTPClient()

            def call(path: str, method: str = "GET", token: str | None = None) -> int:
                headers = {"Authorization": f"Bearer {token}"} if token else {}
                request = tornado.httpclient.HTTPRequest(server.url + path, method=method, headers=headers,
                                                         body=b"" if method == "POST" else None, request_timeout=10)
                try:
                    return client.fetch(request).code
                except tornado.httpclient.HTTPClientError as exc:
                    return exc.code

            assert call("/api/trakt/sync", "POST", values["ADMIN_TOKEN"]) == 202
            deadline = time.monotonic() + 30
            while json.loads(client.fetch(server.url + "/api/trakt/sync").body)["running"]:
                assert time.monotonic() < deadline, "sync did not finish"
                time.sleep(0.1)
            trakt.clear_faults()  # Trakt recovers: the watcher logs the recovery and fetches TMDB backdrops
            deadline = time.monotonic() + 30
            while not json.loads(client.fetch(server.url + "/api/watching").body).get("isWatching"):
                assert time.monotonic() < deadline, "the watcher never saw the playing movie"
                time.sleep(0.1)
            codes = [call("/api/trakt", "POST", values["ADMIN_TOKEN"]), call("/api/trakt", "POST", "wrong"),
                     call("/api/trakt", "POST"), call("/api/images/reload-cache", "POST", values["ADMIN_TOKEN"]),
                     call("/api/trakt/user/stats"), call("/healthz"), call("/metrics"), call("/no/such/page"),
                     call("/api/trakt/search?q=" + values["TRAKT_API_KEY"])]
            assert codes[:4] == [200, 403, 401, 200]
            server.process.send_signal(signal.SIGTERM)
            assert server.wait_exit() == 0
            outputs.append(server.log())
        client.close()

    text = "\n".join(outputs)
    for name, value in values.items():
        assert value not in text, f"{name} appears in the logs"
    json_lines = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
    access = [line for line in json_lines if line["logger"] == "trakt_watch.access"]
    assert {line["path"] for line in access} >= {"/api/trakt", "/api/trakt/sync", "/healthz", "/metrics"}
    assert any(line["status"] == 403 and line["level"] == "WARNING" for line in access)
    # Access lines carry the path, never the query string a client may have put a secret in.
    assert any(line["path"] == "/api/trakt/search" for line in access)
    assert any("502" in line["message"] or "fail" in line["message"].lower() for line in json_lines
               if line["level"] in ("WARNING", "ERROR") and line["logger"] != "trakt_watch.access")


# --- access lines written by our handler directly (README "Performance") --------------------------

class _CountingStream(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def _direct_app(metrics: AppMetrics) -> tornado.web.Application:
    return tornado.web.Application([(r"/status/(?P<code>[0-9]{3})", _Status), (r"/ok", _Status)],
                                   log_function=access_log_function(metrics))


@pytest.mark.gen_test(timeout=10)
async def test_direct_access_lines_look_like_records_and_are_redacted(captured):
    import asyncio

    from tornado.httpclient import AsyncHTTPClient
    from tornado.testing import bind_unused_port

    buffer = captured()
    sock, port = bind_unused_port()
    server = tornado.httpserver.HTTPServer(_direct_app(AppMetrics()))
    server.add_sockets([sock])
    client = AsyncHTTPClient()
    with alone():
        await client.fetch(f"http://127.0.0.1:{port}/ok")
        await client.fetch(f"http://127.0.0.1:{port}/status/404", raise_error=False)
        await client.fetch(f"http://127.0.0.1:{port}/x{SECRETS['admin_token']}?q=1", raise_error=False)
        await asyncio.sleep(0)
    server.stop()
    lines = buffer.getvalue().splitlines()
    assert len(lines) == 3
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"
    import re
    assert re.fullmatch(stamp + r" INFO trakt_watch\.access: GET /ok 200 \d+\.\d\dms 127\.0\.0\.1", lines[0]), lines[0]
    assert re.fullmatch(stamp + r" WARNING trakt_watch\.access: GET /status/404 404 \d+\.\d\dms 127\.0\.0\.1",
                        lines[1]), lines[1]
    assert " GET /x[REDACTED] 404 " in lines[2] and SECRETS["admin_token"] not in buffer.getvalue()
    assert "q=1" not in lines[2]  # the path, never the query string


@pytest.mark.gen_test(timeout=10)
async def test_direct_json_access_lines_carry_the_record_fields(captured):
    import asyncio

    from tornado.httpclient import AsyncHTTPClient
    from tornado.testing import bind_unused_port

    buffer = captured(log_format="json")
    sock, port = bind_unused_port()
    server = tornado.httpserver.HTTPServer(_direct_app(AppMetrics()))
    server.add_sockets([sock])
    with alone():
        await AsyncHTTPClient().fetch(f"http://127.0.0.1:{port}/status/201")
        await asyncio.sleep(0)
    server.stop()
    line = json.loads(buffer.getvalue())
    assert set(line) == {"time", "level", "logger", "message", "method", "path", "status", "ms", "route",
                         "remote_ip"}
    assert (line["level"], line["logger"], line["method"], line["path"], line["status"], line["route"],
            line["remote_ip"]) == ("INFO", "trakt_watch.access", "GET", "/status/201", 201, "/status/{code}",
                                   "127.0.0.1")
    assert line["message"] == f"GET /status/201 201 {line['ms']:.2f}ms 127.0.0.1"
    assert re_time(line["time"])


def re_time(text: str) -> bool:
    import re
    return re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", text) is not None


class _FakeRequest:
    def __init__(self, path: str) -> None:
        self.method, self.path, self.remote_ip = "GET", path, "127.0.0.1"

    def request_time(self) -> float:
        return 0.0012


class _FakeHandler:
    def __init__(self, path: str, status: int = 200) -> None:
        self.request, self.status = _FakeRequest(path), status
        self.application = tornado.web.Application([(r"/.*", _Status)])

    def get_status(self) -> int:
        return self.status


def test_lines_of_one_loop_iteration_are_one_write_in_order_with_other_records():
    import asyncio

    stream = _CountingStream()
    config = dataclasses.replace(Config())
    handler = setup_logging(config, stream=stream)
    try:
        log_request = access_log_function()

        async def one_iteration() -> None:
            for n in range(5):
                log_request(_FakeHandler(f"/n{n}"))
            assert stream.getvalue() == ""  # gathered, not written yet
            await asyncio.sleep(0)
            assert stream.writes == 1
            log_request(_FakeHandler("/before"))
            logging.getLogger("trakt_watch.test").warning("a record")
            log_request(_FakeHandler("/after"))
            handler.flush()  # what logging.shutdown() does at exit

        with alone():
            asyncio.run(one_iteration())
    finally:
        logging.getLogger().removeHandler(handler)
    paths = [line.split()[5] if "access" in line else "record" for line in stream.getvalue().splitlines()]
    assert paths == ["/n0", "/n1", "/n2", "/n3", "/n4", "/before", "record", "/after"]


def test_access_lines_follow_the_level_and_any_other_handler_gets_records(captured):
    buffer = captured(log_level="WARNING")
    log_request = access_log_function()
    extra = _Records()
    with alone():
        log_request(_FakeHandler("/quiet"))  # INFO: below the level, no event loop needed
        logging.getLogger(ACCESS_LOGGER).addHandler(extra)
        try:
            log_request(_FakeHandler("/missing", 404))
        finally:
            logging.getLogger(ACCESS_LOGGER).removeHandler(extra)
    assert "/quiet" not in buffer.getvalue()
    assert [r.path for r in extra.records] == ["/missing"]  # a record, since another handler wants it
    assert " GET /missing 404 1.20ms 127.0.0.1" in buffer.getvalue()

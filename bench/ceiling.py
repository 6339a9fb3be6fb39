"""The ceiling: a minimal Tornado app that replays recorded responses byte for byte.

It answers each recorded URI with the same status, headers and body our server gave, and a
recorded ETag with 304 by a plain string comparison carrying the headers our own 304 carried (no
per-request hashing, no routing beyond one dict lookup, no logging). Whatever one Tornado process can do with those bytes on this
machine, this does; our server's throughput is reported as a ratio of it.

Run as its own process: `python -m bench.ceiling --port P --fixtures <folder>`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import tornado.httpserver
import tornado.web

# From this size on, the body is written after the headers instead of joined to them.
SEPARATE_BODY_BYTES = 64 * 1024
# Headers Tornado writes itself for every response; replaying them would duplicate them.
_FRAMEWORK_HEADERS = {"date", "server", "content-length", "transfer-encoding", "connection"}


@dataclass(frozen=True)
class Fixture:
    """One recorded response: what to send for a URI, and the headers of its recorded 304."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    # Our server's 304 for this URI (ETag, Vary, CORS, security headers); none recorded: the ETag.
    not_modified: tuple[tuple[str, str], ...] = ()

    @property
    def etag(self) -> str | None:
        for name, value in self.headers:
            if name.lower() == "etag":
                return value
        return None

    @classmethod
    def recorded(cls, status: int, headers: list[tuple[str, str]], body: bytes) -> Fixture:
        """A fixture from a live response, without the headers Tornado adds by itself."""
        return cls(status, _replayed(headers), body)

    def with_not_modified(self, headers: list[tuple[str, str]]) -> Fixture:
        """This fixture with the headers of a live 304 for its URI, to send on a matching ETag."""
        return replace(self, not_modified=_replayed(headers))


def _replayed(headers: list[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    return tuple((n, v) for n, v in headers if n.lower() not in _FRAMEWORK_HEADERS)


def ceiling_argv(port: int, fixtures_dir: Path) -> list[str]:
    """The command line that serves the fixtures saved in `fixtures_dir` on `port` (run from the repository)."""
    return [sys.executable, "-m", "bench.ceiling", "--port", str(port), "--fixtures", str(fixtures_dir)]


class ReplayHandler(tornado.web.RequestHandler):
    """Looks the URI up and writes the recorded answer; 304 when If-None-Match equals the ETag."""

    def initialize(self, fixtures: dict[str, Fixture]) -> None:
        self.fixtures = fixtures

    def set_default_headers(self) -> None:
        self.clear_header("Content-Type")  # the recorded headers say what the type is

    def compute_etag(self) -> None:
        return None  # never hash the body

    def get(self) -> None:
        fixture = self.fixtures.get(self.request.uri or "")
        if fixture is None:
            self.set_status(404)
            self.finish(b'{"error": "not recorded"}')
            return
        etag = fixture.etag
        if etag is not None and self.request.headers.get("If-None-Match") == etag:
            self.set_status(304)
            for name, value in fixture.not_modified or (("Etag", etag),):
                self.add_header(name, value)
            self.finish()
            return
        self.set_status(fixture.status)
        for name, value in fixture.headers:
            self.add_header(name, value)
        if len(fixture.body) >= SEPARATE_BODY_BYTES:
            # Headers first, then the body object itself: joining headers and body into one
            # buffer would copy tens of MB per request (per connection, at once, at 64 connections).
            self.set_header("Content-Length", len(fixture.body))
            self.flush()
            self.write(fixture.body)
            self.finish()
            return
        self.finish(fixture.body if fixture.status != 304 else None)


def _no_log(handler: tornado.web.RequestHandler) -> None:
    """The ceiling writes no access log."""


def make_ceiling_app(fixtures: dict[str, Fixture]) -> tornado.web.Application:
    """A one-route Tornado application replaying `fixtures` (URI -> recorded response)."""
    return tornado.web.Application([(r".*", ReplayHandler, {"fixtures": fixtures})], log_function=_no_log)


def save_fixtures(folder: Path, fixtures: dict[str, Fixture]) -> None:
    """Write fixtures as `index.json` plus one body file each (bodies can be tens of MB)."""
    folder.mkdir(parents=True, exist_ok=True)
    index = []
    for number, (uri, fixture) in enumerate(fixtures.items()):
        body_name = f"body-{number}.bin"
        (folder / body_name).write_bytes(fixture.body)
        index.append({"uri": uri, "status": fixture.status, "headers": [list(h) for h in fixture.headers],
                      "not_modified": [list(h) for h in fixture.not_modified], "body": body_name})
    (folder / "index.json").write_text(json.dumps(index, indent=1))


def load_fixtures(folder: Path) -> dict[str, Fixture]:
    """Read what save_fixtures() wrote."""
    fixtures = {}
    for entry in json.loads((folder / "index.json").read_text()):
        fixtures[entry["uri"]] = Fixture(int(entry["status"]), _pairs(entry["headers"]),
                                         (folder / entry["body"]).read_bytes(), _pairs(entry.get("not_modified", ())))
    return fixtures


def _pairs(headers) -> tuple[tuple[str, str], ...]:
    return tuple((str(n), str(v)) for n, v in headers)


READY_URI = "/healthz"
READY_FIXTURE = Fixture(200, (("Content-Type", "application/json; charset=UTF-8"),), b'{"status": "ok"}')


async def _serve(port: int, fixtures: dict[str, Fixture]) -> None:
    server = tornado.httpserver.HTTPServer(make_ceiling_app(fixtures))
    server.listen(port, address="127.0.0.1")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.stop()


def event_loop_runner():
    """The loop `serve` would run on here (server.run_loop's rule: uvloop when it can be imported),
    so the ratio compares like with like."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run
    return uvloop.run


def main(argv: list[str] | None = None) -> None:
    """Serve recorded fixtures on 127.0.0.1 until SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--fixtures", type=Path, required=True, help="folder written by save_fixtures()")
    args = parser.parse_args(argv)
    fixtures = load_fixtures(args.fixtures)
    fixtures.setdefault(READY_URI, READY_FIXTURE)  # so the runner can wait for it like for our server
    event_loop_runner()(_serve(args.port, fixtures))


if __name__ == "__main__":
    main()

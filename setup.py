import os

from setuptools import setup


def tree(source: str, target: str) -> list[tuple[str, list[str]]]:
    """data_files entries that install every file below `source` under `target`."""
    entries = []
    for dirpath, dirnames, filenames in os.walk(source):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != "__pycache__")
        files = [os.path.join(dirpath, f) for f in sorted(filenames) if not f.startswith(".")]
        if files:
            entries.append((os.path.join(target, os.path.relpath(dirpath, source)).rstrip("/."), files))
    return entries


setup(
    name="trakt-watch",
    version="0.1.0",
    description="Self-hosted dashboard that mirrors a Trakt.tv account, with live now-watching",
    python_requires=">=3.11",
    py_modules=["server"],
    packages=["handlers", "services", "services.data", "services.demo", "services.images", "services.ops",
              "services.trakt", "services.watching"],
    install_requires=[
        # 6.6: WebSocket same-origin requests are accepted before check_origin() is asked, and a
        # ping timeout means "no pong within it" (6.4 closed healthy clients at timeout=interval);
        # <7: handlers/watching.py reaches one undocumented attribute (WebSocketProtocol.stream).
        "tornado>=6.6,<7",
        # 3.14.1: inflates gzip/deflate in bounded steps, also when a read stops early (CVE-2025-69223,
        # CVE-2026-54278); services/retry.py relies on it to stop a gzip bomb at the answer limit.
        "aiohttp>=3.14.1,<4",
        "aiofiles>=23.1",
        "ujson>=6.1",
        # /metrics: registry, exposition and escaping done by the reference client (README "Health and metrics");
        # <1: we label its generate_latest() output as text format 0.0.4
        "prometheus_client>=0.20,<1",
        # .env files read as python-dotenv reads them (quotes, inline comments, escapes, multi-line values);
        # <2: we use dotenv.parser.parse_stream for the line numbers of our file:line errors
        "python-dotenv>=1.0,<2",
        # `trakt-watch sync`'s terminal bar: tqdm.contrib.logging prints log records above it;
        # that contrib module finds the console handler by its stream, so the major is pinned
        "tqdm>=4.66,<5",
        # /calendar.ics: RFC 5545 folding, escaping and value types done by a maintained library, not by
        # hand; 6 and 7 share the Calendar/Event/vDDDTypes API we use, 8 may not
        "icalendar>=6,<8",
    ],
    extras_require={
        # README "Performance": `serve` runs on uvloop when it is installed. 0.18 brought uvloop.run;
        # a 0.x minor may change what Tornado relies on, so the next one is taken after a bench run.
        "fast": ["uvloop>=0.18,<0.24"],
        "test": [
            # the uvloop path of `serve` runs in CI, which installs this extra only; the asyncio path
            # is what every in-process test runs on (and tests/test_server_loop.py hides uvloop once)
            "uvloop>=0.18,<0.24",
            "pytest>=8",
            "pytest-tornado==0.8.1",
            # pytest-tornado imports pkg_resources, which setuptools 82 removed
            "setuptools<82",
            # the linter .ci/run applies; pinned so a new release's new rules don't break CI overnight
            "ruff==0.17.6",
            # tests/test_fuzz.py drives generated requests from /api/openapi.json
            "schemathesis>=4,<5",
            # tests/test_openapi.py checks the served document against the OpenAPI 3.1 meta-schema
            "openapi-spec-validator>=0.7",
            # tests/browser/ drive Debian's /usr/bin/chromium (apt, see .ci/run); no browser download
            "playwright>=1.48",
        ],
    },
    entry_points={"console_scripts": ["trakt-watch=server:main"]},
    # static/ and the demo account are not Python packages: install them under share/.
    data_files=tree("static", "share/trakt-watch/static") + tree("data/demo", "share/trakt-watch/data/demo"),
)

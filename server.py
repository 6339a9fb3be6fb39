"""Trakt Watch Dashboard: one Tornado process that serves a mirrored Trakt account.

This module is the one place that builds the services, wires every route and runs the
command line (`trakt-watch serve|sync|demo|import|login|logout|status`).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import signal
import sys
from pathlib import Path
from collections.abc import Callable, Coroutine
from typing import Any, Sequence

import tornado.netutil
import tornado.routing
import tornado.web
from tornado.routing import AnyMatches, Rule
from tornado.iostream import IOStream

from handlers.base import SERVER_BODY_LIMIT, Application, NotFoundHandler
from handlers.dashboard import DashboardFileHandler, PrecompressedFiles
from handlers.images import (AvailableImagesHandler, ImageFileHandler, ImageRedirectHandler, ImageReloadHandler,
                             RandomBackdropHandler)
from handlers.trakt import SyncHandler
from handlers.ops import HealthHandler, MetricsHandler, OpenApiHandler
from handlers.watching import WatchingHandler, WatchingSocket
from handlers.calendar import CalendarFeedHandler
from handlers.data import (ActivityHandler, CalendarHandler, FileHandler, IndexHandler, InsightsHandler, ListItemsHandler,
                           PagedFileHandler, SearchHandler, SummaryHandler, TypedCollectionHandler, UpNextHandler)
from services import resources
from services.data import layout
from services.config import Config, ConfigError, load_config
from services.ops.connections import HTTPServer
from services.ops.listen import Listener, raise_open_files_limit
from services.ops.logs import access_log_function, setup_logging
from services.ops.metrics import AppMetrics, ServicesCollector
from services.ops.notify import SystemdNotifier
from services.ops.security import dashboard_headers
from services.data.snapshots import DataFolder
from services.watching.demo_schedule import DemoSchedule
from services.images.index import ImageIndex
from services.data.store import DataStore
from services.trakt.sync import SyncService, load_image_downloader
from services.images.tmdb import TmdbClient
from services.trakt.auth import TokenManager
from services.trakt.client import RequestBudget, TraktClient
from services.watching.watcher import Watcher

log = logging.getLogger("trakt_watch")

SHUTDOWN_DRAIN_SECONDS = 5.0
# Bytes asked of a socket per read. Tornado's default (64 KiB) zeroes a fresh 64 KiB buffer for
# every read, twice a request: 13 % of a cached answer's instructions and a flushed L1 cache each
# time. A request's headers fit in 4 KiB (larger ones take more reads; no route reads a body)
# (README "Performance").
READ_CHUNK_BYTES = 4 * 1024
WEBSOCKET_PING_SECONDS = 25.0  # protocol pings keep idle /ws/watching connections (and proxies) alive
# A client that has not answered a ping this long after it is closed: it has stopped reading.
WEBSOCKET_PING_TIMEOUT_SECONDS = 25.0


class Services:
    """Every long-lived part of the server, built in dependency order (each from the parts above
    it), started in that order and stopped in reverse.

    Two kinds of event travel against that order: a committed or finished sync must reach the
    store, the image index and the metrics, built after the sync (the store and the metrics read
    its status); reloaded data must reach the image index and the watcher, built after the store.
    Those parts get this object's methods at construction, and the methods pass each event on.
    """

    def __init__(self, config: Config) -> None:
        self.config = config
        self.folder = DataFolder(config.data_dir)
        # one session and one request budget for every Trakt caller; the sign-in (README "Signing in")
        # spends that budget too, and the watcher and the sync share it, so one refresh runs at a time
        budget = RequestBudget(config.trakt_rate_limit)
        self.auth = TokenManager(config, budget=budget)
        self.trakt: TraktClient | None = TraktClient(config, budget=budget, auth=self.auth) \
            if config.trakt_api_key else None
        self.tmdb: TmdbClient | None = TmdbClient(config) if config.tmdb_api_key else None
        # scheduled and on-demand syncs (POST /api/trakt/sync), sharing Trakt's request limit with the poller
        self.sync = SyncService(config, self.folder, images=load_image_downloader() if config.tmdb_api_key else None,
                                budget=budget, auth=self.auth,
                                on_committed=self._snapshot_committed, on_finished=self._sync_finished,
                                on_data_changed=self._data_changed)
        self.store = DataStore(config, self.folder, resources.demo_data_dir(), sync_status=self.sync.status,
                               on_reload=self._data_reloaded, no_data_reason=self.sync.not_synced_reason)
        store = self.store
        # the in-memory image index behind /api/images; the store knows: demo images or DATA_DIR/images
        self.images = ImageIndex(config, lambda: store.images_dir)
        images = self.images
        # Demo backdrops link to /api/images, so offer only those the image index can serve.
        demo = DemoSchedule(store, config.demo_watching_schedule,
                            has_backdrop=lambda kind, tmdb_id: images.lookup(kind, "backdrops", tmdb_id) is not None)
        self.watcher = Watcher(config, self.trakt, self.tmdb, demo_source=demo,
                               on_playback_ended=self.sync.follow_playback)  # fresh within a minute
        # data age, clients, polls... read from the services at every scrape
        self.metrics = AppMetrics(ServicesCollector(store, self.watcher, self.sync, images))

    async def _snapshot_committed(self, _snapshot: Path) -> None:
        await self.store.reload()  # serve the new snapshot at once

    def _data_changed(self, changed: list[str], last_updated: str) -> None:
        self.watcher.publish_data_change(changed, last_updated)  # open dashboards refresh those sections

    async def _sync_finished(self, report: dict) -> None:
        self.store.refresh_status()  # /api/trakt metadata shows the last attempt
        self.metrics.observe_sync(report)
        if report.get("committed"):  # an unchanged check downloads nothing: no rescan every SYNC_CHECK_MINUTES
            await self.images.on_data_reloaded()  # images are downloaded after the commit: index them now

    async def _data_reloaded(self, store: DataStore) -> None:
        self.watcher.refresh()  # demo <-> synced data changes the watcher's source
        await self.images.on_data_reloaded(store)

    def in_start_order(self) -> list[Any]:
        return [self.store, self.images, self.watcher, self.sync]

    def clients(self) -> list[Any]:
        return [client for client in (self.trakt, self.tmdb) if client is not None]

    async def start(self) -> None:
        for client in self.clients():
            await client.start()
        for service in self.in_start_order():
            await service.start()

    async def stop(self) -> None:
        for service in reversed(self.in_start_order()):
            try:
                await service.stop()
            except Exception:
                log.exception("stopping %s failed", type(service).__name__)
        for client in self.clients():
            try:
                await client.close()
            except Exception:
                log.exception("closing %s failed", type(client).__name__)
        await self.auth.close()


def build_services(config: Config) -> Services:
    """The server's services for `config`, built and wired (not started)."""
    return Services(config)


def make_app(config: Config, services: Services, **settings: Any) -> tornado.web.Application:
    """The whole route table."""
    store = services.store
    common = {"config": config, "store": store}
    images = {"config": config, "index": services.images}
    static = {"path": str(resources.static_dir()), "packed": PrecompressedFiles(resources.static_dir())}

    def data_file(path: str, endpoint: str) -> tuple:
        return (path, FileHandler, dict(common, endpoint=endpoint))

    def collection(path: str, files: dict[str, str]) -> tuple:
        return (path, TypedCollectionHandler, dict(common, files=files))

    routes = [
        (r"/api/trakt/?", IndexHandler, common),
        data_file(r"/api/trakt/user/profile/?", layout.PROFILE),
        data_file(r"/api/trakt/user/stats/?", layout.STATS),
        (r"/api/trakt/user/comments/?", PagedFileHandler, dict(common, endpoint=layout.COMMENTS)),
        data_file(r"/api/trakt/user/ratings/?", layout.RATINGS),
        data_file(r"/api/trakt/user/lists/?", layout.LISTS),
        (r"/api/trakt/user/lists/([^/]+)/?", ListItemsHandler, common),
        collection(r"/api/trakt/user/history/?", layout.HISTORY),
        collection(r"/api/trakt/user/watched/?", layout.WATCHED),
        collection(r"/api/trakt/user/watchlist/?", {"movies": layout.WATCHLIST["movies"],
                                                    "shows": layout.WATCHLIST["shows"]}),
        (r"/api/trakt/user/activity/?", ActivityHandler, common),
        (r"/api/trakt/user/insights/?", InsightsHandler, common),
        (r"/api/trakt/user/summary/?", SummaryHandler, dict(common, watcher=services.watcher)),
        (r"/api/trakt/search/?", SearchHandler, common),
        (r"/api/trakt/user/up-next/?", UpNextHandler, common),
        (r"/api/trakt/user/calendar/?", CalendarHandler, common),
        (r"/calendar\.ics", CalendarFeedHandler, common),
        (r"/api/watching/?", WatchingHandler, {"config": config, "watcher": services.watcher}),
        (r"/ws/watching", WatchingSocket, {"config": config, "watcher": services.watcher}),
        (r"/healthz", HealthHandler, {"config": config, "store": store, "folder": services.folder,
                                      "watcher": services.watcher, "sync": services.sync}),
        (r"/metrics", MetricsHandler, {"config": config, "metrics": services.metrics}),
        (r"/api/openapi\.json", OpenApiHandler, {"config": config}),
        (r"/api/trakt/sync/?", SyncHandler, {"config": config, "sync": services.sync}),
        (r"/api/images/?", ImageRedirectHandler, images),
        (r"/api/images/random-backdrop/?", RandomBackdropHandler, images),
        (r"/api/images/available/?", AvailableImagesHandler, images),
        (r"/api/images/reload-cache/?", ImageReloadHandler, images),
        (r"/api/.*", NotFoundHandler, {"config": config}),
        (r"/()", DashboardFileHandler, {**static, "default_filename": "index.html"}),
        (r"/year/?()", DashboardFileHandler, {**static, "default_filename": "year.html"}),
        (r"/static/(.*)", DashboardFileHandler, static),
        (r"/images/(.*)", ImageFileHandler, images),
        (r"/favicon\.ico", tornado.web.RedirectHandler, {"url": "/static/favicon.svg", "permanent": True}),
    ]
    settings.setdefault("log_function", access_log_function(services.metrics))
    settings.setdefault("dashboard_headers", dashboard_headers(config))
    app = Application(
        routes,
        default_handler_class=NotFoundHandler,
        default_handler_args={"config": config},
        compress_response=False,
        **{"websocket_ping_interval": WEBSOCKET_PING_SECONDS,
           "websocket_ping_timeout": WEBSOCKET_PING_TIMEOUT_SECONDS, **settings},
    )
    app.wildcard_router.rules.insert(0, Rule(AnyMatches(), FixedPaths(app, routes)))
    return app


class FixedPaths(tornado.routing.Router):
    """The routes without a parameter in their path, found with one dict lookup.

    Tornado tries its rules in order, one regex each: from the 25th place the image redirect paid
    about 5 % of its cost for them (README "Performance"). This router goes first and answers
    for the fixed paths; a path it does not know goes on to the rules, which stay the route table
    (the route names of the metrics and the OpenAPI checks read them)."""

    def __init__(self, app: tornado.web.Application, routes: list[tuple]) -> None:
        self.app = app
        self.table: dict[str, tuple[type, dict]] = {}
        for pattern, handler, kwargs in routes:
            for path in fixed_paths(pattern):
                self.table.setdefault(path, (handler, kwargs))  # the first rule wins, as in Tornado

    def find_handler(self, request: Any, **_: Any) -> Any:
        found = self.table.get(request.path)
        return None if found is None else self.app.get_handler_delegate(request, found[0], found[1])


_LITERAL = re.compile(r"(?:[^\\.^$*+?{}\[\]|()]|\\.)*")


def fixed_paths(pattern: str) -> list[str]:
    """The paths a route pattern matches when it has no parameter: `/a/b/?` -> `/a/b`, `/a/b/`;
    `/calendar\\.ics` -> `/calendar.ics`; [] for a pattern with groups or wildcards."""
    optional_slash = pattern.endswith("/?")
    base = pattern[:-2] if optional_slash else pattern
    if not _LITERAL.fullmatch(base):
        return []
    path = re.sub(r"\\(.)", r"\1", base)
    return [path or "/", path + "/"] if optional_slash else [path]


# --- serve -------------------------------------------------------------------------------
def make_http_server(app: tornado.web.Application, config: Config) -> HTTPServer:
    """The HTTP server `serve` runs `app` in: proxy headers honoured only with TRUST_PROXY, a cap
    on bodies for routes outside the handlers' own rule, reads of READ_CHUNK_BYTES, idle
    connections closed by a sweep (services/ops/connections.py)."""
    return HTTPServer(app, xheaders=config.trust_proxy, max_body_size=SERVER_BODY_LIMIT,
                      chunk_size=READ_CHUNK_BYTES)


async def serve(config: Config) -> int:
    """Run until SIGTERM/SIGINT, then shut down in order and return the exit code."""
    raise_open_files_limit()  # before anything opens files or sockets
    services = build_services(config)
    await services.start()
    server = make_http_server(make_app(config, services), config)
    try:
        sockets = tornado.netutil.bind_sockets(config.port, config.host)
    except OSError as exc:
        log.error("Cannot listen on %s:%s: %s", config.host, config.port, exc.strerror or exc)
        await services.stop()
        return 1
    # Our accept loop, not server.listen(): out of file descriptors it pauses instead of spinning.
    listener = Listener(sockets, lambda connection, address: server.handle_stream(
        IOStream(connection, max_buffer_size=server.max_buffer_size, read_chunk_size=server.read_chunk_size),
        address))
    listener.start()
    log.info("Serving %s on http://%s:%s/ (event loop: %s)",
             "the demo account" if services.store.is_demo else config.data_dir, config.host, config.port,
             loop_name(asyncio.get_running_loop()))
    notifier = SystemdNotifier()  # no-op outside systemd
    # READY=1 now that data is loaded and the port is open; then WATCHDOG=1 from the event loop
    # (a wedged loop misses the pings and systemd restarts us).
    await notifier.start(f"Serving on {config.host}:{config.port}")

    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    await stopping.wait()

    log.info("Shutting down")
    await notifier.stop()  # STOPPING=1
    listener.stop()  # no new connections
    await services.stop()
    try:
        await asyncio.wait_for(server.close_all_connections(), SHUTDOWN_DRAIN_SECONDS)
    except asyncio.TimeoutError:
        log.warning("Some connections were still open after %ss", SHUTDOWN_DRAIN_SECONDS)
    return 0


def run_loop() -> Callable[[Coroutine[Any, Any, int]], int]:
    """`uvloop.run` when uvloop is installed (the `fast` extra, README "Performance"), else `asyncio.run`."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run
    return uvloop.run


def loop_name(loop: asyncio.AbstractEventLoop) -> str:
    """What the start-up line says the server runs on: `uvloop 0.23.0` or `asyncio`."""
    if type(loop).__module__.split(".")[0] == "uvloop":
        import uvloop

        return f"uvloop {uvloop.__version__}"
    return "asyncio"


# --- command line ------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trakt-watch", description=__doc__.splitlines()[0])
    parser.add_argument("--env-file", type=Path, help="read settings from this file instead of ./.env")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve_cmd = commands.add_parser("serve", help="run the dashboard server")
    serve_cmd.add_argument("--host", help="listen address (default 127.0.0.1, env HOST)")
    serve_cmd.add_argument("--port", help="listen port (default 8888, env PORT)")
    serve_cmd.add_argument("--data-dir", type=Path, help="data folder (default ./data, env DATA_DIR)")
    serve_cmd.add_argument("--demo", action="store_true", help="serve the bundled demo account")

    sync_cmd = commands.add_parser("sync", help="mirror the Trakt account now")
    sync_cmd.add_argument("--data-dir", type=Path)
    sync_cmd.add_argument("--full", action="store_true",
                          help="a full re-mirror instead of the incremental check (README \"Sync\")")
    sync_cmd.add_argument("--images", action=argparse.BooleanOptionalAction, default=None,
                          help="download TMDB images too (default: when TMDB_API_KEY is set)")

    demo_cmd = commands.add_parser("demo", help="write the synthetic demo account")
    demo_cmd.add_argument("--out", type=Path, required=True, help="folder to write")
    demo_cmd.add_argument("--scale", type=_demo_scale, default=1, help="multiply the account's size (1-200)")
    demo_cmd.add_argument("--images", action=argparse.BooleanOptionalAction, default=True,
                          help="also write generated posters and backdrops (default on)")

    import_cmd = commands.add_parser("import", help="import a data folder of the original Next.js app")
    import_cmd.add_argument("source", type=Path, metavar="SRC")
    import_cmd.add_argument("--data-dir", type=Path)

    for name, text in (("login", "sign in to Trakt (OAuth device flow) and store the token"),
                       ("logout", "revoke the stored Trakt token and delete it"),
                       ("status", "who is signed in, token expiry, data age, last sync, the server and its watcher")):
        commands.add_parser(name, help=text).add_argument("--data-dir", type=Path)
    return parser


def _demo_scale(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    from services.demo.account import MAX_SCALE

    if not 1 <= value <= MAX_SCALE:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_SCALE}, got {text}")
    return value


def _setup_logging(config: Config) -> None:
    setup_logging(config)  # LOG_FORMAT text|json, LOG_LEVEL, secrets redacted from every record


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    overrides = {"data_dir": getattr(args, "data_dir", None)}
    if args.command == "serve":
        overrides.update(host=args.host, port=args.port, demo=args.demo or None)
    try:
        config = load_config(overrides, env_file=args.env_file)
    except ConfigError as exc:
        print(f"trakt-watch: configuration error: {exc}", file=sys.stderr)
        return 2
    _setup_logging(config)

    if args.command == "serve":
        return run_loop()(serve(config))
    if args.command == "demo":
        from services.demo.generator import write_demo

        try:
            counts = write_demo(args.out, args.scale, images=args.images)
        except ValueError as exc:  # e.g. --out is a folder of other files: never overwritten
            print(f"trakt-watch demo: {exc}", file=sys.stderr)
            return 2
        print(f"Wrote the demo account (scale {args.scale}) to {args.out}: {counts}")
        return 0
    if args.command == "import":
        from services.data.importer import ImportFailed, import_folder

        try:
            report = import_folder(args.source, DataFolder(config.data_dir))
        except ImportFailed as exc:
            print(f"trakt-watch import: {exc}", file=sys.stderr)
            return 1
        print(report.summary())
        return 0
    if args.command == "sync":
        from services.trakt.sync import run_sync_command

        return asyncio.run(run_sync_command(config, images=args.images, full=args.full))
    if args.command in ("login", "logout", "status"):
        from services.trakt import auth_cli

        return getattr(auth_cli, args.command)(config)
    return 2


if __name__ == "__main__":
    sys.exit(main())

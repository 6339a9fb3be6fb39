"""systemd's sd_notify protocol over $NOTIFY_SOCKET (READY, WATCHDOG, STOPPING) without a dependency.

Outside systemd (no $NOTIFY_SOCKET) every call is a no-op, so the serve path can call it always.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Mapping

import tornado.ioloop

log = logging.getLogger(__name__)


class SystemdNotifier:
    """Sends state lines to the service manager; `start_watchdog()` pings at half of WatchdogSec."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        environ = os.environ if environ is None else environ
        self.address = _socket_address(environ.get("NOTIFY_SOCKET", ""))
        self.watchdog_seconds = _watchdog_seconds(environ)
        self._watchdog: tornado.ioloop.PeriodicCallback | None = None
        self._socket: socket.socket | None = None
        self._failed = False

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def notify(self, *lines: str) -> bool:
        """Send `KEY=VALUE` lines in one datagram; False when there is no socket or it failed."""
        if self.address is None:
            return False
        payload = "\n".join(lines).encode()
        try:
            # One socket for the process's life: a process out of file descriptors must still be
            # able to ping the watchdog, or systemd would restart a server that is only busy.
            if self._socket is None:  # non-blocking: a full queue at systemd never stalls the event loop
                self._socket = socket.socket(socket.AF_UNIX,
                                             socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK)
            self._socket.sendto(payload, self.address)
        except OSError as exc:
            if not self._failed:  # say it once, not every watchdog interval
                log.warning("cannot notify systemd at %s: %s", os.environ.get("NOTIFY_SOCKET"), exc)
                self._failed = True
            return False
        self._failed = False
        return True

    def ready(self, status: str = "") -> bool:
        """The data is loaded and the port is open."""
        return self.notify("READY=1", *([f"STATUS={status}"] if status else []))

    def stopping(self, status: str = "Shutting down") -> bool:
        return self.notify("STOPPING=1", f"STATUS={status}")

    def status(self, text: str) -> bool:
        return self.notify(f"STATUS={text}")

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def start_watchdog(self, alive: Callable[[], bool] | None = None) -> None:
        """Ping from the event loop every WatchdogSec/2 (when systemd asked for it).

        Because the ping runs on the loop, a blocked loop misses it and systemd restarts us.
        `alive` may veto a ping (e.g. a service that knows it is wedged).
        """
        if self.address is None or not self.watchdog_seconds or self._watchdog is not None:
            return

        def ping() -> None:
            if alive is None or alive():
                self.watchdog()

        self._watchdog = tornado.ioloop.PeriodicCallback(ping, self.watchdog_seconds * 1000 / 2)
        self._watchdog.start()
        ping()

    def stop_watchdog(self) -> None:
        if self._watchdog is not None:
            self._watchdog.stop()
            self._watchdog = None

    # The service interface of server.py: start once the data is loaded and the port is open.
    async def start(self, status: str = "") -> None:
        """READY=1, then the watchdog pings."""
        self.ready(status)
        self.start_watchdog()

    async def stop(self) -> None:
        """No more pings, STOPPING=1 (systemd now waits up to TimeoutStopSec)."""
        self.stop_watchdog()
        self.stopping()
        self.close()

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


def _socket_address(value: str) -> str | bytes | None:
    if not value:
        return None
    if value.startswith("@"):  # abstract namespace socket
        return b"\0" + value[1:].encode()
    if value.startswith("/"):
        return value
    log.warning("ignoring NOTIFY_SOCKET=%r: not a unix socket path", value)
    return None


def _watchdog_seconds(environ: Mapping[str, str]) -> float:
    """WATCHDOG_USEC in seconds, or 0 when unset, malformed or meant for another process."""
    raw = environ.get("WATCHDOG_USEC", "")
    pid = environ.get("WATCHDOG_PID", "")
    if pid and pid != str(os.getpid()):
        return 0.0
    try:
        usec = int(raw)
    except ValueError:
        return 0.0
    return usec / 1_000_000 if usec > 0 else 0.0

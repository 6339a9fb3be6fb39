"""The listening sockets and the open-files limit (README "Deployment with systemd").

Tornado's own accept loop (`add_accept_handler`) lets an `accept()` failure escape to the event
loop, which logs a traceback and calls it again at once while the socket stays readable: out
of file descriptors, that is 100 % CPU and a traceback per attempt. `Listener` accepts by
itself instead: when the process (EMFILE) or the system (ENFILE) is out of descriptors or
memory, it stops watching the socket for a short pause that grows while it lasts (connections
wait in the kernel's backlog meanwhile), logs it once per minute with a count, and says when
it accepts again.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import resource
import socket
from collections.abc import Callable

from services.throttled_log import ThrottledLog

log = logging.getLogger("trakt_watch.listen")

OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
PAUSE_FIRST_SECONDS = 0.05
PAUSE_MAX_SECONDS = 1.0
ACCEPTS_PER_WAKEUP = 128  # as Tornado: a burst is taken in one go, but others get their turn


def raise_open_files_limit() -> int:
    """Lift the soft RLIMIT_NOFILE to the hard limit and log the result: shells and systemd start
    processes at 1024, about a thousand sockets. Returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # An unlimited hard limit still stops at the kernel's nr_open (1,048,576 unless changed).
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft >= target:
        log.info("Open files limit: %d", soft)
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError) as exc:
        log.warning("Open files limit: %d (cannot raise it to %d: %s)", soft, target, exc)
        return soft
    log.info("Open files limit: %d (raised from %d)", target, soft)
    return target


class Listener:
    """Accepts connections on `sockets` and hands each to `handle(connection, address)`."""

    def __init__(self, sockets: list[socket.socket], handle: Callable[[socket.socket, object], None]) -> None:
        self.sockets = sockets
        self.handle = handle
        self.failed_accepts = 0  # accept() calls that failed for want of descriptors or memory
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pause = PAUSE_FIRST_SECONDS
        self._paused: dict[socket.socket, asyncio.TimerHandle] = {}
        self._out_of_resources = ThrottledLog(log, logging.ERROR)
        self._other_errors = ThrottledLog(log, logging.WARNING)

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        for sock in self.sockets:
            sock.setblocking(False)
            self._loop.add_reader(sock.fileno(), self._accept, sock)

    def stop(self) -> None:
        """Stop accepting and close the listening sockets (open connections are not touched)."""
        for sock in self.sockets:
            timer = self._paused.pop(sock, None)
            if timer is not None:
                timer.cancel()
            elif self._loop is not None:
                self._loop.remove_reader(sock.fileno())
            sock.close()
        self.sockets = []

    def _accept(self, sock: socket.socket) -> None:
        for _ in range(ACCEPTS_PER_WAKEUP):
            try:
                connection, address = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue  # the client gave up while waiting in the backlog
            except OSError as exc:
                if exc.errno in OUT_OF_RESOURCES:
                    self._pause_accepting(sock, exc)
                    return
                self._other_errors.log("accept() failed: %s", exc)
                continue
            if self._out_of_resources.total:
                self._accepting_again()
            try:
                self.handle(connection, address)
            except Exception:  # one connection's failure must not leave the others unaccepted
                log.exception("Handling a new connection from %s failed", address)
                connection.close()

    def _pause_accepting(self, sock: socket.socket, exc: OSError) -> None:
        self.failed_accepts += 1
        self._out_of_resources.log("Cannot accept connections: %s; pausing accepts (%.2f s, growing to %.0f s while "
                                   "it lasts)", exc.strerror or exc, self._pause, PAUSE_MAX_SECONDS)
        assert self._loop is not None
        self._loop.remove_reader(sock.fileno())
        self._paused[sock] = self._loop.call_later(self._pause, self._resume, sock)
        self._pause = min(PAUSE_MAX_SECONDS, self._pause * 2)

    def _resume(self, sock: socket.socket) -> None:
        del self._paused[sock]
        assert self._loop is not None
        self._loop.add_reader(sock.fileno(), self._accept, sock)

    def _accepting_again(self) -> None:
        failures = self._out_of_resources.reset()
        self._pause = PAUSE_FIRST_SECONDS
        log.warning("Accepting connections again after %d failed attempts", failures)

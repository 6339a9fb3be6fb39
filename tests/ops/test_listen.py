"""services/ops/listen.py and services/throttled_log.py on their own: the accept loop pauses
when out of descriptors instead of spinning, and a repeated error is one line per interval."""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import time

import pytest

from services.ops.listen import Listener
from services.throttled_log import ThrottledLog


class FailingSocket(socket.socket):
    """A listening socket whose first `failures` accept() calls fail with EMFILE."""

    def __init__(self, failures: int) -> None:
        super().__init__(socket.AF_INET, socket.SOCK_STREAM)
        self.failures = failures
        self.attempts = []  # monotonic time of every accept() call

    def accept(self):
        self.attempts.append(time.monotonic())
        if len(self.attempts) <= self.failures:
            raise OSError(errno.EMFILE, "Too many open files")
        return super().accept()


def test_out_of_descriptors_accepting_pauses_for_growing_intervals_and_resumes(caplog):
    async def scenario():
        listening = FailingSocket(failures=4)
        listening.bind(("127.0.0.1", 0))
        listening.listen(8)
        accepted = asyncio.get_running_loop().create_future()
        listener = Listener([listening], lambda connection, address: accepted.set_result(connection))
        listener.start()
        client = socket.create_connection(listening.getsockname())
        try:
            connection = await asyncio.wait_for(accepted, 30)
            connection.close()
        finally:
            client.close()
            listener.stop()
        return listening.attempts, listener.failed_accepts

    with caplog.at_level(logging.INFO, logger="trakt_watch.listen"):
        attempts, failed = asyncio.run(scenario())
    # Four failures, the accept that worked and the one that found the backlog empty: nothing in
    # between (no spinning).
    assert failed == 4 and len(attempts) == 6
    gaps = [later - earlier for earlier, later in zip(attempts, attempts[1:5])]
    assert gaps[0] >= 0.05 and gaps[1] >= 0.1 and gaps[2] >= 0.2 and gaps[3] >= 0.4  # doubling from 50 ms
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["Cannot accept connections: Too many open files; pausing accepts (0.05 s, growing to 1 s "
                        "while it lasts)", "Accepting connections again after 4 failed attempts"]


def test_a_repeated_error_is_written_once_per_interval_with_a_count(caplog):
    now = [100.0]
    throttled = ThrottledLog(logging.getLogger("test.throttled"), logging.ERROR, interval=60, clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="test.throttled"):
        assert throttled.log("accept failed: %s", "EMFILE") is True
        for _ in range(1000):
            now[0] += 0.01
            assert throttled.log("accept failed: %s", "EMFILE") is False
        now[0] = 161.0
        assert throttled.log("accept failed: %s", "EMFILE") is True
    assert [r.getMessage() for r in caplog.records] == [
        "accept failed: EMFILE", "accept failed: EMFILE (and 1000 more times in the last 61 s)"]
    assert [r.levelno for r in caplog.records] == [logging.ERROR, logging.ERROR]
    assert throttled.reset() == 1002
    with caplog.at_level(logging.INFO, logger="test.throttled"):
        assert throttled.log("accept failed: %s", "EMFILE") is True  # a new episode is written at once


@pytest.mark.parametrize("code", [errno.ECONNABORTED, errno.EPROTO])
def test_a_connection_that_fails_while_accepted_does_not_stop_the_others(code):
    class OnceBroken(FailingSocket):
        def accept(self):
            self.attempts.append(time.monotonic())
            if len(self.attempts) == 1:
                raise OSError(code, "broken")
            return socket.socket.accept(self)

    async def scenario():
        listening = OnceBroken(failures=0)
        listening.bind(("127.0.0.1", 0))
        listening.listen(8)
        accepted = asyncio.get_running_loop().create_future()
        listener = Listener([listening], lambda connection, address: accepted.set_result(connection))
        listener.start()
        client = socket.create_connection(listening.getsockname())
        try:
            (await asyncio.wait_for(accepted, 10)).close()
        finally:
            client.close()
            listener.stop()
        return listener.failed_accepts

    assert asyncio.run(scenario()) == 0


def test_a_failure_handling_one_connection_is_logged_and_the_next_is_accepted(caplog):
    async def scenario():
        listening = FailingSocket(failures=0)
        listening.bind(("127.0.0.1", 0))
        listening.listen(8)
        handled = []
        second = asyncio.get_running_loop().create_future()

        def handle(connection, address):
            handled.append(connection)
            if len(handled) == 1:
                raise RuntimeError("boom")
            second.set_result(connection)

        listener = Listener([listening], handle)
        listener.start()
        clients = [socket.create_connection(listening.getsockname()) for _ in range(2)]
        try:
            (await asyncio.wait_for(second, 10)).close()
        finally:
            for client in clients:
                client.close()
            listener.stop()
        return handled

    with caplog.at_level(logging.INFO, logger="trakt_watch.listen"):
        handled = asyncio.run(scenario())
    assert len(handled) == 2 and handled[0].fileno() == -1  # the failed one was closed
    [failure] = caplog.records
    assert failure.getMessage().startswith("Handling a new connection from ") and failure.exc_info[0] is RuntimeError

"""A real `python server.py serve` process on a free loopback port, for tests that need one."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import tornado.netutil

ROOT = Path(__file__).resolve().parents[2]  # the checkout
EXIT_BOUND_SECONDS = 15  # generous for a loaded CI machine; the server aims at well under 5 s
SECRET_VARIABLES = ("TRAKT_API_KEY", "TRAKT_USERNAME", "TMDB_API_KEY", "ADMIN_TOKEN", "NOTIFY_SOCKET",
                    "WATCHDOG_USEC", "WATCHDOG_PID", "TRUST_PROXY", "IMAGE_BASE_URL", "DATA_DIR",
                    "TRAKT_CLIENT_SECRET", "TRAKT_AUTH_URL")


def free_port() -> int:
    [sock] = tornado.netutil.bind_sockets(0, "127.0.0.1", family=socket.AF_INET)
    port = sock.getsockname()[1]
    sock.close()
    return port


class ServerProcess:
    """A running `server.py serve`: its port, the Popen and the captured stderr (the log)."""

    def __init__(self, process: subprocess.Popen, port: int, log_path: Path) -> None:
        self.process = process
        self.port = port
        self.log_path = log_path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_exit(self, timeout: float = EXIT_BOUND_SECONDS) -> int:
        return self.process.wait(timeout=timeout)


@contextlib.contextmanager
def serve_process(workdir: Path, env: dict[str, str], args: tuple[str, ...] = (),
                  preexec_fn: Callable[[], None] | None = None) -> Iterator[ServerProcess]:
    """Start `python server.py serve` on a free loopback port and wait until it accepts connections.

    The environment is the test's own minus every setting the server reads, plus `env`;
    `preexec_fn` runs in the child before the server starts (e.g. to lower a resource limit).
    The process is killed at the end if the test did not stop it.
    """
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if k not in SECRET_VARIABLES}
    environment.update({"HOST": "127.0.0.1", "PORT": str(port), "SYNC_INTERVAL_HOURS": "0",
                        "PYTHONUNBUFFERED": "1", **env})
    log_path = workdir / f"server-{port}.log"
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen([sys.executable, str(ROOT / "server.py"), "serve", *args], cwd=workdir,
                                   env=environment, stdout=log_file, stderr=subprocess.STDOUT,
                                   preexec_fn=preexec_fn)
    server = ServerProcess(process, port, log_path)
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise AssertionError(f"server exited with {process.returncode}:\n{server.log()}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"server did not listen within 30 s:\n{server.log()}")
            time.sleep(0.05)
        yield server
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)

"""Shared benchmark plumbing: free ports, server processes, /proc readings, the wrk runner and parser."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Self

REPO = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO / "bench" / "results"
SERVER_PY = REPO / "server.py"
CLK_TCK = os.sysconf("SC_CLK_TCK")
# Servers under test on one core, the load generator on another, so neither steals the other's
# time slices (README "Performance"); on a one-core machine, or without taskset, nothing is pinned.
SERVER_CPU, LOAD_CPU = "0", "1"
BUILT_LAST = "/api/trakt/user/insights"  # answers once the rows' figures are built (after ready)
COMPRESSED_LAST = "/api/trakt/user/history?type=all"  # gzip once every gzip form is made

# Variables that would make a server we start talk to the outside world or need credentials.
_EXTERNAL_VARIABLES = ("TRAKT_API_KEY", "TRAKT_USERNAME", "TMDB_API_KEY", "ADMIN_TOKEN")


class BenchError(RuntimeError):
    """A benchmark could not be run; the message says why (printed as a skipped/failed row)."""


# --- results -----------------------------------------------------------------------------------

@dataclass
class Row:
    """One line of the result table."""

    section: str
    metric: str
    value: str
    target: str = ""
    status: str = ""  # PASS, MISS, INFO, SKIP or FAIL
    note: str = ""
    data: dict[str, Any] = field(default_factory=dict)  # raw numbers for latest.json

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def skipped(section: str, reason: str) -> Row:
    """The row a section prints when something it needs is not there yet."""
    return Row(section, "(section)", "-", status="SKIP", note=f"skipped: {reason}")


def missing_modules(*names: str) -> list[str]:
    """Which of the repository files `names` (e.g. 'services/images.py') do not exist."""
    return [name for name in names if not (REPO / name).exists()]


def format_table(rows: Iterable[Row]) -> str:
    """Fixed-width text table; notes go last so long ones do not break the columns."""
    header = ("section", "metric", "value", "target", "status", "note")
    lines = [header] + [(r.section, r.metric, r.value, r.target, r.status, r.note) for r in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(5)]
    out = []
    for number, line in enumerate(lines):
        cells = [line[i].ljust(widths[i]) for i in range(5)] + [line[5]]
        out.append("  ".join(cells).rstrip())
        if number == 0:
            out.append("  ".join("-" * w for w in widths) + "  ----")
    return "\n".join(out)


def format_markdown(rows: Iterable[Row]) -> str:
    """The same table as Markdown, for the README."""
    out = ["| section | metric | value | target | status | note |", "|---|---|---|---|---|---|"]
    for r in rows:
        cells = [r.section, r.metric, r.value, r.target, r.status, r.note]
        out.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(out)


def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile (fraction in 0..1) of a non-empty list."""
    if not values:
        raise ValueError("percentile of an empty list")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(fraction * len(ordered) - 1e-9)))
    return ordered[rank - 1]


# --- machine -----------------------------------------------------------------------------------

def machine_description() -> dict[str, Any]:
    """CPU count, model and RAM, for the README table."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
                break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "ram_gib": round(mem_kb / 1024 / 1024, 1),
        "python": sys.version.split()[0],
        "load_average": os.getloadavg(),
    }


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_bytes(pid: int) -> int:
    """Resident set size of a process (VmRSS from /proc/<pid>/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise BenchError(f"no VmRSS for pid {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used (utime + stime from /proc/<pid>/stat)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # The command name may contain spaces; the fields after it start past the last ')'.
    fields = stat[stat.rindex(")") + 2:].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / CLK_TCK


def pinned(argv: list[str], cpu: str) -> list[str]:
    """`argv` run on `cpu` only (taskset), when the machine has a second core to spare."""
    taskset = shutil.which("taskset")
    if taskset is None or (os.cpu_count() or 1) < 2:
        return argv
    return [taskset, "-c", cpu, *argv]


def scrubbed_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a server we start: no Trakt/TMDB credentials, so nothing external is contacted."""
    env = dict(os.environ)
    for name in _EXTERNAL_VARIABLES:
        env[name] = ""  # an empty value in the environment also overrides a .env file
    # LOG_LEVEL stays at the default (INFO: one access line per request), as a self-hoster runs it.
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    if extra:
        env.update(extra)
    return env


def uvloop_version() -> str | None:
    """The uvloop a server started from here would run on (`serve` uses it when installed), or None."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.__version__


def without_uvloop(env: dict[str, str], folder: Path) -> dict[str, str]:
    """`env` for a process that must run on asyncio's own loop although uvloop is installed: a
    `uvloop` module that fails to import comes first on its PYTHONPATH."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "uvloop.py").write_text('raise ImportError("hidden by the benchmark: measuring the asyncio loop")\n')
    return {**env, "PYTHONPATH": str(folder) + os.pathsep + env.get("PYTHONPATH", "")}


# --- processes ---------------------------------------------------------------------------------

class ServerProcess:
    """A server run as its own process, with its output in a log file and a readiness probe."""

    def __init__(self, argv: list[str], *, name: str, log_dir: Path, env: dict[str, str] | None = None,
                 cwd: Path | None = None, port: int, cpu: str | None = None) -> None:
        self.argv = argv
        self.cpu_pin = cpu  # run on this core only (the REST section: see SERVER_CPU)
        self.name = name
        self.port = port
        self.env = env if env is not None else scrubbed_env()
        self.cwd = cwd
        self.log_path = log_dir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0
        self.ready_probe = "/healthz"

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise BenchError(f"{self.name} is not running")
        return self.proc.pid

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "wb") as log:
            self.started_at = time.perf_counter()
            argv = pinned(self.argv, self.cpu_pin) if self.cpu_pin else self.argv
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=self.env,
                                         cwd=str(self.cwd) if self.cwd else None, start_new_session=True)

    def wait_built(self, timeout: float = 60.0) -> None:
        """Ready, and done with what a large account builds after ready (rows, then gzip forms:
        seconds of CPU in worker threads on the server's core, and a background thread holding the
        GIL between its zlib calls delays the loop by up to 5 ms): measured before that, ours would
        share its core with the build while the ceiling has its own to itself."""
        self.wait_ready(timeout=timeout)
        self.wait_ready(path=BUILT_LAST, timeout=timeout, fallback=None)
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:  # the type=all answers are compressed last
            request = urllib.request.Request(self.base_url + COMPRESSED_LAST, method="HEAD",
                                             headers={"Accept-Encoding": "gzip"})
            with urllib.request.urlopen(request, timeout=10) as response:
                if response.headers.get("Content-Encoding") == "gzip":
                    return
            time.sleep(0.05)
        raise BenchError(f"{self.name}: {COMPRESSED_LAST} was not compressed within {timeout:.0f} s")

    def wait_ready(self, path: str = "/healthz", timeout: float = 60.0, expect: int = 200,
                   fallback: str | None = "/api/trakt") -> float:
        """Poll `path` until it answers `expect`; returns seconds since start().

        If `path` answers 404 (a server without that route) the probe moves to `fallback`;
        `self.ready_probe` says which one was used.
        """
        deadline = time.perf_counter() + timeout
        self.ready_probe = path
        while time.perf_counter() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise BenchError(f"{self.name} exited with {self.proc.returncode} before it was ready: "
                                 f"{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.base_url + self.ready_probe, timeout=2) as response:
                    if response.status == expect:
                        return time.perf_counter() - self.started_at
            except urllib.error.HTTPError as exc:
                if exc.code == expect:
                    return time.perf_counter() - self.started_at
                if exc.code == 404 and fallback and self.ready_probe != fallback:
                    self.ready_probe = fallback
                    continue
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            time.sleep(0.02)
        raise BenchError(f"{self.name} was not ready on {self.base_url + self.ready_probe} within "
                         f"{timeout:.0f} s: {self.log_tail()}")

    def log_tail(self, lines: int = 5) -> str:
        try:
            text = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(text[-lines:]) or "(empty log)"

    def rss(self) -> int:
        return rss_bytes(self.pid)

    def cpu(self) -> float:
        return cpu_seconds(self.pid)

    def wait_idle(self, timeout: float = 20.0, window: float = 0.25, busy_share: float = 0.1) -> None:
        """Wait until the process uses less than `busy_share` of a core over `window` seconds.

        After wrk stops, a server may still be writing queued responses (tens of MB each) to
        sockets that are going away; the next measurement must not pay for that.
        """
        deadline = time.perf_counter() + timeout
        before = self.cpu()
        while time.perf_counter() < deadline:
            time.sleep(window)
            after = self.cpu()
            if after - before < busy_share * window:
                return
            before = after

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s; only this process (its own session)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def our_server(data_dir: Path, *, log_dir: Path, name: str = "ours", extra_args: Iterable[str] = (),
               env: dict[str, str] | None = None, cpu: str | None = None) -> ServerProcess:
    """`python server.py serve` on a free port for `data_dir`, run from an empty folder (no .env)."""
    port = free_port()
    argv = [sys.executable, str(SERVER_PY), "serve", "--host", "127.0.0.1", "--port", str(port),
            "--data-dir", str(data_dir), *extra_args]
    cwd = log_dir / f"{name}-cwd"
    cwd.mkdir(parents=True, exist_ok=True)
    return ServerProcess(argv, name=name, log_dir=log_dir, env=env or scrubbed_env(), cwd=cwd, port=port, cpu=cpu)


def http_get(url: str, headers: dict[str, str] | None = None, timeout: float = 30.0
             ) -> tuple[int, list[tuple[str, str]], bytes]:
    """One GET without following redirects: (status, headers, body)."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        conn.request("GET", target, headers=headers or {})
        response = conn.getresponse()
        body = response.read()
        return response.status, list(response.getheaders()), body
    finally:
        conn.close()


# --- wrk ---------------------------------------------------------------------------------------

@dataclass
class WrkResult:
    """What one wrk run measured."""

    requests: int
    duration_s: float
    requests_per_s: float
    latency_avg_s: float
    latency_max_s: float
    percentiles_s: dict[int, float]  # 50, 75, 90, 99 (only with --latency)
    errors: dict[str, int]  # connect/read/write/timeout socket errors and non-2xx/3xx answers
    bytes_read: float

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


_TIME_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_SIZE_UNITS = {"B": 1, "KB": 1024, "MB": 1024 ** 2, "GB": 1024 ** 3, "TB": 1024 ** 4}


def _parse_time(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if not match:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(match.group(1)) * _TIME_UNITS[match.group(2)]


def _parse_size(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(B|KB|MB|GB|TB)", text)
    if not match:
        raise ValueError(f"not a wrk size: {text!r}")
    return float(match.group(1)) * _SIZE_UNITS[match.group(2)]


def parse_wrk(output: str) -> WrkResult:
    """Parse wrk's text report (with or without --latency) into numbers in seconds."""
    total = re.search(r"^\s*(\d+) requests in ([\d.]+\w+), ([\d.]+\w+) read", output, re.MULTILINE)
    rate = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.MULTILINE)
    latency = re.search(r"^\s*Latency\s+([\d.]+\w+)\s+([\d.]+\w+)\s+([\d.]+\w+)", output, re.MULTILINE)
    if not (total and rate):
        raise ValueError(f"not a wrk report: {output.strip()[:200]!r}")
    percentiles = {int(p): _parse_time(t)
                   for p, t in re.findall(r"^\s+(50|75|90|99)%\s+([\d.]+\w+)\s*$", output, re.MULTILINE)}
    errors: dict[str, int] = {}
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    if sockets:
        for name, value in zip(("connect", "read", "write", "timeout"), sockets.groups()):
            if int(value):
                errors[name] = int(value)
    status = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if status and int(status.group(1)):
        errors["status"] = int(status.group(1))
    return WrkResult(
        requests=int(total.group(1)),
        duration_s=_parse_time(total.group(2)),
        requests_per_s=float(rate.group(1)),
        latency_avg_s=_parse_time(latency.group(1)) if latency else 0.0,
        latency_max_s=_parse_time(latency.group(3)) if latency else 0.0,
        percentiles_s=percentiles,
        errors=errors,
        bytes_read=_parse_size(total.group(3)),
    )


def ensure_wrk(say: Any = print) -> str:
    """Path of wrk, installing Debian's package when it is missing."""
    return ensure_debian_tool("wrk", "wrk", say)


def ensure_debian_tool(command: str, package: str, say: Any = print) -> str:
    """Path of `command`, installing Debian's `package` with apt-get when it is missing (and saying so)."""
    found = shutil.which(command)
    if found:
        return found
    if os.geteuid() != 0:
        raise BenchError(f"{command} is not installed and installing it needs root: apt-get install -y {package}")
    say(f"{command} not found: installing Debian's {package} package (apt-get install -y {package})")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install = subprocess.run(["apt-get", "install", "-y", package], env=env, check=False, capture_output=True, text=True)
    if install.returncode != 0:
        subprocess.run(["apt-get", "update"], env=env, check=False, capture_output=True, text=True)
        install = subprocess.run(["apt-get", "install", "-y", package], env=env, check=False, capture_output=True,
                                 text=True)
    found = shutil.which(command)
    if not found:
        raise BenchError(f"apt-get install -y {package} failed: {install.stderr.strip()[-300:]}")
    return found


def run_wrk(wrk: str, url: str, *, connections: int, duration: float, threads: int = 1,
            headers: dict[str, str] | None = None, latency: bool = False, timeout_s: int = 10) -> WrkResult:
    """Run wrk once against `url` and parse its report."""
    threads = min(threads, connections)
    argv = [wrk, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration))}s", f"--timeout={timeout_s}s"]
    for name, value in (headers or {}).items():
        argv += ["-H", f"{name}: {value}"]
    if latency:
        argv.append("--latency")
    argv.append(url)
    done = subprocess.run(pinned(argv, LOAD_CPU), check=False, capture_output=True, text=True, timeout=duration + timeout_s + 30)
    if done.returncode != 0:
        raise BenchError(f"wrk failed ({done.returncode}): {done.stderr.strip()[:300]}")
    return parse_wrk(done.stdout)


def write_json(path: Path, obj: Any) -> None:
    """Write `obj` as indented JSON (benchmark results; not served data)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=str) + "\n")
    os.replace(tmp, path)


# --- run context ---------------------------------------------------------------------------------

@dataclass
class Context:
    """What every section gets: how long to measure, where to put scratch files, how to talk."""

    quick: bool
    work_dir: Path
    verbose: bool = True
    smoke: bool = False  # seconds, not minutes: the demo account, a few routes, one run each (the tests)

    def say(self, message: str) -> None:
        if self.verbose:
            print(f"  · {message}", file=sys.stderr, flush=True)

    def seconds(self, full: float, quick: float) -> float:
        """A measuring duration: `full` normally, `quick` with --quick."""
        return quick if self.quick else full

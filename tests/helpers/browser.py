"""Browser-test helpers: the real server as a subprocess, page watching, screenshots."""


from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.helpers.process import free_port


REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "tests" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SERVER_START_SECONDS = 30.0
# Settings that would make the server talk to the real Trakt/TMDB or read someone's data.
SCRUBBED_ENV = ("TRAKT_API_KEY", "TRAKT_USERNAME", "TMDB_API_KEY", "DATA_DIR", "HOST", "PORT",
                "IMAGE_BASE_URL", "IMAGE_PROXY", "ADMIN_TOKEN", "SYNC_INTERVAL_HOURS")


@dataclass
class DashboardServer:
    """A `trakt-watch serve` process on a loopback port."""

    process: subprocess.Popen
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def get_json(self, path: str) -> Any:
        with urllib.request.urlopen(self.url.rstrip("/") + path, timeout=10) as response:
            return json.loads(response.read())

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def start_server(workdir: Path, *, args: list[str], env: dict[str, str],
                 start_seconds: float = SERVER_START_SECONDS) -> DashboardServer:
    """Start `server.py serve` and wait until /healthz answers; raises with the log if it never does."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    environ = {k: v for k, v in os.environ.items() if k not in SCRUBBED_ENV}
    environ.update({"SYNC_INTERVAL_HOURS": "0", "LOG_LEVEL": "WARNING", **env})
    log_path = workdir / "server.log"
    with open(log_path, "wb") as log:
        # cwd is the work folder so that no ./.env of the checkout is read.
        process = subprocess.Popen([sys.executable, str(REPO / "server.py"), "serve", "--port", str(port), *args],
                                   cwd=workdir, env=environ, stdout=log, stderr=subprocess.STDOUT)
    server = DashboardServer(process, port, log_path)
    deadline = time.monotonic() + start_seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(f"{server.url}healthz", timeout=2) as response:
                if response.status == 200:
                    return server
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"server did not answer /healthz within {start_seconds}s:\n{server.log_tail()}")


def nothing(url: str) -> bool:
    """The default: no failed request is acceptable (README "Dashboard", no 404s in a normal load)."""
    return False


@dataclass
class WatchedPage:
    """A page plus everything that went wrong on it: console errors, page errors, failed requests."""

    page: Any
    problems: list[str] = field(default_factory=list)
    tolerated: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def assert_clean(self) -> None:
        assert not self.problems, "console errors / failed requests:\n" + "\n".join(self.problems)


def watch(page: Any, tolerate=nothing) -> WatchedPage:
    """Record on `page` every console error, uncaught exception, failed request and HTTP >= 400.

    A response that `tolerate(url)` accepts is recorded in `tolerated` instead, and so is the
    console's "Failed to load resource" line Chromium prints for it."""
    watched = WatchedPage(page)

    def on_console(message: Any) -> None:
        source = (message.location or {}).get("url", "")
        text = message.text
        if message.type == "error":
            if text.startswith("Failed to load resource") and tolerate(source):
                watched.tolerated.append(f"console: {text} {source}")
            else:
                watched.problems.append(f"console error: {text} ({source})")
        elif message.type == "warning" and text.startswith("dashboard:"):
            watched.problems.append(f"console warning: {text}")

    def on_response(response: Any) -> None:
        if response.status >= 400:
            target = watched.tolerated if tolerate(response.url) else watched.problems
            target.append(f"HTTP {response.status} {response.request.method} {response.url}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: watched.problems.append(f"page error: {error}"))
    page.on("requestfailed", lambda request: watched.problems.append(
        f"request failed: {request.method} {request.url} {request.failure}"))
    page.on("response", on_response)
    page.on("request", lambda request: watched.requests.append(request.url))
    return watched


def load_every_section(page: Any) -> None:
    """Bring each section that is built on approach (README "Dashboard") into view, in page
    order, until it has its first data; then back to the top."""
    for section_id in page.evaluate("[...document.querySelectorAll('.section-lazy')].map(s => s.id)"):
        page.locator(f"#{section_id}").scroll_into_view_if_needed()
        page.wait_for_selector(f"#{section_id}[data-loaded='true']", state="attached")
    page.evaluate("window.scrollTo(0, 0)")


def scroll_through(page: Any, step: int = 700) -> None:
    """Scroll to the bottom and back so every lazy poster gets its turn, then wait for the network."""
    height = page.evaluate("document.documentElement.scrollHeight")
    for y in range(0, height + step, step):
        page.evaluate(f"window.scrollTo(0, {y})")
        page.wait_for_timeout(40)
    page.wait_for_load_state("networkidle")
    page.evaluate("window.scrollTo(0, 0)")


def save_screenshot(page: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


# --- layout shift and accessibility (README "Performance", "Accessibility") ------------------
AXE_SCRIPT = REPO / "tests" / "browser" / "node_modules" / "axe-core" / "axe.min.js"
AXE_INSTALL = "npm install --no-save --prefer-offline --prefix tests/browser axe-core@4"
# Sums every layout-shift entry not caused by input, from navigation on (buffered), and keeps
# the shifted nodes for the failure message.
LAYOUT_SHIFT_OBSERVER = """
window.__layoutShift = { total: 0, entries: [] };
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    if (entry.hadRecentInput) continue;
    window.__layoutShift.total += entry.value;
    window.__layoutShift.entries.push({
      value: entry.value, at: Math.round(entry.startTime),
      nodes: (entry.sources || []).map((s) => s.node ? (s.node.id || s.node.className || s.node.nodeName) : "?"),
    });
  }
}).observe({ type: "layout-shift", buffered: true });
"""


def layout_shift(page: Any) -> dict:
    """{"total": sum of the shifts so far, "entries": [...]} (needs LAYOUT_SHIFT_OBSERVER at init)."""
    return page.evaluate("window.__layoutShift")


def axe_violations(page: Any) -> list[str]:
    """axe-core's violations on the page as it is now, one line per rule with a few of its nodes.

    The page's Content-Security-Policy allows no injected script: open it in a context made
    with `bypass_csp=True`."""
    if not AXE_SCRIPT.exists():
        raise AssertionError(f"{AXE_SCRIPT} is missing: run `{AXE_INSTALL}` (.ci/run does)")
    if not page.evaluate("typeof window.axe === 'object'"):
        page.add_script_tag(path=str(AXE_SCRIPT))
    found = page.evaluate("""async () => {
        const result = await axe.run(document, { resultTypes: ["violations"] });
        return result.violations.map((v) => `${v.id} (${v.impact}, ${v.nodes.length} nodes): ` +
            v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(" | "));
    }""")
    return found

"""Dashboard: first contentful paint, "first screen rendered" and Lighthouse scores in headless Chromium, both accounts.

Debian's chromium driven by Playwright for Python (no browser download). A fresh browser context
per load, so nothing is cached. "First screen rendered" is the page's own signal when it has one
(`data-ready` on <html>, set by static/js/app.js when every section of the first screen has its
first data or its inline error; the sections further down load as the reader nears them); without one, the moment no element is `aria-busy="true"` any more. The time is taken inside the
page with `performance.now()` from a requestAnimationFrame poll, so it is not blurred by the
round trips between Playwright and the browser.

Each cold load also counts the elements on the page when the first screen is rendered and the
bytes it fetched until the network went quiet, as sent (gzip where the server compresses) and
decoded (what the same load would weigh uncompressed), from the page's Resource Timing entries.

Lighthouse 12 (npm, installed once into LIGHTHOUSE_DIR; it drives the same chromium through
CHROME_PATH) scores each account with its mobile preset (simulated throttling, median of 3 runs)
and its desktop preset: performance, accessibility, LCP, TBT, CLS, the DOM size and the bytes
transferred.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

from bench import accounts
from bench.util import Context, Row, missing_modules, our_server, percentile, skipped, verdict

SECTION = "dashboard"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]

LIGHTHOUSE_VERSION = "12"
LIGHTHOUSE_DIR = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "trakt-watch-bench" / "lighthouse"
LIGHTHOUSE_BIN = LIGHTHOUSE_DIR / "node_modules" / ".bin" / "lighthouse"
LIGHTHOUSE_SECONDS = 180
# Targets (README "Performance"): mobile preset.
PERFORMANCE_TARGET = 95
ACCESSIBILITY_TARGET = 100
LCP_TARGET_S = 2.0
TBT_TARGET_MS = 100
CLS_TARGET = 0.02
DOM_TARGET = 1500  # elements at first paint (the sections further down are built on approach)

# True once the page says everything is rendered; remembers the first moment it was seen.
# `useFlag`: the dashboard sets data-ready itself, so wait for exactly that.
READY_PREDICATE = """(useFlag) => {
  const nodes = [document.documentElement, document.body].filter(Boolean);
  const settled = useFlag
    ? nodes.some(n => n.dataset.ready !== undefined && n.dataset.ready !== "false")
    : (document.readyState === "complete" && !document.querySelector('[aria-busy="true"]'));
  if (settled && window.__benchReadyAt === undefined) {
    window.__benchReadyAt = performance.now();
    window.__benchReadyElements = document.getElementsByTagName("*").length;
  }
  return settled;
}"""

# What the load fetched: body bytes as they came over the wire and once decoded (same origin, so
# every entry has its sizes). The WebSocket is not a resource and is not counted.
BYTES_SCRIPT = """() => {
  const entries = [...performance.getEntriesByType("navigation"), ...performance.getEntriesByType("resource")];
  const sum = (key) => entries.reduce((total, entry) => total + (entry[key] || 0), 0);
  return { encoded: sum("encodedBodySize"), decoded: sum("decodedBodySize"), requests: entries.length };
}"""


def page_sets_ready_flag() -> bool:
    """Whether the dashboard's scripts set a data-ready attribute when every section has rendered."""
    static = accounts.REPO / "static"
    return any("dataset.ready" in path.read_text(errors="replace") or "data-ready" in path.read_text(errors="replace")
               for path in static.rglob("*.js"))


def load_once(browser, url: str, timeout_s: float, use_flag: bool) -> dict:
    """One cold page load: FCP, all-rendered time, failed requests and console errors."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    failures: list[str] = []
    errors: list[str] = []
    page.on("requestfailed", lambda request: failures.append(request.url))
    page.on("response", lambda response: failures.append(f"{response.status} {response.url}")
            if response.status >= 400 else None)
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    try:
        page.goto(url, wait_until="commit")
        page.wait_for_function(READY_PREDICATE, arg=use_flag, polling="raf", timeout=timeout_s * 1000)
        result = page.evaluate("""() => ({
            fcp: (performance.getEntriesByName('first-contentful-paint')[0] || {}).startTime,
            ready: window.__benchReadyAt,
            elements: window.__benchReadyElements,
            domContentLoaded: performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd })""")
        page.wait_for_load_state("networkidle")  # the first screen's pictures too
        result["bytes"] = page.evaluate(BYTES_SCRIPT)
    finally:
        context.close()
    result["signal"] = "data-ready" if use_flag else "no aria-busy left (the page sets no data-ready)"
    result["failures"] = failures
    result["console_errors"] = errors
    return result


def is_missing_image(problem: str) -> bool:
    """A 404 for a picture: expected on the scale-50 account, generated with --no-images."""
    return ("404" in problem and ("/api/images" in problem or "/images/" in problem)) or \
        problem.startswith("Failed to load resource: the server responded with a status of 404")


def measure_account(scale: int, browser, ctx: Context) -> list[Row]:
    """The bundled demo account (`serve --demo`, with its pictures) or the generated scale-N one."""
    label = "demo" if scale == 1 else f"scale {scale}"
    if scale == 1:
        empty = ctx.work_dir / "empty-data"
        empty.mkdir(exist_ok=True)
        server = our_server(empty, log_dir=ctx.work_dir, name="dashboard-demo", extra_args=["--demo"])
    else:
        data_dir, _ = accounts.working_copy(scale, ctx.work_dir / f"account-{scale}", ctx.say)
        server = our_server(data_dir, log_dir=ctx.work_dir, name=f"dashboard-{scale}")
    loads = []
    use_flag = page_sets_ready_flag()
    with server:
        server.wait_ready(timeout=120)
        load_once(browser, server.base_url + "/", 60, use_flag)  # warm the server's first-request paths
        for _ in range(1 if ctx.quick else 3):
            loads.append(load_once(browser, server.base_url + "/", 60, use_flag))
        lighthouse = ensure_lighthouse(ctx.say)
        if lighthouse is None:
            scores = [skipped(SECTION, f"{label}: Lighthouse: npm is missing or `npm install lighthouse` failed")]
        else:
            ctx.say(f"dashboard: Lighthouse on {label}")
            scores = lighthouse_rows(lighthouse, server.base_url + "/", label, ctx)
            # The year view (its targets are the dashboard's): the phone preset only.
            scores += lighthouse_rows(lighthouse, server.base_url + "/year/", f"{label} /year/", ctx, ("mobile",))
    fcp = [load["fcp"] / 1000 for load in loads if load.get("fcp") is not None]
    ready = [load["ready"] / 1000 for load in loads if load.get("ready") is not None]
    elements = [load["elements"] for load in loads if load.get("elements") is not None]
    sent = [load["bytes"]["encoded"] for load in loads]
    decoded = [load["bytes"]["decoded"] for load in loads]
    problems = sorted({*loads[-1]["failures"], *loads[-1]["console_errors"]})
    missing_images = [p for p in problems if is_missing_image(p)] if scale != 1 else []
    problems = [p for p in problems if p not in missing_images]
    note = f"median of {len(loads)} cold loads; signal: {loads[-1].get('signal')}"
    if missing_images:
        note += f"; {len(missing_images)} picture 404s (account generated with --no-images)"
    if problems:
        note += f"; page problems: {'; '.join(problems)[:200]}"
    return scores + [
        Row(SECTION, f"{label}: first contentful paint", f"{percentile(fcp, 0.5) * 1000:.0f} ms" if fcp else "-",
            status="INFO", note=note, data={"fcp_s": fcp}),
        Row(SECTION, f"{label}: first screen rendered", f"{percentile(ready, 0.5) * 1000:.0f} ms" if ready else "-",
            status="INFO" if not problems else "MISS",
            note="page had failed requests or console errors" if problems else "",
            data={"ready_s": ready, "problems": problems}),
        Row(SECTION, f"{label}: elements at first screen (1280x900)",
            f"{percentile(elements, 0.5):.0f}" if elements else "-", f"<= {DOM_TARGET}",
            verdict(bool(elements) and percentile(elements, 0.5) <= DOM_TARGET), data={"elements": elements}),
        Row(SECTION, f"{label}: bytes per cold load, gzip / uncompressed",
            f"{percentile(sent, 0.5) / 1024:.0f} / {percentile(decoded, 0.5) / 1024:.0f} KiB "
            f"({percentile(decoded, 0.5) / max(1, percentile(sent, 0.5)):.1f}x)",
            status="INFO", note=f"{loads[-1]['bytes']['requests']} requests until the network went quiet; "
                                "uncompressed = the same bodies decoded",
            data={"encoded": sent, "decoded": decoded}),
    ]


def ensure_lighthouse(say) -> Path | None:
    """The lighthouse command, installed with npm into the cache folder the first time; None
    without npm or when the install fails."""
    if LIGHTHOUSE_BIN.exists():
        return LIGHTHOUSE_BIN
    npm = shutil.which("npm")
    if npm is None:
        return None
    say(f"dashboard: installing lighthouse@{LIGHTHOUSE_VERSION} into {LIGHTHOUSE_DIR}")
    LIGHTHOUSE_DIR.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([npm, "install", "--no-save", "--no-audit", "--no-fund", "--prefix", str(LIGHTHOUSE_DIR),
                           f"lighthouse@{LIGHTHOUSE_VERSION}"], capture_output=True, text=True, timeout=600)
    return LIGHTHOUSE_BIN if done.returncode == 0 and LIGHTHOUSE_BIN.exists() else None


def lighthouse_once(lighthouse: Path, url: str, out: Path, desktop: bool) -> dict:
    """One Lighthouse run: the scores and the metrics this section reports."""
    argv = [str(lighthouse), url, "--quiet", "--output=json", f"--output-path={out}",
            "--only-categories=performance,accessibility", f"--chrome-flags={' '.join(CHROMIUM_FLAGS)}"]
    if desktop:
        argv.append("--preset=desktop")
    for _attempt in (1, 2):  # on a loaded machine a run now and then fails to start or times out
        done = subprocess.run(argv, capture_output=True, text=True, timeout=LIGHTHOUSE_SECONDS,
                              env={**os.environ, "CHROME_PATH": CHROMIUM})
        if done.returncode == 0:
            break
    else:
        raise RuntimeError(f"lighthouse failed twice: {done.stderr.strip()[-300:]}")
    report = json.loads(out.read_text())
    audits, categories = report["audits"], report["categories"]
    return {
        "performance": round(categories["performance"]["score"] * 100),
        "accessibility": round(categories["accessibility"]["score"] * 100),
        "lcp_s": audits["largest-contentful-paint"]["numericValue"] / 1000,
        "tbt_ms": audits["total-blocking-time"]["numericValue"],
        "cls": audits["cumulative-layout-shift"]["numericValue"],
        "dom_elements": int(audits["dom-size"]["numericValue"]),
        "bytes": int(audits["total-byte-weight"]["numericValue"]),
    }


def lighthouse_rows(lighthouse: Path, url: str, label: str, ctx: Context,
                    presets: tuple[str, ...] = ("mobile", "desktop")) -> list[Row]:
    """Mobile preset (median of 3, the targets) and desktop preset (median of 3, for information)."""
    rows = []
    for preset in presets:
        try:
            runs = [lighthouse_once(lighthouse, url, ctx.work_dir / f"lighthouse-{re.sub(r'[^a-z0-9]+', '-', label)}-{preset}-{n}.json",
                                    desktop=preset == "desktop")
                    for n in range(1 if ctx.quick else 3)]
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            rows.append(Row(SECTION, f"{label}: Lighthouse {preset}", "-", status="FAIL", note=str(exc)[:300]))
            continue
        median = {key: percentile([run[key] for run in runs], 0.5) for key in runs[0]}
        mobile = preset == "mobile"
        note = f"Lighthouse {LIGHTHOUSE_VERSION}, {preset} preset, median of {len(runs)}: " + \
            ", ".join(str(run["performance"]) for run in runs)
        checks = [
            ("performance", f"{median['performance']:.0f}", f">= {PERFORMANCE_TARGET}",
             median["performance"] >= PERFORMANCE_TARGET),
            ("accessibility", f"{median['accessibility']:.0f}", f"= {ACCESSIBILITY_TARGET}",
             median["accessibility"] >= ACCESSIBILITY_TARGET),
            ("LCP", f"{median['lcp_s']:.2f} s", f"<= {LCP_TARGET_S} s", median["lcp_s"] <= LCP_TARGET_S),
            ("TBT", f"{median['tbt_ms']:.0f} ms", f"<= {TBT_TARGET_MS} ms", median["tbt_ms"] <= TBT_TARGET_MS),
            ("CLS", f"{median['cls']:.3f}", f"<= {CLS_TARGET}", median["cls"] <= CLS_TARGET),
            ("DOM elements", f"{median['dom_elements']:.0f}", f"<= {DOM_TARGET}", median["dom_elements"] <= DOM_TARGET),
            ("bytes transferred", f"{median['bytes'] / 1024:.0f} KiB", "", True),
        ]
        for metric, value, target, ok in checks:
            rows.append(Row(SECTION, f"{label}: Lighthouse {preset} {metric}", value,
                            target if mobile else "", verdict(ok) if mobile and target else "INFO",
                            note if metric == "performance" else "", data={"runs": runs, "preset": preset}))
    return rows


def run(ctx: Context) -> list[Row]:
    missing = missing_modules("server.py", "static/index.html", accounts.GENERATOR)
    if missing:
        return [skipped(SECTION, f"{', '.join(missing)} not present")]
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return [skipped(SECTION, "the playwright Python package is not installed")]
    if not Path(CHROMIUM).exists():
        return [skipped(SECTION, f"{CHROMIUM} not present (apt-get install chromium)")]
    rows: list[Row] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        try:
            for scale in (1, 50):
                ctx.say(f"dashboard: scale {scale}")
                rows += measure_account(scale, browser, ctx)
        finally:
            browser.close()
    return rows

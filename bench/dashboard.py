"""Dashboard: first contentful paint and "all sections rendered" in headless Chromium, both accounts.

Debian's chromium driven by Playwright for Python (no browser download). A fresh browser context
per load, so nothing is cached. "All rendered" is the page's own signal when it has one
(`data-ready` on <html>, set by static/js/app.js when every section has its first data or its
inline error); without one, the moment no element is `aria-busy="true"` any more. The time is taken inside the
page with `performance.now()` from a requestAnimationFrame poll, so it is not blurred by the
round trips between Playwright and the browser.
"""

from __future__ import annotations

from pathlib import Path

from bench import accounts
from bench.util import Context, Row, missing_modules, our_server, percentile, skipped

SECTION = "dashboard"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]

# True once the page says everything is rendered; remembers the first moment it was seen.
# `useFlag`: the dashboard sets data-ready itself, so wait for exactly that.
READY_PREDICATE = """(useFlag) => {
  const nodes = [document.documentElement, document.body].filter(Boolean);
  const settled = useFlag
    ? nodes.some(n => n.dataset.ready !== undefined && n.dataset.ready !== "false")
    : (document.readyState === "complete" && !document.querySelector('[aria-busy="true"]'));
  if (settled && window.__benchReadyAt === undefined) window.__benchReadyAt = performance.now();
  return settled;
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
            domContentLoaded: performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd })""")
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
    fcp = [load["fcp"] / 1000 for load in loads if load.get("fcp") is not None]
    ready = [load["ready"] / 1000 for load in loads if load.get("ready") is not None]
    problems = sorted({*loads[-1]["failures"], *loads[-1]["console_errors"]})
    missing_images = [p for p in problems if is_missing_image(p)] if scale != 1 else []
    problems = [p for p in problems if p not in missing_images]
    note = f"median of {len(loads)} cold loads; signal: {loads[-1].get('signal')}"
    if missing_images:
        note += f"; {len(missing_images)} picture 404s (account generated with --no-images)"
    if problems:
        note += f"; page problems: {'; '.join(problems)[:200]}"
    return [
        Row(SECTION, f"{label}: first contentful paint", f"{percentile(fcp, 0.5) * 1000:.0f} ms" if fcp else "-",
            status="INFO", note=note, data={"fcp_s": fcp}),
        Row(SECTION, f"{label}: all sections rendered", f"{percentile(ready, 0.5) * 1000:.0f} ms" if ready else "-",
            status="INFO" if not problems else "MISS",
            note="page had failed requests or console errors" if problems else "",
            data={"ready_s": ready, "problems": problems}),
    ]


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

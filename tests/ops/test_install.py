"""A regular (non-editable) install works on its own: the static files and the demo account ship."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.helpers.process import ROOT, SECRET_VARIABLES, free_port

# What setup.py builds from; the rest of the checkout (tests, bench, a synced data folder...) stays out.
SOURCES = ("setup.py", "server.py", "handlers", "services", "static", "data/demo")


def _copy_sources(target: Path) -> None:
    """The checkout's sources in a folder of their own, so the build's `build/` and `*.egg-info`
    never land in the checkout."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build")
    for name in SOURCES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=ignore)
        else:
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


def _get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=10) as response:  # raises on 4xx/5xx
        return response.status, response.read()


def test_pip_install_then_serve_demo_from_outside_the_checkout(tmp_path):
    """`pip install .` into a fresh venv without system site packages, its dependencies resolved by
    pip like a user's install (from the configured index and the pip cache), then the installed
    `trakt-watch serve --demo` run from an empty folder outside the checkout."""
    source, venv, workdir = tmp_path / "src", tmp_path / "venv", tmp_path / "run"
    _copy_sources(source)
    workdir.mkdir()
    env = {k: v for k, v in os.environ.items()
           if k not in SECRET_VARIABLES and k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "HOST", "PORT")}
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120, env=env)
    python, console_script = venv / "bin" / "python", venv / "bin" / "trakt-watch"
    install = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                              str(source)], capture_output=True, text=True, timeout=600, env=env, cwd=workdir)
    assert install.returncode == 0, install.stdout + install.stderr
    assert console_script.exists()

    # The installed modules are the venv's copies, not the checkout's.
    where = subprocess.run([str(python), "-c", "import server, services.resources as r; "
                            "print(server.__file__); print(r.static_dir()); print(r.demo_data_dir())"],
                           capture_output=True, text=True, timeout=60, env=env, cwd=workdir, check=True)
    for line in where.stdout.split():
        assert Path(line).is_relative_to(venv), where.stdout

    port = free_port()
    log_path = tmp_path / "server.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([str(console_script), "serve", "--demo", "--host", "127.0.0.1", "--port", str(port)],
                                   cwd=workdir, env={**env, "SYNC_INTERVAL_HOURS": "0"}, stdout=log,
                                   stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, log_path.read_text()
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
            assert time.monotonic() < deadline, "the installed server did not listen:\n" + log_path.read_text()
            time.sleep(0.1)
        base = f"http://127.0.0.1:{port}"

        status, page = _get(base + "/")
        assert status == 200 and page == (ROOT / "static" / "index.html").read_bytes()
        status, css = _get(base + "/static/style.css")
        assert status == 200 and css == (ROOT / "static" / "style.css").read_bytes()

        status, index = _get(base + "/api/trakt")
        metadata = json.loads(index)["metadata"]
        assert status == 200 and metadata["demo"] is True and metadata["source"] == "demo"

        image = sorted((ROOT / "data" / "demo" / "images").rglob("*_poster.svg"))[0]
        relative = image.relative_to(ROOT / "data" / "demo" / "images").as_posix()
        status, picture = _get(f"{base}/images/{relative}")
        assert status == 200 and picture == image.read_bytes()
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def test_setup_lists_every_package_of_the_checkout():
    """A package left out of setup.py works in a checkout and is missing from an install."""
    from distutils.core import run_setup  # setuptools' distutils: reads setup() without running it

    listed = set(run_setup(str(ROOT / "setup.py"), stop_after="init").packages)
    found = {path.parent.relative_to(ROOT).as_posix().replace("/", ".")
             for top in ("handlers", "services") for path in (ROOT / top).rglob("__init__.py")}
    assert listed == found

"""The accounts the benchmarks run on: the demo account and the `--scale 50` one, cached between runs.

Both are written by the product's own generator (`python server.py demo --out D --scale N
--no-images`) into `bench/results/accounts/scale-<N>/`. A stamp file holds a hash of the
generator's source, so a changed generator means a fresh account and a stale one is never
measured.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench.util import (
    REPO,
    RESULTS_DIR,
    SERVER_PY,
    BenchError,
    missing_modules,
    scrubbed_env,
)

ACCOUNTS_DIR = RESULTS_DIR / "accounts"
GENERATOR = "services/demo/generator.py"
STAMP = ".bench-stamp.json"


def generator_hash() -> str:
    """Hash of the demo generator's source (and of the layout it writes)."""
    digest = hashlib.sha256()
    for name in (GENERATOR, "services/data/layout.py", "services/data/snapshots.py"):
        path = REPO / name
        if path.exists():
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def account_dir(scale: int, say=print) -> tuple[Path, float | None]:
    """The folder of the scale-`scale` account, generating it if missing or stale.

    Returns (folder, seconds the generation took, or None when the cached copy was used).
    """
    missing = missing_modules(GENERATOR, "server.py")
    if missing:
        raise BenchError(f"{', '.join(missing)} not present")
    folder = ACCOUNTS_DIR / f"scale-{scale}"
    stamp_path = folder / STAMP
    expected = {"scale": scale, "generator": generator_hash()}
    try:
        if json.loads(stamp_path.read_text()) == expected:
            return folder, None
    except (OSError, ValueError):
        pass
    if folder.exists():
        shutil.rmtree(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    say(f"generating the scale-{scale} demo account in {folder} ...")
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, str(SERVER_PY), "demo", "--out", str(folder), "--scale", str(scale), "--no-images"],
        check=False, capture_output=True, text=True, env=scrubbed_env(), cwd=str(ACCOUNTS_DIR), timeout=600)
    took = time.perf_counter() - started
    if done.returncode != 0:
        shutil.rmtree(folder, ignore_errors=True)
        raise BenchError(f"demo generation failed ({done.returncode}): {(done.stderr or done.stdout).strip()[-300:]}")
    stamp_path.write_text(json.dumps(expected))
    return folder, took


def working_copy(scale: int, target: Path, say=print) -> tuple[Path, float | None]:
    """A private copy of the account for one server run (servers may write images/, sync/ ...)."""
    source, took = account_dir(scale, say)
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target, symlinks=True, ignore=shutil.ignore_patterns(STAMP))
    return target, took


def folder_size(path: Path) -> int:
    """Bytes of all files below `path`."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def mark_as_synced(data_dir: Path) -> None:
    """Make a generated account look synced from Trakt (index.json `source`).

    A `"source": "demo"` folder makes the server play the demo now-watching schedule, which
    reads the account's history; a synced one does not. Benchmarks of the REST path and of the
    Trakt poller use this so they measure what a synced deployment runs.
    """
    from services.data import layout

    index_path = data_dir / layout.INDEX
    index = json.loads(index_path.read_text())
    index["metadata"]["source"] = layout.SOURCE_TRAKT
    index_path.write_text(json.dumps(index))

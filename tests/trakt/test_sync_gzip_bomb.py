"""A gzip bomb from Trakt or TMDB. `trakt-watch sync` in its own process, its
peak RSS read from the kernel, the served data compared byte for byte."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from services.data.snapshots import DataFolder
from services.trakt.report import read_last_attempt
from tests.fakes.bomb import BOMB_MIB, gzip_bomb
from tests.fakes.tmdb import FakeTmdb
from tests.fakes.trakt import FakeAccount, FakeTrakt

USER = "fakeuser"
REPO = Path(__file__).resolve().parents[2]
# A fresh, small process runs the sync and reports its child's peak RSS: a child forked straight
# from pytest would count pytest's own pages in ru_maxrss until its exec.
LAUNCHER = ("import resource, subprocess, sys; code = subprocess.call(sys.argv[1:]); "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(code)")
# Peak RSS a sync may reach whatever upstream sends (README "Security and reliability": a few hundred MB at most); the
# unbounded client reached 2.4 GB on this bomb. A sync of this small account peaks near 70 MB.
RSS_BOUND_MB = 250


@pytest.fixture
def fake_trakt():
    fake = FakeTrakt(FakeAccount.build(history=80, watched_movies=6, shows=3, lists=1, watchlist=4))
    with fake.running_in_thread():
        yield fake


def run_sync(fake: FakeTrakt, data_dir: Path, *args: str, tmdb: FakeTmdb | None = None) -> tuple[int, str, int]:
    """`server.py sync` in a child process: (exit code, stderr, peak RSS in MB)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRAKT_", "TMDB_", "DATA_DIR"))}
    env.update(TRAKT_API_KEY="test-key", TRAKT_USERNAME=USER, TRAKT_API_URL=fake.url, PYTHONUNBUFFERED="1",
               SYNC_INTERVAL_HOURS="0")
    if tmdb is not None:
        env.update(TMDB_API_KEY=tmdb.api_key, TMDB_API_URL=tmdb.api_url, TMDB_IMAGE_URL=tmdb.image_url)
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-c", LAUNCHER, sys.executable, str(REPO / "server.py"), "sync", "--full",
               "--data-dir", str(data_dir), *args]
    done = subprocess.run(command, cwd=data_dir.parent, env=env, capture_output=True, text=True, timeout=120)
    # The launcher prints after the sync has ended, so its line is the last one on stdout.
    peak_kib = int(done.stdout.strip().splitlines()[-1])  # ru_maxrss is in KiB on Linux
    return done.returncode, done.stderr, peak_kib // 1024


def served_state(data_dir: Path) -> dict[str, str]:
    root = DataFolder(data_dir).served_root()
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_the_bomb_is_small_and_inflates_to_1200_mib_of_valid_json():
    body = gzip_bomb()
    assert len(body) < 1.5 * 1024 * 1024
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)  # in 1 MiB steps: never 1.2 GB in this process
    size, first, last, pending = 0, b"", b"", body
    while pending or not inflater.eof:
        part = inflater.decompress(pending, 1 << 20)
        pending = inflater.unconsumed_tail
        first, last, size = first or part[:1], (last + part)[-1:], size + len(part)
        if not part and not pending:
            break
    assert size == BOMB_MIB * 1024 * 1024 + 2
    assert (first, last) == (b"[", b"]")  # `[`, spaces, `]`: the JSON value []


def test_a_trakt_gzip_bomb_fails_the_sync_commits_nothing_and_rss_stays_bounded(fake_trakt, tmp_path):
    data_dir = tmp_path / "data"
    code, err, _ = run_sync(fake_trakt, data_dir, "--no-images")
    assert code == 0, err
    before = served_state(data_dir)
    snapshots_before = sorted(p.name for p in DataFolder(data_dir).snapshots_dir.iterdir())

    fake_trakt.inject("gzip_bomb", path="/history/movies", times=100)
    code, err, peak_mb = run_sync(fake_trakt, data_dir, "--no-images")
    assert code == 1
    message = (f"/users/{USER}/history/movies page 1: Trakt's answer is larger than 16 MiB after "
               "decompression, the limit per answer")
    assert message in err
    assert message in read_last_attempt(DataFolder(data_dir))["error"]
    assert served_state(data_dir) == before  # nothing committed: the previous data is served
    assert sorted(p.name for p in DataFolder(data_dir).snapshots_dir.iterdir()) == snapshots_before
    assert fake_trakt.count("/history/movies") == 2  # one per sync: the bomb is not fetched again
    assert peak_mb < RSS_BOUND_MB, f"peak RSS {peak_mb} MB"
    print(f"trakt gzip bomb: sync peak RSS {peak_mb} MB")


def test_tmdb_gzip_bombs_fail_those_images_only_and_rss_stays_bounded(fake_trakt, tmp_path):
    data_dir = tmp_path / "data"
    with FakeTmdb().running_in_thread() as tmdb:
        tmdb.gzip_bomb_next(6)  # the first lookups: JSON answers (and their files never get asked)
        code, err, peak_mb = run_sync(fake_trakt, data_dir, "--images", tmdb=tmdb)
        assert code == 0, err  # images never undo the committed data
        report = read_last_attempt(DataFolder(data_dir))["images"]
        assert report["failed"] >= 6 and report["downloaded"] > 0
        assert "is larger than 2 MiB after decompression, the limit per answer" in err
        assert peak_mb < RSS_BOUND_MB, f"peak RSS {peak_mb} MB"
        print(f"tmdb gzip bombs: sync peak RSS {peak_mb} MB")

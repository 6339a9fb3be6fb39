"""Shared fixtures: a data folder, a config pointing at it, started services and the real app.

pytest-tornado's `http_server`/`http_client`/`base_url` use the `app` fixture below, so every
test talks HTTP to the same application `trakt-watch serve` runs.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from services.config import Config
from tests.helpers import accounts


@pytest.fixture(scope="session")
def demo_account(tmp_path_factory) -> Path:
    """The generated demo account (scale 1, with images), written once per test session."""
    from services.demo.generator import write_demo

    folder = tmp_path_factory.mktemp("demo-account")
    write_demo(folder, 1, images=True)
    return folder


@pytest.fixture
def account_dir(tmp_path) -> Path:
    """A fresh copy of the small hand-written account (tests/helpers/accounts.py)."""
    return accounts.write_account(tmp_path / "data")


@pytest.fixture
def data_dir(account_dir) -> Path:
    return account_dir


@pytest.fixture
def config(data_dir) -> Config:
    """No Trakt or TMDB key: nothing external is ever contacted unless a test says so."""
    return replace(Config(), data_dir=data_dir, timezone="UTC", data_check_seconds=0.1)


@pytest.fixture
def services(io_loop, config):
    from server import build_services

    built = build_services(config)
    io_loop.run_sync(built.start)
    yield built
    io_loop.run_sync(built.stop)


@pytest.fixture
def app(config, services):
    from server import make_app

    return make_app(config, services)



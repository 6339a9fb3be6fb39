"""Fixtures the tests of the HTTP server share."""

from __future__ import annotations

import pytest
import tornado.gen


@pytest.fixture
def timeouts_set(monkeypatch) -> list[tuple]:
    """The arguments of every `tornado.gen.with_timeout` call while the test runs: Tornado's own
    HTTPServer makes one per request (its header timeout); ours must make none."""
    calls: list[tuple] = []
    original = tornado.gen.with_timeout

    def counting(*args, **kwargs):
        calls.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(tornado.gen, "with_timeout", counting)
    return calls

"""bench/soak.py stays runnable: a short soak (mixed REST/WebSocket load, a sync, an image reload
and a data reload mid-run against the fake Trakt) ends with zero errors."""

from __future__ import annotations

from bench import soak


def test_short_soak_has_no_errors(capsys):
    code = soak.main(["--seconds", "6", "--rest-workers", "3", "--ws-clients", "4"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "errors          0" in out
    assert "sync success" in out
    assert "RSS             start " in out

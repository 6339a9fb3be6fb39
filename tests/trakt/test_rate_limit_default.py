"""The default request budget stays under Trakt's 2026 limit of 500 GETs per 5 minutes, and the README says what it is."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from services.config import Config, load_config
from services.trakt.client import TraktClient

README = Path(__file__).resolve().parents[2] / "README.md"
TRAKT_GET_LIMIT = 500  # per 5 minutes, Trakt staff, September 2026
DEFAULT = 400


def readme_default(variable: str) -> str:
    row = next(line for line in README.read_text(encoding="utf-8").splitlines()
               if line.startswith(f"| `{variable}` |"))
    return row.split("|")[2].strip().strip("`")


def test_the_default_budget_is_400_requests_per_5_minutes_with_headroom_under_trakts_500(tmp_path):
    assert Config().trakt_rate_limit == DEFAULT < TRAKT_GET_LIMIT
    (tmp_path / "empty.env").write_text("")
    assert load_config(environ={}, env_file=tmp_path / "empty.env").trakt_rate_limit == DEFAULT
    budget = TraktClient(replace(Config(), trakt_api_key="k")).budget
    assert (budget.limit, budget.period) == (DEFAULT, 300.0)


def test_the_readme_configuration_table_gives_the_same_default():
    assert readme_default("TRAKT_RATE_LIMIT") == str(DEFAULT)

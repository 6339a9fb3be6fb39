"""Activity statistics agree with a row-by-row computation in any time zone."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from services.data import layout
from services.data.dataset import build_dataset
from services.data.snapshots import dumps
from tests.helpers import accounts


def history_rows() -> list[dict]:
    """Rows spread over minutes and hours, so half-hour zones split some UTC hours."""
    rows = []
    for i in range(300):
        day, hour, minute = 1 + i % 28, (i * 7) % 24, (i * 13) % 60
        rows.append(accounts.history_movie(i, f"2026-{1 + i % 10:02d}-{day:02d}T{hour:02d}:{minute:02d}:00.000Z",
                                           accounts.AMELIE))
    rows.append(accounts.history_movie(999, "2026-10-15T23:50:00+02:00", accounts.STAR))  # explicit offset
    return rows


@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin", "Asia/Kolkata", "Asia/Kathmandu", "America/St_Johns"])
def test_heatmap_and_months_match_a_row_by_row_count(zone):
    files = accounts.files()
    files[layout.HISTORY["movies"]] = history_rows()
    raw = {endpoint: dumps(layout.wrap(endpoint, data, username="sam", source="t",
                                       last_updated="2026-11-01T00:00:00+00:00")).encode()
           for endpoint, data in files.items()}
    activity = build_dataset(None, raw, is_demo=False, zone=zone).activity

    local = ZoneInfo(zone)
    expected_cells: Counter = Counter()
    expected_months: Counter = Counter()
    for row in history_rows() + files[layout.HISTORY["shows"]]:
        when = datetime.fromisoformat(row["watched_at"]).astimezone(local)
        expected_cells[(when.weekday(), when.hour)] += 1
        expected_months[f"{when.year:04d}-{when.month:02d}"] += 1
    cells = {(d, h): n for d, hours in enumerate(activity["heatmap"]["counts"]) for h, n in enumerate(hours) if n}
    assert cells == dict(expected_cells)
    months = {m["month"]: m["movies"] + m["episodes"] for m in activity["months"] if m["movies"] + m["episodes"]}
    assert months == dict(expected_months)  # all within the last 24 months
    assert activity["totals"]["movies"] == 301

"""services/times.py: one reader for every ISO 8601 form we meet, the two forms we write."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from services import times

MOMENT = datetime(2025, 7, 19, 13, 0, 12, tzinfo=UTC)


@pytest.mark.parametrize("text", [
    "2025-07-19T13:00:12.000Z",          # Trakt
    "2025-07-19T13:00:12Z",
    "2025-07-19T13:00:12+00:00",
    "2025-07-19T13:00:12.000000+00:00",  # the data files' last_updated
    "2025-07-19T15:00:12+02:00",         # an explicit offset
    "2025-07-19T13:00:12",               # naive: UTC
    " 2025-07-19T13:00:12.000Z ",
])
def test_every_iso_form_reads_as_the_same_utc_moment(text):
    assert times.parse_iso(text) == MOMENT
    assert times.parse_iso(text).tzinfo is UTC
    assert times.parse(text) == MOMENT
    assert times.to_epoch(text) == 1752930012.0


@pytest.mark.parametrize("value", [None, "", "yesterday", "2025-13-40T00:00:00Z", True, [], {}])
def test_garbage_is_none_for_parse_and_an_error_for_parse_iso(value):
    assert times.parse(value) is None
    assert times.to_epoch(value) is None
    with pytest.raises(ValueError):
        times.parse_iso(value)


def test_parse_takes_epoch_seconds_and_datetimes_too():
    assert times.parse(1752930012) == MOMENT
    assert times.parse(1752930012.0) == MOMENT
    assert times.parse(datetime(2025, 7, 19, 13, 0, 12)) == MOMENT  # naive: UTC
    assert times.parse(datetime(2025, 7, 19, 15, 0, 12, tzinfo=timezone(timedelta(hours=2)))) == MOMENT
    assert times.parse(10 ** 20) is None


def test_the_two_written_forms():
    assert times.iso_z(MOMENT) == "2025-07-19T13:00:12.000Z"
    assert times.iso_z(MOMENT, timespec="seconds") == "2025-07-19T13:00:12Z"
    assert times.iso_z(MOMENT.astimezone(timezone(timedelta(hours=-5)))) == "2025-07-19T13:00:12.000Z"
    assert times.iso_offset(MOMENT) == "2025-07-19T13:00:12.000000+00:00"
    assert times.compact(MOMENT + timedelta(microseconds=42)) == "20250719T130012000042Z"


def test_epoch_z_is_trakts_form_of_whole_seconds():
    assert times.epoch_z(1752930012) == "2025-07-19T13:00:12.000Z"
    assert times.epoch_z(0) == "1970-01-01T00:00:00.000Z"
    assert times.epoch_z(86399) == "1970-01-01T23:59:59.000Z"
    assert times.epoch_z(1752930012) == "2025-07-19T13:00:12.000Z"  # from the caches


def test_what_is_written_reads_back():
    now = times.now()
    assert times.parse(times.iso_offset(now)) == now
    assert times.parse(times.iso_z(now)) == now.replace(microsecond=now.microsecond // 1000 * 1000)

"""Timestamps are written exactly like the original app's JavaScript `toISOString()`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from lora_core.data.clock import parse_iso, to_iso


def test_format_matches_javascript_to_iso_string():
    moment = datetime(2026, 2, 11, 9, 5, 3, 123456, tzinfo=UTC)

    assert to_iso(moment) == "2026-02-11T09:05:03.123Z"


def test_other_time_zones_are_converted_to_utc():
    moment = datetime(2026, 2, 11, 10, 0, tzinfo=timezone(timedelta(hours=1)))

    assert to_iso(moment) == "2026-02-11T09:00:00.000Z"


def test_round_trip_and_naive_values_are_utc():
    assert parse_iso("2026-02-11T09:05:03.123Z") == datetime(
        2026, 2, 11, 9, 5, 3, 123000, tzinfo=UTC
    )
    assert parse_iso("2026-02-11 09:05:03").tzinfo == UTC

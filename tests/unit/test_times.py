"""schemas.times: the one RFC 3339 parser and formatter, strict on the wire, tolerant for people."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.errors import MalformedInput
from schemas.times import format_time, parse_time, utc

offsets = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
aware = st.datetimes(
    min_value=datetime(1000, 1, 2), max_value=datetime(9999, 12, 30), timezones=offsets
)


@given(aware)
def test_format_then_parse_is_the_same_instant(dt: datetime) -> None:
    text = format_time(dt)
    back = parse_time(text)
    assert back == dt and back.tzinfo is UTC
    assert text.endswith("Z") and format_time(back) == text


@given(aware)
def test_full_fraction_is_the_form_the_rules_wrote_into_flag_details(dt: datetime) -> None:
    # The formula rules/model.iso_time used before it moved here.
    old = dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ").replace(".000000Z", "Z")
    assert format_time(dt, full_fraction=True) == old
    assert parse_time(old) == dt


def test_fraction_digits() -> None:
    t = datetime(2025, 5, 1, 12, 0, 0, 500000, tzinfo=UTC)
    assert format_time(t) == "2025-05-01T12:00:00.5Z"
    assert format_time(t, full_fraction=True) == "2025-05-01T12:00:00.500000Z"
    assert format_time(t.replace(microsecond=0), full_fraction=True) == "2025-05-01T12:00:00Z"


@pytest.mark.parametrize(
    "bad",
    [
        "yesterday",
        "2025-05-01T12:00:00",
        "2025-05-01",
        "",
        None,
        1714564800,
        b"2025-05-01T12:00:00Z",
    ],
)
def test_wire_parsing_is_strict(bad: object) -> None:
    with pytest.raises(MalformedInput) as e:
        parse_time(bad)
    assert e.value.reason == "schema"
    assert isinstance(e.value, ValueError)  # the rules skip bad events on ValueError


def test_wire_parsing_takes_aware_datetimes_and_refuses_naive_ones() -> None:
    mx = timezone(timedelta(hours=-6))
    assert parse_time(datetime(2025, 5, 1, 6, tzinfo=mx)) == datetime(2025, 5, 1, 12, tzinfo=UTC)
    assert parse_time("2025-05-01T06:00:00-06:00").tzinfo is UTC
    with pytest.raises(MalformedInput):
        parse_time(datetime(2025, 5, 1, 12))
    with pytest.raises(MalformedInput) as e:
        format_time(datetime(2025, 5, 1, 12))
    assert e.value.reason == "time"


def test_utc_reads_what_people_type() -> None:
    assert utc("2025-01-01") == datetime(2025, 1, 1, tzinfo=UTC)
    assert utc(" 2025-01-01T06:00:00 ") == datetime(2025, 1, 1, 6, tzinfo=UTC)
    assert utc("2025-01-01T06:00:00-06:00") == datetime(2025, 1, 1, 12, tzinfo=UTC)
    assert utc("2025-01-01T06:00:00Z") == datetime(2025, 1, 1, 6, tzinfo=UTC)
    assert utc(datetime(2025, 1, 1, 6)) == datetime(2025, 1, 1, 6, tzinfo=UTC)
    assert utc(datetime(2025, 1, 1, 6, tzinfo=timezone(timedelta(hours=1)))).tzinfo is UTC
    with pytest.raises(MalformedInput) as e:
        utc("last tuesday")
    assert e.value.reason == "time" and "ISO 8601" in str(e.value)

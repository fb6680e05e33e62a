"""Time on the wire: RFC 3339 text in UTC, parsed and formatted here and nowhere else.

Every time a publisher signs (the header's ``event_time``, payload times such as
``paid_at`` or ``due``) is an RFC 3339 section 5.6 ``date-time`` in UTC with a
literal ``Z`` and at most microseconds; the schemas pin that form and
``schemas.catalog`` asserts calendar validity.  Three functions, one job each:

* :func:`parse_time` is strict, for wire text: an offset is required (a time
  without one would be read differently by every party), the result is an
  aware UTC ``datetime``.  An aware ``datetime`` passes through, normalised.
* :func:`format_time` is the one formatter: aware ``datetime`` -> ``...Z``,
  microseconds only when non-zero (the form producers sign).
* :func:`utc` is the tolerant front-end for people and databases (a CLI
  ``--start``, a ``timestamptz`` column): a date alone or a time without an
  offset is read as UTC.  Never use it on signed text.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from schemas.errors import MalformedInput

__all__ = ["add_business_days", "format_time", "parse_time", "utc"]


def parse_time(value: object) -> datetime:
    """An aware UTC datetime from RFC 3339 wire text (or an aware datetime).

    Takes any value, as found in a payload: raises ``MalformedInput(reason="schema")``
    (a ``ValueError``) for anything that is not a time or has no UTC offset.
    """
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value)
        except ValueError as e:
            raise MalformedInput(f"{value!r} is not an RFC 3339 time", reason="schema") from e
    else:
        raise MalformedInput(f"{value!r} is not an RFC 3339 time", reason="schema")
    if dt.utcoffset() is None:
        raise MalformedInput(f"{value!r} has no UTC offset", reason="schema")
    return dt.astimezone(UTC)


def format_time(dt: datetime, *, full_fraction: bool = False) -> str:
    """RFC 3339 in UTC with ``Z``; a fraction only when microseconds are non-zero.

    The fraction drops trailing zeros (``...T12:00:00.5Z``), the form every
    publisher signs; with ``full_fraction`` it keeps all six digits
    (``...T12:00:00.500000Z``), the form the rules have always written into a
    flag's ``detail`` (changing it would change signed flag events).
    """
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise MalformedInput(
            "a naive datetime has no time zone; pass an aware one (e.g. tzinfo=UTC)",
            reason="time",
        )
    u = dt.astimezone(UTC)
    base = f"{u.year:04d}-{u.month:02d}-{u.day:02d}T{u.hour:02d}:{u.minute:02d}:{u.second:02d}"
    if u.microsecond:
        fraction = f".{u.microsecond:06d}"
        base += fraction if full_fraction else fraction.rstrip("0")
    return base + "Z"


def utc(value: datetime | str) -> datetime:
    """An aware UTC datetime from what a person or a database gives; no offset means UTC.

    Accepts ISO 8601 dates (``2025-01-01``) and date-times with or without an
    offset; raises ``MalformedInput(reason="time")`` for anything else.
    """
    if isinstance(value, datetime):
        dt = value
    else:
        try:
            dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except (AttributeError, ValueError) as e:
            raise MalformedInput(
                f"{value!r} is not an ISO 8601 date or time (e.g. 2025-01-01T00:00:00Z)",
                reason="time",
            ) from e
    return dt.replace(tzinfo=UTC) if dt.utcoffset() is None else dt.astimezone(UTC)


def add_business_days(at: datetime, days: int) -> datetime:
    """The same clock time ``days`` business days after ``at``: Monday to Friday, in UTC.

    Days are stepped one at a time and only a day landing on a weekday counts, so
    Friday 15:00 + 3 is Wednesday 15:00 and Saturday 10:00 + 3 is Wednesday 10:00.
    Public holidays are not known to the platform and count as business days (a
    refund period "within three business days", 12 CFR 1005.34(b), is then judged a
    little early on a holiday week; the rules README says so).
    """
    if days < 0:
        raise ValueError("days must not be negative")
    out = at
    left = days
    while left > 0:
        out += timedelta(days=1)
        if out.astimezone(UTC).weekday() < 5:
            left -= 1
    return out

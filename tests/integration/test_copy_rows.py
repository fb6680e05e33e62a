"""COPY text encoding (infra.db.copy_rows) round-trips any value through a real PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infra.db import connect, copy_rows

pytestmark = pytest.mark.integration

# text that PostgreSQL can store (no NUL), with the characters COPY treats specially
texts = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=40) | st.sampled_from(
    ["\\", "\\N", "a\tb", "x\ny", "\r", "\\x00", "\\\\t"])
rows = st.lists(st.tuples(
    st.none() | texts,
    st.none() | st.integers(-(2**63), 2**63 - 1),
    st.none() | st.binary(max_size=40),
    st.none() | st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(9000, 1, 1),
                             timezones=st.just(UTC)),
    st.none() | st.booleans(),
), max_size=20)


def test_copy_rows_round_trips(migrated):
    s = migrated
    conn = connect(s.database_url, s.database_schema)
    try:
        with conn, conn.cursor() as cur:
            cur.execute("CREATE TABLE copy_probe (n int, t text, i bigint, b bytea, ts timestamptz, f boolean)")

        @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
        @given(rows)
        def check(rs):
            with conn, conn.cursor() as cur:
                cur.execute("TRUNCATE copy_probe")
                copy_rows(cur, "copy_probe", ("n", "t", "i", "b", "ts", "f"), [(k, *r) for k, r in enumerate(rs)])
                cur.execute("SELECT t, i, b, ts, f FROM copy_probe ORDER BY n")
                got = [(t, i, None if b is None else bytes(b), ts, f) for t, i, b, ts, f in cur.fetchall()]
            assert got == list(rs)

        check()
    finally:
        conn.close()

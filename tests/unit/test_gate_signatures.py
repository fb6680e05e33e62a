"""The gate's verification ahead: every verdict in job order, whatever the slicing."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from stream_processors.gate import signatures


@settings(max_examples=60, deadline=None)
@given(st.lists(st.booleans(), max_size=40))
def test_verify_all_keeps_job_order_and_every_verdict(verdicts: list[bool]) -> None:
    jobs = [(object(), bytes([i % 256])) for i in range(len(verdicts))]
    wanted = dict(zip([id(j[0]) for j in jobs], verdicts, strict=True))
    original = signatures._one
    signatures._one = lambda job: wanted[id(job[0])]  # type: ignore[assignment]
    try:
        assert signatures.verify_all(jobs) == verdicts  # type: ignore[arg-type]
    finally:
        signatures._one = original  # type: ignore[assignment]

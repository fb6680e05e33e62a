"""The hostile corpus against the pure gate (no broker, no database).

Every case that does not need the log (phases 1 and 3) gets exactly its expected
outcome and reason from ``decide_batch`` over a trust registry built from the corpus's
registry events; the integration test (tests/integration/test_hostile.py) then
replays the whole corpus, replays and equivocations included, on the real platform.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from schemas.canonical import canonicalize, parse_json
from schemas.envelope import sign_event
from schemas.keys import VerifierKey, public_key_bytes
from schemas.registry import TrustRegistry
from schemas.thresholds import LATE_PUBLICATION, MAX_EVENT_AGE, MAX_FUTURE_SKEW
from stream_processors.gate import GateLimits, Incoming, LogKnowledge, decide_batch, parse_item
from tests.hostile.corpus import AUTHORITY, MAX_EVENT_BYTES, SQLI, build_corpus

NOW = datetime.now(UTC).replace(microsecond=0)
CORPUS = build_corpus(NOW)


def _registry() -> TrustRegistry:
    authority = Ed25519PrivateKey.generate()
    reg = TrustRegistry(VerifierKey(AUTHORITY, public_key_bytes(authority)))
    for seq, (event_type, payload) in enumerate(CORPUS.registry_setup(), start=1):
        # published just before the corpus, as the integration test does
        reg.apply(sign_event(authority, publisher_id=AUTHORITY, event_type=event_type, payload=payload,
                             seq=seq, event_time=NOW - timedelta(days=3)), arrived_at=NOW - timedelta(minutes=1))
    return reg


def test_corpus_size_and_categories() -> None:
    cats = Counter(c.category for c in CORPUS.cases)
    assert len(CORPUS.cases) >= 200
    for cat in ("malformed_json", "encoding", "duplicate_key", "structure", "oversize", "lookalike_id",
                "amount", "currency", "time", "signature", "authorization", "authority", "replay", "equivocation",
                "seq_reuse", "sql_injection", "non_canonical", "extreme_valid"):
        assert cats[cat] > 0, cat
    # every SQL-injection string appears in every string field of transfer.sent and its header
    sqli = [c for c in CORPUS.cases if c.name.startswith("sqli/sent/")]
    assert len(sqli) == 19 * len(SQLI)


def test_every_case_gets_its_outcome_from_the_pure_gate() -> None:
    registry = _registry()
    limits = GateLimits(MAX_EVENT_BYTES, max_future_skew=MAX_FUTURE_SKEW, max_age=MAX_EVENT_AGE,
                        late_publication=LATE_PUBLICATION)
    now = datetime.now(UTC)
    wrong = []
    for case in CORPUS.cases:
        if case.phase == 2:
            continue
        # each case alone, against an empty log: phases 1 and 3 need nothing it holds
        (d,) = decide_batch([parse_item(Incoming(case.raw, "test"), MAX_EVENT_BYTES)], LogKnowledge(), registry,
                            now, limits).decisions
        got = "rejected:" + d.reason if d.outcome == "rejected" else "accepted"
        want = "accepted" if case.expect == "stored_safely" else case.expect
        if got not in (want, case.known_bug):  # known_bug: what the platform answers today (a bug)
            wrong.append((case.name, want, got, d.message[:120]))
        late = case.name == "time/published-late"
        assert d.late == late, case.name  # only the one published 7-30 days after its time, outside backfill
        if d.envelope is not None:
            # what the gate parsed is what the corpus says is handed over
            assert (d.envelope.publisher_id, d.envelope.event_id) == (case.publisher, case.event_id)
            # accepted hostile spellings are logged in their one canonical form
            if got == "accepted":
                assert d.envelope.leaf_bytes() == canonicalize(parse_json(case.raw, max_bytes=1 << 20))
    assert not wrong, "\n".join(map(str, wrong))


@pytest.mark.parametrize("case", [c for c in CORPUS.cases if c.expect == "stored_safely" and c.phase == 1],
                         ids=lambda c: c.name)
def test_non_canonical_spellings_differ_from_the_leaf(case) -> None:  # type: ignore[no-untyped-def]
    from schemas.envelope import parse_envelope

    assert parse_envelope(case.raw).leaf_bytes() != case.raw or case.name.startswith("extreme/")

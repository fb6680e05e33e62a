"""Regression pin: a seed's simulation stays byte for byte what it was.

The expected values below are NOT derived from any specification: they were
computed once by the simulator as it stood before it was split into a package
(``producers/simulator.py`` at commit 18ca1a4, CPython 3.11), and pin that
output.  Updated deliberately since: for issue 13 (authority and time): mirror
clubs registered as verifiers and named by projects, committees bound to their
club, payout agents publishing some payouts, a quiet tail that reaches every
partition, and the new attack cases (the live feed did not move); for issue 15
(transfers): payouts of half the transfers to a person name their beneficiary,
clean cancellations are all refunded in full, and the transfer cases have
variants and look-alikes; for issue 15 (projects): agreements state
``shares_due``, clubs whose shares fall due in the window pay at least their
share, and the project cases (club share, verification order, currencies,
cancellation) have look-alikes; for issue 14.6 (an unlinkable public record):
senders and beneficiaries get a pseudonym per transfer
(``schemas.privacy.transfer_pseudonym``), so every payload holding one
changed, in the runs and the live feed alike.  Why the output of a seed is
part of the simulator's contract: the
demo (``cuentas up --demo``) and a re-run of ``cuentas simulate`` regenerate a
run and publish it again under the same event ids (they derive from the seed,
the window and the sizes, not from the code), and different bytes under an
event id the log already holds are equivocation.

A deliberate change to what the simulator generates must update these values
in the same commit and say why; an unintended one (a random draw moved, a
payload field reordered into different content) fails here.  The other
simulator tests check what the output means; this one only that it did not
move.
"""

from __future__ import annotations

import hashlib
import json
import random
from datetime import UTC, datetime, timedelta

import pytest

from producers.simulator import LiveFeed, simulate

START = datetime(2025, 1, 1, tzinfo=UTC)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.parametrize(
    ("seed", "events", "days", "anomalies", "digest", "truth", "receipts"),
    [
        (
            7,
            2000,
            30,
            True,
            "230c53e8bc1925efcd3339235b34f2b2ca216a754e4229949d84efe60829c952",
            "e6d52c75136d6e3cb765481300e4c996b5142f01fe801152f5f1ddf23c743e7c",
            "6eccc6fe33f7c3b8e8e4065a9bacb435a3baf310e3464edd458b24592f2dee07",
        ),
        (
            3,
            1200,
            31,
            False,
            "b0867abc532df6c50cad9ce37b14bce9f25a15ed36596c69ec4f6f8242b46d61",
            _sha(""),  # a clean run expects no flag
            "897f1baed30751e7f1a5a4bb99d3489d839cdd2c024b3ae0d4eac7c294847985",
        ),
    ],
)
def test_a_seed_generates_the_same_run_as_before(
    seed: int,
    events: int,
    days: int,
    anomalies: bool,
    digest: str,
    truth: str,
    receipts: str,
) -> None:
    sim = simulate(seed, events=events, start=START, span=timedelta(days=days), anomalies=anomalies)
    assert sim.digest() == digest
    assert _sha(sim.truth_jsonl()) == truth
    assert _sha(json.dumps(sim.receipts, sort_keys=True)) == receipts


def test_the_live_feed_draws_as_before_from_a_seeded_stream() -> None:
    feed = LiveFeed(7, rate=5.0, rng=random.Random(1234))
    t0 = datetime(2025, 3, 1, tzinfo=UTC)
    live = [
        [ev.publisher_id, ev.event_type, ev.payload]
        for i in range(60)
        for ev in feed.tick(t0 + timedelta(seconds=i), 1.0)
    ]
    assert len(live) == 236
    assert (
        _sha(json.dumps(live, sort_keys=True))
        == "39edfb5fceb0039f9f393cda7c83c02ea10ed777719e06b647542400a1c025da"
    )

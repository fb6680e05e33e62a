"""Attacks on the gate, and the operator whose key is compromised and revoked mid-window.

Each attack is drafted with the decision the gate must take (``kind``,
``reason``) and the integrity flag it must raise; a replay and an
out-of-order delivery must raise nothing.
"""

from __future__ import annotations

import json
from datetime import timedelta

from producers.simulator.drafts import Run, Transfer
from producers.simulator.market import money, paid_payload, sent_payload
from producers.simulator.results import RegistryAction
from producers.simulator.transfers import sender_destination, transfer
from producers.simulator.truth import no_flag_line
from producers.simulator.world import (
    DAY,
    FEDERAL,
    HOUR,
    MINUTE,
    SimPublisher,
    b32,
    derive_key,
    hash_parts,
    operator_secret,
)
from schemas.catalog import ROLES_BY_KIND
from schemas.privacy import receipt_code
from schemas.times import format_time

__all__ = [
    "add_revoked_operator",
    "attacks",
    "forged_signature",
    "revoked_key",
    "committee_records_a_transfer",
    "municipality_disburses_for_another",
    "replay",
    "equivocation",
    "out_of_order",
    "sequence_gap",
]


def add_revoked_operator(run: Run) -> None:
    """An operator whose key is compromised mid-window: registered, revoked, then used."""
    op = f"mto-giros-rapidos-{run.run_tag}"
    pub = SimPublisher(
        op,
        "operator",
        ROLES_BY_KIND["operator"],
        None,
        derive_key(run.seed, op),
        "money transfer operator (key compromised)",
    )
    run.pubs[op] = pub
    run.secrets[op] = operator_secret(run.seed, op)
    run.profiles[op] = run.operator_profile(op)
    run.revoked_op = op
    run.revoked_at = run.between(
        run.start + (run.cutoff - run.start) * 0.4,
        run.start + (run.cutoff - run.start) * 0.6,
    )


def attacks(run: Run) -> None:
    """Every attack, in a fixed order (each draws from the run's random stream).

    They come after everything else: they reuse a missing payout, a project
    registration and clean transfers drafted before.
    """
    victim = forged_signature(run)
    revoked_key(run)
    committee_records_a_transfer(run)
    municipality_disburses_for_another(run)
    clean = _reusable_transfers(run)
    replayed = replay(run, clean)
    equivocated = equivocation(run, clean, victim)
    out_of_order(run, clean, replayed, equivocated)
    sequence_gap(run)


def forged_signature(run: Run) -> str:
    """Payouts that would hide a missing payout, signed by a wrong key; returns the victim."""
    victim_tr = next(t for t in run.transfers if t.label == "missing_payout")
    victim = victim_tr.operator
    for _ in range(2):
        at = run.between(victim_tr.available_by + 80 * HOUR, run.cutoff - DAY)
        run.draft(
            victim,
            "transfer.paid_out",
            paid_payload(
                victim_tr.transfer_id,
                victim_tr.quote.promised,
                victim_tr.quote.recv_ccy,
                victim_tr.available_by - 10 * MINUTE,
                run.new_id("po", 10),
            ),
            at,
            kind="forged",
            reason="bad_signature",
            label="forged_signature",
        )
    run.flag("forged_signature", "forged_signature", "publisher", victim, "bad_signature")
    return victim


def revoked_key(run: Run) -> None:
    """The compromised operator's key keeps signing after its revocation."""
    assert run.revoked_op is not None and run.revoked_at is not None
    rev = run.revoked_op
    for _ in range(3):
        at = run.between(run.revoked_at + HOUR, min(run.revoked_at + 5 * DAY, run.cutoff - DAY))
        s = run.new_sender(rev, ("US", "MX"), 20_000_000 + run.rng.randint(0, 10**6))
        tr = transfer(
            run,
            rev,
            ("US", "MX"),
            run.send_amount(s),
            at,
            sender=s.pseudonym,
            destination=sender_destination(run, s),
            label="revoked_key",
        )
        run.transfers.remove(tr)
        run.receipts.pop(tr.transfer_id)
        tr.sent.kind, tr.sent.reason = "refused", "key_revoked"
    run.registry.append(
        RegistryAction(
            "publisher.revoked",
            {
                "publisher_id": rev,
                "key_id": run.pubs[rev].key_id,
                "revoked_at": format_time(run.revoked_at),
                "reason_code": "key_compromise",
            },
        )
    )
    run.flag("revoked_key", "revoked_key_used", "publisher", rev, "key_revoked")


def committee_records_a_transfer(run: Run) -> None:
    """Wrong role: a club committee records a transfer itself."""
    club = run.rng.choice(run.roster.clubs)
    at = run.between(run.start + 2 * DAY, run.cutoff - DAY)
    op = run.roster.operators[0]
    s = run.new_sender(op, ("US", "MX"), 30_000_000)
    tid = run.new_id("trf", 12)
    code = receipt_code(operator_secret(run.seed, club.committee), tid)
    q = run.clean_quote(op, ("US", "MX"), 50000, at, 500.0)
    run.draft(
        club.committee,
        "transfer.sent",
        sent_payload(
            tid,
            club.committee,
            ("US", "MX"),
            q,
            at + HOUR,
            destination=sender_destination(run, s),
            sender=s.pseudonym,
            receipt_code=code,
        ),
        at,
        kind="refused",
        reason="role_not_allowed",
        label="wrong_role",
    )
    run.flag("wrong_role", "role_violation", "publisher", club.committee, "role_not_allowed")


def municipality_disburses_for_another(run: Run) -> None:
    """Wrong role: a municipality disburses in the name of another municipality."""
    c = run.cutoff
    regs = [
        d for d in run.drafts if d.event_type == "project.registered" and d.event_time < c - 2 * DAY
    ]
    target = regs[0]
    own = {d.payload["parties"]["municipal"] for d in regs}
    others = sorted(
        {cl.municipal for cl in run.roster.clubs} - {target.payload["parties"]["municipal"]}
    )
    liar = next((m for m in others if m in own), others[0])
    at = run.between(target.event_time + DAY, c - DAY)
    run.draft(
        liar,
        "disbursement.made",
        {
            "project_id": target.payload["project_id"],
            "pledge_id": f"plg-{target.payload['project_id'].rsplit('-', 1)[1]}-mun-1",
            "disbursement_id": run.new_id("dsb", 8),
            "party_level": "municipal",
            "party_id": target.payload["parties"]["municipal"],
            "amount": money(1_000_000, "MXN"),
            "made_at": format_time(at - HOUR),
            "reference": f"spei-{b32(hash_parts('liar', at), 12)}",
        },
        at,
        kind="refused",
        reason="party_mismatch",
        label="wrong_role",
    )
    run.flag("wrong_role", "role_violation", "publisher", liar, "party_mismatch")


def _reusable_transfers(run: Run) -> list[Transfer]:
    """Clean, paid-once, well-settled transfers of operators whose key stays valid."""
    return [
        t
        for t in run.transfers
        if t.label is None
        and t.beneficiary
        and len(t.payout_drafts) == 1
        and t.sent.event_time < run.cutoff - 2 * DAY
        and t.operator != run.revoked_op
    ]


def replay(run: Run, clean: list[Transfer]) -> Transfer:
    """An accepted event sent again, byte for byte: a duplicate, no flag."""
    tr = run.rng.choice(clean)
    run.draft(
        tr.operator,
        tr.sent.event_type,
        tr.sent.payload,
        tr.sent.event_time,
        publish_at=tr.sent.publish_at + timedelta(minutes=run.rng.randint(10, 600)),
        kind="replay",
        reason="duplicate",
        label="replay",
        original=tr.sent,
    )
    run.truth.append(no_flag_line("replay", "transfer", tr.transfer_id, event_id=tr.sent.event_id))
    return tr


def equivocation(run: Run, clean: list[Transfer], victim: str) -> Transfer:
    """The same event id signed again with other content (a payout 8 % smaller)."""
    by_op = {t.operator: t for t in clean}
    eq_op = next(o for o in run.roster.operators if o != victim and o in by_op)
    tr_eq = by_op[eq_op]
    orig = tr_eq.payout_drafts[0]
    altered = json.loads(json.dumps(orig.payload))
    altered["paid"]["amount"] = altered["paid"]["amount"] * 92 // 100
    run.draft(
        eq_op,
        orig.event_type,
        altered,
        orig.event_time,
        publish_at=orig.publish_at + timedelta(minutes=run.rng.randint(30, 300)),
        kind="equivocation",
        reason="equivocation",
        label="equivocation",
        original=orig,
    )
    run.flag("equivocation", "equivocation", "publisher", eq_op, orig.event_id)
    return tr_eq


def out_of_order(run: Run, clean: list[Transfer], *used: Transfer) -> None:
    """A payout published before its ``transfer.sent`` (of a transfer no other case uses)."""
    ooo = next(t for t in clean if all(t is not u for u in used))
    ooo.payout_drafts[0].publish_at = ooo.sent.publish_at - timedelta(seconds=1)
    ooo.payout_drafts[0].label = "out_of_order"
    run.truth.append(no_flag_line("out_of_order", "transfer", ooo.transfer_id))


def sequence_gap(run: Run) -> None:
    """The federal government skips a sequence number.

    Not an operator: the platform flags a gap once its publisher has gone
    quiet, and operators keep publishing in the demo's live trickle.
    """
    run.gap_publisher = FEDERAL
    run.flag("sequence_gap", "sequence_gap", "publisher", FEDERAL, None)

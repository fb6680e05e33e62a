"""Attacks on the gate and on the authority model, and the publishers they need.

Each attack is drafted with the decision the gate must take (``kind``,
``reason``) and the integrity flag it must raise; a replay and an
out-of-order delivery must raise nothing.  Attacks whose outcome depends on
what reached the log first are published in phase 1, once phase 0 is in the
log (``results.SimEvent.phase``): a payout by another operator for a transfer
the gate knows (refused) or does not know yet (accepted, then disregarded by
the reconciler when the transfer arrives in phase 1: the same flag either
way), backdated second registrations, a committee verifying itself, a
revoked key that backdates (the revocation itself is phase 1: after the
operator's genuine events).
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Final

from producers.simulator.drafts import Draft, Run, Transfer
from producers.simulator.market import money, paid_payload, sent_payload
from producers.simulator.results import RegistryAction
from producers.simulator.transfers import pay_clean, payout, sender_destination, transfer
from producers.simulator.truth import no_flag_line
from producers.simulator.world import (
    DAY,
    FEDERAL,
    HOUR,
    MINUTE,
    Club,
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
    "add_late_operator",
    "ATTACK_EVENTS",
    "LATE_CASE_EVENTS",
    "add_self_verifying_committee",
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


def add_late_operator(run: Run) -> None:
    """An operator that declared no backfill for the run's last four weeks, then publishes them late."""
    op = f"mto-tardio-{run.run_tag}"
    run.pubs[op] = SimPublisher(
        op,
        "operator",
        ROLES_BY_KIND["operator"],
        None,
        derive_key(run.seed, op),
        "money transfer operator (publishes late)",
        backfill_until=run.end - LATE_BACKFILL_END,
    )
    run.secrets[op] = operator_secret(run.seed, op)
    run.profiles[op] = run.operator_profile(op)
    run.late_op = op


def add_self_verifying_committee(run: Run) -> None:
    """A club committee that may verify (a mirror club for sister projects) and names itself a verifier."""
    base = run.rng.choice(run.roster.clubs)
    club = Club(
        club_id=f"club-autoverif-{run.run_tag}",
        committee=f"comite-autoverif-{run.run_tag}",
        mirror=base.mirror,
        municipal=base.municipal,
        state_gov=base.state_gov,
        state=base.state,
        municipality=base.municipality,
        federation=base.federation,
    )
    run.pubs[club.committee] = SimPublisher(
        club.committee,
        "committee",
        ("project.registered", "milestone.reported", "milestone.verified"),
        None,
        derive_key(run.seed, club.committee),
        "club project committee that also verifies",
        club_id=club.club_id,
    )
    run.self_verifier = club


#: Events of the late publication case (left out of a run published long after its window).
LATE_CASE_EVENTS: Final = 2 * 3
#: Events the attacks draft (the rest of the run is sized around them).
ATTACK_EVENTS: Final = (
    2  # forged signatures
    + 3  # a revoked key that backdates
    + 2  # wrong roles
    + 1  # replay
    + 1  # equivocation
    + 1  # a transfer.sent naming another operator
    + 2 * 2  # a payout by another operator, the transfer known / not yet known
    + 1  # a committee verifying its own report
    + 2  # backdated second registrations (a transfer, a project)
    + LATE_CASE_EVENTS  # the late operator: two transfers published late, one on time
    + 2 * 2  # payouts dated before their transfer (gate, reconciler)
    + 2  # a project for another club, a report on another club's project
    + 2  # a contribution credited to another club's project
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
    foreign_operator_transfer(run)
    cross_operator_payout(run, known=True)
    cross_operator_payout(run, known=False)
    self_verification(run)
    backdated_reregistration(run)
    if run.late_op is not None:
        published_late(run)
    settlement_before_origin(run, known=True)
    settlement_before_origin(run, known=False)
    foreign_project(run)
    foreign_contribution(run)


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
    """The compromised operator's key keeps signing after its revocation, dating events before it.

    The revocation reaches the log after the operator's genuine events (phase 1)
    and is judged at arrival: the thief's backdated events are refused.
    """
    assert run.revoked_op is not None and run.revoked_at is not None
    rev = run.revoked_op
    for _ in range(3):
        at = run.between(run.revoked_at - 20 * HOUR, run.revoked_at - HOUR)
        s = run.new_sender(rev, ("US", "MX"), 20_000_000 + run.rng.randint(0, 10**6))
        tr = transfer(
            run,
            rev,
            ("US", "MX"),
            run.send_amount(s),
            at,
            sender=s.person,
            destination=sender_destination(run, s),
            label="revoked_key",
            phase=1,
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
            phase=1,
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
            sender=s.person,
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
    eq_op = orig.publisher_id  # the operator, or the payout agent that published the payout
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


# --- authority over subjects and time (issue 13) ------------------------------------------

#: The late operator's declared backfill ends this long before the window does.
LATE_BACKFILL_END: Final = timedelta(days=28)


def _victim(run: Run, op: str, label: str, *, phase: int = 0) -> Transfer:
    """A transfer of ``op`` nobody pays (its late and missing payout flags are part of the case)."""
    at = run.between(run.start + 2 * DAY, run.cutoff - 5 * DAY)
    s = run.new_sender(op, ("US", "MX"), 40_000_000 + len(run.transfers))
    tr = transfer(
        run,
        op,
        ("US", "MX"),
        run.send_amount(s),
        at,
        sender=s.person,
        destination=sender_destination(run, s),
        label=label,
        phase=phase,
    )
    run.flag(label, "late_payout", "transfer", tr.transfer_id, "", "open")
    run.flag(label, "missing_payout", "transfer", tr.transfer_id, "", "open")
    return tr


def foreign_operator_transfer(run: Run) -> None:
    """Operator B publishes a transfer.sent naming operator A: refused, flagged on B."""
    a, b = run.roster.operators[0], run.roster.operators[1]
    at = run.between(run.start + 2 * DAY, run.cutoff - DAY)
    s = run.new_sender(a, ("US", "MX"), 50_000_000)
    tid = run.new_id("trf", 12)
    q = run.clean_quote(a, ("US", "MX"), 30000, at, 300.0)
    d = run.draft(
        b,
        "transfer.sent",
        sent_payload(
            tid,
            a,
            ("US", "MX"),
            q,
            at + HOUR,
            destination=sender_destination(run, s),
            sender=s.person,
            receipt_code=receipt_code(operator_secret(run.seed, b), tid),
        ),
        at,
        kind="refused",
        reason="not_subject_owner",
        label="foreign_operator_transfer",
    )
    run.flag("foreign_operator_transfer", "authority_violation", "transfer", tid, d.event_id)


def cross_operator_payout(run: Run, *, known: bool) -> None:
    """Operator B pays out operator A's unpaid transfer, to silence its late and missing payout flags.

    ``known``: the transfer is in the log first (phase 0) and the gate refuses
    the payout (phase 1); else the payout comes first (phase 0, accepted) and
    the reconciler disregards it once the transfer arrives (phase 1).
    """
    label = "cross_operator_payout" if known else "cross_operator_payout_first"
    a, b = run.roster.operators[-1], run.roster.operators[0]
    tr = _victim(run, a, label, phase=0 if known else 1)
    at = tr.sent.event_time + 30 * MINUTE
    d = run.draft(
        b,
        "transfer.paid_out",
        paid_payload(tr.transfer_id, tr.quote.promised, tr.quote.recv_ccy, at, run.new_id("po", 10)),
        at,
        phase=1 if known else 0,
        kind="refused" if known else "normal",
        reason="not_subject_owner" if known else None,
        label=label,
    )
    run.flag(label, "authority_violation", "transfer", tr.transfer_id, d.event_id)


def self_verification(run: Run) -> None:
    """The committee that registered a project (and named itself a verifier) verifies its own report."""
    assert run.self_verifier is not None
    if run.self_verified is None:
        run.skipped.append("self_verification")
        return
    pid, mid, reported = run.self_verified
    committee = run.self_verifier.committee
    at = run.between(reported + DAY, min(reported + 10 * DAY, run.cutoff - DAY))
    d = run.draft(
        committee,
        "milestone.verified",
        {
            "project_id": pid,
            "milestone_id": mid,
            "verified_at": format_time(at),
            "verifier_id": committee,
            "outcome": "confirmed",
        },
        at,
        phase=1,
        kind="refused",
        reason="not_subject_owner",
        label="self_verification",
    )
    run.flag("self_verification", "authority_violation", "project", pid, d.event_id)


def backdated_reregistration(run: Run) -> None:
    """Second registrations of existing ids, dated earlier than the first, to rewrite the promise.

    A short-paid transfer's operator re-registers it with the short amount as
    its promise; a committee re-registers its project with the club paying
    everything (no government owes a share).  The first in the log stands.
    """
    label = "backdated_reregistration"
    tr = next(t for t in run.transfers if t.label == "short_payout")
    payload = json.loads(json.dumps(tr.sent.payload))
    payload["receive_promised"]["amount"] = sum(p[0] for p in tr.payouts)
    d = run.draft(
        tr.operator,
        "transfer.sent",
        payload,
        tr.sent.event_time - 2 * HOUR,
        publish_at=run.end - HOUR,
        phase=1,
        kind="refused",
        reason="subject_exists",
        label=label,
    )
    run.flag(label, "authority_violation", "transfer", tr.transfer_id, d.event_id)
    reg = next(
        r
        for r in run.drafts
        if r.event_type == "project.registered" and r.label is None and r.kind == "normal"
    )
    project = json.loads(json.dumps(reg.payload))
    project["shares"] = {"club": 10000, "municipal": 0, "state": 0, "federal": 0}
    d = run.draft(
        reg.publisher_id,
        "project.registered",
        project,
        reg.event_time - DAY,
        publish_at=run.end - HOUR,
        phase=1,
        kind="refused",
        reason="subject_exists",
        label=label,
    )
    run.flag(label, "authority_violation", "project", project["project_id"], d.event_id)


def published_late(run: Run) -> None:
    """The late operator publishes two weeks-old transfers now: accepted, each event flagged."""
    assert run.late_op is not None
    op = run.late_op
    for n, (lo, hi) in enumerate(((20, 14), (13, 9), (4, 1))):
        at = run.between(run.end - lo * DAY, run.end - hi * DAY)
        s = run.new_sender(op, ("US", "MX"), 60_000_000 + n)
        tr = transfer(
            run,
            op,
            ("US", "MX"),
            run.send_amount(s),
            at,
            sender=s.person,
            destination=sender_destination(run, s),
            label="published_late" if lo > 5 else None,
        )
        paid = payout(run, tr, at + run.instant_delay())
        for d in (tr.sent, paid):
            d.publish_at = run.end - MINUTE  # all published at the end of the window
            if lo > 5:
                run.flag("published_late", "published_late", "publisher", op, d.event_id)


def settlement_before_origin(run: Run, *, known: bool) -> None:
    """An operator's payout dated before the transfer it pays: refused (the transfer known) or
    disregarded once it arrives."""
    label = "settlement_before_origin"
    op = run.roster.operators[0]
    tr = _victim(run, op, label, phase=0 if known else 1)
    at = tr.sent.event_time - 2 * HOUR
    d = run.draft(
        op,
        "transfer.paid_out",
        paid_payload(tr.transfer_id, tr.quote.promised, tr.quote.recv_ccy, at, run.new_id("po", 10)),
        tr.sent.event_time + 10 * MINUTE,
        phase=1 if known else 0,
        kind="refused" if known else "normal",
        reason="time_before_origin" if known else None,
        label=label,
    )
    run.flag(label, "authority_violation", "transfer", tr.transfer_id, d.event_id)


def _clean_registrations(run: Run) -> list[Draft]:
    return [
        r
        for r in run.drafts
        if r.event_type == "project.registered"
        and r.label is None
        and r.kind == "normal"
        and r.publisher_id in {c.committee for c in run.roster.clubs}
        and r.event_time < run.cutoff - 4 * DAY
    ]


def foreign_project(run: Run) -> None:
    """A committee registers a project for another club, and reports on another club's project."""
    label = "foreign_project"
    regs = _clean_registrations(run)
    target = regs[-1]
    mine = next(c for c in run.roster.clubs if c.committee == target.publisher_id)
    other = next(c for c in run.roster.clubs if c.committee != mine.committee)
    project = json.loads(json.dumps(target.payload))
    project["project_id"] = run.new_id("prj", 8)
    project["club_id"] = mine.club_id  # registered by another club's committee
    at = run.between(target.event_time + HOUR, run.cutoff - DAY)
    d = run.draft(
        other.committee,
        "project.registered",
        project,
        at,
        kind="refused",
        reason="not_subject_owner",
        label=label,
    )
    run.flag(label, "authority_violation", "project", project["project_id"], d.event_id)
    mid = target.payload["milestones"][0]["milestone_id"]
    at = run.between(target.event_time + DAY, run.cutoff - DAY)
    d = run.draft(
        other.committee,
        "milestone.reported",
        {
            "project_id": target.payload["project_id"],
            "milestone_id": mid,
            "spent": money(target.payload["budget"]["amount"], "MXN"),
            "progress_pct": 100,
            "reported_at": format_time(at - HOUR),
            "evidence": [hash_parts("foreign-report", at).hex()],
        },
        at,
        phase=1,
        kind="refused",
        reason="not_subject_owner",
        label=label,
    )
    run.flag(label, "authority_violation", "project", target.payload["project_id"], d.event_id)


def foreign_contribution(run: Run) -> None:
    """A transfer to a project's fund credited to another club: it counts for no one's share."""
    label = "foreign_contribution"
    target = _clean_registrations(run)[0]
    club = target.payload["club_id"]
    other = next(c for c in run.roster.clubs if c.club_id != club)
    at = run.between(target.event_time + DAY, run.cutoff - 2 * DAY)
    op = run.pick_operator(("US", "MX"))
    s = run.new_sender(op, ("US", "MX"), 70_000_000)
    tr = transfer(
        run,
        op,
        ("US", "MX"),
        400.0,
        at,
        sender=s.person,
        destination={
            "kind": "project_fund",
            "project_id": target.payload["project_id"],
            "club_id": other.club_id,
        },
        label=label,
    )
    pay_clean(run, tr, True)
    run.flag(label, "authority_violation", "project", target.payload["project_id"], tr.sent.event_id)

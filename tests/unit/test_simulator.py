"""The simulator: deterministic, realistic, private, and its ground truth is exactly what the rules say.

The central check replays a simulation through the gate's pure decision
(trust registry, duplicate and equivocation detection by event id, sequence
reuse) and then through the pure reconciliation rules, with the clock at the
platform's final value; the flags raised must equal the ground truth line for
line, with precision and recall 1.0 for every class.
"""

from __future__ import annotations

import itertools
import re
import statistics
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from producers.simulator import (
    ATTACK_CLASSES,
    DISCREPANCY_CLASSES,
    NO_FLAG_CLASSES,
    LiveFeed,
    Simulation,
    roster,
    simulate,
)
from producers.simulator.transfers import TRANSFER_CASES
from schemas.envelope import Envelope, sign_event
from schemas.errors import MalformedInput
from schemas.privacy import normalize_receipt_code, receipt_digest
from stream_processors.ground_truth import score
from stream_processors.integrity import integrity_spec, late_spec
from stream_processors.rules import (
    FLAG_TYPES,
    Contribution,
    Evt,
    Thresholds,
    reconcile_project,
    reconcile_transfer,
)
from tests import gate_builder

START = datetime(2025, 1, 1, tzinfo=UTC)
AUTHORITY_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
AUTHORITY = "registry.cuentasclaras"


@pytest.fixture(scope="module")
def sim() -> Simulation:
    # 180 days: long enough for every time-based anomaly (funds without a milestone
    # needs 120 days after the first money arrives).
    return simulate(7, events=6_000, start=START, span=timedelta(days=180), anomalies=True)


@pytest.fixture(scope="module")
def clean() -> Simulation:
    return simulate(9, events=3_000, start=START, span=timedelta(days=100), anomalies=False)


@pytest.fixture(scope="module")
def model(sim: Simulation) -> Model:
    return platform(sim)


@pytest.fixture(scope="module")
def outcomes(model: Model) -> list[tuple[str, str | None]]:
    return model.outcomes


@pytest.fixture(scope="module")
def raised(sim: Simulation, model: Model) -> list[dict[str, Any]]:
    return reconcile(model, sim.final_clock())


# --- a pure model of the platform -------------------------------------------------------


@dataclass
class Model:
    """What the platform concludes from a run: each event's fate, the log, the gate's flags."""

    outcomes: list[tuple[str, str | None]]  # per event of the run, in its order
    log: list[Envelope]  # accepted events, in log order (index = position)
    gate_flags: list[dict[str, Any]]


def platform(sim: Simulation) -> Model:
    """The ingestion gate's own pure decision (``decide_batch``) over the run, phase by phase.

    Each phase is one batch holding its registry events and then its events,
    decided against what the earlier phases put in the log, arriving ten
    minutes after the window (as ``cuentas simulate`` publishes a run made
    for now).  The gate's integrity flags come from its own functions.
    """
    world = gate_builder.World(AUTHORITY, AUTHORITY_KEY)
    registry = world.registry
    now = sim.end + timedelta(minutes=10)
    log: list[Envelope] = []
    fates: dict[int, tuple[str, str | None]] = {}
    flags: dict[str, dict[str, Any]] = {}
    for phase in sim.phases:
        reg = sim.registry_envelopes(AUTHORITY_KEY, AUTHORITY, phase=phase)
        mine = [(i, e) for i, e in enumerate(sim.events) if e.phase == phase]
        d = gate_builder.decide(gate_builder.batch(*reg, *(e.raw for _, e in mine)), registry,
                                gate_builder.logged(*log), now=now)
        d = d.logged(list(range(len(log), len(log) + len(d.log_order))))
        decided = gate_builder.outcomes(d)
        assert decided[: len(reg)] == [("accepted", None)] * len(reg)
        fates.update(zip((i for i, _ in mine), decided[len(reg):], strict=True))
        log += [x.envelope for x in d.accepted() if x.envelope is not None]
        registry = d.registry
        specs = [integrity_spec(x) for x in d.integrity()] + [late_spec(x, now) for x in d.late()]
        for spec in specs:
            assert spec is not None
            flags[spec.flag_id] = _row(spec)
    return Model([fates[i] for i in range(len(sim.events))], log, list(flags.values()))


def _row(f: Any) -> dict[str, Any]:
    return {
        "flag_type": f.flag_type,
        "subject_kind": f.subject_kind,
        "subject_id": f.subject_id,
        "key": f.key,
        "status": "open" if f.is_open else "resolved",
    }


def gate(sim: Simulation) -> list[tuple[str, str | None]]:
    """What the ingestion gate decides for each event, in publication order."""
    return platform(sim).outcomes


def reconcile(model: Model, now: datetime) -> list[dict[str, Any]]:
    """Flags of the pure rules over the logged events grouped by entity, at clock ``now``."""
    th = Thresholds()
    transfers: dict[str, list[Evt]] = defaultdict(list)
    projects: dict[str, list[Evt]] = defaultdict(list)
    for idx, env in enumerate(model.log):
        if env.event_type.startswith("publisher."):
            continue
        e = Evt(env.event_id, env.event_type, env.time(), idx, env.payload, env.publisher_id)
        if env.event_type.startswith("transfer."):
            transfers[env.payload["transfer_id"]].append(e)
        else:
            projects[env.payload["project_id"]].append(e)
    specs = []
    contributions: dict[str, list[Contribution]] = defaultdict(list)
    for tid, evs in transfers.items():
        r = reconcile_transfer(tid, evs, now, th)
        specs += r.flags
        if r.contribution is not None:
            contributions[r.contribution.project_id].append(r.contribution)
    for pid, evs in projects.items():
        specs += reconcile_project(pid, evs, contributions[pid], now, th).flags
    return [_row(f) for f in specs]


def integrity_flags(sim: Simulation, model: Model) -> list[dict[str, Any]]:
    """The gate's integrity flags, and sequence gaps as the platform checks them.

    Like ``stream_processors.sequence_gaps``, a gap is a number missing among
    every envelope the gate could parse from a publisher, accepted or not.
    """
    flags = list(model.gate_flags)
    seen: dict[str, set[int]] = defaultdict(set)
    for ev in sim.events:
        seen[ev.envelope.publisher_id].add(ev.envelope.seq)
    for pid, seqs in seen.items():
        if max(seqs) - min(seqs) + 1 != len(seqs):
            flags.append(
                {
                    "flag_type": "sequence_gap",
                    "subject_kind": "publisher",
                    "subject_id": pid,
                    "key": None,
                    "status": "open",
                }
            )
    return flags


def flag_set(flags: list[Mapping[str, Any]]) -> set[tuple[str, str, str, str | None, str]]:
    return {
        (f["flag_type"], f["subject_kind"], f["subject_id"], f["key"], f["status"]) for f in flags
    }


# --- determinism --------------------------------------------------------------------------


def test_same_seed_same_bytes_and_different_seed_different_bytes() -> None:
    span = timedelta(days=60)
    a = simulate(3, events=1_200, start=START, span=span, anomalies=True)
    b = simulate(3, events=1_200, start=START, span=span, anomalies=True)
    assert [e.raw for e in a.events] == [e.raw for e in b.events]
    assert a.digest() == b.digest() and a.truth == b.truth and a.receipts == b.receipts
    assert [p.public_key for p in a.publishers] == [p.public_key for p in b.publishers]
    other = simulate(4, events=1_200, start=START, span=span, anomalies=True)
    assert other.digest() != a.digest()
    assert not {e.event_id for e in a.events} & {e.event_id for e in other.events}
    later = simulate(3, events=1_200, start=START + timedelta(days=1), span=span, anomalies=True)
    assert later.digest() != a.digest()
    assert not set(a.receipts) & set(later.receipts)  # a second run never reuses an id


def test_keys_derive_from_the_seed_and_the_roster_is_stable(sim: Simulation) -> None:
    ids = {p.publisher_id for p in roster(7)}
    assert ids <= {p.publisher_id for p in sim.publishers}
    assert {p.public_key for p in roster(7)} != {p.public_key for p in roster(8)}
    kinds = {p.kind for p in sim.publishers}
    assert kinds == {"operator", "committee", "government", "verifier", "payout_agent"}
    ops = [p for p in roster(7) if p.kind == "operator"]
    assert 4 <= len(ops) <= 6 and all(p.publisher_id.startswith("mto-") for p in ops)


def test_exact_event_count_and_time_window(sim: Simulation) -> None:
    assert len(sim.events) == 6_000
    for ev in sim.events:
        t = ev.envelope.time()
        assert sim.start <= t <= sim.end, ev.envelope.event_type
    assert sim.end < datetime.now(UTC)


def test_one_event_per_sequence_number(sim: Simulation) -> None:
    # Two event ids under one (publisher, seq) would read as equivocation at the gate;
    # only an equivocating copy (same event id, other content) may share a number.
    owners: dict[tuple[str, int], set[str]] = defaultdict(set)
    for ev in sim.events:
        owners[(ev.publisher_id, ev.envelope.seq)].add(ev.event_id)
    assert all(len(ids) == 1 for ids in owners.values())
    refused = [e for e in sim.events if e.expect == "rejected" and e.outbox_seq is not None]
    assert {e.reason for e in refused} == {
        "key_revoked", "role_not_allowed", "party_mismatch",
        "not_subject_owner", "subject_exists", "time_before_origin",
    }


def test_first_seq_continues_each_publisher() -> None:
    span = timedelta(days=45)
    base = simulate(5, events=800, start=START, span=span, anomalies=False)
    op = next(p.publisher_id for p in base.publishers if p.kind == "operator")
    moved = simulate(5, events=800, start=START, span=span, anomalies=False, first_seq={op: 41})
    seqs = sorted(e.envelope.seq for e in moved.events if e.publisher_id == op)
    assert seqs[0] == 41 and seqs == list(range(41, 41 + len(seqs)))
    assert moved.run_tag != base.run_tag  # new numbers, new ids: never an equivocation


# --- the ground truth ----------------------------------------------------------------------


def test_every_anomaly_and_attack_class_is_in_the_truth(sim: Simulation) -> None:
    classes = {t["class"] for t in sim.truth}
    assert classes == set(DISCREPANCY_CLASSES) | set(ATTACK_CLASSES) | set(NO_FLAG_CLASSES)
    assert not sim.skipped
    for t in sim.truth:
        if "expect" in t:
            assert t["expect"] == "no_flag" and t["class"] in NO_FLAG_CLASSES
        else:
            assert set(t) == {"class", "flag_type", "subject_kind", "subject_id", "key", "status"}
            assert t["status"] in ("open", "resolved")


def test_gate_decides_what_the_simulation_expects(
    sim: Simulation, outcomes: list[tuple[str, str | None]]
) -> None:
    assert [(e.expect, e.reason) for e in sim.events] == outcomes
    rejected = {r for o, r in outcomes if o == "rejected"}
    assert rejected == {
        "bad_signature",
        "key_revoked",
        "role_not_allowed",
        "party_mismatch",
        "equivocation",
        "not_subject_owner",
        "subject_exists",
        "time_before_origin",
    }


def test_truth_equals_what_the_rules_raise(
    sim: Simulation, raised: list[dict[str, Any]], model: Model
) -> None:
    now = sim.final_clock()
    assert sim.end - timedelta(days=1) < now < sim.end
    # The rules' flags, and the authority violations the gate raised for events
    # it refused (the rules raise the same flags for those that reached the log).
    gate_authority = [f for f in model.gate_flags if f["flag_type"] == "authority_violation"]
    expected = [t for t in sim.truth if t.get("flag_type") in FLAG_TYPES]
    assert flag_set(raised + gate_authority) == flag_set(expected)
    assert {(f["flag_type"], f["subject_id"]) for f in raised + gate_authority} == {
        (t["flag_type"], t["subject_id"]) for t in expected
    }
    # Both ways of catching an intruder were exercised.
    assert gate_authority and any(f["flag_type"] == "authority_violation" for f in raised)
    # Scored like the platform will be: every class perfect, attacks included.
    flags = raised + integrity_flags(sim, model)
    for cls, row in score(sim.truth, flags).items():
        assert (row["precision"], row["recall"], row["status_mismatch"]) == (1.0, 1.0, 0), cls


def test_truth_does_not_depend_on_the_exact_final_clock(
    sim: Simulation, raised: list[dict[str, Any]], model: Model
) -> None:
    at_clock = flag_set(raised)
    assert flag_set(reconcile(model, sim.end + timedelta(hours=12))) == at_clock
    assert flag_set(reconcile(model, sim.tail_start)) == at_clock


def test_a_run_without_anomalies_raises_nothing(clean: Simulation) -> None:
    assert clean.truth == ()
    model = platform(clean)
    assert all(o == ("accepted", None) for o in model.outcomes)
    assert reconcile(model, clean.final_clock()) == []
    assert integrity_flags(clean, model) == []
    # payout agents published some of the payouts, mirror clubs the verifications
    kinds = {p.publisher_id: p.kind for p in clean.publishers}
    by = {(e.envelope.event_type, kinds[e.publisher_id]) for e in clean.events}
    assert {("transfer.paid_out", "payout_agent"), ("transfer.paid_out", "operator"),
            ("milestone.verified", "verifier")} <= by


def test_short_windows_skip_what_cannot_fall_due() -> None:
    short = simulate(2, events=1_500, start=START, span=timedelta(days=90), anomalies=True)
    assert short.skipped == ("funds_without_milestone",)
    model = platform(short)
    assert [(e.expect, e.reason) for e in short.events] == model.outcomes
    gate_authority = [f for f in model.gate_flags if f["flag_type"] == "authority_violation"]
    assert flag_set(reconcile(model, short.final_clock()) + gate_authority) == flag_set(
        [t for t in short.truth if t.get("flag_type") in FLAG_TYPES]
    )


def test_a_run_published_long_after_its_window_leaves_the_late_case_out() -> None:
    made_for_now = simulate(2, events=1_500, start=START, span=timedelta(days=90), anomalies=True)
    later = simulate(2, events=1_500, start=START, span=timedelta(days=90), anomalies=True,
                     published_at=START + timedelta(days=100))
    assert "published_late" in later.skipped and "published_late" not in made_for_now.skipped
    assert later.run_tag != made_for_now.run_tag and len(later.events) == 1_500
    assert not any(t["class"] == "published_late" for t in later.truth)


# --- realism --------------------------------------------------------------------------------


def _sent(sim: Simulation) -> Iterator[dict[str, Any]]:
    for e in sim.events:
        if e.envelope.event_type == "transfer.sent" and e.expect == "accepted":
            yield dict(e.envelope.payload)


def test_remittances_look_like_the_corridors(clean: Simulation) -> None:
    sent = list(_sent(clean))
    corridors = {(p["corridor"]["from"], p["corridor"]["to"]) for p in sent}
    assert {("US", "MX"), ("US", "GT"), ("US", "SV"), ("US", "HN")} <= corridors
    assert corridors & {("CA", "MX"), ("ES", "MX")}
    mx = sum(1 for p in sent if p["corridor"]["to"] == "MX") / len(sent)
    assert 0.6 < mx < 0.9
    costs = [p["disclosed_cost_bps"] for p in sent]
    assert max(costs) <= 500 and 350 <= statistics.mean(costs) <= 480  # fee + FX, ~4-5 %
    usd = [
        p["send"]["amount"] / 100
        for p in sent
        if p["send"]["currency"] == "USD" and p["destination"]["kind"] == "beneficiary"
    ]
    assert 100 <= statistics.median(usd) <= 250  # ~US$370 a month in 2-3 transfers
    by_sender: dict[str, list[float]] = defaultdict(list)
    for p in sent:  # who sent what is the operators' private knowledge, not the record's (issue 14.6)
        if p["destination"]["kind"] == "beneficiary":
            by_sender[clean.senders[p["transfer_id"]]].append(p["send"]["amount"] / 100)
    months = (clean.end - clean.start).days / 30
    monthly = statistics.median(sum(v) / months for v in by_sender.values() if len(v) >= 3)
    assert 200 <= monthly <= 600


def test_payout_speed_meets_the_g20_target(clean: Simulation) -> None:
    sent = {
        e.envelope.payload["transfer_id"]: e.envelope
        for e in clean.events
        if e.envelope.event_type == "transfer.sent"
    }
    delays = []
    for e in clean.events:
        if e.envelope.event_type != "transfer.paid_out":
            continue
        p = e.envelope.payload
        s = sent[p["transfer_id"]]
        paid_at = datetime.fromisoformat(p["paid_at"])
        assert paid_at <= datetime.fromisoformat(s.payload["available_by"])  # promise kept
        delays.append(paid_at - s.time())
    within_hour = sum(1 for d in delays if d <= timedelta(hours=1)) / len(delays)
    assert 0.75 <= within_hour < 1.0  # the rest within a business day
    assert max(delays) <= timedelta(days=4)  # a Friday send paid on Monday


def test_projects_follow_the_3x1_shares(sim: Simulation) -> None:
    # the projects the log holds (attacks' refused registrations are not projects)
    regs = [
        e.envelope.payload
        for e in sim.events
        if e.envelope.event_type == "project.registered" and e.expect == "accepted"
    ]
    types = {p["project_type"] for p in regs}
    assert types == {
        "water_sanitation",
        "electricity",
        "roads_paving",
        "health_building",
        "school_building",
        "community_centre",
        "scholarships",
        "productive",
        "agriculture",
    }
    for p in regs:
        sh = p["shares"]
        if p["project_type"] in ("productive", "agriculture"):
            assert sh == {"club": 5000, "municipal": 0, "state": 0, "federal": 5000}
            assert p["budget"]["amount"] <= 250_000_00 and p["families_benefited"] >= 5
        else:
            assert sh["club"] == sh["federal"] == 2500 and sh["municipal"] + sh["state"] == 5000
            assert p["budget"]["amount"] <= 1_000_000_00
        assert re.fullmatch(r"MX-[A-Z]{3}", p["state"])
        assert sum(m["amount"]["amount"] for m in p["milestones"]) == p["budget"]["amount"]
    kinds = {e.envelope.event_type for e in sim.events}
    assert {
        "disbursement.pledged",
        "disbursement.made",
        "milestone.reported",
        "milestone.verified",
    } <= kinds
    funds = [p for p in _sent(sim) if p["destination"]["kind"] == "project_fund"]
    assert funds and {p["destination"]["project_id"] for p in funds} == {
        p["project_id"] for p in regs
    }


def test_projects_and_transfers_interleave(sim: Simulation) -> None:
    families = [e.envelope.event_type.split(".")[0] for e in sim.events]
    switches = sum(1 for a, b in itertools.pairwise(families) if a != b)
    assert switches > 100


# --- privacy ---------------------------------------------------------------------------------

_ALLOWED = [
    re.compile(p)
    for p in (
        r"[a-z0-9][a-z0-9_.:-]{2,63}",  # ids (and enum values)
        r"(ben|snd|rev|acct)_[a-z2-7]{26}",  # pseudonyms
        r"[0-9a-f]{64}",  # digests
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z",  # times
        r"[A-Z]{3}|[A-Z]{2}|[A-Z]{2}-[A-Z0-9]{1,3}",  # currency, country, state codes
        r"(0|[1-9][0-9]{0,8})(\.[0-9]{1,10})?",  # exchange rates
    )
]
_NAMES = (
    "maria",
    "jose",
    "juan",
    "guadalupe",
    "garcia",
    "hernandez",
    "lopez",
    "martinez",
    "gonzalez",
    "rodriguez",
    "perez",
    "sanchez",
    "ramirez",
    "flores",
    "calle",
    "colonia",
    "rancho",
    "telefono",
    "phone",
    "street",
)


def _strings(obj: Any) -> Iterator[str]:
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, Mapping):
        for v in obj.values():
            yield from _strings(v)
    elif isinstance(obj, list | tuple):
        for v in obj:
            yield from _strings(v)


def test_payloads_hold_only_ids_codes_and_pseudonyms(sim: Simulation) -> None:
    for ev in sim.events:
        for s in _strings(ev.envelope.payload):
            assert any(p.fullmatch(s) for p in _ALLOWED), (ev.envelope.event_type, s)
            if re.fullmatch(r"(ben|snd|rev|acct)_[a-z2-7]{26}|[0-9a-f]{64}", s):
                continue  # random-looking by construction
            assert not any(n in s for n in _NAMES), s
    for p in sim.publishers:
        assert not any(n in p.publisher_id for n in _NAMES)


_PERSON = re.compile(r"(ben|snd)_[a-z2-7]{26}")


def _people_by_pseudonym(run: Simulation) -> dict[str, set[str]]:
    """Each sender or beneficiary pseudonym of the public record -> the transfers it appears on."""
    seen: dict[str, set[str]] = defaultdict(set)
    for ev in run.events:
        tid = ev.envelope.payload.get("transfer_id")
        for s in _strings(ev.envelope.payload):
            if _PERSON.fullmatch(s):
                seen[s].add(str(tid))
    return seen


@pytest.mark.parametrize(("seed", "events", "anomalies"), [(7, 1_500, True), (11, 1_500, False)])
def test_no_pseudonym_links_two_transfers(seed: int, events: int, anomalies: bool) -> None:
    """Issue 14.6 (regression: in a 1,500-event simulation, 223 of 245 pseudonyms appeared on more
    than one transfer, so one seized receipt gave away a person's whole history): every sender and
    beneficiary pseudonym of the public record is on exactly one transfer."""
    run = simulate(seed, events=events, start=START, span=timedelta(days=30), anomalies=anomalies)
    seen = _people_by_pseudonym(run)
    assert len(seen) > 200
    linked = {p: tids for p, tids in seen.items() if len(tids) > 1}
    assert not linked, f"{len(linked)} of {len(seen)} pseudonyms appear on more than one transfer"


def test_the_same_person_gets_unrelated_pseudonyms_the_operator_can_derive(sim: Simulation) -> None:
    """Senders really do send several times (so the test above is not trivially true), and the
    operator, who knows the person, derives each transfer's pseudonym with the pure core."""
    from producers.simulator.market import Market
    from schemas.privacy import transfer_pseudonym

    market = Market(7, __import__("random").Random(0), "pin")
    s = market.new_sender(next(iter(market.roster.operators)), ("US", "MX"), 1)
    a, b = s.person.pseudonym("snd", "trf-a"), s.person.pseudonym("snd", "trf-b")
    assert a != b and a == transfer_pseudonym(s.person.secret, "snd", s.person.identifier, "trf-a")
    public: dict[str, int] = defaultdict(int)
    private: dict[str, int] = defaultdict(int)
    for p in _sent(sim):
        public[str(p["sender"])] += 1
        private[sim.senders[p["transfer_id"]]] += 1
    assert max(public.values()) == 1 and max(private.values()) >= 3


def test_receipt_codes_find_their_transfer(sim: Simulation) -> None:
    digests = {p["receipt_digest"]: p["transfer_id"] for p in _sent(sim)}
    hits = sum(1 for tid, code in sim.receipts.items() if digests.get(receipt_digest(code)) == tid)
    assert hits == len(digests)
    assert set(sim.demo_receipts) == {"on_time", "short", "late"}
    for tid, code in sim.demo_receipts.values():
        assert normalize_receipt_code(code) == code and sim.receipts[tid] == code
    flagged = {(t["class"], t["flag_type"], t["subject_id"]) for t in sim.truth if t.get("flag_type")}
    assert ("short_payout", "short_payout", sim.demo_receipts["short"][0]) in flagged
    assert ("late_payout", "late_payout", sim.demo_receipts["late"][0]) in flagged


# --- inputs and scale --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"span": timedelta(days=10)}, "span"),
        ({"start": datetime.now(UTC) - timedelta(days=20)}, "time"),
        ({"events": 150}, "events"),
        ({"start": datetime(2025, 1, 1)}, "time"),  # naive on purpose
    ],
)
def test_bad_inputs_are_one_clear_error(kwargs: dict[str, Any], reason: str) -> None:
    args: dict[str, Any] = {
        "events": 2_000,
        "start": START,
        "span": timedelta(days=60),
        "anomalies": True,
    } | kwargs
    with pytest.raises(MalformedInput) as info:
        simulate(1, **args)
    assert info.value.reason == reason


def test_twenty_thousand_events_in_reasonable_time() -> None:
    t0 = time.process_time()
    big = simulate(11, events=20_000, start=START, span=timedelta(days=120), anomalies=True)
    assert len(big.events) == 20_000
    assert time.process_time() - t0 < 30


def test_live_feed_is_signable_and_clean(sim: Simulation) -> None:
    feed = LiveFeed(7, rate=20.0)
    now = datetime.now(UTC)
    events = feed.tick(now, 1.0) + feed.tick(now + timedelta(seconds=60), 1.0)
    assert {e.event_type for e in events} == {"transfer.sent", "transfer.paid_out"}
    keys = {p.publisher_id: p.key for p in sim.publishers}
    for i, e in enumerate(events, start=1):
        sign_event(
            keys[e.publisher_id],
            publisher_id=e.publisher_id,
            event_type=e.event_type,
            payload=e.payload,
            seq=i,
            event_time=now,
        )
        if e.event_type == "transfer.sent":
            assert e.payload["disclosed_cost_bps"] <= 500


def test_every_transfer_case_variant_is_made_and_look_alikes_stay_clean(sim: Simulation) -> None:
    """Issue 15.8: each settlement case and each look-alike is in the run (look-alikes as
    ``no_flag`` lines, which the scoring above holds to no flag at all)."""
    quiet = {t["class"] for t in sim.truth if t.get("expect") == "no_flag"}
    assert {"instalments_on_time", "prompt_full_refund", "payout_just_in_time", "at_tolerance"} <= quiet
    subjects: dict[str, set[str]] = defaultdict(set)
    for t in sim.truth:
        if t["subject_kind"] == "transfer" and t["class"] in TRANSFER_CASES:
            subjects[t["class"]].add(t["subject_id"])
    for cls, variants in TRANSFER_CASES.items():
        assert len(subjects[cls]) >= variants, cls
    kinds = {(e.envelope.event_type, "fx_rate" in e.envelope.payload, "beneficiary" in e.envelope.payload)
             for e in sim.events if e.envelope.event_type in ("transfer.paid_out", "transfer.refunded")}
    assert {("transfer.paid_out", True, False), ("transfer.paid_out", False, True),
            ("transfer.refunded", False, False)} <= kinds


@pytest.mark.parametrize("start", ["2026-09-07T06:08:00+00:00", "2026-09-06T17:48:00+00:00"])
def test_regression_the_demo_window_never_makes_a_case_impossible(start: str) -> None:
    """`cuentas up --demo` at some times of day crashed the demo publisher: the window left
    `unverified_new_spending` no time to report before its verification had to fall due."""
    from producers.cli.demo import DEMO_EVENTS, DEMO_SEED, DEMO_SPAN

    sim = simulate(DEMO_SEED, events=DEMO_EVENTS, start=datetime.fromisoformat(start), span=DEMO_SPAN,
                   anomalies=True)
    assert any('"spending_unverified"' in line for line in sim.truth_jsonl().splitlines())

"""No one speaks for someone else, and time a publisher cannot rewrite (issue 13), on the real stack.

Each attack of the issue, tried as a dishonest publisher would: through the
``cuentas`` commands (``keys new``, ``publishers register|revoke|rotate|list``,
``publish``) run as subprocesses against one platform (processors as a
subprocess, the session's broker and PostgreSQL).  Every test would fail on
the code before issue 13, where each of these events was accepted.  The
event-time clock is pinned at the start, so deadlines are decided at once.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from infra.db import connect
from infra.settings import Settings, load_settings
from schemas.envelope import event_id_from
from schemas.privacy import pseudonym, receipt_code, receipt_digest
from stream_processors import clock
from tests.conftest import unique
from tests.integration.platform import ROOT, env_of, prepare, processors, query, wait_for

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(microsecond=0)
T = NOW - timedelta(days=10)  # when the transfers and projects below happened
SECRET = b"authority-tests-operator-secret0"
OP_A, OP_B = "mto-auth-norte", "mto-auth-sur"
AGENT = "agente-auth-pagos"
COMMITTEE, RIVAL_COMMITTEE = "comite-auth-jerez", "comite-auth-nochis"
CLUB, RIVAL_CLUB = "club-auth-jerez-chi", "club-auth-nochis-la"
MIRROR = "espejo-auth-jerez"
GOV = "gob-auth-zac"


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Stack:
    s: Settings
    tmp: Path
    keys: dict[str, Path]
    _n: int = 0

    def cli(self, *args: str) -> tuple[int, Any, str]:
        """``cuentas ARGS`` in a subprocess; (exit status, parsed JSON output or None, all output)."""
        r = subprocess.run([sys.executable, "-m", "cuentas", *args], env=env_of(self.s), cwd=ROOT,
                           capture_output=True, text=True, timeout=240)
        try:
            data = json.loads(r.stdout)
        except ValueError:
            data = None
        return r.returncode, data, r.stdout + r.stderr

    def register(self, pid: str, kind: str, *extra: str) -> dict[str, Any]:
        path = self.tmp / f"{pid}.key"
        rc, info, out = self.cli("keys", "new", pid, "--out", str(path), "--json")
        assert rc == 0, out
        self.keys[pid] = path
        rc, res, out = self.cli("publishers", "register", pid, "--kind", kind, "--key", info["verifier_key"],
                                "--valid-from", iso(NOW - timedelta(days=60)), "--json", *extra)
        assert rc == 0 and res["status"] == "accepted", out
        return dict(info)

    def publish(self, pid: str, *lines: dict[str, Any]) -> dict[str, Any]:
        """``cuentas publish`` of ``lines`` as ``pid``: the report (what the platform answered)."""
        self._n += 1
        f = self.tmp / f"{pid}-{self._n}.jsonl"
        f.write_text("".join(json.dumps(line) + "\n" for line in lines))
        _rc, report, out = self.cli("publish", str(f), "--as", pid, "--key", str(self.keys[pid]), "--json",
                                    "--timeout", "90")
        assert report is not None and report["counts"]["pending"] == 0, out
        return dict(report)


def line(event_type: str, payload: dict[str, Any], at: datetime, name: str) -> dict[str, Any]:
    return {"type": event_type, "payload": payload, "event_time": iso(at), "event_id": eid(name)}


def eid(name: str) -> str:
    return event_id_from(f"issue-13/{name}".encode())


def sent(tid: str, operator: str, at: datetime = T, *, promised: int = 510000,
         dest: dict[str, Any] | None = None, agents: list[str] | None = None) -> dict[str, Any]:
    p: dict[str, Any] = {
        "transfer_id": tid, "operator": operator, "corridor": {"from": "US", "to": "MX"},
        "send": {"amount": 30000, "currency": "USD"}, "fee": {"amount": 500, "currency": "USD"},
        "exchange_rate": "17.00", "receive_promised": {"amount": promised, "currency": "MXN"},
        "available_by": iso(at + timedelta(hours=1)),
        "destination": dest or {"kind": "beneficiary", "beneficiary": pseudonym(SECRET, "ben", tid)},
        "sender": pseudonym(SECRET, "snd", tid), "receipt_digest": receipt_digest(receipt_code(SECRET, tid)),
        "disclosed_cost_bps": 300,
    }
    if agents:
        p["payout_agents"] = agents
    return p


def paid(tid: str, at: datetime, amount: int = 510000) -> dict[str, Any]:
    return {"transfer_id": tid, "paid": {"amount": amount, "currency": "MXN"}, "paid_at": iso(at),
            "payout_ref": f"po-{tid}"}


def flags_of(s: Settings, subject: str) -> dict[str, tuple[str, str, str]]:
    """flag_type/key -> (accountable, status, reason) of the flags about ``subject``."""
    rows = query(s, "SELECT flag_type, key, accountable, status, detail->>'reason' FROM flags WHERE subject_id = %s",
                 (subject,))
    return {f"{t}/{k}" if t in ("authority_violation", "published_late") else t: (a, st, r)
            for t, k, a, st, r in rows}


def refused(report: dict[str, Any], reason: str, field: str) -> None:
    (r,) = report["rejected"]
    assert (r["reason"], r["by"]) == (reason, "platform"), report
    assert r["message"].startswith(f"{reason}: {field}: "), r["message"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, kafka_bootstrap: str, pg_url: str) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("authority")
    s = load_settings({
        "CUENTAS_DATA_DIR": str(tmp / "data"), "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "DATABASE_URL": pg_url,
        "DATABASE_SCHEMA": unique("t_"), "KAFKA_TOPIC_PREFIX": unique("t") + ".",
        "KAFKA_SESSION_TIMEOUT_S": "6", "KAFKA_REBALANCE_TIMEOUT_S": "6", "KAFKA_HEARTBEAT_S": "1",
        "BATCH_WINDOW_S": "0.02", "REDRIVE_AFTER_S": "5",
    })
    prepare(s)
    conn = connect(s.database_url, s.database_schema)
    with conn, conn.cursor() as cur:
        clock.pin(cur, NOW)
    conn.close()
    st = Stack(s, tmp, {})
    with processors(s, "authority"):
        st.register(OP_A, "operator")
        st.register(OP_B, "operator")
        st.register(AGENT, "payout_agent")
        st.register(COMMITTEE, "committee", "--club-id", CLUB)
        st.register(RIVAL_COMMITTEE, "committee", "--club-id", RIVAL_CLUB,
                    "--roles", "project.registered,milestone.reported,milestone.verified")
        st.register(MIRROR, "verifier")
        st.register(GOV, "government", "--party-level", "municipal", "--party-id", GOV)
        yield st


# --- no one speaks for someone else -----------------------------------------------------------------------


def test_a_transfer_sent_naming_another_operator_is_refused_and_flags_the_intruder(stack: Stack) -> None:
    # Regression: operator B published a transfer.sent naming operator A: accepted,
    # and A became the accountable party of its flags.
    tid = "trf-auth-foreign-name"
    report = stack.publish(OP_B, line("transfer.sent", sent(tid, OP_A), T, "foreign-name"))
    refused(report, "not_subject_owner", "/payload/operator")
    assert flags_of(stack.s, tid) == {
        f"authority_violation/{eid('foreign-name')}": (OP_B, "open", "not_subject_owner")}
    assert not query(stack.s, "SELECT 1 FROM transfers WHERE transfer_id = %s", (tid,))
    assert not query(stack.s, "SELECT 1 FROM flags WHERE accountable = %s AND subject_id = %s", (OP_A, tid))


def test_a_payout_by_another_operator_silences_nothing_whichever_arrives_first(stack: Stack) -> None:
    # Regression: operator B's transfer.paid_out for A's transfer was accepted and
    # silenced its late and missing payout flags.
    known, unseen = "trf-auth-cross-known", "trf-auth-cross-unseen"
    assert stack.publish(OP_A, line("transfer.sent", sent(known, OP_A), T, "cross-known"))["counts"]["accepted"] == 1
    report = stack.publish(OP_B, line("transfer.paid_out", paid(known, T + timedelta(minutes=20)), T,
                                      "cross-known-payout"))
    refused(report, "not_subject_owner", "/header/publisher_id")
    # The intruder's payout first (the gate cannot know the owner yet: accepted), then the transfer:
    # the reconciler disregards the payout and raises the very same flag.
    early = stack.publish(OP_B, line("transfer.paid_out", paid(unseen, T + timedelta(minutes=20)), T,
                                     "cross-unseen-payout"))
    assert early["counts"]["accepted"] == 1
    assert stack.publish(OP_A, line("transfer.sent", sent(unseen, OP_A), T, "cross-unseen"))["counts"]["accepted"] == 1
    for tid, name in ((known, "cross-known-payout"), (unseen, "cross-unseen-payout")):
        got = wait_for(lambda tid=tid: (f := flags_of(stack.s, tid)) and "missing_payout" in f and len(f) == 3 and f,
                       timeout=60, what=f"the flags of {tid}")
        assert got == {
            "late_payout": (OP_A, "open", None),
            "missing_payout": (OP_A, "open", None),
            f"authority_violation/{eid(name)}": (OP_B, "open", "not_subject_owner"),
        }, tid
    row = query(stack.s, "SELECT status, payout_count FROM transfers WHERE transfer_id = %s", (unseen,))
    assert row == [("sent", 0)]


def test_a_payout_agent_pays_only_transfers_that_name_it(stack: Stack) -> None:
    tid, other = "trf-auth-agent-named", "trf-auth-agent-not-named"
    stack.publish(OP_A, line("transfer.sent", sent(tid, OP_A, agents=[AGENT]), T, "agent-sent"),
                  line("transfer.sent", sent(other, OP_A), T, "agent-other-sent"))
    report = stack.publish(AGENT, line("transfer.paid_out", paid(tid, T + timedelta(minutes=10)), T, "agent-pays"),
                           line("transfer.paid_out", paid(other, T + timedelta(minutes=10)), T, "agent-intrudes"))
    assert report["counts"] == {"accepted": 1, "rejected": 1, "pending": 0}
    assert report["rejected"][0]["reason"] == "not_subject_owner"
    wait_for(lambda: query(stack.s, "SELECT 1 FROM transfers WHERE transfer_id = %s AND status = 'paid'", (tid,)),
             timeout=60, what="the agent's payout reconciled")
    # paid on time by the agent the transfer names: nothing stays open about it
    assert all(status != "open" for _, status, _ in flags_of(stack.s, tid).values())


def test_projects_belong_to_the_committee_of_their_club_and_verifiers_the_project_names(stack: Stack) -> None:
    # Regression: a committee could register another club's project, report on any
    # project and verify its own milestone reports; club contributions were never
    # checked against the project's club.
    pid, mine = "prj-auth-jerez-agua", "prj-auth-nochis-camino"

    def project(pid: str, club: str, verifiers: list[str]) -> dict[str, Any]:
        return {
            "project_id": pid, "club_id": club, "country": "MX", "state": "MX-ZAC", "municipality": "mx-zac-jerez",
            "project_type": "water_sanitation", "budget": {"amount": 100000000, "currency": "MXN"},
            "shares": {"club": 2500, "municipal": 2500, "state": 2500, "federal": 2500},
            "parties": {"municipal": GOV, "state": "gob-auth-est", "federal": "gob-auth-fed"},
            "milestones": [{"milestone_id": "ms-1", "due": iso(NOW + timedelta(days=90)),
                            "amount": {"amount": 100000000, "currency": "MXN"}}],
            "agreement_signed_at": iso(T - timedelta(days=5)), "verifiers": verifiers,
        }

    report = stack.publish(RIVAL_COMMITTEE, line("project.registered", project(pid, CLUB, [MIRROR]), T,
                                                 "project-for-another-club"))
    refused(report, "not_subject_owner", "/payload/club_id")
    assert stack.publish(COMMITTEE, line("project.registered", project(pid, CLUB, [MIRROR]), T,
                                         "project"))["counts"]["accepted"] == 1
    assert stack.publish(RIVAL_COMMITTEE, line("project.registered", project(mine, RIVAL_CLUB, [MIRROR,
                                                                                         RIVAL_COMMITTEE]),
                                               T, "own-project"))["counts"]["accepted"] == 1
    rep = {"project_id": pid, "milestone_id": "ms-1", "spent": {"amount": 90000000, "currency": "MXN"},
           "progress_pct": 100, "reported_at": iso(T + timedelta(days=2)), "evidence": ["a" * 64]}
    report = stack.publish(RIVAL_COMMITTEE, line("milestone.reported", rep, T + timedelta(days=2), "foreign-report"))
    refused(report, "not_subject_owner", "/header/publisher_id")

    def verified(project_id: str, verifier: str) -> dict[str, Any]:
        return {"project_id": project_id, "milestone_id": "ms-1", "verified_at": iso(T + timedelta(days=3)),
                "verifier_id": verifier, "outcome": "confirmed"}

    # the committee kind no longer verifies (its default roles used to include it) ...
    report = stack.publish(COMMITTEE, line("milestone.verified", verified(pid, COMMITTEE), T + timedelta(days=3),
                                           "committee-verifies"))
    assert report["rejected"][0]["reason"] == "role_not_allowed"
    # ... and a committee that may verify never verifies its own project, even naming itself
    own_rep = {**rep, "project_id": mine}
    stack.publish(RIVAL_COMMITTEE, line("milestone.reported", own_rep, T + timedelta(days=2), "own-report"))
    report = stack.publish(RIVAL_COMMITTEE, line("milestone.verified", verified(mine, RIVAL_COMMITTEE),
                                                 T + timedelta(days=3), "self-verification"))
    refused(report, "not_subject_owner", "/header/publisher_id")
    assert flags_of(stack.s, mine)[f"authority_violation/{eid('self-verification')}"] == (
        RIVAL_COMMITTEE, "open", "not_subject_owner")
    # a verification signed for another verifier, and the named verifier's
    report = stack.publish(MIRROR, line("milestone.verified", verified(mine, RIVAL_COMMITTEE), T + timedelta(days=3),
                                        "verification-for-another"),
                           line("milestone.verified", verified(mine, MIRROR), T + timedelta(days=3),
                                "verification"))
    assert report["counts"]["accepted"] == 1 and report["rejected"][0]["reason"] == "not_subject_owner"
    # a contribution credited to another club's project counts for no one's share
    fund = {"kind": "project_fund", "project_id": pid, "club_id": RIVAL_CLUB}
    stack.publish(OP_A, line("transfer.sent", sent("trf-auth-fake-contribution", OP_A, dest=fund), T,
                             "fake-contribution"),
                  line("transfer.paid_out", paid("trf-auth-fake-contribution", T + timedelta(minutes=5)),
                       T + timedelta(minutes=5), "fake-contribution-paid"))
    got = wait_for(lambda: flags_of(stack.s, pid).get(f"authority_violation/{eid('fake-contribution')}"),
                   timeout=60, what="the foreign contribution's flag")
    assert got == (OP_A, "open", "not_subject_owner")
    assert query(stack.s, "SELECT club_received, status FROM projects WHERE project_id = %s", (pid,)) == [
        (0, "registered")]
    assert query(stack.s, "SELECT sum(owed) FROM project_parties WHERE project_id = %s AND level <> 'club'",
                 (pid,)) == [(0,)]
    wait_for(lambda: query(stack.s, "SELECT status FROM milestones WHERE project_id = %s", (mine,)) == [
        ("verified",)], timeout=60, what="the named verifier's verification counted")


def test_a_backdated_second_registration_never_replaces_the_first(stack: Stack) -> None:
    # Regression: a second, backdated transfer.sent for an existing id silently
    # replaced the first (the earliest claimed time won), shrinking the promise so
    # a short payout disappeared.
    tid = "trf-auth-shrunk"
    stack.publish(OP_A, line("transfer.sent", sent(tid, OP_A), T, "first-sent"),
                  line("transfer.paid_out", paid(tid, T + timedelta(minutes=10), 400000), T + timedelta(minutes=10),
                       "short-paid"))
    report = stack.publish(OP_A, line("transfer.sent", sent(tid, OP_A, T - timedelta(hours=3), promised=400000),
                                      T - timedelta(hours=3), "backdated-sent"))
    refused(report, "subject_exists", "/payload/transfer_id")
    got = wait_for(lambda: (f := flags_of(stack.s, tid)) and "short_payout" in f and f, timeout=60,
                   what="the short payout flag")
    assert got["short_payout"][1] == "open"
    assert got[f"authority_violation/{eid('backdated-sent')}"] == (OP_A, "open", "subject_exists")
    assert query(stack.s, "SELECT promised_amount, sent_event_id FROM transfers WHERE transfer_id = %s", (tid,)) == [
        (510000, eid("first-sent"))]


def test_a_payout_dated_before_its_transfer_is_refused(stack: Stack) -> None:
    # Regression: a payout dated before the transfer it pays was accepted.
    tid = "trf-auth-time-travel"
    stack.publish(OP_A, line("transfer.sent", sent(tid, OP_A), T, "origin"))
    report = stack.publish(OP_A, line("transfer.paid_out", paid(tid, T - timedelta(hours=2)), T + timedelta(minutes=5),
                                      "paid-before-sent"))
    refused(report, "time_before_origin", "/payload/paid_at")
    got = wait_for(lambda: (f := flags_of(stack.s, tid)) and "missing_payout" in f and f, timeout=60,
                   what="the missing payout flag")
    assert got[f"authority_violation/{eid('paid-before-sent')}"] == (OP_A, "open", "time_before_origin")


# --- time a publisher cannot rewrite ------------------------------------------------------------------


def test_a_revoked_key_cannot_sign_events_dated_before_its_revocation(stack: Stack) -> None:
    # Regression: a key revoked now still signed events dated before the revocation,
    # and they were accepted (revocation was judged by the claimed time); the
    # registry authority had no command to revoke or rotate a key.
    thief = "mto-auth-robada"
    info = stack.register(thief, "operator")
    before = stack.publish(thief, line("transfer.sent", sent("trf-auth-before-theft", thief), T, "before-theft"))
    assert before["counts"]["accepted"] == 1
    rc, res, out = stack.cli("publishers", "revoke", thief, "--key-id", info["key_id"], "--reason", "key_compromise",
                             "--json")
    assert rc == 0 and res["status"] == "accepted", out
    report = stack.publish(thief, line("transfer.sent", sent("trf-auth-backdated", thief, T - timedelta(days=2)),
                                       T - timedelta(days=2), "backdated-by-thief"))
    assert [r["reason"] for r in report["rejected"]] == ["key_revoked"]
    assert query(stack.s, "SELECT status FROM flags WHERE flag_type = 'revoked_key_used' AND subject_id = %s",
                 (thief,)) == [("open",)]
    # what it signed while the key was good stays in the log
    assert query(stack.s, "SELECT 1 FROM log_entries WHERE event_id = %s", (eid("before-theft"),))
    # rotation: the old key is refused for every event arriving after the overlap, whatever its date
    rotating = "mto-auth-rota"
    stack.register(rotating, "operator")
    old_key = stack.keys[rotating].with_name("rota-old.key")
    stack.keys[rotating].rename(old_key)
    rc, new, out = stack.cli("keys", "new", rotating, "--out", str(stack.keys[rotating]), "--json")
    assert rc == 0, out
    rc, res, out = stack.cli("publishers", "rotate", rotating, "--key", new["verifier_key"], "--overlap", "0",
                             "--json")
    assert rc == 0 and res["status"] == "accepted", out
    fresh = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)  # the new key is valid from now
    report = stack.publish(rotating, line("transfer.sent", sent("trf-auth-rotated-new", rotating, fresh), fresh,
                                          "new-key"))
    assert report["counts"]["accepted"] == 1, report
    stack.keys["old"] = old_key
    f = stack.tmp / "old.jsonl"
    f.write_text(json.dumps(line("transfer.sent", sent("trf-auth-rotated-old", rotating), T, "old-key")) + "\n")
    _rc, report, out = stack.cli("publish", str(f), "--as", rotating, "--key", str(old_key), "--json")
    assert [r["reason"] for r in report["rejected"]] == ["key_expired"], out
    # the registry authority sees each key's state and each committee's club
    rc, listing, out = stack.cli("publishers", "list", "--json")
    assert rc == 0, out
    assert [k["state"] for k in listing[thief]["keys"]] == ["revoked"]
    assert [k["state"] for k in listing[rotating]["keys"]] == ["rotated_out", "active"]
    assert listing[COMMITTEE]["club_id"] == CLUB and listing[AGENT]["kind"] == "payout_agent"
    rc, _, text = stack.cli("publishers", "list")
    assert f"club {CLUB}" in text and "(revoked since" in text


def test_history_is_a_declared_backfill_and_anything_else_late_is_flagged(stack: Stack) -> None:
    # MAX_EVENT_AGE is 30 days by default (it was 3,650); events between the
    # registration's --valid-from and --backfill-until are declared history.
    late = "gob-auth-tardio"
    path = stack.tmp / f"{late}.key"
    rc, info, out = stack.cli("keys", "new", late, "--out", str(path), "--json")
    stack.keys[late] = path
    rc, res, out = stack.cli("publishers", "register", late, "--kind", "operator", "--key", info["verifier_key"],
                             "--valid-from", iso(NOW - timedelta(days=400)),
                             "--backfill-until", iso(NOW - timedelta(days=45)), "--json")
    assert rc == 0 and res["status"] == "accepted", out
    report = stack.publish(
        late,
        line("transfer.sent", sent("trf-auth-history", late, NOW - timedelta(days=300)), NOW - timedelta(days=300),
             "history"),
        line("transfer.sent", sent("trf-auth-too-old", late, NOW - timedelta(days=40)), NOW - timedelta(days=40),
             "too-old"),
        line("transfer.sent", sent("trf-auth-late", late, NOW - timedelta(days=12)), NOW - timedelta(days=12),
             "published-late"),
        line("transfer.sent", sent("trf-auth-on-time", late, NOW - timedelta(days=2)), NOW - timedelta(days=2),
             "on-time"),
    )
    assert report["counts"] == {"accepted": 3, "rejected": 1, "pending": 0}
    assert report["rejected"][0]["reason"] == "time_out_of_range"
    assert flags_of(stack.s, late) == {f"published_late/{eid('published-late')}": (late, "open", None)}
    row = query(stack.s, "SELECT severity, detail->>'event_type' FROM flags WHERE flag_type = 'published_late'"
                " AND subject_id = %s", (late,))
    assert row == [("low", "transfer.sent")]


def test_a_cancelled_project_owes_back_what_its_cancellation_states(stack: Stack) -> None:
    # issue 15.6 on the real stack: only the registering committee cancels or reports returns;
    # money not returned within FUNDS_RETURN_DAYS (30) raises funds_unreturned; the project's
    # deadlines after the cancellation (its milestone, its shares) no longer fire.
    pid, other, other_club = "prj-auth-cancelado", "comite-auth-otro", "club-auth-otro-hou"
    stack.register(other, "committee", "--club-id", other_club)
    born, cancelled_at = NOW - timedelta(days=50), NOW - timedelta(days=40)
    reg = {
        "project_id": pid, "club_id": CLUB, "country": "MX", "state": "MX-ZAC", "municipality": "mx-zac-jerez",
        "project_type": "water_sanitation", "budget": {"amount": 100000000, "currency": "MXN"},
        "shares": {"club": 2500, "municipal": 2500, "state": 2500, "federal": 2500},
        "parties": {"municipal": GOV, "state": "gob-auth-est", "federal": "gob-auth-fed"},
        "milestones": [{"milestone_id": "ms-1", "due": iso(NOW - timedelta(days=20)),
                        "amount": {"amount": 100000000, "currency": "MXN"}}],
        "agreement_signed_at": iso(born - timedelta(days=5)), "verifiers": [MIRROR],
    }
    assert stack.publish(COMMITTEE, line("project.registered", reg, born, "cancel-project"))["counts"]["accepted"] == 1
    # the club's members sent MXN 5,100.00 to the fund; the committee returns MXN 5,000.00 of it
    tid = "trf-auth-cancel-fund"
    fund = {"kind": "project_fund", "project_id": pid, "club_id": CLUB}
    stack.publish(OP_A, line("transfer.sent", sent(tid, OP_A, born + timedelta(days=1), dest=fund),
                             born + timedelta(days=1), "cancel-fund"),
                  line("transfer.paid_out", paid(tid, born + timedelta(days=1, minutes=5)),
                       born + timedelta(days=1, minutes=5), "cancel-fund-paid"))
    cancel = {"project_id": pid, "cancelled_at": iso(cancelled_at), "returns": [
        {"party": "club", "amount": {"amount": 500000, "currency": "MXN"}},
        {"party": "federal", "amount": {"amount": 5000000, "currency": "MXN"}}]}
    refused(stack.publish(other, line("project.cancelled", cancel, cancelled_at, "cancel-foreign")),
            "not_subject_owner", "/header/publisher_id")
    back = {"project_id": pid, "party": "club", "amount": {"amount": 500000, "currency": "MXN"},
            "returned_at": iso(cancelled_at + timedelta(days=5))}
    report = stack.publish(COMMITTEE, line("project.cancelled", cancel, cancelled_at, "cancel-own"),
                           line("project.funds_returned", back, cancelled_at + timedelta(days=5), "cancel-return"))
    assert report["counts"]["accepted"] == 2, report
    def standing() -> dict[str, tuple[str, str, str]]:
        # A deadline the project passed before its (backdated) cancellation reached the
        # platform may have been flagged meanwhile; the cancellation withdraws it.
        return {k: v for k, v in flags_of(stack.s, pid).items() if v[1] != "withdrawn"}

    got = wait_for(lambda: (f := standing()) and len(f) == 2 and "funds_unreturned" in f and f,
                   timeout=60, what="the unreturned federal money's flag")
    assert got == {  # no milestone_overdue, no share_unpaid: they fall due after the cancellation
        "funds_unreturned": (CLUB, "open", None),
        f"authority_violation/{eid('cancel-foreign')}": (other, "open", "not_subject_owner"),
    }
    assert query(stack.s, "SELECT key, amount_at_stake, severity FROM flags WHERE subject_id = %s"
                          " AND flag_type = 'funds_unreturned'", (pid,)) == [("federal", 5000000, "high")]
    state = query(stack.s, "SELECT state->>'cancellation_event_id', (state->>'funds_returned')::bigint"
                           " FROM projects WHERE project_id = %s", (pid,))
    assert state == [(eid("cancel-own"), 500000)]

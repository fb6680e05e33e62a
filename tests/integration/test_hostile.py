"""The whole hostile corpus (tests/hostile/corpus.py) through the real platform.

The processors run as a subprocess against the session's embedded broker and
PostgreSQL; every case is handed to the publisher SDK with ``publish_raw``, in four
phases (the corpus; replays / equivocation / sequence reuse; extreme valid values that
stress the reconcilers; sequence numbers of 2^53 - 1), each settling before the next.  Then,
for every case: the acknowledged outcome and exact reason code, the quarantine row
with the raw bytes intact, the log holding exactly the accepted events in canonical
form, the integrity flags, the conservation identity per publisher, and that nothing
crashed and no input was ever executed as SQL.

One run feeds all the tests of this module (a module-scoped fixture).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import pytest

from infra.identities import PlatformKeys
from infra.kafka import client_config
from infra.settings import Settings, load_settings
from producers.outbox import Counts
from producers.publisher import Publisher
from producers.registry import authority_publisher
from schemas.canonical import canonicalize, parse_json
from schemas.envelope import parse_envelope
from schemas.routing import entity_of
from stream_processors.gate import INTEGRITY_REASONS
from stream_processors.gate.decision import AUTHORITY_REASONS
from tests.conftest import unique
from tests.hostile.corpus import AUTHORITY, OPERATOR, TARDY, Case, Corpus, build_corpus, private_key
from tests.integration.platform import ROOT, prepare, processors, query, wait_for

pytestmark = pytest.mark.integration

#: Tables that must exist and answer ``count(*)`` after the corpus (nothing dropped).
CORE_TABLES = ("log_entries", "log_tiles", "log_state", "checkpoints", "quarantine", "duplicate_counts",
               "consumer_progress", "publisher_sequences", "pending_reconcile", "flags", "flag_history",
               "entity_events", "transfers", "projects")


CANARY = "tr-canary-after-hostile"


@dataclass
class Run:
    s: Settings
    corpus: Corpus
    status: dict[tuple[str, str], tuple[str, str | None]]  # (publisher, handed id) -> outbox status, reason
    counts: dict[str, Counts]
    acks: dict[tuple[str, str], list[tuple[str, str | None]]]
    quarantine: dict[bytes, tuple[str, bytes, str | None, str | None, int]]
    log: dict[str, bytes]  # event id -> leaf, for the corpus publishers
    flags: set[tuple[str, str]]  # (flag_type, subject_id)
    keyed: set[tuple[str, str, str, str]]  # (flag_type, subject_id, key, accountable)
    table_counts: dict[str, int]
    alive_after_gate: bool
    alive_at_end: bool
    reconciled: set[str]  # event ids the reconcilers stored
    canary_reconciled: bool
    conservation: dict[str, Any] | None
    processors_log: str
    extra: dict[str, int]
    gap_checker: bool
    probe_acked: bool
    runaway: list[str]
    max_seqs: dict[str, int]
    timings: dict[str, float] = field(default_factory=dict)

    def observed(self, c: Case) -> str:
        """What the platform answered for ``c``, in the corpus's ``expect`` vocabulary."""
        if c.phase == 2:
            # Replays share their event id with the original (and with each other), so the
            # outbox row says nothing about them: a rejection is found by its raw bytes in
            # the quarantine, a duplicate by its acknowledgement.
            row = self.quarantine.get(hashlib.sha256(c.raw).digest())
            if row is not None:
                return f"rejected:{row[0]}"
            answers = self.acks.get((c.publisher, c.event_id), [])
            return "duplicate" if any(st == "duplicate" for st, _ in answers) else "missing:" + repr(answers)
        st, reason = self.status.get((c.publisher, c.event_id), ("missing", None))
        return f"rejected:{reason}" if st == "rejected" else st


def _settings(tmp: Path, kafka: str, pg: str) -> Settings:
    return load_settings({
        "CUENTAS_DATA_DIR": str(tmp / "data"), "KAFKA_BOOTSTRAP_SERVERS": kafka, "DATABASE_URL": pg,
        "DATABASE_SCHEMA": unique("t_"), "KAFKA_TOPIC_PREFIX": unique("t") + ".",
        "KAFKA_SESSION_TIMEOUT_S": "6", "KAFKA_REBALANCE_TIMEOUT_S": "6", "KAFKA_HEARTBEAT_S": "1",
        "BATCH_WINDOW_S": "0.02", "REDRIVE_AFTER_S": "5", "OUTBOX_RESEND_AFTER_S": "2",
    })


def _backends_of(s: Settings, pid: int) -> list[tuple[int, str, float, str]]:
    """PostgreSQL backends serving process ``pid``: (backend pid, state, seconds active, query)."""
    try:
        ports = [c.laddr.port for c in psutil.Process(pid).net_connections(kind="tcp") if c.laddr]
    except psutil.Error:
        return []
    return [(int(b), st or "", float(secs or 0), q or "") for b, st, secs, q in query(
        s, "SELECT pid, state, extract(epoch FROM now() - query_start), query FROM pg_stat_activity"
        " WHERE client_port = ANY(%s) AND datname = current_database()", (ports,))]


def _stop_runaways(s: Settings, backends: list[int]) -> None:
    """End statements of OUR processors still running (a runaway sort would otherwise go on for hours)."""
    if backends:
        query(s, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = ANY(%s) AND state = 'active'",
              (backends,))


def _settle(pubs: dict[str, Publisher], timeout: float) -> None:
    for p in pubs.values():
        p.flush()
    deadline = time.monotonic() + timeout
    waiting = dict(pubs)
    while waiting and time.monotonic() < deadline:
        for pid, p in list(waiting.items()):
            p.poll_acks(timeout=0.2)
            if p.outbox.pending() == 0:
                del waiting[pid]
            else:
                p.resend_due()
    assert not waiting, {pid: p.outbox.counts().as_dict() for pid, p in waiting.items()}


def _read_acks(s: Settings) -> dict[tuple[str, str], list[tuple[str, str | None]]]:
    from kafka import KafkaConsumer, TopicPartition

    c = KafkaConsumer(**client_config(s), enable_auto_commit=False, auto_offset_reset="earliest")
    try:
        topic = s.topic("acks")
        tps = [TopicPartition(topic, p) for p in sorted(c.partitions_for_topic(topic) or ())]
        c.assign(tps)
        c.seek_to_beginning(*tps)
        end = c.end_offsets(tps)
        out: dict[tuple[str, str], list[tuple[str, str | None]]] = defaultdict(list)
        deadline = time.monotonic() + 30
        while any(c.position(tp) < end[tp] for tp in tps) and time.monotonic() < deadline:
            for records in c.poll(timeout_ms=500, max_records=10000).values():
                for rec in records:
                    msg = json.loads(rec.value)
                    for r in msg["results"]:
                        out[(msg["publisher_id"], r["event_id"])].append((r["status"], r["reason"]))
        return dict(out)
    finally:
        c.close()


def _canary(op: Publisher, corpus: Corpus) -> str:
    """A plain transfer, sent and paid, published after everything else."""
    tid = CANARY
    sent = op.sign("transfer.sent", corpus.sent_payload(tid), seq=10**6, event_time=corpus.t_event)
    paid = op.sign("transfer.paid_out", corpus.paid_payload(tid), seq=10**6 + 1, event_time=corpus.t_event)
    op.publish_envelope(sent)
    op.publish_envelope(paid)
    return tid


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, kafka_bootstrap: str, pg_url: str) -> Iterator[Run]:
    t0 = time.monotonic()
    s = _settings(tmp_path_factory.mktemp("hostile"), kafka_bootstrap, pg_url)
    prepare(s)
    keys = PlatformKeys.load(s)
    corpus = build_corpus(datetime.now(UTC))
    timings: dict[str, float] = {}
    lap = lambda what: timings.__setitem__(what, round(time.monotonic() - t0, 1))  # noqa: E731
    gap_checker = (ROOT / "stream_processors" / "sequence_gaps.py").exists()
    with processors(s, "hostile") as proc:
        auth = authority_publisher(s, keys.authority)
        for event_type, payload in corpus.registry_setup():
            auth.publish(event_type, payload)
        _settle({AUTHORITY: auth}, 90)
        assert auth.outbox.counts().rejected == 0, list(auth.outbox.rejected())
        # accepted events handed outside the corpus: the registry, then the canary below
        extra = {AUTHORITY: auth.outbox.counts().handed, OPERATOR: 2}
        lap("registry")

        pubs: dict[str, Publisher] = {AUTHORITY: auth}
        for c in corpus.cases:
            if c.publisher not in pubs:
                key = private_key(c.publisher) if c.publisher == OPERATOR else None
                pubs[c.publisher] = Publisher.open(s, c.publisher, key)

        def publish(phase: int) -> None:
            for c in corpus.cases:
                if c.phase == phase:
                    pubs[c.publisher].publish_raw(c.raw, event_id=c.event_id, topic=c.topic, key=c.key)

        for phase in (1, 2, 3):
            publish(phase)
            _settle(pubs, 90)
            lap(f"phase{phase}")
        alive_after_gate = proc.poll() is None

        tid = _canary(pubs[OPERATOR], corpus)
        _settle({OPERATOR: pubs[OPERATOR]}, 60)
        try:
            wait_for(lambda: query(s, "SELECT 1 FROM transfers WHERE transfer_id = %s AND status = 'paid'", (tid,)),
                     timeout=30, what="the canary transfer reconciled")
            canary = True
        except AssertionError:
            canary = False
        safe_ids = [c.event_id for c in corpus.cases if c.expect == "stored_safely" and c.phase != 4]
        with contextlib.suppress(AssertionError):
            wait_for(lambda: query(s, "SELECT count(*) FROM entity_events WHERE event_id = ANY(%s)",
                                   (safe_ids,))[0][0] == len(safe_ids), timeout=20 if canary else 5,
                     what="every extreme but valid event reconciled")
        lap("canary")

        # phase 4: huge sequence numbers; their acknowledgements come before gap detection
        # looks at the publishers (once they have been quiet for REDRIVE_AFTER_S)
        publish(4)
        _settle(pubs, 30)
        lap("phase4")
        status = {(pid, e): (st, reason) for pid, p in pubs.items()
                  for e, st, reason in p.outbox.db.execute("SELECT event_id, status, reason FROM events")}
        counts = {pid: p.outbox.counts() for pid, p in pubs.items()}
        try:
            from stream_processors.conservation import conservation_report
        except ImportError:  # pragma: no cover - trees without it
            conservation = None
        else:
            conservation = conservation_report(s, s.database_url)

        probe_acked = False
        runaway: list[str] = []
        if gap_checker:
            # gap detection looks at a publisher once it has been quiet for REDRIVE_AFTER_S
            time.sleep(s.redrive_after_s + 2.5)
            probe = pubs[OPERATOR].sign("transfer.paid_out", corpus.paid_payload(), seq=10**6 + 2,
                                        event_time=corpus.t_event)
            pubs[OPERATOR].publish_envelope(probe)
            pubs[OPERATOR].flush()
            deadline = time.monotonic() + 8
            while time.monotonic() < deadline and not probe_acked:
                pubs[OPERATOR].poll_acks(timeout=0.5)
                probe_acked = pubs[OPERATOR].outbox.status_of(probe.event_id)[0] != "pending"
        lap("gaps")
        runaway += [q[:200] for _, st, secs, q in _backends_of(s, proc.pid) if st == "active" and secs > 3]

        acks = _read_acks(s)
        for p in pubs.values():
            p.close()
        pubs_ids = sorted(pubs)
        quarantine = {bytes(h): (r, bytes(raw), e, p, n) for h, r, raw, e, p, n in query(
            s, "SELECT raw_sha256, reason, raw, event_id, publisher_id, deliveries FROM quarantine")}
        log = {e: bytes(leaf) for e, leaf in query(
            s, "SELECT event_id, leaf FROM log_entries WHERE publisher_id = ANY(%s)", (pubs_ids,))}
        flags = {(t, sub) for t, sub in query(s, "SELECT flag_type, subject_id FROM flags")}
        keyed = {tuple(r) for r in query(s, "SELECT flag_type, subject_id, key, accountable FROM flags")}
        tables = [r[0] for r in query(s, "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                                      (s.database_schema,))]
        table_counts = {t: query(s, f'SELECT count(*) FROM "{t}"')[0][0] for t in tables}
        reconciled = {r[0] for r in query(s, "SELECT event_id FROM entity_events")}
        max_seqs = {p: int(m) for p, m in query(s, "SELECT publisher_id, max_seq FROM publisher_sequences")}
        alive_at_end = proc.poll() is None
        # Stop the processors, ending any statement of theirs still running: a runaway
        # sort would otherwise keep its worker thread (and PostgreSQL) busy for hours.
        backends = [b for b, _, _, _ in _backends_of(s, proc.pid)]
        proc.terminate()
        deadline = time.monotonic() + 6
        while proc.poll() is None and time.monotonic() < deadline:
            backends = [b for b, _, _, _ in _backends_of(s, proc.pid)] or backends
            _stop_runaways(s, backends)
            time.sleep(0.3)
        if proc.poll() is None:  # a worker thread still waits on the database: do not wait for it
            proc.kill()
            proc.wait(5)
    _stop_runaways(s, backends)
    lap("total")
    yield Run(s, corpus, status, counts, acks, quarantine, log, flags, keyed, table_counts, alive_after_gate,
              alive_at_end, reconciled, canary, conservation,
              (s.data_path / "logs" / "hostile.log").read_text(errors="replace"), extra, gap_checker,
              probe_acked, runaway, max_seqs, timings)


def _cases(r: Run, *, phase: int | None = None) -> list[Case]:
    return [c for c in r.corpus.cases if phase is None or c.phase == phase]


# --------------------------------------------------------------------------- outcomes


def test_every_case_gets_its_outcome_and_exact_reason(run: Run) -> None:
    wrong = [(c.name, c.expect, got) for c in run.corpus.cases
             if (got := run.observed(c)) not in {("accepted" if c.expect == "stored_safely" else c.expect),
                                                 c.known_bug}]
    assert not wrong, "\n".join(map(str, wrong))


def test_quarantine_keeps_every_rejected_input_intact_with_its_reason(run: Run) -> None:
    problems = []
    resent = {c.raw for c in run.corpus.cases if c.phase != 2}
    for c in _cases(run):
        if c.outcome != "rejected":
            continue
        row = run.quarantine.get(hashlib.sha256(c.raw).digest())
        if row is None:
            problems.append((c.name, "not in quarantine"))
            continue
        reason, raw, event_id, publisher_id, deliveries = row
        if reason not in {c.reason, (c.known_bug or "").removeprefix("rejected:")}:
            problems.append((c.name, "reason", reason))
        if raw != c.raw:
            problems.append((c.name, "raw bytes changed"))
        # the event's own claims are recorded only when it parsed
        if (event_id, publisher_id) != ((c.event_id, c.publisher) if c.parses else (None, None)):
            problems.append((c.name, "ids", event_id, publisher_id))
        if c.phase == 2 and c.raw in resent and deliveries < 2:
            problems.append((c.name, "a resent rejection counts its deliveries", deliveries))
    assert not problems, "\n".join(map(str, problems))


def test_the_log_holds_exactly_the_accepted_events_in_canonical_form(run: Run) -> None:
    accepted = {c.event_id: c for c in _cases(run) if c.outcome == "accepted" and c.phase != 2}
    corpus_pubs = {c.publisher for c in run.corpus.cases} - {AUTHORITY}
    # everything in the log from a corpus publisher is an accepted case (or the canary)
    envs = {e: parse_envelope(leaf, max_bytes=1 << 20) for e, leaf in run.log.items()}
    ours = {e for e, env in envs.items() if env.publisher_id in corpus_pubs}
    after = {e for e in ours if 10**6 <= envs[e].seq < 2 * 10**6}  # the canary, and the probe if it got through
    assert {envs[e].payload["transfer_id"] for e in after} >= {CANARY}
    assert ours - after == set(accepted)
    for e, c in accepted.items():
        assert run.log[e] == canonicalize(parse_json(c.raw, max_bytes=1 << 20)), c.name
        if c.expect == "stored_safely" and c.phase == 1:
            assert run.log[e] != c.raw, c.name  # the hostile spelling itself is not what was logged


def test_duplicates_are_acknowledged_not_appended(run: Run) -> None:
    dups = [c for c in _cases(run, phase=2) if c.expect == "duplicate"]
    assert dups
    rows = dict(query(run.s, "SELECT event_id, deliveries FROM duplicate_counts"))
    for c in dups:
        assert rows.get(c.event_id, 0) >= 1, c.name
        assert c.event_id in run.log


def test_integrity_flags_name_the_publisher(run: Run) -> None:
    required = {(INTEGRITY_REASONS[c.reason][0], c.publisher) for c in run.corpus.cases
                if c.reason in INTEGRITY_REASONS and c.reason not in AUTHORITY_REASONS and c.known_bug is None}
    tolerated = {(INTEGRITY_REASONS[r][0], c.publisher) for c in run.corpus.cases
                 if c.known_bug and (r := c.known_bug.removeprefix("rejected:")) in INTEGRITY_REASONS}
    kinds = {"equivocation", "forged_signature", "role_violation", "revoked_key_used"}
    assert {t for t, _ in required} == kinds
    got = {(t, sub) for t, sub in run.flags if t in kinds}
    assert required <= got, required - got
    assert got <= required | tolerated, got - required - tolerated


def test_authority_refusals_flag_the_subject_and_name_the_intruder(run: Run) -> None:
    """Issue 13: a refusal for speaking about someone else's subject is one flag per event,
    about the transfer or project, the publisher that tried accountable."""
    cases = [c for c in run.corpus.cases if c.reason in AUTHORITY_REASONS]
    assert {c.reason for c in cases} == AUTHORITY_REASONS
    for c in cases:
        env = parse_envelope(c.raw)
        _kind, subject = entity_of(env.event_type, env.payload)  # type: ignore[misc]
        assert ("authority_violation", subject, c.event_id, c.publisher) in run.keyed, c.name


def test_late_publication_is_accepted_and_flagged(run: Run) -> None:
    late = next(c for c in run.corpus.cases if c.name == "time/published-late")
    on_time = next(c for c in run.corpus.cases if c.name == "time/published-on-time")
    assert late.event_id in run.log and on_time.event_id in run.log
    assert ("published_late", TARDY, late.event_id, TARDY) in run.keyed
    assert not [f for f in run.keyed if f[0] == "published_late" and f[2] != late.event_id]


# --------------------------------------------------------------------------- nothing broke


def test_no_input_ran_as_sql_and_every_table_answers(run: Run) -> None:
    for t in CORE_TABLES:
        assert t in run.table_counts, f"table {t} is gone"
    assert run.table_counts["log_entries"] >= len(run.log) > 0
    assert run.table_counts["quarantine"] == len({hashlib.sha256(c.raw).digest() for c in run.corpus.cases
                                                  if c.outcome == "rejected"})


def test_the_processors_process_survives_the_corpus(run: Run) -> None:
    assert run.alive_after_gate and run.alive_at_end
    # the gate itself never crashed (reconciler crashes are the known bug below)
    lines = run.processors_log.splitlines()
    assert not [line for line in lines if "Crashed" in line and "gate]" in line]
    assert "gate batch failed" not in run.processors_log


def test_conservation_per_publisher(run: Run) -> None:
    cases: dict[str, list[Case]] = defaultdict(list)
    for c in run.corpus.cases:
        cases[c.publisher].append(c)
    for pid, cs in cases.items():
        k = run.counts[pid]
        assert k.pending == 0, pid
        assert k.handed == k.accepted + k.rejected + k.duplicates, (pid, k)
        rows: dict[str, Case] = {}  # the outbox keeps one row per handed id: its first hand-over
        for c in sorted(cs, key=lambda c: c.phase):
            rows.setdefault(c.event_id, c)
        extra = run.extra.get(pid, 0)
        assert k.handed == len(cs) + extra, (pid, k)
        assert k.accepted == sum(c.outcome == "accepted" for c in rows.values()) + extra, (pid, k)
        assert k.rejected == sum(c.outcome == "rejected" for c in rows.values()), (pid, k)
        assert k.duplicates == len(cs) - len(rows), (pid, k)
    if run.conservation is not None:
        assert run.conservation["exact"], [b for b in run.conservation["publishers"] if not b["exact"]]
        by = {b["publisher_id"]: b for b in run.conservation["publishers"]}
        for pid in cases:
            b = by[pid]
            assert (b["handed"], b["accepted"], b["rejected"], b["duplicates"], b["pending"]) == (
                run.counts[pid].handed, run.counts[pid].accepted, run.counts[pid].rejected,
                run.counts[pid].duplicates, 0)


def test_runtime_is_bounded(run: Run) -> None:
    print("timings (s since start):", run.timings)
    assert run.timings["total"] < 180, run.timings


# --------------------------------------------------------------------------- regressions, known production bugs


def test_forgeries_reusing_logged_ids_or_seqs_are_forgeries(run: Run) -> None:
    """Regression (fixed in ba66f0d): the gate authenticates before concluding equivocation or
    sequence reuse, so a third party cannot get an integrity flag raised against an honest publisher."""
    forged = [c for c in run.corpus.cases if c.name in {"equivocation/forged-by-third-party", "seq/reused-forged",
                                                        "registry/operator-claims-authority-seq-1"}]
    assert len(forged) == 3
    assert [run.observed(c) for c in forged] == [c.expect for c in forged]


def test_forgeries_claiming_the_authority_raise_no_flag_against_it(run: Run) -> None:
    bugs = [c for c in run.corpus.cases if c.known_bug]
    assert [run.observed(c) for c in bugs] == [c.expect for c in bugs]
    # a forgery in the authority's name may raise a forged_signature alarm (the
    # authority is its victim, accountable "unattributed"), never a misconduct flag
    misconduct = [f for f in run.flags if f[1] == AUTHORITY and f[0] != "forged_signature"]
    assert not misconduct, misconduct
    assert not query(run.s, "SELECT 1 FROM flags WHERE accountable = %s", (AUTHORITY,))


def test_reconcilers_survive_extreme_valid_values(run: Run) -> None:
    missing = [c.name for c in run.corpus.cases if c.expect == "stored_safely" and c.event_id not in run.reconciled]
    crashes = [line for line in run.processors_log.splitlines() if "Crashed" in line or "Traceback" in line]
    assert run.alive_at_end and run.canary_reconciled and not missing and not crashes, (
        run.alive_at_end, run.canary_reconciled, missing, crashes[:10])


def test_gap_detection_survives_huge_sequence_numbers(run: Run) -> None:
    if not run.gap_checker:
        pytest.skip("no sequence gap detection in this tree")
    assert run.probe_acked and not run.runaway, (run.probe_acked, run.runaway)


def test_forged_sequence_numbers_do_not_count(run: Run) -> None:
    """Regression (fixed in ba66f0d): only authenticated events count for sequence gaps."""
    if not run.gap_checker:
        pytest.skip("no sequence gap detection in this tree")
    from tests.hostile.corpus import COMMITTEE

    assert run.max_seqs.get(COMMITTEE, 0) < 2**53 - 1

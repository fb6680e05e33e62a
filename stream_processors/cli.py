"""Subcommands of the processors' room: log, receipt, verify, witness, flags, audit."""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
from pathlib import Path
from typing import Any

from schemas.flag_workflow import FLAG_STATUSES

__all__ = ["register"]


def _settings() -> Any:
    from infra.settings import load_settings

    return load_settings()


def _db(need_kafka: bool = False) -> tuple[Any, Any]:
    from infra.db import connect
    from infra.runtime import resolve

    s = _settings()
    ep = resolve(s, need_kafka=need_kafka)
    return s, connect(ep.database_url, s.database_schema, retries=2)


def _locale(a: argparse.Namespace) -> str:
    """Where numbers, amounts and dates are written for people: ``--locale``, the environment, en-US."""
    from schemas.l10n import cli_locale

    return cli_locale(getattr(a, "locale", None), os.environ)


def _out(obj: Any, as_json: bool, text: str) -> None:
    print(json.dumps(obj, indent=2, sort_keys=True, default=str) if as_json else text)


# --- log ----------------------------------------------------------------------------------


def cmd_log_checkpoint(a: argparse.Namespace) -> int:
    from infra.log_store import latest_checkpoint_row

    _s, conn = _db()
    with conn, conn.cursor() as cur:
        row = latest_checkpoint_row(cur)
    if row is None:
        print("no checkpoint yet: the log is empty", file=sys.stderr)
        return 1
    size, root, note = row
    _out({"size": size, "root": base64.b64encode(root).decode(), "note": note}, a.json, note.rstrip("\n"))
    return 0


def cmd_log_keys(a: argparse.Namespace) -> int:
    from infra.public_keys import log_key_file, trusted_keys
    from schemas.errors import ConfigurationError

    s = _settings()
    keys = trusted_keys(s, derive=True)  # on the platform's machine the key files may stand in
    if keys.log is None:
        raise ConfigurationError(
            f"no log key here: {log_key_file(s)} does not exist (start the platform once with `cuentas up`, "
            "or set CUENTAS_DATA_DIR to its data directory)"
        )
    obj = keys.as_dict()
    if a.json:
        print(json.dumps(obj, indent=2))
        return 0
    lines = [f"log key:      {keys.log}"]
    lines += [f"witness key:  {w}" for w in keys.witnesses] or ["witness key:  (none trusted here)"]
    lines.append("verify a receipt offline with:")
    lines.append("  cuentas verify receipt.json --log-key " + str(keys.log)
                 + "".join(f" --witness-key {w}" for w in keys.witnesses))
    print("\n".join(lines))
    return 0


def cmd_log_prove(a: argparse.Namespace) -> int:
    from infra.log_store import entry_by_event_id, inclusion, log_size, root_at
    from schemas.errors import MalformedInput
    from schemas.merkle import leaf_hash, verify_inclusion

    _s, conn = _db()
    with conn, conn.cursor() as cur:
        e = entry_by_event_id(cur, a.event_id)
        if e is None:
            raise MalformedInput(f"event {a.event_id} is not in the log", reason="unknown_event")
        idx, leaf = e.index, e.leaf
        size = a.against or log_size(cur)
        if idx >= size:
            raise MalformedInput(f"event {a.event_id} is leaf {idx}, not in a tree of {size}", reason="index")
        proof = inclusion(cur, idx, size)
        root = root_at(cur, size)
    verify_inclusion(leaf_hash(leaf), idx, size, proof, root)
    obj = {"event_id": a.event_id, "leaf_index": idx, "tree_size": size, "root": base64.b64encode(root).decode(),
           "inclusion_proof": [base64.b64encode(h).decode() for h in proof]}
    _out(obj, a.json, f"event {a.event_id} is leaf {idx} of {size}; proof of {len(proof)} hashes verifies against root {obj['root']}")
    return 0


def cmd_log_consistency(a: argparse.Namespace) -> int:
    from infra.log_store import consistency, root_at
    from schemas.merkle import verify_consistency

    _s, conn = _db()
    with conn, conn.cursor() as cur:
        proof = consistency(cur, a.old, a.new)
        r1, r2 = root_at(cur, a.old), root_at(cur, a.new)
    verify_consistency(a.old, a.new, proof, r1, r2)
    obj = {"old": a.old, "new": a.new, "old_root": base64.b64encode(r1).decode(), "new_root": base64.b64encode(r2).decode(),
           "proof": [base64.b64encode(h).decode() for h in proof]}
    _out(obj, a.json, f"tree {a.new} extends tree {a.old}: consistency proof of {len(proof)} hashes verifies")
    return 0


def cmd_log_export(a: argparse.Namespace) -> int:
    from infra.receipt_docs import write_page
    from schemas.errors import ConfigurationError
    from stream_processors.export import export_log

    s, conn = _db()
    with conn, conn.cursor() as cur:
        n = export_log(cur, Path(a.dir), cosigned=a.cosigned, receipts=not a.no_receipts)
    if n == 0:
        print(f"nothing to export: no {'witness-cosigned ' if a.cosigned else ''}checkpoint yet", file=sys.stderr)
        return 1
    page = ""
    if not a.no_receipts:
        try:
            write_page(s, Path(a.dir))
            page = "; receipts/ and the receipt check page (index.html): serve the folder as a static site"
        except ConfigurationError as e:
            page = f"; receipts/ written, but not the receipt check page ({e})"
        if not a.cosigned:
            page += " (the page needs a witness-cosigned checkpoint: export with --cosigned)"
    print(f"exported {n} files to {a.dir} (C2SP tlog-tiles layout){page}")
    return 0


def _checked(settings: Any, receipts: list[Any]) -> None:
    """Verify receipts with the log's key before handing them out (when the key is known here).

    A receipt that does not verify against the log's own key means the
    log's stored data is inconsistent: say so rather than print it.
    """
    from infra.public_keys import trusted_keys
    from schemas.receipt import verify_receipt

    log_key = trusted_keys(settings, derive=True).log
    if log_key is not None:
        for r in receipts:
            verify_receipt(r, log_key)


def cmd_receipt(a: argparse.Namespace) -> int:
    from schemas.errors import MalformedInput
    from schemas.receipt import bundle_json
    from stream_processors import receipts as rc

    if sum(1 for x in (a.event_id, a.code, a.transfer) if x) != 1:
        raise MalformedInput("give exactly one of EVENT_ID, --code CC-XXXX-XXXX-XXXX-XXXX or --transfer ID",
                             reason="usage")
    s, conn = _db()
    cosigned = not a.allow_unwitnessed
    with conn, conn.cursor() as cur:
        if a.event_id:
            one = rc.receipt_for(cur, a.event_id, require_cosigned=cosigned)
            _checked(s, [one])
            sys.stdout.write(one.to_json())
            return 0
        transfer_id = rc.transfer_by_code(cur, a.code) if a.code else a.transfer
        many = rc.receipts_for(cur, rc.transfer_event_ids(cur, transfer_id), require_cosigned=cosigned)
    _checked(s, many)
    sys.stdout.write(bundle_json(many, transfer_id=transfer_id))
    return 0


def cmd_verify(a: argparse.Namespace) -> int:
    # Imports only the pure core: this command must work with no platform at all.
    from schemas.errors import MalformedInput, VerificationError
    from schemas.keys import parse_verifier_key
    from schemas.receipt import parse_receipts, verify_receipt
    from schemas.witness_policy import WitnessPolicy

    log_key = parse_verifier_key(a.log_key)
    policy = WitnessPolicy.of([parse_verifier_key(w) for w in a.witness_key], a.min_witnesses)
    if a.export:
        from schemas.export_verify import verify_export

        res = verify_export(Path(a.export), log_key, policy=policy,
                            receipt=Path(a.receipt).read_bytes() if a.receipt else None)
        _out(res.as_dict(), a.json, str(res))
        return 0
    if not a.receipt:
        raise SystemExit("cuentas verify: give a receipt file, or --export DIR")
    data = sys.stdin.buffer.read() if a.receipt == "-" else Path(a.receipt).read_bytes()
    receipts = parse_receipts(data)
    results = []
    for i, r in enumerate(receipts):
        try:
            results.append(verify_receipt(r, log_key, policy=policy))
        except (VerificationError, MalformedInput) as e:
            if len(receipts) > 1:  # which one, still on one line
                e.args = (f"receipt {i + 1} of {len(receipts)}: {e}",)
            raise
    lines, objs = [], []
    for v in results:
        lines.append(
            f"OK: event {v.envelope.event_id} ({v.envelope.event_type}) by {v.envelope.publisher_id} is leaf "
            f"{v.receipt.leaf_index} of the log {v.checkpoint.origin} at size {v.checkpoint.size}; "
            f"{policy.describe(len(v.witnesses))}; {v.publisher_status}")
        objs.append({"ok": True, "event_id": v.envelope.event_id, "event_type": v.envelope.event_type,
                     "leaf_index": v.receipt.leaf_index, "tree_size": v.checkpoint.size,
                     "witnesses": [k.name for k, _ in v.witnesses], "min_witnesses": policy.min_required,
                     "publisher_key_proven": v.publisher_key_proven,
                     "publisher_signature_checked": v.publisher_signature_checked})
    _out(objs[0] if len(objs) == 1 else objs, a.json, "\n".join(lines))
    return 0


def cmd_witness_run(a: argparse.Namespace) -> int:
    import logging

    from infra.identities import PlatformKeys, key_path
    from infra.keystore import load_or_create
    from infra.public_keys import publish_witness_key
    from infra.runtime import resolve
    from stream_processors.witness_runner import Witness, witness_verifier_key

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s witness: %(message)s")
    s = _settings()
    ep = resolve(s, need_kafka=False)
    key = load_or_create(Path(a.key) if a.key else key_path(s, "witness"))
    name = a.name
    w = Witness(name, key, PlatformKeys.load(s).log.verifier, s.data_path / "witness" / f"{name}.json")
    if a.demo:  # the platform's own witness: its key is one the dashboard trusts by default
        publish_witness_key(s, witness_verifier_key(name, key))
    print(f"witness {name}: verifier key {witness_verifier_key(name, key)}", flush=True)
    w.run(ep.database_url, s.database_schema, interval=a.interval, once=a.once)
    return 0


def _flags(cur: Any, flag_type: str | None = None, status: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
    from stream_processors.receipts import with_log_indices

    q = ("SELECT flag_id, flag_type, key, subject_kind, subject_id, accountable, severity, amount_at_stake, currency,"
         " status, raised_at, resolved_at, evidence FROM flags WHERE (%s::text IS NULL OR flag_type = %s)"
         " AND (%s::text IS NULL OR status = %s) ORDER BY amount_at_stake DESC NULLS LAST, raised_at")
    params: list[Any] = [flag_type, flag_type, status, status]
    if limit:
        q += " LIMIT %s"
        params.append(limit)
    cur.execute(q, params)
    cols = [d[0] for d in cur.description]
    rows = [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
    for r in rows:  # each piece of evidence with its log index: the way to its receipt
        r["evidence"] = with_log_indices(cur, list(r["evidence"] or []))
    return rows


def cmd_flags_list(a: argparse.Namespace) -> int:
    _s, conn = _db()
    with conn, conn.cursor() as cur:
        rows = _flags(cur, a.type, a.status, a.limit)
    if a.json:
        _out(rows, True, "")
        return 0
    from rich.console import Console
    from rich.table import Table

    from schemas.l10n import format_datetime, format_integer, format_money

    loc = _locale(a)
    t = Table(title=f"{format_integer(len(rows), loc)} {'flag' if len(rows) == 1 else 'flags'}")
    for col in ("flag", "type", "subject", "accountable", "severity", "at stake", "status", "raised (UTC)", "evidence"):
        t.add_column(col, justify="right" if col == "at stake" else "left")
    for r in rows:
        stake = (format_money(int(r["amount_at_stake"]), r["currency"], loc)
                 if r["amount_at_stake"] is not None and r["currency"] else "")
        raised = format_datetime(r["raised_at"], loc) if r["raised_at"] is not None else ""
        t.add_row(r["flag_id"], r["flag_type"], f"{r['subject_kind']}:{r['subject_id']}", r["accountable"],
                  r["severity"], stake, r["status"], raised, format_integer(len(r["evidence"]), loc))
    Console().print(t)
    return 0


def cmd_flags_show(a: argparse.Namespace) -> int:
    from schemas.errors import UnavailableService
    from schemas.receipt import bundle_json
    from stream_processors import receipts as rc

    s, conn = _db()
    with conn, conn.cursor() as cur:
        flag = rc.flag_row(cur, a.flag_id)
        history = rc.flag_history(cur, a.flag_id)
        logged = [e["event_id"] for e in flag["evidence"] if e.get("log_index") is not None]
        receipts: list[Any] = []
        pending = None
        try:
            receipts = rc.receipts_for(cur, logged, require_cosigned=not a.allow_unwitnessed) if logged else []
        except UnavailableService as e:  # the history is still worth showing
            pending = str(e)
    _checked(s, receipts)
    if a.receipts and receipts:
        Path(a.receipts).write_text(bundle_json(receipts, flag_id=a.flag_id), encoding="utf-8")
    if a.json:
        _out({"flag": flag, "history": history, "receipts": [r.to_obj() for r in receipts],
              "receipts_pending": pending}, True, "")
        return 0
    stake = f", {flag['amount_at_stake']} {flag['currency']} at stake (minor units)" if flag["amount_at_stake"] else ""
    lines = [
        f"flag {flag['flag_id']} ({flag['flag_type']}), {flag['status']}: {flag['subject_kind']} "
        f"{flag['subject_id']}, accountable {flag['accountable']}, severity {flag['severity']}{stake}",
        f"raised {flag['raised_at']}" + (f", resolved {flag['resolved_at']}" if flag["resolved_at"] else ""),
        "history (each change a signed flag.changed event in the log):",
    ]
    for h in history:
        where = f"log index {h['log_index']}" if h["log_index"] is not None else "not in the log yet"
        lines.append(f"  #{h['n']} {h['changed_at']} {h['previous_status'] or '-'} -> {h['status']} by {h['actor']} "
                     f"({h['reason_code']}); event {h['event_id']}, {where}")
    lines.append("evidence:" if flag["evidence"] else "evidence: none")
    for ev in flag["evidence"]:
        where = f"log index {ev['log_index']}" if ev.get("log_index") is not None else "not in the log"
        lines.append(f"  event {ev['event_id']}, {where}")
    if receipts:
        cp = receipts[0]
        lines.append(f"receipts of the evidence: {len(receipts)}, against the checkpoint of size {cp.tree_size}"
                     + (f", written to {a.receipts}" if a.receipts else "; write them with --receipts FILE")
                     + " and check them with `cuentas verify FILE --log-key ...`")
    elif pending:
        lines.append(f"receipts of the evidence: {pending}")
    print("\n".join(lines))
    return 0


def _waiting(cur: Any, settings: Any) -> dict[tuple[str, str], str]:
    """Subjects whose flags may still come without any new event, and why (``flags check``'s pending)."""
    from datetime import UTC, datetime, timedelta

    from stream_processors import clock

    out: dict[tuple[str, str], str] = {}
    now = clock.now(cur, timedelta(seconds=settings.clock_lateness_s), settings.clock_idle_s)
    if now is not None:
        cur.execute("SELECT kind, entity_id, due_at FROM deadlines WHERE due_at > %s", (now,))
        for kind, entity, due in cur.fetchall():
            out[(kind, entity)] = (f"next deadline {due.isoformat()}, the event-time clock is at "
                                   f"{now.isoformat()}")
    cur.execute("SELECT count(*) FROM pending_reconcile")
    unreconciled = int(cur.fetchone()[0])
    cur.execute("SELECT project_id FROM dirty_projects")
    for (pid,) in cur.fetchall():
        out[("project", pid)] = "project not re-evaluated yet (dirty)"
    quiet = float(settings.redrive_after_s)
    wall = datetime.now(UTC)
    cur.execute("SELECT publisher_id, gap_since FROM publisher_sequences WHERE contiguous_upto < max_seq")
    for pub, since in cur.fetchall():
        if since is None:
            out[("publisher", pub)] = "sequence gap not examined yet"
        # flagged by the sequence-gap timer's first tick after the quiet time (it ticks every quiet/3)
        elif wall - since < timedelta(seconds=quiet + max(1.0, quiet / 3) + 2):
            due = since + timedelta(seconds=quiet)
            out[("publisher", pub)] = (f"sequence gap seen at {since.isoformat()}, flagged after {quiet:g} s "
                                       f"of quiet ({due.isoformat()})")
    if unreconciled:
        # events accepted but not reconciled yet: any subject may still change
        out.setdefault(("*", "*"), f"{unreconciled} accepted event(s) not reconciled yet")
    return out


def cmd_flags_check(a: argparse.Namespace) -> int:
    import time

    from stream_processors.ground_truth import render_table, score

    truth = [json.loads(line) for line in Path(a.ground_truth).read_text().splitlines() if line.strip()]
    s, conn = _db()
    deadline = time.monotonic() + max(0.0, a.wait)
    try:
        while True:
            with conn, conn.cursor() as cur:
                flags = _flags(cur)
                waiting = _waiting(cur, s)
            everything = waiting.pop(("*", "*"), None)
            if everything is not None:
                # nothing is final while accepted events wait for the reconcilers
                subjects = {(str(t.get("subject_kind")), str(t.get("subject_id"))) for t in truth}
                waiting = {**{k: everything for k in subjects}, **waiting}
            scores = score(truth, flags, waiting=waiting)
            pending = sum(int(v.get("pending", 0)) for v in scores.values())
            if not pending or time.monotonic() >= deadline:
                break
            time.sleep(2.0)
    finally:
        conn.close()
    if a.json:
        _out(scores, True, "")
    else:
        print(render_table(scores, _locale(a)))
    perfect = all(v.get("precision", 1) == 1 and v.get("recall", 1) == 1 for v in scores.values())
    if not perfect:
        return 1
    return 3 if pending else 0


def cmd_audit_conservation(a: argparse.Namespace) -> int:
    from infra.runtime import resolve
    from stream_processors.conservation import conservation_report, render

    s = _settings()
    ep = resolve(s, need_kafka=False)
    report = conservation_report(s, ep.database_url)
    _out(report, a.json, render(report, _locale(a)) if not a.json else "")
    return 0 if report["exact"] else 1


def register(sub: Any) -> None:
    fl = sub.add_parser("flags", help="discrepancies and integrity alarms")
    fs = fl.add_subparsers(dest="flags_command", metavar="ACTION", required=True)
    p = fs.add_parser("list", help="list flags, largest amount at stake first",
                      description="--json includes each flag's evidence: event ids with their log indices "
                      "(`cuentas flags show FLAG_ID` gives their receipts).")
    p.add_argument("--type", help="only this flag type (e.g. missing_payout)")
    p.add_argument("--status", choices=FLAG_STATUSES)
    p.add_argument("--limit", type=int)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_flags_list)
    p = fs.add_parser("show", help="one flag: its history and receipts of its evidence",
                      description="Prints the flag, its history (every change is a signed flag.changed event; "
                      "log indices given) and its evidence (event ids with log indices), with receipts of the "
                      "evidence against one witness-cosigned checkpoint (--receipts FILE writes them as a bundle "
                      "that `cuentas verify` checks; --json includes them).")
    p.add_argument("flag_id")
    p.add_argument("--receipts", metavar="FILE", help="write the evidence's receipts (one bundle) to FILE")
    p.add_argument("--allow-unwitnessed", action="store_true",
                   help="use the latest checkpoint even if no witness cosigned it")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_flags_show)
    p = fs.add_parser("check", help="precision and recall per class against a simulator's ground truth",
                      description="Compares the flags in the database with the ground truth written by "
                      "`cuentas simulate --anomalies`. An expected flag not raised yet whose subject is still "
                      "inside a waiting period (a deadline the event-time clock has not reached, a sequence gap "
                      "younger than its quiet time, accepted events not reconciled yet) is listed as pending "
                      "with the reason, not counted as missed. Exit 0: precision and recall 1 for every class, "
                      "nothing pending; 1: a false positive or a miss; 3: perfect so far, some pending "
                      "(run again later, or use --wait).")
    p.add_argument("ground_truth", help="the .truth.jsonl file written by the simulator")
    p.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                   help="while flags are pending, check again every 2 s for up to SECONDS")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_flags_check)

    au = sub.add_parser("audit", help="platform-wide audits")
    aus = au.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    p = aus.add_parser("conservation", help="per publisher: handed = accepted + rejected + duplicates, pending 0",
                       description="Reads the publishers' outboxes in the data directory and checks each "
                       "against the log and the quarantine. Exit 1 unless exact with nothing pending.")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_audit_conservation)

    lg = sub.add_parser("log", help="the public audit log: checkpoints, proofs, export")
    ls = lg.add_subparsers(dest="log_command", metavar="ACTION", required=True)
    p = ls.add_parser("checkpoint", help="print the latest signed checkpoint (C2SP signed note)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_log_checkpoint)
    p = ls.add_parser("keys", help="the log's verifier key and the trusted witnesses' keys (what `verify` needs)",
                      description="Prints the C2SP verifier keys a verifier needs: the log's (it signs every "
                      "checkpoint) and the witnesses' (WITNESS_KEYS, else those the platform runs). Reads the "
                      "public key files in <data dir>/public; on the platform's machine it falls back to the "
                      "key files. --json prints {\"log\": \"...\", \"witnesses\": [\"...\"]}.")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_log_keys)
    p = ls.add_parser("prove", help="inclusion proof of an event (RFC 9162 2.1.3), checked before printing")
    p.add_argument("event_id")
    p.add_argument("--against", type=int, help="tree size to prove against (default: current)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_log_prove)
    p = ls.add_parser("consistency", help="consistency proof between two tree sizes (RFC 9162 2.1.4)")
    p.add_argument("old", type=int)
    p.add_argument("new", type=int)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_log_consistency)
    p = ls.add_parser("export", help="write a static copy of the log (C2SP tlog-tiles) and the receipt check to DIR",
                      description="Writes the latest checkpoint, the hash tiles and entry bundles for its size "
                      "and every earlier checkpoint with its cosignatures; and every transfer's receipt document "
                      "(receipts/<2 hex>/<digest>.json) with the receipt check page (index.html) that verifies "
                      "them in a browser, for the trusted keys of `cuentas log keys`. Serve DIR from any static "
                      "host. Check it offline with `cuentas verify --export DIR --log-key KEY [--witness-key W]`.")
    p.add_argument("dir")
    p.add_argument("--cosigned", action="store_true",
                   help="export up to the newest checkpoint a witness cosigned (what `--witness-key` and the "
                        "receipt check page check)")
    p.add_argument("--no-receipts", action="store_true", help="only the log: no receipt documents, no page")
    p.set_defaults(func=cmd_log_export)

    p = sub.add_parser("receipt", help="print receipts: an event's, or every event of a transfer",
                       description="A receipt is the signed event, its inclusion proof, a witness-cosigned "
                       "checkpoint and the registry entry that admitted the publisher's key (with its proof). "
                       "--code (the code on a transfer's receipt) or --transfer prints the receipts of every "
                       "logged event of the transfer against one checkpoint, as a bundle. Check them offline "
                       "with `cuentas verify FILE --log-key ...`.")
    p.add_argument("event_id", nargs="?")
    p.add_argument("--code", help="a transfer's receipt code CC-XXXX-XXXX-XXXX-XXXX")
    p.add_argument("--transfer", metavar="TRANSFER_ID", help="a transfer id")
    p.add_argument("--allow-unwitnessed", action="store_true", help="use the latest checkpoint even if no witness cosigned it")
    p.set_defaults(func=cmd_receipt)

    p = sub.add_parser("verify", help="check a receipt (or an exported log) offline",
                       description="Checks, with nothing but the keys you give it: the log's signature on the "
                       "checkpoint, the witnesses' cosignatures (one per --witness-key unless --min-witnesses "
                       "says fewer), the inclusion proof of the event, and the publisher's signature with the "
                       "key the registry entry in the same log admitted. With --export, every entry of an "
                       "exported log is proven into its signed checkpoint. Explains any failure in one line.")
    p.add_argument("receipt", nargs="?", help="receipt.json or a bundle of receipts (or - for standard input)")
    p.add_argument("--log-key", required=True, help="the log's verifier key NAME+KEYID+BASE64")
    p.add_argument("--witness-key", action="append", default=[],
                   help="a trusted witness's verifier key (repeatable); each one must have cosigned")
    p.add_argument("--min-witnesses", type=int, default=None,
                   help="accept fewer valid cosignatures than witness keys given (default: one per key)")
    p.add_argument("--export", help="a directory written by `cuentas log export` to check: every entry proven "
                   "into the signed checkpoint, every tile compared, every earlier checkpoint (and the receipt, "
                   "if given) checked against it")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_verify)

    w = sub.add_parser("witness", help="run an independent witness")
    ws = w.add_subparsers(dest="witness_command", metavar="ACTION", required=True)
    p = ws.add_parser("run", help="cosign each new checkpoint after checking consistency with the last one")
    p.add_argument("--key", help="the witness's private key file (created if missing)")
    p.add_argument("--name", default="witness.demo", help="the witness's key name")
    p.add_argument("--interval", type=float, default=1.0)
    p.add_argument("--once", action="store_true", help="check and cosign once, then exit")
    p.add_argument("--demo", action="store_true", help="the demo witness started by `cuentas up`")
    p.set_defaults(func=cmd_witness_run)

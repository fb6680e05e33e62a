"""Score the platform's flags against a simulation's ground truth: precision and recall per class.

Pure.  Truth lines come from ``producers.simulator`` (``Simulation.truth``, or
the ``*.truth.jsonl`` file ``cuentas simulate`` writes): one line per expected
flag, ``{"class", "flag_type", "subject_kind", "subject_id", "key", "status"}``
(``key`` null: any key matches), and ``{"class", "expect": "no_flag",
"subject_kind", "subject_id"}`` for subjects that must raise nothing.

Flags may be flat rows (``{"flag_type", "subject_kind", "subject_id", "key"?,
"status"?}``, as the flag store keeps them) or ``flag.changed`` payloads
(``{"flag_type", "subject": {"kind", "id"}, "status", ...}``, which carry no
key, so the key is then not compared).  Several rows of one flag (its history)
count once, with the last status seen.

Counting, per class:

* an expected flag found is a true positive, one missing a false negative;
* a flag no truth line expects is a false positive of the class named after
  its ``flag_type`` (discrepancy classes carry that name, so a spurious
  ``short_payout`` lowers the precision of ``short_payout``);
* a ``no_flag`` subject left alone is a true positive of its class; one that
  was flagged is a false negative, and each flag on it a false positive of
  that class (not of the flag's type: the class is what was tested).

``status_mismatch`` counts expected flags found with another status (a flag
expected ``resolved`` still ``open``, say); they still count as found.

``pending`` counts expected flags not raised yet whose subject is still inside
a waiting period the platform knows of (``waiting``: a deadline the event-time
clock has not reached, a sequence gap younger than its quiet time, events not
reconciled yet): neither found nor missed, each listed with why in
``pending_detail``, so a check run too early says "wait" instead of "missed".
"""


from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from schemas.l10n import DEFAULT_LOCALE, format_integer, format_number

__all__ = ["FlagKey", "flag_identity", "render_table", "score"]

FlagKey = tuple[str, str, str, str | None]

_TERMINAL = ("dismissed", "withdrawn")


def flag_identity(flag: Mapping[str, Any]) -> FlagKey:
    """``(flag_type, subject_kind, subject_id, key or None)`` of a flat row or a flag.changed payload."""
    subject = flag.get("subject")
    if isinstance(subject, Mapping):
        kind, sid = subject.get("kind"), subject.get("id")
    else:
        kind, sid = flag.get("subject_kind"), flag.get("subject_id")
    key = flag.get("key")
    return (str(flag.get("flag_type")), str(kind), str(sid), None if key is None else str(key))


def _empty() -> dict[str, Any]:
    return {"tp": 0, "fp": 0, "fn": 0, "status_mismatch": 0, "pending": 0, "pending_detail": []}


def score(
    truth_lines: Iterable[Mapping[str, Any]],
    flags: Iterable[Mapping[str, Any]],
    *,
    ignore_statuses: Iterable[str] = _TERMINAL,
    waiting: Mapping[tuple[str, str], str] | None = None,
) -> dict[str, dict[str, Any]]:
    """``{class: {"tp", "fp", "fn", "precision", "recall", "status_mismatch", "pending",
    "pending_detail"}}``, classes sorted.

    Flags whose status is in ``ignore_statuses`` (dismissed or withdrawn by
    default: a reviewer or the platform took them back) are left out.
    ``waiting`` maps ``(subject_kind, subject_id)`` to why its flags may still
    come (see the module docstring).
    """
    waiting = waiting or {}
    ignored = frozenset(ignore_statuses)
    # One entry per flag identity, last status wins (a flag's history collapses).
    seen: dict[FlagKey, str | None] = {}
    for f in flags:
        ident = flag_identity(f)
        status = f.get("status")
        seen[ident] = None if status is None else str(status)
    live = {k: s for k, s in seen.items() if s not in ignored}
    by_loose: dict[tuple[str, str, str], list[FlagKey]] = {}
    for k in live:
        by_loose.setdefault(k[:3], []).append(k)

    out: dict[str, dict[str, Any]] = {}
    used: set[FlagKey] = set()
    quiet: list[tuple[str, str, str]] = []
    for line in truth_lines:
        cls = str(line["class"])
        row = out.setdefault(cls, _empty())
        if line.get("expect") == "no_flag":
            quiet.append((cls, str(line["subject_kind"]), str(line["subject_id"])))
            continue
        want_key = line.get("key")
        loose = (str(line["flag_type"]), str(line["subject_kind"]), str(line["subject_id"]))
        match = None
        for cand in by_loose.get(loose, ()):
            if cand in used:
                continue
            if want_key is None or cand[3] is None or cand[3] == str(want_key):
                match = cand
                break
        if match is None:
            why = waiting.get(loose[1:])
            if why is not None:
                row["pending"] += 1
                row["pending_detail"].append(
                    {"flag_type": loose[0], "subject_kind": loose[1], "subject_id": loose[2], "why": why})
            else:
                row["fn"] += 1
            continue
        used.add(match)
        row["tp"] += 1
        want_status = line.get("status")
        got_status = live[match]
        if want_status is not None and got_status is not None and want_status != got_status:
            row["status_mismatch"] += 1
    for cls, kind, sid in quiet:
        row = out[cls]
        hits = [k for k in live if k[1] == kind and k[2] == sid and k not in used]
        if hits:
            row["fn"] += 1
            row["fp"] += len(hits)
            used.update(hits)
        else:
            row["tp"] += 1
    for k in live:
        if k not in used:
            out.setdefault(k[0], _empty())["fp"] += 1
    for row in out.values():
        tp, fp, fn = row["tp"], row["fp"], row["fn"]
        row["precision"] = tp / (tp + fp) if tp + fp else (1.0 if fn == 0 else 0.0)
        row["recall"] = tp / (tp + fn) if tp + fn else 1.0
    return dict(sorted(out.items()))


def render_table(scores: Mapping[str, Mapping[str, Any]], locale: str = DEFAULT_LOCALE) -> str:
    """A fixed-width table of ``score``'s result with an ``all`` row (micro-averaged); counts and
    ratios written for ``locale`` (``schemas.l10n``)."""

    def n(x: Any) -> str:
        return format_integer(int(x), locale)

    def r(x: Any) -> str:
        return format_number(Decimal(repr(float(x))), 3, locale)

    header = f"{'class':<26} {'tp':>6} {'fp':>6} {'fn':>6} {'precision':>9} {'recall':>7}"
    lines = [header, "-" * len(header)]
    tot = {"tp": 0, "fp": 0, "fn": 0}
    for cls, row in scores.items():
        for k in tot:
            tot[k] += int(row[k])
        note = (
            f"  ({row['status_mismatch']} with another status)"
            if row.get("status_mismatch")
            else ""
        )
        lines.append(
            f"{cls:<26} {n(row['tp']):>6} {n(row['fp']):>6} {n(row['fn']):>6} "
            f"{r(row['precision']):>9} {r(row['recall']):>7}{note}"
        )
    tp, fp, fn = tot["tp"], tot["fp"], tot["fn"]
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    lines.append("-" * len(header))
    lines.append(f"{'all':<26} {n(tp):>6} {n(fp):>6} {n(fn):>6} {r(precision):>9} {r(recall):>7}")
    waits = [(cls, d) for cls, row in scores.items() for d in row.get("pending_detail", ())]
    if waits:
        lines.append(f"pending (not counted; still inside a waiting period): {n(len(waits))}")
        lines += [f"  {cls}: {d['flag_type']} on {d['subject_kind']} {d['subject_id']}: {d['why']}"
                  for cls, d in waits]
    return "\n".join(lines)

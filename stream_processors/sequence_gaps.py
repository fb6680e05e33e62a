"""Per-publisher sequence gaps: a sequence number that never arrived is an integrity flag.

Publishers number their events 1, 2, 3, ... (the SDK's outbox allocates them
without gaps).  The gate records every (publisher, seq) it sees; this check
advances each publisher's contiguous watermark and, once the same first
missing number has been missing for a while (so in-flight and republished
events had their chance), opens a ``sequence_gap`` flag listing the first
missing numbers, and resolves it when they all arrived.  Only authenticated
events count (see ``gate.decision.AUTHENTICATED_REJECTIONS``), so a forger can neither
open nor close a gap in someone else's numbering.

A gap ages only while the gate has nothing left to read (``gate_group``'s
partitions all caught up, as the event-time clock records them): events of
one publisher travel on several partitions, so while one of them lags, a
later number can be logged long before an earlier one that is merely queued.
Judging that as a gap raised false ``sequence_gap`` flags under load (seen
at 100,000 events on two busy cores: 40 raised and resolved).  While a
backlog remains, a gap's quiet time starts again.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from infra.identities import PlatformKeys
from schemas.flag_workflow import OPEN_STATUSES
from stream_processors.clock import stale_backlog_s
from stream_processors.flag_store import FlagWriter
from stream_processors.rules.model import FlagSpec

__all__ = ["check_gaps", "gate_has_backlog"]


def _advance(cur: Any, pub: str, upto: int) -> int:
    cur.execute(
        "SELECT min(s.seq) FROM publisher_seqs s WHERE s.publisher_id = %s AND s.seq >= %s"
        " AND NOT EXISTS (SELECT 1 FROM publisher_seqs t WHERE t.publisher_id = s.publisher_id AND t.seq = s.seq + 1)",
        (pub, max(upto, 1)),
    )
    (last,) = cur.fetchone()
    if upto == 0:
        cur.execute("SELECT 1 FROM publisher_seqs WHERE publisher_id = %s AND seq = 1", (pub,))
        if cur.fetchone() is None:
            return 0
    return int(last) if last is not None else upto


def _missing(cur: Any, pub: str, upto: int, max_seq: int, limit: int = 20) -> list[list[int]]:
    """The first missing ranges ``[first, last]`` above ``upto``, found from the rows that exist.

    Walks the index of seen numbers (each seen number whose successor is
    missing starts a gap), never the range itself: a publisher may sign a
    sequence number of 2^53 and the check must still take milliseconds.
    """
    cur.execute(
        "SELECT s.seq + 1, (SELECT min(t.seq) FROM publisher_seqs t WHERE t.publisher_id = s.publisher_id"
        "   AND t.seq > s.seq) - 1"
        " FROM publisher_seqs s WHERE s.publisher_id = %s AND s.seq >= %s AND s.seq < %s"
        " AND NOT EXISTS (SELECT 1 FROM publisher_seqs t WHERE t.publisher_id = s.publisher_id AND t.seq = s.seq + 1)"
        " ORDER BY s.seq LIMIT %s",
        (pub, max(upto, 1), max_seq, limit),
    )
    ranges = [[int(a), int(b)] for a, b in cur.fetchall() if b is not None]
    if upto == 0:
        cur.execute("SELECT min(seq) FROM publisher_seqs WHERE publisher_id = %s", (pub,))
        (low,) = cur.fetchone()
        if low is not None and int(low) > 1:
            ranges.insert(0, [1, int(low) - 1])
    return ranges[:limit]


def gate_has_backlog(cur: Any, gate_group: str, idle_s: float = 10.0) -> bool:
    """Whether a gate partition still holds unread records (and has moved lately: see :mod:`.clock`)."""
    cur.execute(
        "SELECT EXISTS (SELECT 1 FROM clock_partitions WHERE group_id = %s AND NOT caught_up"
        " AND updated_at > now() - make_interval(secs => %s))",
        (gate_group, stale_backlog_s(idle_s)),
    )
    return bool(cur.fetchone()[0])


def check_gaps(cur: Any, keys: PlatformKeys, quiet_s: float, gate_group: str | None = None,
               idle_s: float = 10.0) -> list[Any]:
    """Advance watermarks; open or resolve ``sequence_gap`` flags; return flag envelopes.

    With ``gate_group``, a gap ages only while that group has no backlog.
    """
    cur.execute(
        "SELECT publisher_id, max_seq, contiguous_upto, gap_at, gap_since FROM publisher_sequences"
        " WHERE contiguous_upto < max_seq FOR UPDATE SKIP LOCKED"
    )
    rows = cur.fetchall()
    cur.execute("SELECT subject_id FROM flags WHERE flag_type = 'sequence_gap' AND status = ANY(%s)",
                (list(OPEN_STATUSES),))
    open_gaps = {r[0] for r in cur.fetchall()}
    fw = FlagWriter(cur, keys)
    now = datetime.now(UTC)
    backlog = bool(rows) and gate_group is not None and gate_has_backlog(cur, gate_group, idle_s)
    for pub, max_seq, upto, gap_at, gap_since in rows:
        new_upto = _advance(cur, pub, int(upto))
        if new_upto < int(max_seq) and (gap_at is None or int(gap_at) != new_upto):
            # a new first gap (or the first one seen): start its clock
            gap_at, gap_since = new_upto, now
        elif backlog and new_upto < int(max_seq):
            gap_since = now  # the missing number may still be queued: its quiet time starts again
        cur.execute(
            "UPDATE publisher_sequences SET contiguous_upto = %s, gap_at = %s, gap_since = %s WHERE publisher_id = %s",
            (new_upto, gap_at if new_upto < int(max_seq) else None, gap_since if new_upto < int(max_seq) else None, pub),
        )
        aged = not backlog and gap_since is not None and (now - gap_since).total_seconds() >= quiet_s
        if new_upto < int(max_seq) and aged:
            missing = _missing(cur, pub, new_upto, int(max_seq))
            spec = FlagSpec("sequence_gap", "gap", "publisher", pub, pub, "high", None, None, (),
                            now, None, {"missing": missing, "first_missing": [missing[0][0]] if missing else [],
                             "contiguous_upto": new_upto, "max_seq": int(max_seq)})
            if pub not in open_gaps:
                fw.raise_integrity(spec)
        elif new_upto >= int(max_seq) and pub in open_gaps:
            fw.auto_resolve(_gap_id(pub), now)
    # publishers whose gap closed completely are no longer selected above
    for pub in open_gaps - {r[0] for r in rows}:
        fw.auto_resolve(_gap_id(pub), now)
    return fw.finish()


def _gap_id(pub: str) -> str:
    return FlagSpec("sequence_gap", "gap", "publisher", pub, pub, "high", None, None, (),
                    datetime.now(UTC), None).flag_id

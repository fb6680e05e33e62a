"""Reviewers' requests, applied by the processors (issue 14.8).

The dashboard holds no private key and no writer credential: when a
signed-in reviewer acknowledges, resolves or dismisses a flag, the watchdog
page only INSERTs a row into ``review_requests`` with its reviewer-desk role
(migration 0025), naming the reviewer's session by its SHA-256.  Here, with
the writer's connection and the platform's key, each pending request is
applied in the caller's transaction:

* the session must be live and its account enabled *now*: the reviewer is
  the session's, never a name the request carries (a signed-out or removed
  reviewer's request is ``signed_out``);
* the move must be a reviewer action (``invalid`` otherwise) that the flag's
  status still allows (``stale`` otherwise, e.g. someone moved it first);
* then :func:`stream_processors.flag_store.apply_review` logs it as a signed
  ``flag.changed`` under the reviewer's ``rev_`` pseudonym (``applied``).

Requests are taken ``FOR UPDATE SKIP LOCKED`` so two workers never apply one
twice, and each outcome is written with it in the same transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from infra.identities import PlatformKeys
from schemas.errors import MalformedInput
from stream_processors.flag_store import apply_review

__all__ = ["Applied", "apply_pending"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Applied:
    request_id: int
    flag_id: str
    outcome: str  # applied | stale | signed_out | invalid
    event_id: str | None = None


def _reviewer(cur: Any, session_sha256: bytes) -> str | None:
    cur.execute(
        "SELECT r.reviewer_id FROM reviewer_sessions s JOIN reviewers r ON r.username = s.username"
        " WHERE s.token_sha256 = %s AND s.expires_at > now() AND r.disabled_at IS NULL",
        (session_sha256,),
    )
    row = cur.fetchone()
    return str(row[0]) if row else None


def apply_pending(cur: Any, keys: PlatformKeys, limit: int = 100) -> Sequence[Applied]:
    """Apply up to ``limit`` pending requests in request order, in the caller's transaction."""
    cur.execute(
        "SELECT id, flag_id, new_status, reason_code, session_sha256 FROM review_requests"
        " WHERE outcome IS NULL ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED",
        (limit,),
    )
    done: list[Applied] = []
    for rid, flag_id, new_status, reason_code, session in cur.fetchall():
        reviewer = _reviewer(cur, bytes(session))
        event_id: str | None = None
        if reviewer is None:
            outcome = "signed_out"
        else:
            cur.execute("SAVEPOINT review_request")
            try:
                event_id = apply_review(cur, keys, flag_id, new_status, reviewer, reason_code)
                outcome = "applied" if event_id else "stale"
                cur.execute("RELEASE SAVEPOINT review_request")
            except MalformedInput:
                cur.execute("ROLLBACK TO SAVEPOINT review_request")
                outcome = "invalid"
        cur.execute(
            "UPDATE review_requests SET outcome = %s, reviewer_id = %s, event_id = %s, done_at = now()"
            " WHERE id = %s",
            (outcome, reviewer, event_id, rid),
        )
        done.append(Applied(int(rid), str(flag_id), outcome, event_id))
    return done

"""Reviewers' requests (issue 14.8): the dashboard's role only records them; the processors apply them.

On a real, migrated PostgreSQL: what the reviewer-desk role ``cuentas_review`` may and may not do, and
each outcome of :func:`stream_processors.review_requests.apply_pending`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg2
import pytest

from dashboard import auth
from infra import db
from infra.identities import PlatformKeys
from infra.settings import Settings
from stream_processors.review_requests import apply_pending

FLAG = "flg_cccccccccccccccccccccccccc"
OTHER = "flg_dddddddddddddddddddddddddd"


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    return "unused:9092"


@pytest.fixture(autouse=True)
def fast_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    from argon2 import PasswordHasher

    monkeypatch.setattr(auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1))
    auth._dummy_hash.cache_clear()


@pytest.fixture
def writer(migrated: Settings) -> Iterator[Any]:
    c = db.connect(migrated.database_url, migrated.database_schema)
    with c.cursor() as cur:
        cur.execute(
            "INSERT INTO flags (flag_id, flag_type, subject_kind, subject_id, accountable, severity, amount_at_stake,"
            " currency, status, raised_at, evidence) VALUES"
            " (%s, 'short_payout', 'transfer', 'tr-1', 'op.remesas-sol', 'medium', 6000, 'MXN', 'open', now(), '[]'),"
            " (%s, 'late_payout', 'transfer', 'tr-2', 'op.remesas-sol', 'low', 100, 'MXN', 'open', now(), '[]')",
            (FLAG, OTHER),
        )
    c.commit()
    yield c
    c.close()


@pytest.fixture
def desk(migrated: Settings) -> Iterator[Any]:
    """A connection as the dashboard's reviewer-desk role, as the dashboard gets it."""
    c = db.connect(db.review_url(migrated, migrated.database_url), migrated.database_schema)
    yield c
    c.close()


def test_the_desk_role_records_requests_and_nothing_else(migrated: Settings, writer: Any, desk: Any) -> None:
    auth.add_reviewer(writer, "ana", "correct horse battery")
    token, _ = auth.login(desk, "ana", "correct horse battery")  # sign-in works with the desk role
    rid = auth.request_review(desk, token, FLAG, "acknowledged", "reviewer_ack")
    assert auth.request_outcome(desk, rid) is None  # pending until the processors apply it
    forbidden = [
        "UPDATE review_requests SET outcome = 'applied'",
        "SELECT reviewer_id FROM review_requests",
        "UPDATE flags SET status = 'dismissed'",
        "INSERT INTO flag_history (flag_id, n, status, actor, reason_code, changed_at)"
        " VALUES ('x', 1, 'open', 'x', 'x', now())",
        "DELETE FROM log_entries",
        "SELECT message FROM quarantine",
        "INSERT INTO reviewers (username, reviewer_id, password_hash) VALUES ('eve', 'rev_x', 'x')",
        "UPDATE reviewers SET disabled_at = NULL",
    ]
    for statement in forbidden:
        with pytest.raises(psycopg2.errors.InsufficientPrivilege), desk.cursor() as cur:
            cur.execute(statement)
        desk.rollback()


def test_each_request_is_applied_for_the_session_s_reviewer(migrated: Settings, writer: Any, desk: Any) -> None:
    keys = PlatformKeys.load(migrated)
    ana = auth.add_reviewer(writer, "ana", "correct horse battery")
    token, _ = auth.login(desk, "ana", "correct horse battery")
    first = auth.request_review(desk, token, FLAG, "acknowledged", "reviewer_ack")
    again = auth.request_review(desk, token, FLAG, "acknowledged", "reviewer_ack")  # the flag moved meanwhile
    with desk.cursor() as cur:  # a dashboard that skips request_review's checks: not a reviewer action
        cur.execute("INSERT INTO review_requests (flag_id, new_status, reason_code, session_sha256)"
                    " VALUES (%s, 'open', 'reviewer_ack', %s) RETURNING id", (OTHER, auth._token_hash(token)))
        bogus = cur.fetchone()[0]
    desk.commit()
    with writer.cursor() as cur:
        done = apply_pending(cur, keys)
    writer.commit()
    assert [(a.request_id, a.outcome) for a in done] == [(first, "applied"), (again, "stale"), (bogus, "invalid")]
    assert [auth.request_outcome(desk, r) for r in (first, again, bogus)] == ["applied", "stale", "invalid"]
    with writer.cursor() as cur:
        cur.execute("SELECT status FROM flags WHERE flag_id = %s", (FLAG,))
        assert cur.fetchone()[0] == "acknowledged"
        cur.execute("SELECT actor FROM flag_history WHERE flag_id = %s ORDER BY n DESC LIMIT 1", (FLAG,))
        assert cur.fetchone()[0] == ana.reviewer_id  # from the session, never from the request
        cur.execute("SELECT e.publisher_id FROM review_requests r JOIN log_entries e USING (event_id)"
                    " WHERE r.id = %s", (first,))
        assert cur.fetchone()[0] == keys.platform.name  # signed by the platform, in the log
    writer.rollback()

    # a request whose session ended (signed out, or the account removed) changes nothing
    late = auth.request_review(desk, token, OTHER, "acknowledged", "reviewer_ack")
    auth.logout(desk, token)
    with writer.cursor() as cur:
        assert [a.outcome for a in apply_pending(cur, keys)] == ["signed_out"]
        cur.execute("SELECT status FROM flags WHERE flag_id = %s", (OTHER,))
        assert cur.fetchone()[0] == "open"
    writer.commit()
    assert auth.request_outcome(desk, late) == "signed_out"
    with writer.cursor() as cur:
        assert apply_pending(cur, keys) == []  # nothing is applied twice
    writer.rollback()


def test_request_review_refuses_what_is_no_reviewer_action(desk: Any) -> None:
    from schemas.errors import MalformedInput

    with pytest.raises(MalformedInput):
        auth.request_review(desk, "token", FLAG, "open", "reviewer_ack")
    with pytest.raises(MalformedInput):
        auth.request_review(desk, "token", "x'; DROP TABLE flags; --", "acknowledged", "reviewer_ack")
    with pytest.raises(auth.AuthError):
        auth.request_review(desk, None, FLAG, "acknowledged", "reviewer_ack")

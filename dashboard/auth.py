"""Reviewer accounts of the watchdog page: argon2id passwords, rate limit, session tokens.

* Accounts live in ``reviewers`` (never readable by the public reader role);
  each has a random ``rev_`` pseudonym, the only name that reaches the
  public record when the reviewer acts.
* Passwords are hashed with argon2id (argon2-cffi defaults, RFC 9106).
* At most :data:`MAX_FAILURES` failed attempts per user name in
  :data:`LOCK_WINDOW` (counted since the last success); then the name is
  locked until the window passes.  Unknown names are rate limited too, and
  take as long to refuse as known ones.
* Besides, a global limit: when more than ``max_failures_per_minute``
  attempts failed in the last minute over every user name (a guesser
  spreading over many names never trips a per-name lockout), every sign-in
  is refused (``reason="busy"``) until the minute passes.  Setting
  ``SIGN_IN_MAX_FAILURES_PER_MINUTE``.
* OIDC: the identity provider's ``email`` names a reviewer only when the
  provider says it verified it (``email_verified`` true, OpenID Connect Core
  1.0 section 5.1): an unverified address is whatever the person typed.
* A sign-in returns a random token (256 bits); only its SHA-256 is stored,
  with an expiry :data:`SESSION_TTL` later.

* A reviewer's decision is only a request (:func:`request_review`): a row
  naming the session by its SHA-256, which the processors apply with their own
  credential and key after checking the session is live (issue 14.8).

Every function takes a psycopg2 connection and commits its own changes.  The
dashboard connects as the reviewer-desk role ``cuentas_review`` (migration
0025: read accounts, record attempts and sessions, insert requests; no
writer credential); :func:`add_reviewer`, :func:`remove_reviewer` and
:func:`list_reviewers` are the operator's (`cuentas reviewers`, writer role).
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from typing import Any, Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from schemas.errors import CuentasError, MalformedInput

__all__ = [
    "AuthError",
    "GLOBAL_WINDOW",
    "LOCK_WINDOW",
    "MAX_FAILURES",
    "MIN_PASSWORD_LENGTH",
    "Reviewer",
    "SESSION_TTL",
    "add_reviewer",
    "list_reviewers",
    "login",
    "logout",
    "new_reviewer_id",
    "normalize_username",
    "oidc_username",
    "open_session",
    "request_outcome",
    "request_review",
    "remove_reviewer",
    "reviewer_by_username",
    "reviewer_for_token",
]

MAX_FAILURES: Final = 5
LOCK_WINDOW: Final = timedelta(minutes=15)
GLOBAL_WINDOW: Final = timedelta(minutes=1)
SESSION_TTL: Final = timedelta(hours=8)
MIN_PASSWORD_LENGTH: Final = 12
MAX_PASSWORD_LENGTH: Final = 1024
_USERNAME_RE: Final = re.compile(r"^[a-z0-9][a-z0-9_.@+-]{1,63}$")

_hasher = PasswordHasher()  # argon2id, RFC 9106 low-memory profile


class AuthError(CuentasError):
    """A sign-in that did not succeed; ``reason`` is ``bad_credentials``, ``locked`` or ``busy``."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Reviewer:
    username: str
    reviewer_id: str


def normalize_username(username: str) -> str:
    """Lower-case, trimmed; ``MalformedInput`` unless 2-64 of ``a-z 0-9 _ . @ + -``."""
    if not isinstance(username, str):
        raise MalformedInput("a user name is text", reason="username")
    u = username.strip().lower()
    if not _USERNAME_RE.match(u):
        raise MalformedInput(
            "user names are 2-64 characters: lower-case letters, digits and _ . @ + -", reason="username"
        )
    return u


def new_reviewer_id() -> str:
    """``rev_`` + 26 base32 characters of 128 random bits (common.v1.json reviewer_id)."""
    return "rev_" + base64.b32encode(secrets.token_bytes(16)).decode("ascii").rstrip("=").lower()


def _token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return _hasher.hash(secrets.token_urlsafe(16))


def add_reviewer(conn: Any, username: str, password: str) -> Reviewer:
    u = normalize_username(username)
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise MalformedInput(
            f"the password must have at least {MIN_PASSWORD_LENGTH} characters", reason="password"
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise MalformedInput("the password is too long", reason="password")
    rid = new_reviewer_id()
    with conn.cursor() as cur:
        cur.execute("SELECT disabled_at FROM reviewers WHERE username = %s FOR UPDATE", (u,))
        row = cur.fetchone()
        if row is not None and row[0] is None:
            conn.rollback()
            raise MalformedInput(f"reviewer {u} already exists", reason="duplicate")
        if row is not None:
            # Re-enabling a removed account keeps its pseudonym: the public record stays linked.
            cur.execute(
                "UPDATE reviewers SET password_hash = %s, disabled_at = NULL WHERE username = %s"
                " RETURNING reviewer_id",
                (_hasher.hash(password), u),
            )
            rid = cur.fetchone()[0]
        else:
            cur.execute(
                "INSERT INTO reviewers (username, reviewer_id, password_hash) VALUES (%s, %s, %s)",
                (u, rid, _hasher.hash(password)),
            )
    conn.commit()
    return Reviewer(u, rid)


def remove_reviewer(conn: Any, username: str) -> bool:
    """Disable an account and end its sessions (the row stays: its pseudonym is in the record)."""
    u = normalize_username(username)
    with conn.cursor() as cur:
        cur.execute(
            "UPDATE reviewers SET disabled_at = now() WHERE username = %s AND disabled_at IS NULL", (u,)
        )
        changed = bool(cur.rowcount > 0)
        cur.execute("DELETE FROM reviewer_sessions WHERE username = %s", (u,))
    conn.commit()
    return changed


def list_reviewers(conn: Any) -> list[dict[str, Any]]:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT username, reviewer_id, created_at, disabled_at FROM reviewers ORDER BY username"
        )
        rows = [
            {"username": u, "reviewer_id": r, "created_at": c, "disabled_at": d}
            for u, r, c, d in cur.fetchall()
        ]
    conn.rollback()
    return rows


def _recent_failures(cur: Any, u: str) -> int:
    cur.execute(
        "SELECT count(*) FROM reviewer_attempts WHERE username = %s AND NOT ok"
        " AND attempted_at > now() - %s"
        " AND attempted_at > coalesce((SELECT max(attempted_at) FROM reviewer_attempts"
        "   WHERE username = %s AND ok), '-infinity'::timestamptz)",
        (u, LOCK_WINDOW, u),
    )
    return int(cur.fetchone()[0])


def _recent_failures_everywhere(cur: Any) -> int:
    cur.execute("SELECT count(*) FROM reviewer_attempts WHERE NOT ok AND attempted_at > now() - %s",
                (GLOBAL_WINDOW,))
    return int(cur.fetchone()[0])


def login(conn: Any, username: str, password: str, *,
          max_failures_per_minute: int = 30) -> tuple[str, Reviewer]:
    """Check a password; return ``(session token, reviewer)`` or raise :class:`AuthError`.

    ``max_failures_per_minute`` (``SIGN_IN_MAX_FAILURES_PER_MINUTE``; 0 for
    none) is the global limit over every user name.
    """
    try:
        u = normalize_username(username)
    except MalformedInput:
        raise AuthError("wrong user name or password", reason="bad_credentials") from None
    if not isinstance(password, str) or not password or len(password) > MAX_PASSWORD_LENGTH:
        raise AuthError("wrong user name or password", reason="bad_credentials")
    with conn.cursor() as cur:
        # One sign-in per user name at a time, so parallel guesses cannot beat the counter.
        cur.execute("SELECT pg_advisory_xact_lock(hashtext('cuentas-reviewer:' || %s))", (u,))
        if max_failures_per_minute > 0:
            # Every sign-in at a time for the global count, so a burst in
            # parallel cannot overshoot it (sign-ins are rare; argon2 bounds them anyway).
            cur.execute("SELECT pg_advisory_xact_lock(hashtext('cuentas-reviewer-global'))")
            if _recent_failures_everywhere(cur) >= max_failures_per_minute:
                conn.rollback()
                raise AuthError("too many failed sign-ins on this platform; try again in a minute", reason="busy")
        if _recent_failures(cur, u) >= MAX_FAILURES:
            conn.rollback()
            raise AuthError("too many failed attempts; try again later", reason="locked")
        cur.execute(
            "SELECT reviewer_id, password_hash FROM reviewers WHERE username = %s AND disabled_at IS NULL",
            (u,),
        )
        row = cur.fetchone()
        ok = False
        stored = row[1] if row else _dummy_hash()
        try:
            ok = _hasher.verify(stored, password) and row is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            ok = False
        cur.execute("INSERT INTO reviewer_attempts (username, ok) VALUES (%s, %s)", (u, ok))
        cur.execute(
            "DELETE FROM reviewer_attempts WHERE username = %s AND attempted_at < now() - interval '1 day'", (u,)
        )
        if not ok or row is None:
            conn.commit()
            raise AuthError("wrong user name or password", reason="bad_credentials")
        if _hasher.check_needs_rehash(stored):
            cur.execute("UPDATE reviewers SET password_hash = %s WHERE username = %s", (_hasher.hash(password), u))
        token = _new_session(cur, u)
    conn.commit()
    return token, Reviewer(u, row[0])


def _new_session(cur: Any, u: str) -> str:
    token = secrets.token_urlsafe(32)
    cur.execute("DELETE FROM reviewer_sessions WHERE username = %s AND expires_at <= now()", (u,))
    cur.execute(
        "INSERT INTO reviewer_sessions (token_sha256, username, expires_at) VALUES (%s, %s, now() + %s)",
        (_token_hash(token), u, SESSION_TTL),
    )
    return token


def open_session(conn: Any, reviewer: Reviewer) -> str:
    """A session token for an enabled account whose person an identity provider checked (OIDC sign-in)."""
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM reviewers WHERE username = %s AND disabled_at IS NULL", (reviewer.username,))
        if cur.fetchone() is None:
            conn.rollback()
            raise AuthError("this account is not a reviewer here", reason="bad_credentials")
        token = _new_session(cur, reviewer.username)
    conn.commit()
    return token


def request_review(conn: Any, token: str | None, flag_id: str, new_status: str, reason_code: str) -> int:
    """Record a reviewer's decision as a request (the processors apply it); its request id.

    ``MalformedInput`` when the move is no reviewer action or the flag id is
    not one; :class:`AuthError` without a token.  Whose decision it is comes
    from the session when the request is applied, never from here.
    """
    from schemas.flag_workflow import check_review_reason

    check_review_reason(new_status, reason_code)
    if not isinstance(flag_id, str) or not re.fullmatch(r"[a-z0-9][a-z0-9_.:-]{2,63}", flag_id):  # common.v1.json id
        raise MalformedInput("not a flag id", reason="flag_id")
    if not token or not isinstance(token, str) or len(token) > 200:
        raise AuthError("sign in first", reason="bad_credentials")
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO review_requests (flag_id, new_status, reason_code, session_sha256)"
            " VALUES (%s, %s, %s, %s) RETURNING id",
            (flag_id, new_status, reason_code, _token_hash(token)),
        )
        rid = int(cur.fetchone()[0])
    conn.commit()
    return rid


def request_outcome(conn: Any, request_id: int) -> str | None:
    """What became of a request: None while pending, else applied, stale, signed_out or invalid."""
    with conn.cursor() as cur:
        cur.execute("SELECT outcome FROM review_requests WHERE id = %s", (request_id,))
        row = cur.fetchone()
    conn.rollback()
    return None if row is None or row[0] is None else str(row[0])


def reviewer_for_token(conn: Any, token: str | None) -> Reviewer | None:
    """The reviewer of a live session token, or None (expired, unknown, account disabled)."""
    if not token or not isinstance(token, str) or len(token) > 200:
        return None
    with conn.cursor() as cur:
        cur.execute(
            "SELECT r.username, r.reviewer_id FROM reviewer_sessions s JOIN reviewers r ON r.username = s.username"
            " WHERE s.token_sha256 = %s AND s.expires_at > now() AND r.disabled_at IS NULL",
            (_token_hash(token),),
        )
        row = cur.fetchone()
    conn.rollback()
    return Reviewer(row[0], row[1]) if row else None


def oidc_username(claims: Mapping[str, Any] | None) -> str | None:
    """The e-mail address of an OIDC sign-in, only if the provider verified it, else None.

    OpenID Connect Core 1.0 section 5.1: ``email_verified`` true means the
    provider took steps to ensure the address was controlled by the person;
    absent or false, the address proves nothing (anyone may type the
    reviewer's).  Only the JSON boolean ``true`` counts (section 5.1 defines
    it as a boolean), and only a signed-in user has claims.
    """
    if not claims or claims.get("is_logged_in") is False:
        return None
    email = claims.get("email")
    if claims.get("email_verified") is not True or not isinstance(email, str) or not email.strip():
        return None
    return email.strip()


def reviewer_by_username(conn: Any, username: str) -> Reviewer | None:
    """An enabled account by name (for OIDC sign-in, where the identity provider checked the person)."""
    try:
        u = normalize_username(username)
    except MalformedInput:
        return None
    with conn.cursor() as cur:
        cur.execute(
            "SELECT username, reviewer_id FROM reviewers WHERE username = %s AND disabled_at IS NULL", (u,)
        )
        row = cur.fetchone()
    conn.rollback()
    return Reviewer(row[0], row[1]) if row else None


def logout(conn: Any, token: str | None) -> None:
    if not token:
        return
    with conn.cursor() as cur:
        cur.execute("DELETE FROM reviewer_sessions WHERE token_sha256 = %s", (_token_hash(token),))
    conn.commit()

"""Reviewer accounts (dashboard.auth) and `cuentas reviewers` (dashboard.cli), on a real PostgreSQL."""

from __future__ import annotations

import argparse
import json
from typing import Any

import pytest

from dashboard import auth, cli
from infra import db
from infra.settings import Settings
from schemas.errors import CuentasError, MalformedInput


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    return "unused:9092"


@pytest.fixture(autouse=True)
def fast_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    """Still argon2id, with test-sized cost (production uses argon2-cffi's RFC 9106 defaults)."""
    from argon2 import PasswordHasher

    from dashboard import auth

    monkeypatch.setattr(auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1))
    auth._dummy_hash.cache_clear()


@pytest.fixture
def conn(migrated: Settings) -> Any:
    c = db.connect(migrated.database_url, migrated.database_schema)
    yield c
    c.close()


def test_add_login_session_logout(conn: Any) -> None:
    rev = auth.add_reviewer(conn, "  Ana@Example.org ", "correct horse battery")
    assert rev.username == "ana@example.org"
    assert len(rev.reviewer_id) == 30 and rev.reviewer_id.startswith("rev_")
    with conn.cursor() as cur:
        cur.execute("SELECT password_hash FROM reviewers")
        assert cur.fetchone()[0].startswith("$argon2id$")
    conn.rollback()
    with pytest.raises(MalformedInput):
        auth.add_reviewer(conn, "ana@example.org", "another long password")
    with pytest.raises(MalformedInput):
        auth.add_reviewer(conn, "bob", "short")
    token, who = auth.login(conn, "ANA@example.org", "correct horse battery")
    assert who == rev and auth.reviewer_for_token(conn, token) == rev
    with conn.cursor() as cur:
        cur.execute("SELECT token_sha256, expires_at - created_at FROM reviewer_sessions")
        stored, ttl = cur.fetchone()
    conn.rollback()
    assert bytes(stored) != token.encode() and ttl == auth.SESSION_TTL
    assert auth.reviewer_for_token(conn, token + "x") is None
    auth.logout(conn, token)
    assert auth.reviewer_for_token(conn, token) is None


def test_rate_limit_and_expiry(conn: Any) -> None:
    auth.add_reviewer(conn, "carla", "correct horse battery")
    for _ in range(auth.MAX_FAILURES):
        with pytest.raises(auth.AuthError) as e:
            auth.login(conn, "carla", "nope nope nope")
        assert e.value.reason == "bad_credentials"
    with pytest.raises(auth.AuthError) as e:
        auth.login(conn, "carla", "correct horse battery")  # even the right password, while locked
    assert e.value.reason == "locked"
    with conn.cursor() as cur:  # the window passes
        cur.execute("UPDATE reviewer_attempts SET attempted_at = attempted_at - interval '16 minutes'")
    conn.commit()
    token, _ = auth.login(conn, "carla", "correct horse battery")
    with conn.cursor() as cur:
        cur.execute("UPDATE reviewer_sessions SET expires_at = now() - interval '1 second'")
    conn.commit()
    assert auth.reviewer_for_token(conn, token) is None
    assert auth.remove_reviewer(conn, "carla")
    with pytest.raises(auth.AuthError):
        auth.login(conn, "carla", "correct horse battery")


def test_cli_add_list_remove(migrated: Settings, monkeypatch: pytest.MonkeyPatch,
                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DATABASE_URL", migrated.database_url)
    monkeypatch.setenv("DATABASE_SCHEMA", migrated.database_schema)
    monkeypatch.setenv("CUENTAS_DATA_DIR", migrated.data_dir)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "unused:9092")
    monkeypatch.setenv("REV_PW", "a long enough password")
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())

    def run(*argv: str) -> int:
        args = parser.parse_args(list(argv))
        return int(args.func(args))

    assert run("reviewers", "add", "dora", "--password-env", "REV_PW") == 0
    assert "rev_" in capsys.readouterr().out
    assert run("reviewers", "list", "--json") == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["username"] for r in rows] == ["dora"] and rows[0]["disabled_at"] is None
    assert "password" not in json.dumps(rows)
    with pytest.raises(CuentasError):
        run("reviewers", "add", "eve", "--password-env", "NO_SUCH_VAR")
    assert run("reviewers", "remove", "dora") == 0
    assert run("reviewers", "remove", "dora") == 1
    run("reviewers", "list")
    assert "removed" in capsys.readouterr().out


def test_global_sign_in_limit_over_every_user_name(conn: Any) -> None:
    """Issue 14.9: a guesser spreading over many names never trips a per-name lockout; the global
    limit (SIGN_IN_MAX_FAILURES_PER_MINUTE) refuses every sign-in, even a right one, for a minute."""
    auth.add_reviewer(conn, "fiona", "correct horse battery")
    for i in range(3):
        with pytest.raises(auth.AuthError) as e:
            auth.login(conn, f"guess{i}", "nope nope nope", max_failures_per_minute=3)
        assert e.value.reason == "bad_credentials"
    with pytest.raises(auth.AuthError) as e:
        auth.login(conn, "fiona", "correct horse battery", max_failures_per_minute=3)
    assert e.value.reason == "busy"
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM reviewer_attempts WHERE username = 'fiona'")
        assert cur.fetchone()[0] == 0  # refused before any password was checked
    conn.rollback()
    # each name alone is far from its own lockout; with no global limit the right password works
    token, _ = auth.login(conn, "fiona", "correct horse battery", max_failures_per_minute=0)
    assert token
    with conn.cursor() as cur:  # the minute passes
        cur.execute("UPDATE reviewer_attempts SET attempted_at = attempted_at - interval '61 seconds'")
    conn.commit()
    token, _ = auth.login(conn, "fiona", "correct horse battery", max_failures_per_minute=3)
    assert token


def test_global_sign_in_limit_is_a_setting() -> None:
    from infra.settings import load_settings

    assert load_settings({}).sign_in_max_failures_per_minute == 30
    assert load_settings({"SIGN_IN_MAX_FAILURES_PER_MINUTE": "7"}).sign_in_max_failures_per_minute == 7


@pytest.mark.parametrize(("claims", "expected"), [
    ({"is_logged_in": True, "email": "ana@example.org", "email_verified": True}, "ana@example.org"),
    ({"is_logged_in": True, "email": "ana@example.org", "email_verified": False}, None),
    ({"is_logged_in": True, "email": "ana@example.org"}, None),  # not said: not verified
    ({"is_logged_in": True, "email": "ana@example.org", "email_verified": "false"}, None),
    ({"is_logged_in": True, "email": "ana@example.org", "email_verified": 1}, None),
    ({"is_logged_in": False, "email": "ana@example.org", "email_verified": True}, None),
    ({"is_logged_in": True, "email": "", "email_verified": True}, None),
    (None, None),
])
def test_oidc_trusts_email_only_when_verified(claims: dict[str, Any] | None, expected: str | None) -> None:
    assert auth.oidc_username(claims) == expected

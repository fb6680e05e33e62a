"""`cuentas reviewers add|remove|list`: the watchdog page's reviewer accounts.

Registered by the composition root (``cuentas.cli``).
Passwords are never arguments (they would land in shell history and ``ps``):
they come from a prompt, or from an environment variable named with
``--password-env``.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from typing import Any

from schemas.errors import ConfigurationError, MalformedInput

__all__ = ["register", "cmd_add", "cmd_remove", "cmd_list"]


def _conn() -> Any:
    from infra import db
    from infra.runtime import resolve
    from infra.settings import load_settings

    s = load_settings()
    ep = resolve(s, need_kafka=False)
    return db.connect(ep.database_url, s.database_schema, retries=1, application_name="cuentas-reviewers")


def _password(args: argparse.Namespace) -> str:
    if args.password_env:
        value = os.environ.get(args.password_env)
        if not value:
            raise ConfigurationError(f"environment variable {args.password_env} is not set or empty")
        return value
    if not sys.stdin.isatty():
        raise ConfigurationError("no terminal to ask for a password: use --password-env VAR")
    first = getpass.getpass("Password for the new reviewer: ")
    second = getpass.getpass("Same password again: ")
    if first != second:
        raise MalformedInput("the two passwords differ", reason="password")
    return first


def cmd_add(args: argparse.Namespace) -> int:
    from dashboard import auth

    password = _password(args)
    conn = _conn()
    try:
        rev = auth.add_reviewer(conn, args.username, password)
    finally:
        conn.close()
    print(f"reviewer {rev.username} added; acts in the public record as {rev.reviewer_id}")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    from dashboard import auth

    conn = _conn()
    try:
        changed = auth.remove_reviewer(conn, args.username)
    finally:
        conn.close()
    if not changed:
        print(f"no active reviewer {auth.normalize_username(args.username)}", file=sys.stderr)
        return 1
    print(f"reviewer {auth.normalize_username(args.username)} removed (sessions ended; pseudonym kept in the record)")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from dashboard import auth

    conn = _conn()
    try:
        rows = auth.list_reviewers(conn)
    finally:
        conn.close()
    if args.json:
        print(json.dumps(rows, indent=2, default=str, sort_keys=True))
        return 0
    if not rows:
        print("no reviewers yet: add one with `cuentas reviewers add USERNAME`")
        return 0
    for r in rows:
        state = f"removed {r['disabled_at']:%Y-%m-%d}" if r["disabled_at"] else "active"
        print(f"{r['username']:<32} {r['reviewer_id']}  {state}")
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser(
        "reviewers",
        help="watchdog reviewer accounts of the dashboard",
        description="Accounts that may acknowledge, resolve or dismiss flags on the dashboard's watchdog "
        "page. Each acts in the public record under a random rev_ pseudonym.",
    )
    rs = p.add_subparsers(dest="reviewers_command", metavar="ACTION", required=True)
    a = rs.add_parser("add", help="add a reviewer (password from a prompt or --password-env)")
    a.add_argument("username", help="2-64 characters: a-z 0-9 _ . @ + - (an e-mail works for OIDC sign-in)")
    a.add_argument("--password-env", metavar="VAR", help="read the password from this environment variable")
    a.set_defaults(func=cmd_add)
    r = rs.add_parser("remove", help="disable a reviewer and end their sessions")
    r.add_argument("username")
    r.set_defaults(func=cmd_remove)
    ls = rs.add_parser("list", help="list reviewers and their pseudonyms")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    ls.set_defaults(func=cmd_list)

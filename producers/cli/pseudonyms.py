"""``cuentas pseudonyms``: an operator derives the per-transfer pseudonyms of a person it knows.

The public record gives a sender or beneficiary a new pseudonym on every
transfer (``schemas.privacy.transfer_pseudonym``, issue 14.6), so only the
operator, holding its off-record secret and knowing the person, can find
that person's transfers again: to answer the person's own question, to
compare a payout agent's ``beneficiary`` with its ``transfer.sent``, or for
its own per-person books.  The secret and the person's identifier are read
from environment variables, never from the command line (which shells keep
in their history and other users can see in the process list).

    cuentas pseudonyms --secret-env VAR --person-env VAR --kind snd|ben --transfer ID [--transfer ID ...] [--json]
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from producers.cli.common import check_id, print_json
from schemas.errors import ConfigurationError

__all__ = ["add_parser", "cmd_pseudonyms"]


def _env(var: str, what: str) -> str:
    value = os.environ.get(var, "")
    if not value:
        raise ConfigurationError(f"{what}: the environment variable {var} is empty or unset")
    return value


def cmd_pseudonyms(args: argparse.Namespace) -> int:
    """Print ``TRANSFER_ID PSEUDONYM`` per transfer (or a JSON object transfer id -> pseudonym)."""
    from schemas.privacy import transfer_pseudonym

    secret = _env(args.secret_env, "--secret-env").encode("utf-8")
    person = _env(args.person_env, "--person-env")
    tids = [check_id(t, "--transfer") for t in args.transfer]
    out = {t: transfer_pseudonym(secret, args.kind, person, t) for t in tids}
    if args.json:
        print_json(out)
    else:
        for t, p in out.items():
            print(f"{t}\t{p}")
    return 0


def add_parser(sub: Any) -> None:
    """Add ``cuentas pseudonyms``."""
    p = sub.add_parser(
        "pseudonyms",
        help="derive a person's per-transfer pseudonyms (operators: with your off-record secret)",
        description="Each transfer names its sender and beneficiary by a pseudonym of that transfer "
        "only; with the secret and the person's identifier you derive them again.",
    )
    p.add_argument("--secret-env", metavar="VAR", required=True,
                   help="environment variable holding the operator's pseudonym secret (16+ bytes)")
    p.add_argument("--person-env", metavar="VAR", required=True,
                   help="environment variable holding your identifier of the person")
    p.add_argument("--kind", choices=("snd", "ben"), required=True, help="sender or beneficiary")
    p.add_argument("--transfer", metavar="ID", action="append", required=True,
                   help="a transfer id (repeat for several)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_pseudonyms)

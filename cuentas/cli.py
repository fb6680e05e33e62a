"""`cuentas`: the one command-line entry point of Cuentas Claras.

The composition root: up, status, db and settings are defined here; every
other command is registered by the room that owns it (its ``cli.register``).
Each subcommand imports only what it needs, so `cuentas verify` runs with
the pure core alone.  Expected failures (bad input, failed verification, a
service that cannot be reached, a bad setting) print one line and exit 1;
only bugs show a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap
from collections.abc import Callable, Sequence
from typing import Any

from benchmarks import cli as benchmarks_cli
from dashboard import cli as dashboard_cli
from producers import cli as producers_cli
from schemas.errors import CuentasError
from schemas.l10n import cli_locale
from stream_processors import cli as processors_cli

__all__ = ["main", "build_parser"]

Handler = Callable[[argparse.Namespace], int]

LOCALE_HELP = ("write numbers, amounts and dates for this locale (es-MX, es-US, en-US, fr, pt-BR...); "
               "default: LC_ALL / LC_NUMERIC / LANG, else en-US")


def _add_locale_options(parser: argparse.ArgumentParser) -> None:
    """``--locale`` on every command (after it, like ``--json``), each room's commands included.

    SUPPRESS as the default, so that a command without it keeps a ``cuentas
    --locale`` given before the command's name.
    """
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        if "--locale" not in parser._option_string_actions:
            parser.add_argument("--locale", metavar="TAG", default=argparse.SUPPRESS, help=LOCALE_HELP)
        return
    for action in subs:
        for child in set(action.choices.values()):
            _add_locale_options(child)


def _settings() -> Any:
    from infra.settings import load_settings

    return load_settings()


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, sort_keys=True, default=str))


# --- up / status / db ------------------------------------------------------------------


def cmd_up(args: argparse.Namespace) -> int:
    from cuentas.supervisor import Supervisor

    return Supervisor(_settings(), demo=args.demo).run()


def cmd_status(args: argparse.Namespace) -> int:
    from cuentas.status import collect_status, render_status

    report = collect_status(_settings())
    if args.json:
        _print_json(report)
    else:
        print(render_status(report, cli_locale(getattr(args, "locale", None), os.environ)))
    return 0 if report["healthy"] else 1


def cmd_db_migrate(args: argparse.Namespace) -> int:
    from infra import db
    from infra.runtime import resolve

    s = _settings()
    ep = resolve(s, need_kafka=False)
    ran = db.migrate(ep.database_url, s.database_schema)
    print(f"applied {len(ran)} migration(s): {', '.join(ran)}" if ran else "database is up to date")
    return 0


def cmd_settings(args: argparse.Namespace) -> int:
    from infra.settings import settings_table_markdown

    if args.markdown:
        print(settings_table_markdown())
    else:
        _print_json(_settings().redacted())
    return 0


# --- parser ----------------------------------------------------------------------------

EPILOG = textwrap.dedent(
    """\
    Start here:
      cuentas up --demo            run the whole platform with demo data (Ctrl-C stops it)
      cuentas status               is every part healthy?
      cuentas verify receipt.json --log-key KEY
                                   check a receipt offline, trusting nothing but the log key

    Settings come from the environment (see `cuentas settings --markdown`).
    Numbers, amounts and dates are written for --locale TAG (es-MX, es-US, fr,
    pt-BR...), else LC_ALL / LC_NUMERIC / LANG, else en-US; --json output is never localised.
    """
)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="cuentas",
        description="Cuentas Claras: a public, verifiable audit trail for the money migrants send home.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--locale", metavar="TAG", help=LOCALE_HELP)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    up = sub.add_parser("up", help="start the platform in the foreground",
                        description="Start the broker (unless KAFKA_BOOTSTRAP_SERVERS is set), PostgreSQL "
                        "(unless DATABASE_URL is set), migrations, the stream processors, a witness and the "
                        "dashboard. Ctrl-C or SIGTERM stops everything and leaves no process behind.")
    up.add_argument("--demo", action="store_true", help="also run a publisher feeding realistic demo data")
    up.set_defaults(func=cmd_up)

    st = sub.add_parser("status", help="health of each component",
                        description="Broker reachable, topics present, database migrated, processors' "
                        "consumer lag (from Fetch high watermarks) and dashboard answering. Exit 1 if unhealthy.")
    st.add_argument("--json", action="store_true", help="machine-readable output")
    st.set_defaults(func=cmd_status)

    dbp = sub.add_parser("db", help="database maintenance")
    dbs = dbp.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    mig = dbs.add_parser("migrate", help="apply pending SQL migrations from infra/migrations (idempotent)")
    mig.set_defaults(func=cmd_db_migrate)

    se = sub.add_parser("settings", help="show the effective settings (secrets redacted)")
    se.add_argument("--markdown", action="store_true", help="print the settings table of the README")
    se.set_defaults(func=cmd_settings)

    # Each room adds its own commands (keys, publishers, publish, simulate;
    # log, receipt, verify, witness, flags, audit; reviewers; bench).
    for room in (producers_cli, processors_cli, dashboard_cli, benchmarks_cli):
        room.register(sub)
    for command in set(sub.choices.values()):
        _add_locale_options(command)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except CuentasError as e:
        print(f"cuentas: {e}", file=sys.stderr)
        return 1
    except OSError as e:  # a file the user named: missing, a directory, unreadable
        where = f"{e.filename}: " if e.filename else ""
        print(f"cuentas: {where}{e.strerror or e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

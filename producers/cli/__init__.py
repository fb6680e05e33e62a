"""The producers' commands: keys, registration, publishing, simulation.

    cuentas keys new NAME [--out FILE] [--passphrase-env VAR]
    cuentas keys show FILE [--name NAME] [--json]
    cuentas keys rotate FILE [--overlap 7d] [--json]
    cuentas publishers register ID --kind KIND --key VERIFIER_KEY [--party-level L --party-id P]
                                [--club-id C] [--valid-from T] [--backfill-until T]
    cuentas publishers revoke ID [--key-id K] --reason R [--at T] [--json]
    cuentas publishers rotate ID --key VERIFIER_KEY [--overlap D] [--json]
    cuentas publishers list [--json]
    cuentas publish FILE.jsonl --as PUBLISHER --key KEYFILE [--json]
    cuentas simulate --seed N [--rate R] (--duration D | --events N) [--anomalies]
                     [--start ISO] [--span D] [--truth FILE] [--json]
    cuentas simulate --demo
    cuentas pseudonyms --secret-env VAR --person-env VAR --kind snd|ben --transfer ID [...] [--json]

Every expected failure is one line (``CuentasError``, printed by ``cuentas.cli``);
heavy imports (Kafka, PostgreSQL, the simulator) happen inside the handlers so
``cuentas --help`` stays instant.  One module per command:

* :mod:`.keys` - ``cuentas keys``;
* :mod:`.publishers` - ``cuentas publishers`` (registry administration);
* :mod:`.publish` - ``cuentas publish`` (the publish pipeline);
* :mod:`.simulate` - ``cuentas simulate``, on the fleet of :mod:`.fleet`;
* :mod:`.demo` - ``cuentas simulate --demo`` (run by ``cuentas up --demo``);
* :mod:`.pseudonyms` - ``cuentas pseudonyms`` (an operator's per-transfer pseudonyms of a person);
* :mod:`.common` - what they share.
"""

from __future__ import annotations

from typing import Any

from producers.cli import keys, pseudonyms, publish, publishers, simulate
from producers.cli.common import parse_duration, parse_start
from producers.cli.demo import DEMO_EVENTS, DEMO_SEED, DEMO_SPAN
from producers.cli.publish import (
    LineProblem,
    ParsedLine,
    PublishReport,
    parse_lines,
    prepare_lines,
    publish_lines,
)

__all__ = [
    "register",
    "DEMO_EVENTS",
    "DEMO_SEED",
    "DEMO_SPAN",
    "LineProblem",
    "ParsedLine",
    "PublishReport",
    "parse_duration",
    "parse_lines",
    "parse_start",
    "prepare_lines",
    "publish_lines",
]


def register(sub: Any) -> None:
    """Add keys, publishers, publish, simulate and pseudonyms to the top-level ``cuentas`` parser."""
    for command in (keys, publishers, publish, simulate, pseudonyms):
        command.add_parser(sub)

"""The publisher's side of the command line (being split by command; for now all in :mod:`.publish`)."""

from typing import Any

from producers.cli import keys, publish, publishers
from producers.cli.common import parse_duration, parse_start
from producers.cli.common import publisher_locks as _publisher_locks
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
    "DEMO_EVENTS",
    "DEMO_SEED",
    "DEMO_SPAN",
    "LineProblem",
    "ParsedLine",
    "PublishReport",
    "_publisher_locks",
    "parse_duration",
    "parse_lines",
    "parse_start",
    "prepare_lines",
    "publish_lines",
    "register",
]


def register(sub: Any) -> None:
    """Add keys, publishers, publish and simulate to the top-level ``cuentas`` parser."""
    keys.add_parser(sub)
    publishers.add_parser(sub)
    publish.add_publish_parser(sub)
    publish.add_simulate_parser(sub)

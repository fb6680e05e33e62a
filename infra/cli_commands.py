"""Subcommands beyond up/status/db, registered by the rooms that own them.

Kept apart from :mod:`infra.cli` so that each room's command can grow
without one huge module; every handler imports its room lazily.
"""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["register"]


def register(sub: Any) -> None:
    """Add each room's subcommands to the top-level parser."""
    for module in (
        "producers.cli",
        "stream_processors.cli",
        "dashboard.cli",
        "benchmarks.cli",
    ):
        try:
            mod = __import__(module, fromlist=["register"])
        except ModuleNotFoundError as e:
            if e.name == module:
                continue
            raise
        mod.register(sub)
    _ = argparse

"""``python -m benchmarks NAME [options]``: the same as ``cuentas bench NAME``."""

from __future__ import annotations

import sys

from benchmarks.cli import run

if __name__ == "__main__":
    sys.exit(run())

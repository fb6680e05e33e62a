"""``python -m cuentas``: the same as the ``cuentas`` command."""

import sys

from cuentas.cli import main

sys.exit(main())

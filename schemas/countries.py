"""Countries a corridor may join: ISO 3166-1 alpha-2 codes, from the maintained ``pycountry``.

Every officially assigned code (249 in pycountry 26.2), so a corridor to Japan,
Kuwait or Chile is as valid as one to Mexico.  The ``country`` enum of
``schemas/events/common.v1.json`` is written from this set by ``python -m
schemas.codegen``; ``--check`` (run by the tests) fails when they disagree.
"""

from __future__ import annotations

from typing import Final

import pycountry

__all__ = ["ISO_3166_ALPHA2"]

#: Officially assigned ISO 3166-1 alpha-2 codes.
ISO_3166_ALPHA2: Final[frozenset[str]] = frozenset(str(c.alpha_2) for c in pycountry.countries)

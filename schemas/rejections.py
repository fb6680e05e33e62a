"""The public projection of a refusal: a reason code and a schema path, nothing from the input.

Whoever can write to the topics chooses the bytes the gate refuses, so a
refusal's message may quote a value (a phone number typed where a pseudonym
belongs), a property name (a person's name used as a key) or any text.  The
full message stays in the private ``quarantine``; what the public pages and
downloads show is this projection (issue 14.7, design note "authority",
section "What the public sees of a refusal"):

* ``reason``: the gate's reason code when it is one of ours (lower-case
  letters and underscores), else ``malformed``;
* ``path``: the JSON pointer (RFC 6901) of the offending part, where every
  token that is not a property name some schema declares
  (:data:`schemas.catalog.DECLARED_NAMES`) or a small array position is
  replaced by :data:`PLACEHOLDER`, and nothing is kept after the first such
  token (what lies below an unknown name is the input's own structure);
* ``event_type``: only a type of the catalog;
* ``publisher``: only a publisher id the trust registry knows (an unknown id
  is text the sender chose).

Pure: values in, values out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from schemas.catalog import DECLARED_NAMES, EVENT_TYPES

__all__ = ["PLACEHOLDER", "PublicRejection", "public_path", "public_reason", "public_rejection"]

#: What replaces a path token that is not one of the schemas' own names.
PLACEHOLDER: Final = "*"

_REASON_RE: Final = re.compile(r"^[a-z][a-z_]{0,39}$")
#: An array position: a 64 KiB record cannot hold more than ~32,000 elements.
_INDEX_RE: Final = re.compile(r"^(?:0|[1-9][0-9]{0,4})$")
_MAX_TOKENS: Final = 8
_EVENT_TYPES: Final = frozenset(EVENT_TYPES)


@dataclass(frozen=True, slots=True)
class PublicRejection:
    reason: str
    path: str  # "" when the refusal is about the record as a whole
    event_type: str | None
    publisher: str | None


def public_reason(reason: str | None) -> str:
    """The reason code itself when it is one (``schema``, ``key_revoked``...), else ``malformed``."""
    return reason if isinstance(reason, str) and _REASON_RE.match(reason) else "malformed"


def _unescape(token: str) -> str:
    # RFC 6901 section 4: "~1" first, then "~0".
    return token.replace("~1", "/").replace("~0", "~")


def public_path(pointer: str | None) -> str:
    """``pointer`` with every token that is not a declared name or a small index made :data:`PLACEHOLDER`.

    ``/payload/sender`` stays; ``/payload/Juan Pérez`` becomes ``/payload/*``;
    ``/payload/destination/kind`` stays; anything below a placeholder is cut.
    Not a pointer (no leading ``/``): ``""``.
    """
    if not isinstance(pointer, str) or not pointer.startswith("/"):
        return ""
    out: list[str] = []
    for raw in pointer[1:].split("/")[:_MAX_TOKENS]:
        token = _unescape(raw)
        if token in DECLARED_NAMES or _INDEX_RE.match(token):
            out.append(token)  # our own names contain neither "/" nor "~"
        else:
            out.append(PLACEHOLDER)
            break
    return "/" + "/".join(out)


def public_rejection(reason: str | None, pointer: str | None, event_type: str | None,
                     publisher_id: str | None, *, publisher_known: bool) -> PublicRejection:
    """What the public may see of one refusal (see the module's docstring)."""
    return PublicRejection(
        public_reason(reason),
        public_path(pointer),
        event_type if event_type in _EVENT_TYPES else None,
        publisher_id if publisher_known and isinstance(publisher_id, str) else None,
    )

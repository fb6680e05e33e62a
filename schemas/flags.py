"""What a flag can be about: its types, severities and subjects, from ``flag.changed``'s schema.

The literal types are the generated ones (``schemas/types_gen.py``, written by
``python -m schemas.codegen`` from ``schemas/events/flag.changed.v1.json``), so
the rules, the gate and the dashboard name flags exactly as the contract does;
this module only sorts them into the two families that raise them.
"""

from __future__ import annotations

from typing import Final, get_args

from schemas.types_gen import FlagType, Severity, SubjectKind

__all__ = [
    "AUTHORITY_FLAG_TYPE",
    "DISCREPANCY_FLAG_TYPES",
    "FLAG_TYPES",
    "INTEGRITY_FLAG_TYPES",
    "SEVERITIES",
    "SUBJECT_KINDS",
    "FlagType",
    "Severity",
    "SubjectKind",
]

#: Every flag type of the contract, in the schema's order.
FLAG_TYPES: Final[tuple[FlagType, ...]] = get_args(FlagType)
#: Raised about a publisher's conduct by the gate, the sequence check and (for
#: ``authority_violation``) the rules: attacks on the log's integrity (forgeries,
#: equivocation, revoked keys, roles, gaps), a publisher speaking for a subject it
#: does not own or rewriting time, and history published late.
INTEGRITY_FLAG_TYPES: Final[frozenset[FlagType]] = frozenset(
    {
        "equivocation",
        "sequence_gap",
        "forged_signature",
        "role_violation",
        "revoked_key_used",
        "authority_violation",
        "published_late",
    }
)
#: The integrity flag the reconciliation rules raise too: an event the gate
#: could not judge on arrival (its subject's owner was not known yet) is
#: disregarded once the owner is known, under the same flag id.
AUTHORITY_FLAG_TYPE: Final[FlagType] = "authority_violation"
#: Raised by the reconciliation rules about a transfer or a project, in the schema's order.
DISCREPANCY_FLAG_TYPES: Final[tuple[FlagType, ...]] = tuple(
    t for t in FLAG_TYPES if t not in INTEGRITY_FLAG_TYPES
)
SEVERITIES: Final[tuple[Severity, ...]] = get_args(Severity)
SUBJECT_KINDS: Final[tuple[SubjectKind, ...]] = get_args(SubjectKind)

"""Pure reconciliation rules: events of one transfer or project in, discrepancy flags out.

No I/O and no wall clock: the stream adapter feeds a subject's events (any order,
duplicates allowed) and the shared event-time clock, stores the flags, and schedules a
timer at ``next_deadline``.  The flag table the simulator relies on is in README.md.
"""

from schemas.thresholds import Thresholds
from stream_processors.rules.model import (
    FLAG_TYPES,
    TICK,
    Contribution,
    Evt,
    FlagSpec,
    FlagType,
    Severity,
    SubjectKind,
    flag_id,
)
from stream_processors.rules.projects import (
    LEVELS,
    PROJECT_EVENT_TYPES,
    MilestoneRow,
    PartyRow,
    ProjectResult,
    ProjectState,
    reconcile_project,
)
from stream_processors.rules.transfers import (
    TRANSFER_EVENT_TYPES,
    TransferResult,
    TransferState,
    TransferStatus,
    reconcile_transfer,
)

__all__ = [
    "FLAG_TYPES",
    "LEVELS",
    "PROJECT_EVENT_TYPES",
    "TICK",
    "TRANSFER_EVENT_TYPES",
    "Contribution",
    "Evt",
    "FlagSpec",
    "FlagType",
    "MilestoneRow",
    "PartyRow",
    "ProjectResult",
    "ProjectState",
    "Severity",
    "SubjectKind",
    "Thresholds",
    "TransferResult",
    "TransferState",
    "TransferStatus",
    "flag_id",
    "reconcile_project",
    "reconcile_transfer",
]

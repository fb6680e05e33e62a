"""A deterministic, realistic simulator of remittances and 3x1 hometown projects.

The package is being split by job; for now everything lives in :mod:`.build`.
"""

from producers.simulator.build import (
    ANOMALY_CLASSES,
    ATTACK_CLASSES,
    DEFAULT_EVENTS,
    DISCREPANCY_CLASSES,
    MIN_SPAN,
    NO_FLAG_CLASSES,
    REGISTRATION_VALID_FROM,
    LiveEvent,
    LiveFeed,
    RegistryAction,
    SimEvent,
    SimPublisher,
    Simulation,
    roster,
    simulate,
)

__all__ = [
    "ANOMALY_CLASSES",
    "ATTACK_CLASSES",
    "DEFAULT_EVENTS",
    "DISCREPANCY_CLASSES",
    "MIN_SPAN",
    "NO_FLAG_CLASSES",
    "REGISTRATION_VALID_FROM",
    "LiveFeed",
    "LiveEvent",
    "RegistryAction",
    "SimEvent",
    "SimPublisher",
    "Simulation",
    "roster",
    "simulate",
]

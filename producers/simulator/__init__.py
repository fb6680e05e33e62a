"""A deterministic, realistic simulator of remittances and 3x1 hometown projects.

Pure: ``simulate(seed, ...)`` returns the publishers (with Ed25519 keys derived
from the seed), the registry actions to publish first, the signed envelopes in
publication order and the ground truth; it publishes nothing.  Same inputs give
byte-identical envelopes, so a run can be re-published (it reads as duplicates)
and any platform can be scored against the same truth.

What it models (figures from ``/work/shared/design/domain.md``):

* Remittances US->MX/GT/SV/HN and a few CA/ES->MX through 4-6 operators.  A
  sender sends ~US$370 a month in 2-3 transfers (lognormal amounts); costs are
  fee + FX margin, 2-5 %, disclosed honestly with the core's formula
  (``schemas.costs.disclosed_cost_bps``); 80 % are paid within the hour, the
  rest within a business day.
* 3x1 projects of every type, registered by a club committee: infrastructure
  25 % club / 25 % federal / 50 % municipal+state, productive 50 % club / 50 %
  federal.  Club members' contributions are transfers to the project fund;
  governments pledge and disburse; the committee reports milestones with
  evidence digests and the hometown mirror club verifies them.
* With ``anomalies=True``, labelled cases of every discrepancy the rules flag
  and of every attack on the gate (forgery, revoked key that backdates, wrong
  role, replay, equivocation, sequence gap, out-of-order delivery) and on the
  authority model: a transfer in another operator's name, payouts by another
  operator (before and after the transfer reaches the log), a committee
  verifying its own report, backdated second registrations, late publication,
  payouts dated before their transfer, a project for another club, a
  contribution credited to another club.  Payout agents publish some payouts;
  mirror clubs (kind ``verifier``) are the verifiers projects name.
* Publication phases (``SimEvent.phase``): what depends on what reached the
  log first is published once phase 0 was acknowledged.

Time layout of a window ``[start, end]`` (why: the platform's clock is the
minimum over partitions of the latest event time minus an hour of lateness, so
nothing may depend on the exact value of the final clock):

* every deadline of a clean entity is met before ``cutoff`` (``end`` - 2 days
  12 h) or falls after ``end`` + 1 day;
* every injected time-based anomaly has its deadline before ``cutoff``;
* the last 2 days 6 h (the tail) hold only instant-paid transfers plus one
  deadline-free event per project (the federal government's second tranche),
  so every partition of both topics has an event in the last hours.

Ground truth: one JSON object per expected flag, ``{"class", "flag_type",
"subject_kind", "subject_id", "key", "status"}`` (``key`` null means any key),
plus ``{"class": "replay"|"out_of_order", "expect": "no_flag", ...}`` for cases
that must raise nothing.  ``class`` is the injected case; its flags follow the
rules' definitions, collateral flags included (a short payout also raises a cost
above the disclosed one, for example).

Modules, by job (each draws from the run's one random stream, in a fixed order):

* :mod:`.world` - corridors, places, the roster of publishers, deterministic keys;
* :mod:`.market` - mid rates, prices, senders, transfer payloads (shared with the
  live trickle);
* :mod:`.drafts` - the run being drafted (:class:`.drafts.Run`);
* :mod:`.transfers`, :mod:`.projects`, :mod:`.attacks` - what they draft;
* :mod:`.truth` - the expected flags, an oracle independent of the rules' code;
* :mod:`.build` - :func:`simulate`: the drafting order, then numbering and signing;
* :mod:`.results` - :class:`Simulation` and what it holds;
* :mod:`.live` - the demo's live trickle (:class:`LiveFeed`).
"""

from __future__ import annotations

from producers.simulator.build import DEFAULT_EVENTS, LATE_CASE_WINDOW, MIN_SPAN, simulate
from producers.simulator.live import LiveEvent, LiveFeed
from producers.simulator.results import RegistryAction, SimEvent, Simulation
from producers.simulator.truth import (
    ANOMALY_CLASSES,
    ATTACK_CLASSES,
    DISCREPANCY_CLASSES,
    NO_FLAG_CLASSES,
)
from producers.simulator.world import REGISTRATION_VALID_FROM, SimPublisher, roster

__all__ = [
    "ANOMALY_CLASSES",
    "ATTACK_CLASSES",
    "DEFAULT_EVENTS",
    "DISCREPANCY_CLASSES",
    "LATE_CASE_WINDOW",
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

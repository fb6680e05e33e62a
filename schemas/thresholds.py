"""The tolerances and periods of the reconciliation rules, with their defaults, written once.

The rules take a :class:`Thresholds`; ``infra.settings`` takes its defaults from
:data:`DEFAULT_THRESHOLDS` (so an unset environment gives exactly these), the
stream processors build one from the settings, and a publisher predicting which
flags the rules will raise (the simulator's ground truth) reads the same values.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Final

__all__ = [
    "DEFAULT_THRESHOLDS",
    "LATE_PUBLICATION",
    "MAX_EVENT_AGE",
    "MAX_FUTURE_SKEW",
    "SDG_CEILING_BPS",
    "SDG_TARGET_BPS",
    "Thresholds",
]

#: SDG target 10.c: reduce the cost of remittances to less than 3 % ...
SDG_TARGET_BPS: Final = 300
#: ... and eliminate remittance corridors with costs higher than 5 %.
SDG_CEILING_BPS: Final = 500


@dataclass(frozen=True)
class Thresholds:
    """Every tolerance and period the rules use, so a deployment can tune them in one place.

    * ``payout_tolerance_bps`` (50): a payout may fall short of the promise by up to
      0.5 % (FX rounding, local taxes disclosed elsewhere) before it is a short payout;
      the same margin applies above the promise before a double payout is flagged.
    * ``cost_disclosure_tolerance_bps`` (10): the effective cost may exceed the
      disclosed cost by 0.1 % (rounding of a disclosure to whole basis points).
    * ``corridor_cost_ceiling_bps`` (500): SDG 10.c, "no corridor above 5 %".
    * ``payout_grace`` (72 h): after ``available_by`` + grace an undelivered transfer is
      treated as lost money, not just late.
    * ``no_milestone_period`` (120 days): money received with no progress report for a
      whole quarter plus a month (3x1 reporting was quarterly).
    * ``unverified_period`` (60 days): time the verifier (mirror club) has to confirm a
      milestone report.
    * ``disbursement_tolerance_bps`` (0): government shares are legal commitments in
      integer minor units and ``owed`` is rounded down, so any shortfall is real.  The
      club's share and the money a cancelled project returns are judged the same way.
    * ``cancellation_window`` (30 min): a transfer cancelled this soon after it was sent
      is refunded with its fee (US Remittance Rule, 12 CFR 1005.34(a): the sender may
      cancel within 30 minutes of payment and gets the total amount back, fees included).
    * ``refund_period_business_days`` (3): a cancelled transfer must be refunded within
      this many business days (Monday to Friday, counted in UTC) of the cancellation
      (12 CFR 1005.34(b): refund within three business days of the cancellation).
    * ``funds_return_period`` (30 days): after a project is cancelled, the time its
      committee has to return what the cancellation says it owes each party
      (``FUNDS_RETURN_DAYS``).
    """

    payout_tolerance_bps: int = 50
    cost_disclosure_tolerance_bps: int = 10
    corridor_cost_ceiling_bps: int = SDG_CEILING_BPS
    payout_grace: timedelta = timedelta(hours=72)
    no_milestone_period: timedelta = timedelta(days=120)
    unverified_period: timedelta = timedelta(days=60)
    disbursement_tolerance_bps: int = 0
    cancellation_window: timedelta = timedelta(minutes=30)
    refund_period_business_days: int = 3
    funds_return_period: timedelta = timedelta(days=30)


#: The defaults, as one value.
DEFAULT_THRESHOLDS: Final = Thresholds()


# --- the gate's two clocks (docs/adr/0007-authority-and-time.md) -------------------------
#
# Claimed time (an event's ``event_time``) is the publisher's; arrival time (when
# the gate accepted it into the log) is not.  Defaults of the settings
# MAX_FUTURE_SKEW_S, MAX_EVENT_AGE_DAYS and LATE_PUBLICATION_DAYS.

#: A claimed time may be at most this far after its arrival (clocks drift).
MAX_FUTURE_SKEW: Final = timedelta(minutes=5)
#: A claimed time may be at most this far before its arrival, except inside the
#: publisher's declared backfill (its registration's ``valid_from`` to the
#: registration's arrival, or its ``backfill_until``).
MAX_EVENT_AGE: Final = timedelta(days=30)
#: Outside the backfill, an event arriving more than this after its claimed time
#: is accepted and raises ``published_late`` (low severity).
LATE_PUBLICATION: Final = timedelta(days=7)

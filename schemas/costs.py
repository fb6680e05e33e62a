"""The cost of a remittance: what an operator discloses and what the migrant really paid.

One definition, shared by the reconciliation rules (which flag a cost above the
disclosed one or above the corridor ceiling) and by every publisher that fills
``transfer.sent.disclosed_cost_bps`` (the simulator does it honestly with
:func:`disclosed_cost_bps`), so both sides compute the same integer.

Definitions (all exact rationals, rounded once, halves away from zero)
---------------------------------------------------------------------
Amounts are converted to major units with their ISO 4217 exponent.  ``S`` send, ``F``
fee (send currency), ``r`` the quoted ``exchange_rate`` (receive units per send unit),
``R`` ``receive_promised``, ``P`` total paid out in the promised currency, ``m`` the
market mid rate (known to the simulator, never to the rules).

* Disclosed cost (World Bank RPW style: fee + FX margin, per send amount)::

      disclosed_cost_bps = round(10000 * (F + S - R/m) / S)

  i.e. the fee, plus the rate margin ``S*(m - r)/m``, plus whatever the promise
  withholds below ``S*r`` (``(S*r - R)/m``).  :func:`disclosed_cost_bps` is the
  helper publishers use to fill ``transfer.sent.disclosed_cost_bps`` honestly.

* Effective cost, known once something was paid in the promised currency::

      effective_cost_bps = round(max(d + 10000 * (R - P) / (r * S),
                                     10000 * (F + S - P/r) / S))

  The first term is the disclosure ``d`` plus any payout shortfall valued at the quoted
  rate (so a transfer paid exactly as promised has ``effective == disclosed``).  The
  second is the cost provable from the operator's own figures without a market rate
  (fee plus everything paid below ``S*r``); it exceeds the first only when the
  disclosure understates the fee or the withholding, which is how an understated
  disclosure is caught.  ``cost_above_disclosed`` fires when
  ``effective_cost_bps > disclosed_cost_bps + cost_disclosure_tolerance_bps`` (10).

Invalid input (unknown currency, a rate that is not a positive decimal, a send
amount that is not positive) raises ``ValueError`` (``MalformedInput`` where the
money helpers detect it).
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from functools import lru_cache

from schemas.money import (
    div_round_half_away,
    major_fraction,
    minor_units,
    parse_rate,
    round_half_away,
)

__all__ = ["disclosed_cost_bps", "effective_cost_bps"]


def _rate(value: str | Decimal | Fraction | int) -> Fraction:
    if isinstance(value, str):
        return parse_rate(value)
    if isinstance(value, float):  # pragma: no cover - guarded by the type, kept for callers
        raise TypeError("rates must be decimal strings or Decimal, never float")
    f = Fraction(value)
    if f <= 0:
        raise ValueError("rate must be positive")
    return f


def disclosed_cost_bps(
    send: int,
    fee: int,
    exchange_rate: str | Decimal,
    receive_promised: int,
    mid_rate: str | Decimal,
    *,
    send_currency: str = "USD",
    receive_currency: str = "MXN",
) -> int:
    """The honest ``disclosed_cost_bps`` of a quote: ``round(10000*(F + S - R/m)/S)``.

    Written as fee + rate margin ``S*(m - r)/m`` + withholding ``(S*r - R)/m`` so the
    decomposition is visible; the quoted rate cancels out of the total, which is why a
    disclosure must be computed from what is actually promised (``R``).  Amounts are
    minor units of their currencies; rates are decimal strings or ``Decimal``.
    """
    s = major_fraction(send, send_currency)
    f = major_fraction(fee, send_currency)
    rec = major_fraction(receive_promised, receive_currency)
    r = _rate(exchange_rate)
    m = _rate(mid_rate)
    if s <= 0:
        raise ValueError("send must be positive")
    cost = f + s * (m - r) / m + (s * r - rec) / m
    return round_half_away(10000 * cost / s)


def effective_cost_bps(
    send: int,
    fee: int,
    exchange_rate: str | Decimal,
    receive_promised: int,
    paid: int,
    disclosed: int,
    *,
    send_currency: str = "USD",
    receive_currency: str = "MXN",
) -> int:
    """``round(max(d + 10000*(R-P)/(r*S), 10000*(F + S - P/r)/S))`` (module docstring).

    Exact, in integers: with ``r = rn/rd`` and amounts in minor units of
    exponents ``es`` (send) and ``er`` (receive), both terms share the positive
    denominator ``D = 10^er * rn * s``, so the larger numerator wins and one
    integer rounding gives the result.  Equal, to the unit, to the ``Fraction``
    formula as written (property-tested against it in
    ``tests/unit/test_effective_cost_exact.py``); about ten
    times faster, and this runs at every point of every transfer's timeline.
    """
    es, er = minor_units(send_currency), minor_units(receive_currency)
    r = _rate_cached(exchange_rate) if isinstance(exchange_rate, str) else _rate(exchange_rate)
    if send <= 0:
        raise ValueError("send must be positive")
    rn, rd = r.numerator, r.denominator
    ps, pr = 10**es, 10**er
    den = pr * rn * send
    via = disclosed * den + 10000 * (receive_promised - paid) * rd * ps
    provable = 10000 * ((fee + send) * pr * rn - paid * rd * ps)
    return div_round_half_away(max(via, provable), den)


@lru_cache(maxsize=4096)
def _rate_cached(value: str) -> Fraction:
    # a corridor's rate text repeats across its transfers
    return _rate(value)

"""The integer form of the effective-cost formula equals the Fraction formula, to the unit."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from schemas.costs import _rate, effective_cost_bps
from schemas.money import major_fraction, round_half_away


def effective_cost_bps_reference(
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
    """The formula of ``effective_cost_bps``'s docstring in ``Fraction`` arithmetic, as written."""
    s = major_fraction(send, send_currency)
    f = major_fraction(fee, send_currency)
    rec = major_fraction(receive_promised, receive_currency)
    p = major_fraction(paid, receive_currency)
    r = _rate(exchange_rate)
    if s <= 0:
        raise ValueError("send must be positive")
    via_disclosure = Fraction(disclosed) + 10000 * (rec - p) / (r * s)
    provable = 10000 * (f + s - p / r) / s
    return round_half_away(max(via_disclosure, provable))


CURRENCIES = ["USD", "MXN", "GTQ", "HNL", "JPY", "KWD", "BHD", "EUR"]

rates = st.decimals(min_value=Decimal("0.0000001"), max_value=Decimal("100000"), places=7,
                    allow_nan=False, allow_infinity=False).filter(lambda d: d > 0).map(lambda d: format(d, "f"))


@given(send=st.integers(1, 10**15), fee=st.integers(0, 10**12), rate=rates, promised=st.integers(0, 10**15),
       paid=st.integers(0, 10**15), disclosed=st.integers(-10**6, 10**6),
       send_ccy=st.sampled_from(CURRENCIES), recv_ccy=st.sampled_from(CURRENCIES))
@example(send=20000, fee=400, rate="17.25", promised=341550, paid=307395, disclosed=300,
         send_ccy="USD", recv_ccy="MXN")
@example(send=1, fee=0, rate="2", promised=1, paid=0, disclosed=0, send_ccy="USD", recv_ccy="USD")  # a .5 tie
def test_integer_formula_equals_the_fraction_formula(send, fee, rate, promised, paid, disclosed, send_ccy, recv_ccy):
    args = (send, fee, rate, promised, paid, disclosed)
    kw = {"send_currency": send_ccy, "receive_currency": recv_ccy}
    assert effective_cost_bps(*args, **kw) == effective_cost_bps_reference(*args, **kw)


@pytest.mark.parametrize("bad", [{"send": 0}, {"rate": "0"}, {"rate": "-1"}, {"send_currency": "XXX"},
                                 {"receive_currency": "???"}])
def test_both_refuse_the_same_inputs(bad):
    args = {"send": 100, "fee": 1, "exchange_rate": "17.1", "receive_promised": 1700, "paid": 1700,
            "disclosed": 100, "send_currency": "USD", "receive_currency": "MXN"}
    if "rate" in bad:
        args["exchange_rate"] = bad.pop("rate")
    args.update(bad)
    for f in (effective_cost_bps, effective_cost_bps_reference):
        with pytest.raises(ValueError):
            f(**args)

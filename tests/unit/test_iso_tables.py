"""Countries and currencies come from maintained ISO tables (issue 15.7), not hand-written ones."""

from __future__ import annotations

import copy
from typing import Any

import iso4217
import pycountry
import pytest

from schemas import codegen
from schemas.catalog import validate_payload
from schemas.countries import ISO_3166_ALPHA2
from schemas.errors import MalformedInput
from schemas.money import ISO_4217_MINOR_UNITS, minor_units

SENT: dict[str, Any] = {
    "transfer_id": "tx-20250501-0001",
    "operator": "mto-norte",
    "corridor": {"from": "US", "to": "MX"},
    "send": {"amount": 40000, "currency": "USD"},
    "fee": {"amount": 499, "currency": "USD"},
    "exchange_rate": "17.0512",
    "receive_promised": {"amount": 673527, "currency": "MXN"},
    "available_by": "2025-05-01T13:00:00Z",
    "destination": {"kind": "beneficiary", "beneficiary": "ben_" + "a" * 26},
    "sender": "snd_" + "b" * 26,
    "receipt_digest": "c" * 64,
    "disclosed_cost_bps": 420,
}


def test_every_iso_3166_country_is_a_corridor_country() -> None:
    assert {c.alpha_2 for c in pycountry.countries} == ISO_3166_ALPHA2
    assert {"JP", "KW", "CL", "MX", "US", "PH"} <= ISO_3166_ALPHA2
    assert codegen.country_mismatch() == []


@pytest.mark.parametrize(("to", "ccy", "amount"), [("JP", "JPY", 6_000), ("KW", "KWD", 12_345), ("CL", "CLP", 380_000)])
def test_corridors_the_hand_written_table_lacked_validate(to: str, ccy: str, amount: int) -> None:
    p = copy.deepcopy(SENT)
    p["corridor"]["to"] = to
    p["receive_promised"] = {"amount": amount, "currency": ccy}
    validate_payload("transfer.sent", 1, p)


def test_an_unassigned_country_is_refused() -> None:
    p = copy.deepcopy(SENT)
    p["corridor"]["to"] = "XK"  # Kosovo: user-assigned, not ISO 3166-1
    with pytest.raises(MalformedInput):
        validate_payload("transfer.sent", 1, p)


def test_minor_units_are_the_iso_4217_ones() -> None:
    assert (minor_units("USD"), minor_units("JPY"), minor_units("KWD"), minor_units("CLP")) == (2, 0, 3, 0)
    assert (minor_units("COP"), minor_units("IQD")) == (2, 3)  # CLDR's display digits differ: 0 and 0
    for c in iso4217.Currency:
        if c.code in ISO_4217_MINOR_UNITS:
            assert ISO_4217_MINOR_UNITS[c.code] == c.exponent
    # N.A. minor units and fund codes are not currencies a transfer settles in.
    assert not {"XAU", "XDR", "XXX", "BOV", "MXV", "CLF"} & set(ISO_4217_MINOR_UNITS)
    assert codegen.currency_mismatch() == []

"""``cuentas publishers``: the registry authority's commands, without a platform.

What needs no platform is checked here (arguments, each key's state, the
listing); registering, revoking and rotating on a running stack are in
``tests/integration/test_authority.py``.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

import pytest

from producers.cli import register
from producers.cli.publishers import key_state, registry_listing
from schemas.errors import MalformedInput
from tests.gate_builder import NOW, World, key_for


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="cuentas")
    register(parser.add_subparsers(dest="command"))
    return parser.parse_args(list(argv))


def test_the_commands_and_their_options_parse() -> None:
    a = _parse("publishers", "register", "comite-jerez", "--kind", "committee", "--key", "k", "--club-id",
               "club-jerez-chi", "--backfill-until", "2025-01-01")
    assert (a.kind, a.club_id, a.backfill_until) == ("committee", "club-jerez-chi", "2025-01-01")
    a = _parse("publishers", "revoke", "mto-a", "--key-id", "0a1b2c3d", "--reason", "key_compromise", "--json")
    assert (a.key_id, a.reason, a.json) == ("0a1b2c3d", "key_compromise", True)
    a = _parse("publishers", "rotate", "mto-a", "--key", "k", "--overlap", "2d")
    assert a.overlap == "2d"
    assert _parse("publishers", "rotate", "mto-a", "--key", "k").overlap == "7d"
    for kind in ("verifier", "payout_agent"):
        assert _parse("publishers", "register", "x-y-z", "--kind", kind, "--key", "k").kind == kind
    with pytest.raises(SystemExit):
        _parse("publishers", "revoke", "mto-a", "--reason", "because")


@pytest.mark.parametrize(
    ("argv", "reason"),
    [
        (("--kind", "committee"), "club"),  # a committee without its club
        (("--kind", "operator", "--club-id", "club-x"), "club"),  # a club for an operator
        (("--kind", "government"), "party"),
    ],
)
def test_register_refuses_a_bad_combination_before_touching_the_platform(argv: tuple[str, ...],
                                                                         reason: str) -> None:
    w = World()
    w.registration("comite-jerez", "committee")  # makes its key
    from schemas.keys import format_verifier_key, public_key_bytes

    key = format_verifier_key("comite-jerez", public_key_bytes(w.keys["comite-jerez"]))
    a = _parse("publishers", "register", "comite-jerez", "--key", key, *argv)
    with pytest.raises(MalformedInput) as e:
        a.func(a)
    assert e.value.reason == reason


def test_each_key_has_a_state_and_the_listing_shows_clubs_and_backfills() -> None:
    w = World()
    w.register("mto-a", "operator")
    w.register("comite-jerez", "committee", club_id="club-jerez-chi", arrived_at=NOW - timedelta(days=3))
    old = w.keys["mto-a"]
    w.rotate("mto-a", key_for("mto-a#2"), valid_from=NOW - timedelta(days=1), old_key_valid_until=NOW + timedelta(days=6))
    w.register("mto-b", "operator")
    w.revoke("mto-b", NOW - timedelta(hours=1), key_id=w.key_id("mto-b"))
    listing = registry_listing(w.registry, NOW)
    a_keys = {k["key_id"]: (k["state"], k["state_since_or_until"]) for k in listing["mto-a"]["keys"]}
    assert a_keys[w.key_id("mto-a", old)] == ("rotated_out", "2025-06-07T12:00:00Z")
    assert a_keys[w.key_id("mto-a")] == ("active", None)
    assert [k["state"] for k in listing["mto-b"]["keys"]] == ["revoked"]
    club = listing["comite-jerez"]
    assert club["club_id"] == "club-jerez-chi" and club["backfill_end"] == "2025-05-29T12:00:00Z"
    info = w.registry.publisher("mto-b")
    assert info is not None
    later = datetime(2030, 1, 1, tzinfo=UTC)
    assert key_state(info.keys[0], info, later) == ("revoked", "2025-06-01T11:00:00Z")

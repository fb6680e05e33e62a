"""The public projection of a refusal (schemas.rejections, issue 14.7): codes and schema paths only."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from schemas.catalog import DECLARED_NAMES, EVENT_TYPES
from schemas.rejections import PLACEHOLDER, public_path, public_reason, public_rejection


def test_declared_names_come_from_the_schemas() -> None:
    assert {"payload", "header", "sender", "beneficiary", "payout_ref", "transfer_id", "kind"} <= DECLARED_NAMES


def test_known_paths_stay_unknown_names_become_a_placeholder() -> None:
    assert public_path("/payload/sender") == "/payload/sender"
    assert public_path("/payload/destination/beneficiary") == "/payload/destination/beneficiary"
    assert public_path("/payload/milestones/3/amount") == "/payload/milestones/3/amount"
    assert public_path("/payload/Juan Pérez López") == "/payload/*"
    assert public_path("/payload/Juan Pérez López/hijo/nombre") == "/payload/*"  # nothing below an unknown name
    assert public_path("/payload/5215512345678") == "/payload/*"  # a phone number as a key
    assert public_path("/payload/a~1b") == "/payload/*"
    assert public_path("/header/publisher_id") == "/header/publisher_id"
    assert public_path("") == "" and public_path(None) == "" and public_path("payload/sender") == ""


def test_reason_codes_only() -> None:
    assert public_reason("schema") == "schema" and public_reason("key_revoked") == "key_revoked"
    assert public_reason("Juan Pérez") == "malformed" and public_reason("") == "malformed"
    assert public_reason(None) == "malformed" and public_reason("x" * 80) == "malformed"


def test_event_type_and_publisher_only_when_ours_or_registered() -> None:
    r = public_rejection("schema", "/payload/x y", "transfer.sent", "op.remesas-sol", publisher_known=True)
    assert (r.reason, r.path, r.event_type, r.publisher) == ("schema", "/payload/*", "transfer.sent", "op.remesas-sol")
    r = public_rejection("unknown_publisher", None, "juan.perez", "juan.perez.5215512345678", publisher_known=False)
    assert (r.reason, r.path, r.event_type, r.publisher) == ("unknown_publisher", "", None, None)


_SAFE = DECLARED_NAMES | {PLACEHOLDER}


@given(st.lists(st.text(max_size=30), max_size=12))
def test_no_token_of_the_input_reaches_the_public_path(tokens: list[str]) -> None:
    pointer = "/" + "/".join(t.replace("~", "~0").replace("/", "~1") for t in tokens) if tokens else ""
    out = public_path(pointer)
    if not out:
        return
    kept = out[1:].split("/")
    assert all(t in _SAFE or (t.isdigit() and len(t) <= 5) for t in kept), out
    assert PLACEHOLDER not in kept[:-1]  # cut after the first unknown token
    assert set(EVENT_TYPES)  # the catalog is not empty

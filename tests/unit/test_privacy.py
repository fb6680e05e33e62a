"""Pseudonyms and receipt codes."""

from __future__ import annotations

import hashlib
import re
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import catalog
from schemas.errors import MalformedInput
from schemas.privacy import (
    PSEUDONYM_KINDS,
    normalize_receipt_code,
    pseudonym,
    receipt_code,
    receipt_digest,
)
from tests.unit.test_schemas_roundtrip import sample

SECRET = b"operator-secret-0123456789abcdef"
OTHER = b"another-secret--0123456789abcdef"
CODE_RE = re.compile(r"^CC(-[0-9A-HJKMNP-TV-Z]{4}){4}$")


# --- pseudonyms -----------------------------------------------------------------------


def test_pseudonym_format_and_determinism() -> None:
    for kind in PSEUDONYM_KINDS:
        p = pseudonym(SECRET, kind, "+52 492 555 0101")  # type: ignore[arg-type]
        assert re.fullmatch(rf"{kind}_[a-z2-7]{{26}}", p), p
        assert p == pseudonym(SECRET, kind, "+52 492 555 0101")  # type: ignore[arg-type]
    assert set(PSEUDONYM_KINDS) == {"ben", "snd", "rev", "acct"}


def test_pseudonyms_are_separated_by_secret_kind_and_identifier() -> None:
    a = pseudonym(SECRET, "ben", "maria.lopez")
    assert a != pseudonym(OTHER, "ben", "maria.lopez")
    assert a[4:] != pseudonym(SECRET, "snd", "maria.lopez")[4:]
    assert a != pseudonym(SECRET, "ben", "maria.lopez ")
    # No ambiguity between kind and identifier (the 0x00 separator).
    assert pseudonym(SECRET, "ben", "x")[4:] != pseudonym(SECRET, "acct", "x")[5:]


def test_pseudonym_is_nfc_normalized() -> None:
    composed = "Jos\u00e9"
    decomposed = unicodedata.normalize("NFD", composed)
    assert composed != decomposed
    assert pseudonym(SECRET, "snd", composed) == pseudonym(SECRET, "snd", decomposed)


def test_pseudonyms_fit_the_schemas() -> None:
    p = sample("transfer.sent")
    p["sender"] = pseudonym(SECRET, "snd", "sender-1")
    p["destination"]["beneficiary"] = pseudonym(SECRET, "ben", "beneficiary-1")
    catalog.validate_payload("transfer.sent", 1, p)
    f = sample("flag.changed")
    f.update(
        actor=pseudonym(SECRET, "rev", "reviewer-1"),
        reason_code="reviewer_ack",
        status="acknowledged",
        previous_status="open",
    )
    catalog.validate_payload("flag.changed", 1, f)


def test_pseudonym_refusals() -> None:
    for secret in (b"", b"short", "a string secret of enough length"):
        with pytest.raises(MalformedInput) as e:
            pseudonym(secret, "ben", "x")  # type: ignore[arg-type]
        assert e.value.reason == "secret"
    with pytest.raises(MalformedInput) as e:
        pseudonym(SECRET, "name", "x")  # type: ignore[arg-type]
    assert e.value.reason == "pseudonym"
    with pytest.raises(MalformedInput) as e:
        pseudonym(SECRET, "ben", "")
    assert e.value.reason == "pseudonym"


# --- receipt codes --------------------------------------------------------------------


def test_receipt_code_format_and_determinism() -> None:
    code = receipt_code(SECRET, "tx-20250501-0001")
    assert CODE_RE.match(code), code
    assert code == receipt_code(SECRET, "tx-20250501-0001")
    assert code != receipt_code(SECRET, "tx-20250501-0002")
    assert code != receipt_code(OTHER, "tx-20250501-0001")
    assert normalize_receipt_code(code) == code


def test_receipt_codes_do_not_collide_in_practice() -> None:
    codes = {receipt_code(SECRET, f"tx-{i}") for i in range(5000)}
    assert len(codes) == 5000


@pytest.mark.parametrize(
    "typed",
    [
        "{code}",
        "{lower}",
        "{nodash}",
        "{nodash_lower}",
        "  {spaced}  ",
        "{noprefix}",
        "{endash}",
        "{fullwidth}",
    ],
)
def test_receipt_code_normalization(typed: str) -> None:
    code = receipt_code(SECRET, "tx-20250501-0001")
    body = code[3:].replace("-", "")
    variants = {
        "code": code,
        "lower": code.lower(),
        "nodash": code.replace("-", ""),
        "nodash_lower": code.replace("-", "").lower(),
        "spaced": " ".join(code.replace("-", "")),
        "noprefix": "-".join(body[i : i + 4] for i in range(0, 16, 4)),
        "endash": code.replace("-", "\u2013"),
        "fullwidth": "".join(chr(ord(c) + 0xFEE0) if c.isalnum() else c for c in code),
    }
    assert normalize_receipt_code(typed.format(**variants)) == code


def test_crockford_confusables() -> None:
    assert normalize_receipt_code("CC-O0O0-IiLl-1111-oooo") == "CC-0000-1111-1111-0000"
    assert normalize_receipt_code("cc0000111111110000") == "CC-0000-1111-1111-0000"


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "CC",
        "CC-1234-5678-9ABC",  # too short
        "CC-1234-5678-9ABC-DEFG-H",  # too long
        "CC-1234-5678-9ABC-DEFU",  # U is not Crockford base32
        "CC-1234-5678-9ABC-DEF!",
        "CC-1234-5678-9ABC-DEF\u202e",
        "XX-1234-5678-9ABC-DEFG",
        "1" * 200,
        "Maria Lopez",
    ],
)
def test_bad_receipt_codes_get_a_friendly_message(typed: str) -> None:
    with pytest.raises(MalformedInput) as e:
        normalize_receipt_code(typed)
    assert e.value.reason == "receipt_code"
    assert "CC-XXXX-XXXX-XXXX-XXXX" in str(e.value) and "receipt" in str(e.value)


def test_receipt_digest() -> None:
    code = receipt_code(SECRET, "tx-20250501-0001")
    digest = receipt_digest(code)
    assert re.fullmatch("[0-9a-f]{64}", digest)
    assert receipt_digest(code.lower().replace("-", " ")) == digest
    assert digest != hashlib.sha256(code.encode()).hexdigest()  # domain separated
    assert receipt_digest(receipt_code(SECRET, "tx-20250501-0002")) != digest
    p = sample("transfer.sent")
    p["receipt_digest"] = digest
    catalog.validate_payload("transfer.sent", 1, p)
    with pytest.raises(MalformedInput):
        receipt_digest("not a code")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_normalize_only_raises_malformed_input(text: str) -> None:
    try:
        out = normalize_receipt_code(text)
    except MalformedInput:
        return
    assert CODE_RE.match(out)
    assert normalize_receipt_code(out) == out


# --- per-transfer pseudonyms (issue 14.6) ------------------------------------------------


def test_transfer_pseudonyms_share_nothing_across_transfers() -> None:
    from schemas.privacy import transfer_pseudonym

    a = transfer_pseudonym(SECRET, "snd", "+52 492 555 0101", "trf-0001")
    b = transfer_pseudonym(SECRET, "snd", "+52 492 555 0101", "trf-0002")
    assert re.fullmatch(r"snd_[a-z2-7]{26}", a) and re.fullmatch(r"snd_[a-z2-7]{26}", b)
    assert a != b and a[4:12] != b[4:12]
    assert a == transfer_pseudonym(SECRET, "snd", "+52 492 555 0101", "trf-0001")  # the operator re-derives it
    assert a != pseudonym(SECRET, "snd", "+52 492 555 0101")  # never the old stable one
    assert a != transfer_pseudonym(SECRET, "ben", "+52 492 555 0101", "trf-0001")
    assert a != transfer_pseudonym(OTHER, "snd", "+52 492 555 0101", "trf-0001")
    # NFC: the same name typed two ways is the same person on the same transfer
    assert transfer_pseudonym(SECRET, "ben", "Jos\u00e9", "trf-1") == transfer_pseudonym(SECRET, "ben", "Jose\u0301", "trf-1")
    # the (person, transfer) split is unambiguous
    assert transfer_pseudonym(SECRET, "snd", "a", "b-c") != transfer_pseudonym(SECRET, "snd", "a\x00b", "c")
    for bad in ("", "x\x00y"):
        with pytest.raises(MalformedInput):
            transfer_pseudonym(SECRET, "snd", "ana", bad)
    with pytest.raises(MalformedInput):
        transfer_pseudonym(b"short", "snd", "ana", "trf-1")


@settings(max_examples=200)
@given(st.text(min_size=1, max_size=40), st.lists(st.from_regex(r"[a-z0-9][a-z0-9_.:-]{2,30}", fullmatch=True),
                                                   min_size=2, max_size=6, unique=True))
def test_one_person_many_transfers_never_the_same_pseudonym(person: str, tids: list[str]) -> None:
    from schemas.privacy import transfer_pseudonym

    seen = {transfer_pseudonym(SECRET, "snd", person, t) for t in tids}
    assert len(seen) == len(tids)


def test_cuentas_pseudonyms_derives_them_from_environment_variables(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import argparse
    import json

    from producers.cli import register
    from schemas.errors import CuentasError
    from schemas.privacy import transfer_pseudonym

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    monkeypatch.setenv("OP_SECRET", SECRET.decode())
    monkeypatch.setenv("WHO", "+52 492 555 0101")
    args = parser.parse_args(["pseudonyms", "--secret-env", "OP_SECRET", "--person-env", "WHO", "--kind", "ben",
                              "--transfer", "trf-0001", "--transfer", "trf-0002", "--json"])
    assert args.func(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out == {t: transfer_pseudonym(SECRET, "ben", "+52 492 555 0101", t) for t in ("trf-0001", "trf-0002")}
    args = parser.parse_args(["pseudonyms", "--secret-env", "NOPE_UNSET", "--person-env", "WHO", "--kind", "snd",
                              "--transfer", "trf-0001"])
    monkeypatch.delenv("NOPE_UNSET", raising=False)
    with pytest.raises(CuentasError):
        args.func(args)

"""Pseudonyms and receipt codes: how people appear on a public record without being exposed.

Privacy rules of the public record (enforced by the schemas, not by good
intentions: no payload field can hold free text):

* No names, addresses, phone numbers, account numbers, notes or places
  smaller than a municipality, ever.  Migrants sending money home may be
  undocumented; transfer records have been searched in bulk before.
* People appear only as pseudonyms: ``ben_``/``snd_``/``rev_``/``acct_`` +
  26 base32 characters of an HMAC keyed by a secret the publishing operator
  or platform keeps off the record.  Without the secret a pseudonym cannot
  be linked back to a person, nor a person forward to a pseudonym, and
  different secrets give unrelated ones.
* Senders and beneficiaries get a new pseudonym on every transfer
  (:func:`transfer_pseudonym`: the HMAC covers the transfer id too), so no
  public field links two transfers of one person: one seized receipt, or a
  copy of the whole log, shows each transfer alone (issue 14.6).  Whoever
  holds the secret and knows the person (the operator) can still derive the
  pseudonym of any of that person's transfers (``cuentas pseudonyms``); any
  per-person view ("paid twice", a person's history) is the operator's, from
  its own private data, never the public record's.  Reviewers (``rev_``)
  keep one pseudonym (:func:`pseudonym`): they act in public and answer for it.
* A migrant finds their own transfer with the receipt code the operator
  printed on their receipt.  The record only holds ``receipt_digest(code)``;
  the code has 80 random-looking bits derived from the operator's secret, so
  it cannot be guessed or enumerated, and knowing one code reveals nothing
  about any other transfer.  The code finds one's own transfer and nobody
  else's.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import unicodedata
from typing import Final, Literal, get_args

from schemas.errors import MalformedInput

__all__ = [
    "PSEUDONYM_KINDS",
    "RECEIPT_CODE_PREFIX",
    "PseudonymKind",
    "normalize_receipt_code",
    "pseudonym",
    "receipt_code",
    "receipt_digest",
    "transfer_pseudonym",
]

PseudonymKind = Literal["ben", "snd", "rev", "acct"]
PSEUDONYM_KINDS: Final[tuple[str, ...]] = get_args(PseudonymKind)
RECEIPT_CODE_PREFIX: Final = "CC"
_MIN_SECRET: Final = 16

# Crockford base32 (https://www.crockford.com/base32.html): no I, L, O, U, so
# that a code read aloud or copied by hand has no ambiguous characters.
_CROCKFORD: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# What people type for what they mean, per Crockford: O is 0, I and L are 1.
_CONFUSABLE: Final = str.maketrans({"O": "0", "I": "1", "L": "1"})
# Separators people (and phone keyboards) put in: spaces and every kind of dash.
_SEPARATORS: Final = frozenset(" \t\r\n\u00a0-\u2010\u2011\u2012\u2013\u2014\u2015\u2212")
_RECEIPT_DOMAIN: Final = b"cuentas-claras/receipt/v1\x00"
_DIGEST_DOMAIN: Final = b"cuentas-claras/receipt-digest/v1\x00"
_TRANSFER_PSEUDONYM_DOMAIN: Final = b"cuentas-claras/transfer-pseudonym/v1\x00"
_BAD_CODE: Final = (
    "That receipt code does not look right. It looks like CC-XXXX-XXXX-XXXX-XXXX: "
    "16 letters and numbers after CC. Please check it against your receipt."
)


def _check_secret(secret: bytes) -> None:
    if not isinstance(secret, bytes) or len(secret) < _MIN_SECRET:
        raise MalformedInput(
            f"the secret must be at least {_MIN_SECRET} random bytes", reason="secret"
        )


def pseudonym(secret: bytes, kind: PseudonymKind, identifier: str) -> str:
    """``kind + "_" + base32(HMAC-SHA256(secret, kind || 0x00 || NFC(identifier))[:16])``.

    26 lowercase base32 characters without padding (128 bits).  The kind is
    part of the MAC input, so a sender and a beneficiary with the same
    identifier get unrelated pseudonyms; NFC normalization makes the same
    text typed on two keyboards (``é`` precomposed or not) the same person.
    """
    _check_secret(secret)
    if kind not in PSEUDONYM_KINDS:
        raise MalformedInput(
            f"pseudonym kind must be one of {', '.join(PSEUDONYM_KINDS)}", reason="pseudonym"
        )
    if not isinstance(identifier, str) or not identifier:
        raise MalformedInput("the identifier to pseudonymize is empty", reason="pseudonym")
    message = kind.encode("ascii") + b"\x00" + unicodedata.normalize("NFC", identifier).encode()
    mac = hmac.new(secret, message, hashlib.sha256).digest()[:16]
    return f"{kind}_{base64.b32encode(mac).decode('ascii').rstrip('=').lower()}"


def transfer_pseudonym(secret: bytes, kind: PseudonymKind, identifier: str, transfer_id: str) -> str:
    """The pseudonym of one person on one transfer: ``kind`` + ``_`` + 26 base32 characters.

    ``base32(HMAC-SHA256(secret, domain || kind || 0x00 || NFC(identifier) || 0x00 || transfer_id)[:16])``.
    A different transfer id gives an unrelated pseudonym (HMAC is a PRF), so
    the public record cannot link two transfers of the same person; the same
    (secret, person, transfer) always gives the same one, so every publisher
    holding the secret (the operator, and the payout agent it shares the
    derivation with) names the beneficiary of a transfer alike on
    ``transfer.sent`` and ``transfer.paid_out``.  The domain keeps these from
    ever equalling a stable :func:`pseudonym` of the same person.
    """
    _check_secret(secret)
    if kind not in PSEUDONYM_KINDS:
        raise MalformedInput(
            f"pseudonym kind must be one of {', '.join(PSEUDONYM_KINDS)}", reason="pseudonym"
        )
    if not isinstance(identifier, str) or not identifier:
        raise MalformedInput("the identifier to pseudonymize is empty", reason="pseudonym")
    if not isinstance(transfer_id, str) or not transfer_id or "\x00" in transfer_id:
        raise MalformedInput("a transfer pseudonym needs the transfer id", reason="pseudonym")
    message = (_TRANSFER_PSEUDONYM_DOMAIN + kind.encode("ascii") + b"\x00"
               + unicodedata.normalize("NFC", identifier).encode() + b"\x00" + transfer_id.encode())
    mac = hmac.new(secret, message, hashlib.sha256).digest()[:16]
    return f"{kind}_{base64.b32encode(mac).decode('ascii').rstrip('=').lower()}"


def _crockford(raw: bytes) -> str:
    n = int.from_bytes(raw, "big")
    chars = len(raw) * 8 // 5
    return "".join(_CROCKFORD[(n >> (5 * i)) & 31] for i in reversed(range(chars)))


def _format(body: str) -> str:
    return "-".join([RECEIPT_CODE_PREFIX, body[0:4], body[4:8], body[8:12], body[12:16]])


def receipt_code(secret: bytes, transfer_id: str) -> str:
    """The code an operator prints on a receipt: ``CC-XXXX-XXXX-XXXX-XXXX``.

    80 bits of ``HMAC-SHA256(secret, domain || transfer_id)`` in Crockford
    base32: deterministic, so the operator can reprint it, and unguessable
    without the operator's secret.
    """
    _check_secret(secret)
    mac = hmac.new(secret, _RECEIPT_DOMAIN + transfer_id.encode(), hashlib.sha256).digest()
    return _format(_crockford(mac[:10]))


def normalize_receipt_code(text: str) -> str:
    """The canonical ``CC-XXXX-XXXX-XXXX-XXXX`` form of what a person typed.

    Forgiving about how it was typed: lowercase, full-width characters
    (NFKC), spaces and any kind of dash or none, with or without the ``CC``
    prefix, and the confusables Crockford defines (O for 0, I and L for 1).
    Anything else is ``MalformedInput(reason="receipt_code")`` with a
    message meant for the person who typed it.
    """
    if not isinstance(text, str) or len(text) > 64:
        raise MalformedInput(_BAD_CODE, reason="receipt_code")
    folded = unicodedata.normalize("NFKC", text).upper()
    compact = "".join(c for c in folded if c not in _SEPARATORS)
    if len(compact) == 18 and compact.startswith(RECEIPT_CODE_PREFIX):
        compact = compact[2:]
    body = compact.translate(_CONFUSABLE)
    if len(body) != 16 or any(c not in _CROCKFORD for c in body):
        raise MalformedInput(_BAD_CODE, reason="receipt_code")
    return _format(body)


def receipt_digest(code: str) -> str:
    """64 hex of ``SHA-256(domain || normalized code)``: what ``transfer.sent`` publishes.

    Normalizing first means a code typed any accepted way finds the transfer.
    The domain prefix keeps this digest from matching a SHA-256 of the same
    text computed for any other purpose.
    """
    normalized = normalize_receipt_code(code)
    return hashlib.sha256(_DIGEST_DOMAIN + normalized.encode("ascii")).hexdigest()

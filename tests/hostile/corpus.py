"""A corpus of named hostile inputs for the ingestion gate, each with the outcome it must get.

Every case is built from a valid, signed ``transfer.sent`` / ``transfer.paid_out`` /
``project.registered`` / ``disbursement.made`` of one of the test publishers below,
whose keys are derived deterministically from their names, so the corpus is the same
on every run given the same ``now``.

``Case.expect`` is one of

* ``"rejected:<reason>"`` -- quarantined with exactly this reason code (``schemas/README.md``
  for parse reasons, ``stream_processors.gate`` for ``time_out_of_range``,
  ``equivocation`` and ``seq_reused``, ``schemas.registry`` for authorization);
* ``"accepted"`` -- appended to the log;
* ``"duplicate"`` -- the log already has exactly this event (after canonicalization);
* ``"stored_safely"`` -- accepted although its bytes are hostile (non-canonical
  spelling, extreme but valid values): the log must hold the canonical form only,
  and the reconcilers must process it without crashing.

The schemas admit no free text (every string is a pattern, an enum or a const), so
every SQL-injection string, bidirectional override and look-alike letter placed in a
field is refused by the schema: none reaches the log as data.  What must still hold is
that the quarantine keeps the raw bytes intact, as data.

``phase`` orders publication: phase 1 first; phase 2 (replays, equivocation, sequence
reuse) needs phase 1 in the log; phase 3 (extreme valid values that stress the
reconcilers) comes after, so that a reconciler crash cannot hide the gate's results;
phase 4 (sequence numbers of 2^53 - 1, which stall sequence-gap detection) goes last.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from schemas.canonical import canonicalize
from schemas.catalog import ROLES_BY_KIND
from schemas.envelope import (
    DOMAIN_SEPARATOR,
    Envelope,
    event_id_from,
    parse_envelope,
    sign_event,
)
from schemas.errors import MalformedInput
from schemas.keys import format_verifier_key, key_id, public_key_bytes
from schemas.privacy import pseudonym, receipt_code, receipt_digest
from schemas.routing import partition_key, topic_for
from schemas.times import format_time

__all__ = [
    "AGENT",
    "AUTHORITY",
    "COMMITTEE",
    "GHOST",
    "GOVERNMENT",
    "MAX_EVENT_BYTES",
    "OPERATOR",
    "PARSE_REASONS",
    "REGISTERED",
    "SQLI",
    "RIVAL",
    "TARDY",
    "Case",
    "Corpus",
    "build_corpus",
    "private_key",
]

#: The platform's default ``MAX_EVENT_BYTES`` (the integration test runs with it).
MAX_EVENT_BYTES = 65536
#: The registry authority's name (``infra.identities.AUTHORITY_NAME``).
AUTHORITY = "registry.cuentasclaras"
SECRET = b"hostile-corpus-secret-0000000000"

OPERATOR = "mto-hostile"
COMMITTEE = "club-hostile"
GOVERNMENT = "gov-mun-hostile"
PARTY = {"level": "municipal", "id": "mun-hostile"}
REVOKED = "mto-revoked"  # its key is revoked at T
ROTATED = "mto-rotated"  # its first key is rotated out at T
RETIRED = "mto-retired"  # the whole publisher is revoked at T
LATE = "mto-late"  # its key is valid from now - 1 day only
GHOST = "mto-ghost"  # never registered
RIVAL = "mto-rival"  # another operator: speaks for no one else's transfers
AGENT = "agente-hostile"  # a payout agent OPERATOR names in some transfers
VERIFIER = "espejo-hostile"  # the verifier the corpus's projects name
STRANGER = "espejo-ajeno"  # a verifier no project names
RIVAL_CLUB = "club-rival"  # another club's committee (bound to the club of the same id)
TARDY = "mto-tardio"  # declared its backfill to end 60 days ago: what it publishes since is judged late

#: Registered test publishers: kind and government party.
REGISTERED: dict[str, tuple[str, dict[str, str] | None]] = {
    OPERATOR: ("operator", None),
    COMMITTEE: ("committee", None),
    GOVERNMENT: ("government", PARTY),
    REVOKED: ("operator", None),
    ROTATED: ("operator", None),
    RETIRED: ("operator", None),
    LATE: ("operator", None),
    RIVAL: ("operator", None),
    AGENT: ("payout_agent", None),
    VERIFIER: ("verifier", None),
    STRANGER: ("verifier", None),
    RIVAL_CLUB: ("committee", None),
    TARDY: ("operator", None),
}

#: Reasons ``parse_envelope`` gives: the gate cannot know the publisher, so it
#: acknowledges through the ``cc-publisher`` / ``cc-event-id`` message headers.
PARSE_REASONS = frozenset(
    {"oversize", "encoding", "nul_byte", "surrogate", "duplicate_key", "json", "number",
     "depth", "envelope", "unknown_type", "schema"}
)

SQLI = (
    "'; DROP TABLE log_entries; --",
    '" OR 1=1 --',
    "$$; DROP TABLE quarantine; $$",
    "\\'; DELETE FROM flags WHERE '1'='1'; --\\",
)

_RAW = "@@raw-token@@"


def private_key(name: str) -> Ed25519PrivateKey:
    """The deterministic test key called ``name``."""
    return Ed25519PrivateKey.from_private_bytes(
        hashlib.sha256(b"cuentas-claras/hostile-key/" + name.encode()).digest()
    )


def _pub(name: str) -> bytes:
    return public_key_bytes(private_key(name))


@dataclass(frozen=True)
class Case:
    name: str
    raw: bytes
    expect: str
    category: str
    publisher: str  # who hands it to the SDK (the envelope's publisher when it parses)
    event_id: str  # the id handed to publish_raw (the envelope's event id when it parses)
    topic: str
    key: bytes
    phase: int = 1
    #: What the platform answers today when it differs from ``expect`` (a known bug).
    known_bug: str | None = None

    @property
    def outcome(self) -> str:
        return "accepted" if self.expect in ("accepted", "stored_safely") else self.expect.split(":")[0]

    @property
    def reason(self) -> str:
        return self.expect.split(":", 1)[1] if self.expect.startswith("rejected:") else ""

    @property
    def parses(self) -> bool:
        return self.reason not in PARSE_REASONS


# --------------------------------------------------------------------------- JSON surgery


def _wire(env: Envelope) -> dict[str, Any]:
    return json.loads(env.leaf_bytes())


def _dump(obj: Any, *, ascii_only: bool = False) -> bytes:
    return json.dumps(obj, ensure_ascii=ascii_only, separators=(",", ":")).encode(
        "utf-8", "surrogatepass"
    )


def _walk(obj: Any, path: str) -> tuple[Any, str | int]:
    parts = path.strip("/").split("/")
    for p in parts[:-1]:
        obj = obj[int(p)] if isinstance(obj, list) else obj[p]
    last = parts[-1]
    return obj, (int(last) if isinstance(obj, list) else last)


def _get(obj: Any, path: str) -> Any:
    parent, k = _walk(obj, path)
    return parent[k]


def _set(obj: Any, path: str, value: Any) -> Any:
    obj = copy.deepcopy(obj)
    parent, k = _walk(obj, path)
    parent[k] = value
    return obj


def _del(obj: Any, path: str) -> Any:
    obj = copy.deepcopy(obj)
    parent, k = _walk(obj, path)
    del parent[k]
    return obj


def _with_token(obj: Any, path: str, token: bytes) -> bytes:
    """``obj`` with the value at ``path`` spelt as the raw JSON ``token`` (e.g. ``1e400``)."""
    raw = _dump(_set(obj, path, _RAW))
    marker = json.dumps(_RAW).encode()
    assert raw.count(marker) == 1
    return raw.replace(marker, token)


def _reorder(obj: Any) -> Any:
    """Every object's members in reverse order (same JSON value, other bytes)."""
    if isinstance(obj, dict):
        return {k: _reorder(obj[k]) for k in reversed(list(obj))}
    if isinstance(obj, list):
        return [_reorder(v) for v in obj]
    return obj


def _escape_letters(text: str) -> str:
    """A JSON string literal with every ASCII letter spelt ``\\uXXXX``."""
    return '"' + "".join(f"\\u{ord(c):04x}" if c.isalpha() else c for c in text) + '"'


# Look-alikes: bidi override, Cyrillic letters, full-width forms.
_CYRILLIC = {"a": "\u0430", "e": "\u0435", "o": "\u043e", "c": "\u0441", "p": "\u0440",
             "x": "\u0445", "y": "\u0443", "i": "\u0456", "s": "\u0455"}


def _bidi(v: str) -> str:
    return v[:1] + "\u202e" + v[1:]


def _cyrillic(v: str) -> str:
    for i, ch in enumerate(v):
        if ch in _CYRILLIC:
            return v[:i] + _CYRILLIC[ch] + v[i + 1 :]
    return "\u0430" + v[1:]


def _fullwidth(v: str) -> str:
    for i, ch in enumerate(v):
        if ch.isascii() and ch.isalnum():
            return v[:i] + chr(ord(ch) + 0xFEE0) + v[i + 1 :]
    raise AssertionError(v)


LOOKALIKES: dict[str, Callable[[str], str]] = {
    "bidi-override": _bidi,
    "cyrillic": _cyrillic,
    "fullwidth": _fullwidth,
}


# --------------------------------------------------------------------------- the corpus


class Corpus:
    """Builds the cases; ``now`` pins every time so the corpus is reproducible."""

    def __init__(self, now: datetime) -> None:
        self.now = now.astimezone(UTC).replace(microsecond=0)
        self.t_event = self.now - timedelta(hours=1)
        #: When REVOKED's key, ROTATED's first key and RETIRED stop being valid.
        self.t_revoke = self.now - timedelta(days=2)
        self.cases: list[Case] = []
        self._seq: dict[str, int] = {}
        self._n = 0
        self.anchors: dict[str, Envelope] = {}

    # -- registry --------------------------------------------------------------------

    def registry_setup(self) -> list[tuple[str, dict[str, Any]]]:
        """Registry events the authority publishes before the corpus: (type, payload)."""
        out: list[tuple[str, dict[str, Any]]] = []
        for pid, (kind, party) in REGISTERED.items():
            # valid (and history declared) for ten years: events dated before that
            # fall outside the backfill and fail on the time window
            valid_from = self.now - timedelta(days=1) if pid == LATE else self.now - timedelta(days=3650)
            p: dict[str, Any] = {
                "publisher_id": pid, "kind": kind, "roles": list(ROLES_BY_KIND[kind]),
                "public_key": format_verifier_key(pid, _pub(pid)), "valid_from": format_time(valid_from),
            }
            if party:
                p["party"] = dict(party)
            if kind == "committee":
                p["club_id"] = pid  # each test committee speaks for the club of its own id
            if pid == TARDY:
                p["backfill_until"] = format_time(self.now - timedelta(days=60))
            out.append(("publisher.registered", p))
        t = format_time(self.t_revoke)
        out.append(("publisher.revoked", {"publisher_id": REVOKED, "key_id": key_id(REVOKED, _pub(REVOKED)).hex(),
                                          "revoked_at": t, "reason_code": "key_compromise"}))
        out.append(("publisher.key_rotated", {"publisher_id": ROTATED,
                                              "new_public_key": format_verifier_key(ROTATED, _pub(ROTATED + "#2")),
                                              "valid_from": t, "old_key_valid_until": t}))
        out.append(("publisher.revoked", {"publisher_id": RETIRED, "key_id": None, "revoked_at": t,
                                          "reason_code": "retired"}))
        return out

    # -- payloads --------------------------------------------------------------------

    def _id(self, prefix: str) -> str:
        self._n += 1
        return f"{prefix}-hx{self._n:04d}"

    def sent_payload(self, tid: str | None = None, *, project_fund: bool = False,
                     operator: str = OPERATOR) -> dict[str, Any]:
        tid = tid or self._id("tr")
        dest: dict[str, Any] = (
            {"kind": "project_fund", "project_id": "prj-hostile-fund", "club_id": COMMITTEE}
            if project_fund else {"kind": "beneficiary", "beneficiary": pseudonym(SECRET, "ben", tid)}
        )
        return {
            "transfer_id": tid, "operator": operator, "corridor": {"from": "US", "to": "MX"},
            "send": {"amount": 20000, "currency": "USD"}, "fee": {"amount": 599, "currency": "USD"},
            "exchange_rate": "17.25", "receive_promised": {"amount": 345000, "currency": "MXN"},
            "available_by": format_time(self.now + timedelta(days=1)), "destination": dest,
            "sender": pseudonym(SECRET, "snd", tid), "receipt_digest": receipt_digest(receipt_code(SECRET, tid)),
            "disclosed_cost_bps": 470,
        }

    def paid_payload(self, tid: str | None = None) -> dict[str, Any]:
        return {"transfer_id": tid or self._id("tr"), "paid": {"amount": 345000, "currency": "MXN"},
                "paid_at": format_time(self.t_event), "payout_ref": self._id("po")}

    def project_payload(self, pid: str | None = None) -> dict[str, Any]:
        return {
            "project_id": pid or self._id("prj"), "club_id": COMMITTEE, "federation_id": "fed.hostile",
            "country": "MX", "state": "MX-ZAC", "municipality": "mx-zac-020", "project_type": "water_sanitation",
            "budget": {"amount": 100000000, "currency": "MXN"},
            "shares": {"club": 2500, "municipal": 2500, "state": 2500, "federal": 2500},
            "parties": {"municipal": GOVERNMENT, "state": "gov-state-hostile", "federal": "gov-fed-hostile"},
            "milestones": [
                {"milestone_id": "m1-pozo", "due": format_time(self.now + timedelta(days=90)),
                 "amount": {"amount": 40000000, "currency": "MXN"}},
                {"milestone_id": "m2-red", "due": format_time(self.now + timedelta(days=180)),
                 "amount": {"amount": 60000000, "currency": "MXN"}},
            ],
            "agreement_signed_at": format_time(self.now - timedelta(days=10)),
            "verifiers": [VERIFIER],
        }

    def disb_payload(self, pid: str | None = None, *, party_id: str = PARTY["id"],
                     level: str = PARTY["level"]) -> dict[str, Any]:
        return {"project_id": pid or self._id("prj"), "pledge_id": self._id("pl"),
                "disbursement_id": self._id("dsb"), "party_level": level, "party_id": party_id,
                "amount": {"amount": 25000000, "currency": "MXN"}, "made_at": format_time(self.t_event),
                "reference": self._id("spei")}

    _KINDS: ClassVar[dict[str, tuple[str, str]]] = {
        "sent": ("transfer.sent", OPERATOR),
        "paid": ("transfer.paid_out", OPERATOR),
        "project": ("project.registered", COMMITTEE),
        "disb": ("disbursement.made", GOVERNMENT),
    }

    def payload(self, kind: str) -> dict[str, Any]:
        return {"sent": self.sent_payload, "paid": self.paid_payload, "project": self.project_payload,
                "disb": self.disb_payload, "fund": lambda: self.sent_payload(project_fund=True)}[kind]()

    # -- signing ---------------------------------------------------------------------

    def next_seq(self, pub: str) -> int:
        self._seq[pub] = self._seq.get(pub, 0) + 1
        return self._seq[pub]

    def sign(self, name: str, pub: str, event_type: str, payload: dict[str, Any], *,
             key: Ed25519PrivateKey | None = None, event_time: datetime | str | None = None,
             seq: int | None = None, event_id: str | None = None) -> Envelope:
        return sign_event(
            key or private_key(pub), publisher_id=pub, event_type=event_type, payload=payload,
            seq=self.next_seq(pub) if seq is None else seq,
            event_time=self.t_event if event_time is None else event_time,
            event_id=event_id or event_id_from(b"hostile/" + name.encode()),
        )

    def fresh(self, name: str, kind: str = "sent", **kw: Any) -> Envelope:
        """A new valid signed event (own event id and sequence number) for case ``name``."""
        event_type, pub = self._KINDS["sent" if kind == "fund" else kind]
        return self.sign(name, kw.pop("pub", pub), event_type, self.payload(kind), **kw)

    # -- adding cases ----------------------------------------------------------------

    def add(self, name: str, raw: bytes, expect: str, category: str, *, base: Envelope | None = None,
            publisher: str | None = None, label: str | None = None, phase: int = 1,
            known_bug: str | None = None) -> Case:
        try:
            env: Envelope | None = parse_envelope(raw, max_bytes=MAX_EVENT_BYTES)
        except MalformedInput:
            env = None
        if env is not None:
            case = Case(name, raw, expect, category, env.publisher_id, env.event_id,
                        topic_for(env.event_type), partition_key(env.event_type, env.payload), phase, known_bug)
        else:
            b_pub, b_topic, b_key = OPERATOR, "publish.transfers", b"hostile"
            if base is not None:
                b_pub, b_topic = base.publisher_id, topic_for(base.event_type)
                b_key = partition_key(base.event_type, base.payload)
            case = Case(name, raw, expect, category, publisher or b_pub, label or name, b_topic, b_key,
                        phase, known_bug)
        self.cases.append(case)
        return case

    def mutate(self, name: str, kind: str, path: str, value: Any, expect: str, category: str) -> Case:
        base = self.fresh(name, kind)
        return self.add(name, _dump(_set(_wire(base), path, value)), expect, category, base=base)

    def token(self, name: str, kind: str, path: str, token: bytes, expect: str, category: str) -> Case:
        base = self.fresh(name, kind)
        return self.add(name, _with_token(_wire(base), path, token), expect, category, base=base)

    def remove(self, name: str, kind: str, path: str, expect: str, category: str) -> Case:
        base = self.fresh(name, kind)
        return self.add(name, _dump(_del(_wire(base), path)), expect, category, base=base)

    @staticmethod
    def resign_with(base_wire: dict[str, Any], key: Ed25519PrivateKey,
                    *, prefix: bytes = DOMAIN_SEPARATOR) -> dict[str, Any]:
        """``base_wire`` with its signature replaced by ``key``'s over its (unchanged) header and payload."""
        body = canonicalize({"header": base_wire["header"], "payload": base_wire["payload"]})
        return {**base_wire, "signature": base64.b64encode(key.sign(prefix + body)).decode()}

    # =============================================================================== cases

    def build(self) -> list[Case]:
        self._valid()
        self._malformed_json()
        self._encoding()
        self._duplicate_keys()
        self._structure()
        self._oversize()
        self._lookalikes()
        self._amounts_and_currencies()
        self._times()
        self._signatures()
        self._keys_and_roles()
        self._authority()
        self._registry_forgeries()
        self._sql_injection()
        self._non_canonical()
        self._replays()
        self._reconciler_stress()
        self._check()
        return self.cases

    def _valid(self) -> None:
        cat = "valid"
        for kind in ("sent", "paid", "project", "disb", "fund"):
            env = self.fresh(f"valid/{kind}", kind)
            self.anchors[kind] = env
            self.add(f"valid/{kind}", env.leaf_bytes(), "accepted", cat)

    def _malformed_json(self) -> None:
        cat = "malformed_json"
        base = self.fresh("json/base")
        raw = base.leaf_bytes()
        add = lambda n, r, e="rejected:json": self.add(f"json/{n}", r, e, cat, base=base)  # noqa: E731
        add("empty", b"")
        add("whitespace-only", b" \n\t ")
        for pct in (1, 10, 50, 90, 99):
            add(f"truncated-{pct}pct", raw[: len(raw) * pct // 100])
        add("truncated-last-byte", raw[:-1])
        add("truncated-inside-string", raw[: raw.index(b'"signature":"') + 20])
        add("trailing-garbage", raw + b"garbage")
        add("trailing-brace", raw + b"}")
        add("trailing-second-object", raw + b"{}")
        add("trailing-comma", raw[:-1] + b",}")
        add("two-envelopes-concatenated", raw + raw)
        add("single-quotes", raw.replace(b'"header"', b"'header'"))
        add("comment", b"// hostile\n" + raw)
        add("block-comment", raw[:1] + b"/* x */" + raw[1:])
        add("unquoted-key", raw.replace(b'"header"', b"header", 1))
        add("nan-amount", _with_token(_wire(base), "/payload/send/amount", b"NaN"))
        add("infinity-amount", _with_token(_wire(base), "/payload/send/amount", b"Infinity"))
        add("minus-infinity-fee", _with_token(_wire(base), "/payload/fee/amount", b"-Infinity"))
        add("hex-number", _with_token(_wire(base), "/payload/send/amount", b"0x4e20"))
        add("leading-zero-number", _with_token(_wire(base), "/payload/send/amount", b"020000"))
        add("plus-sign-number", _with_token(_wire(base), "/payload/send/amount", b"+20000"))
        add("bare-word", b"hostile")
        add("unclosed-array", b"[" * 5)
        add("control-char-in-string", raw.replace(b'"tr-', b'"\x07tr-', 1))
        add("raw-newline-in-string", raw.replace(b'"tr-', b'"\ntr-', 1))
        add("bad-escape", raw.replace(b'"tr-', b'"\\qtr-', 1))
        add("truncated-unicode-escape", raw.replace(b'"tr-', b'"\\u12tr-', 1))
        # not an object at the top: parses, but is no envelope
        for n, r in (("top-null", b"null"), ("top-true", b"true"), ("top-number", b"42"),
                     ("top-string", b'"envelope"'), ("top-empty-array", b"[]"),
                     ("top-array-of-envelope", b"[" + raw + b"]"), ("top-empty-object", b"{}")):
            add(n, r, "rejected:envelope")
        # nesting
        add("deep-array-33", b"[" * 33 + b"]" * 33, "rejected:depth")
        add("deep-array-32000", b"[" * 32000 + b"]" * 32000, "rejected:depth")
        add("deep-unclosed-object", b'{"a":' * 5000, "rejected:depth")
        add("deep-in-payload", _with_token(_wire(base), "/payload/note", b"[" * 40 + b"]" * 40),
            "rejected:depth")
        add("nested-30-in-payload", _with_token(_wire(base), "/payload/note", b"[" * 28 + b"]" * 28),
            "rejected:schema")
        add("deep-brackets-inside-string-ok", _dump(_set(_wire(base), "/payload/transfer_id", "[" * 100)),
            "rejected:schema")

    def _encoding(self) -> None:
        cat = "encoding"
        base = self.fresh("enc/base")
        raw = base.leaf_bytes()
        tid = base.payload["transfer_id"].encode()
        add = lambda n, r, e: self.add(f"enc/{n}", r, e, cat, base=base)  # noqa: E731
        add("bom-utf8", b"\xef\xbb\xbf" + raw, "rejected:encoding")
        add("bom-utf16le", b"\xff\xfe" + raw, "rejected:encoding")
        # ASCII text in UTF-16 is valid UTF-8 interleaved with NUL bytes
        add("utf16-le", raw.decode().encode("utf-16-le"), "rejected:nul_byte")
        add("utf32", raw.decode().encode("utf-32"), "rejected:encoding")
        add("invalid-byte-ff", raw.replace(tid, tid + b"\xff"), "rejected:encoding")
        add("overlong-slash", raw.replace(tid, tid + b"\xc0\xaf"), "rejected:encoding")
        add("lone-continuation", raw.replace(tid, tid + b"\x80"), "rejected:encoding")
        add("truncated-multibyte", raw.replace(tid, tid + b"\xe2\x82"), "rejected:encoding")
        add("cesu8-surrogate", raw.replace(tid, tid + b"\xed\xa0\x80"), "rejected:encoding")
        add("latin1-e-acute", raw.replace(tid, tid + b"\xe9"), "rejected:encoding")
        add("bom-inside-string", raw.replace(tid, tid + b"\xef\xbb\xbf"), "rejected:schema")
        add("nul-first-byte", b"\x00" + raw, "rejected:nul_byte")
        add("nul-inside-string", raw.replace(tid, tid + b"\x00"), "rejected:nul_byte")
        add("nul-after-end", raw + b"\x00", "rejected:nul_byte")
        add("nul-escaped-in-id", raw.replace(tid, tid + b"\\u0000"), "rejected:nul_byte")
        add("nul-escaped-in-key", raw.replace(b'"payload"', b'"pay\\u0000load"'), "rejected:nul_byte")
        add("lone-high-surrogate", raw.replace(tid, tid + b"\\ud800"), "rejected:surrogate")
        add("lone-low-surrogate", raw.replace(tid, tid + b"\\udfff"), "rejected:surrogate")
        add("reversed-surrogate-pair", raw.replace(tid, tid + b"\\udc00\\ud800"), "rejected:surrogate")
        add("lone-surrogate-in-key", raw.replace(b'"payload"', b'"payload\\ud83d"'), "rejected:surrogate")
        add("valid-surrogate-pair-emoji", raw.replace(tid, tid + b"\\ud83d\\ude00"), "rejected:schema")
        add("raw-emoji", raw.replace(tid, tid + "\U0001f4b8".encode()), "rejected:schema")

    def _duplicate_keys(self) -> None:
        cat = "duplicate_key"
        base = self.fresh("dup/base")
        raw = base.leaf_bytes()
        w = _wire(base)
        add = lambda n, r: self.add(f"dup/{n}", r, "rejected:duplicate_key", cat, base=base)  # noqa: E731
        add("header-twice", raw[:-1] + b',"header":' + _dump(w["header"]) + b"}")
        add("payload-twice", raw[:-1] + b',"payload":{}}')
        add("signature-twice", raw[:-1] + b',"signature":' + _dump(w["signature"]) + b"}")
        add("event-id-twice-same-value",
            raw.replace(b'"event_id":', b'"event_id":' + _dump(base.event_id) + b',"event_id":', 1))
        add("amount-twice", raw.replace(b'"amount":20000', b'"amount":1,"amount":20000', 1))
        add("escaped-spelling-of-header", raw[:-1] + b',"he\\u0061der":{}}')
        add("transfer-id-twice-other-value",
            raw.replace(b'"transfer_id":', b'"transfer_id":"tr-other","transfer_id":', 1))

    def _structure(self) -> None:
        cat = "structure"
        rej_env, rej_schema = "rejected:envelope", "rejected:schema"
        # top level
        for member in ("header", "payload", "signature"):
            self.remove(f"struct/missing-{member}", "sent", f"/{member}", rej_env, cat)
        self.mutate("struct/extra-top-level", "sent", "/sig2", "x", rej_env, cat)
        self.mutate("struct/header-is-array", "sent", "/header", [], rej_env, cat)
        self.mutate("struct/header-is-string", "sent", "/header", "header", rej_env, cat)
        self.mutate("struct/payload-is-array", "sent", "/payload", [], rej_env, cat)
        self.mutate("struct/payload-is-null", "sent", "/payload", None, rej_env, cat)
        self.mutate("struct/payload-is-string", "sent", "/payload", "{}", rej_env, cat)
        self.mutate("struct/signature-is-number", "sent", "/signature", 1, rej_env, cat)
        self.mutate("struct/signature-is-null", "sent", "/signature", None, rej_env, cat)
        self.mutate("struct/signature-is-byte-array", "sent", "/signature", list(range(64)), rej_env, cat)
        base = self.fresh("struct/capitalised-member")
        w = _wire(base)
        self.add("struct/capitalised-member", _dump({"Header": w["header"], "payload": w["payload"],
                                                     "signature": w["signature"]}), rej_env, cat, base=base)
        # header
        for f in ("event_id", "type", "schema_version", "publisher_id", "key_id", "seq", "event_time"):
            self.remove(f"struct/header-missing-{f}", "sent", f"/header/{f}", rej_env, cat)
        self.mutate("struct/header-extra-field", "sent", "/header/priority", 1, rej_env, cat)
        wrong: list[tuple[str, str, Any, str]] = [
            ("event-id-int", "event_id", 1234, rej_env),
            ("event-id-upper", "event_id", "A" * 26, rej_env),
            ("event-id-trailing-newline", "event_id", "a" * 26 + "\n", rej_env),
            ("event-id-short", "event_id", "a" * 25, rej_env),
            ("schema-version-string", "schema_version", "1", rej_env),
            ("schema-version-float", "schema_version", 1.0, rej_env),
            ("schema-version-zero", "schema_version", 0, rej_env),
            ("schema-version-2", "schema_version", 2, "rejected:unknown_type"),
            ("schema-version-1000", "schema_version", 1000, "rejected:unknown_type"),
            ("schema-version-1001", "schema_version", 1001, rej_env),
            ("schema-version-bool", "schema_version", True, rej_env),
            ("seq-zero", "seq", 0, rej_env),
            ("seq-negative", "seq", -1, rej_env),
            ("seq-string", "seq", "1", rej_env),
            ("seq-float", "seq", 1.0, rej_env),
            ("seq-bool", "seq", True, rej_env),
            ("seq-null", "seq", None, rej_env),
            ("type-unknown", "type", "transfer.stolen", "rejected:unknown_type"),
            ("type-uppercase", "type", "Transfer.Sent", rej_env),
            ("type-registry-with-transfer-payload", "type", "publisher.registered", rej_schema),
            ("type-other-payload", "type", "transfer.paid_out", rej_schema),
            ("type-too-long", "type", "transfer." + "x" * 60, rej_env),
            ("key-id-uppercase", "key_id", "ABCDEF01", rej_env),
            ("key-id-short", "key_id", "abcdef0", rej_env),
            ("publisher-id-uppercase", "publisher_id", "MTO-HOSTILE", rej_env),
            ("publisher-id-too-long", "publisher_id", "m" * 65, rej_env),
            ("publisher-id-trailing-newline", "publisher_id", OPERATOR + "\n", rej_env),
            ("event-time-int", "event_time", 1700000000, rej_env),
        ]
        for n, f, v, e in wrong:
            self.mutate(f"struct/header-{n}", "sent", f"/header/{f}", v, e, cat)
        self.token("struct/seq-2-pow-53", "sent", "/header/seq", str(2**53).encode(), "rejected:number", cat)
        # payload: every required member of transfer.sent, extra members, wrong types
        for f in self.sent_payload():
            self.remove(f"struct/payload-missing-{f}", "sent", f"/payload/{f}", rej_schema, cat)
        self.remove("struct/payload-missing-money-currency", "sent", "/payload/send/currency", rej_schema, cat)
        self.remove("struct/payload-missing-destination-kind", "sent", "/payload/destination/kind",
                    rej_schema, cat)
        self.mutate("struct/payload-extra-note", "sent", "/payload/note", "pay rent", rej_schema, cat)
        self.mutate("struct/payload-extra-sender-name", "sent", "/payload/sender_name", "Maria", rej_schema, cat)
        self.mutate("struct/payload-extra-in-money", "sent", "/payload/send/memo", "x", rej_schema, cat)
        self.mutate("struct/payload-extra-in-destination", "sent", "/payload/destination/phone", "+52",
                    rej_schema, cat)
        self.mutate("struct/payload-corridor-string", "sent", "/payload/corridor", "US-MX", rej_schema, cat)
        self.mutate("struct/payload-destination-both-kinds", "sent", "/payload/destination/project_id",
                    "prj-x", rej_schema, cat)
        self.mutate("struct/payload-destination-kind-unknown", "sent", "/payload/destination/kind", "cash",
                    rej_schema, cat)
        self.mutate("struct/payload-milestones-empty", "project", "/payload/milestones", [], rej_schema, cat)
        self.mutate("struct/payload-shares-not-10000", "project", "/payload/shares/club", 2600, rej_schema, cat)
        self.mutate("struct/payload-state-other-country", "project", "/payload/state", "GT-GU", rej_schema, cat)
        self.mutate("struct/payload-milestones-51", "project", "/payload/milestones",
                    [{"milestone_id": f"m{i:03d}", "due": format_time(self.now),
                      "amount": {"amount": 1, "currency": "MXN"}} for i in range(51)], rej_schema, cat)
        self.mutate("struct/payload-party-level-unknown", "disb", "/payload/party_level", "county",
                    rej_schema, cat)

    def _oversize(self) -> None:
        cat = "oversize"
        base = self.fresh("size/base")
        raw = base.leaf_bytes()
        self.add("size/padded-to-limit-plus-one", raw[:-1] + b" " * (MAX_EVENT_BYTES + 1 - len(raw)) + b"}",
                 "rejected:oversize", cat, base=base)
        self.add("size/huge-extra-string", _dump(_set(_wire(base), "/payload/note", "A" * 70000)),
                 "rejected:oversize", cat, base=base)
        self.add("size/huge-id", _dump(_set(_wire(base), "/payload/transfer_id", "t" * 100000)),
                 "rejected:oversize", cat, base=base)
        self.add("size/300k-open-brackets", b"[" * 300000, "rejected:oversize", cat, base=base)
        self.add("size/300k-garbage", bytes(range(256)) * 1172, "rejected:oversize", cat, base=base)
        # the biggest envelope accepted: exactly MAX_EVENT_BYTES, padded with whitespace
        env = self.fresh("size/exactly-at-limit")
        raw = env.leaf_bytes()
        self.add("size/exactly-at-limit", raw[:-1] + b" " * (MAX_EVENT_BYTES - len(raw)) + b"}",
                 "stored_safely", cat)

    def _lookalikes(self) -> None:
        cat = "lookalike_id"
        fields = {
            "sent": ["/header/event_id", "/header/publisher_id", "/header/key_id", "/header/type",
                     "/payload/transfer_id", "/payload/operator", "/payload/destination/beneficiary",
                     "/payload/sender", "/payload/receipt_digest"],
            "fund": ["/payload/destination/project_id", "/payload/destination/club_id"],
            "paid": ["/payload/transfer_id", "/payload/payout_ref"],
            "project": ["/payload/project_id", "/payload/club_id", "/payload/federation_id",
                        "/payload/municipality", "/payload/state", "/payload/parties/municipal",
                        "/payload/parties/state", "/payload/parties/federal",
                        "/payload/milestones/0/milestone_id"],
            "disb": ["/payload/project_id", "/payload/pledge_id", "/payload/disbursement_id",
                     "/payload/party_id", "/payload/reference"],
        }
        for kind, paths in fields.items():
            for path in paths:
                for variant, fn in LOOKALIKES.items():
                    name = f"lookalike/{kind}{path}/{variant}"
                    base = self.fresh(name, kind)
                    w = _wire(base)
                    v = _get(w, path)
                    bad = fn(v)
                    assert bad != v and not bad.isascii(), (name, bad)
                    expect = "rejected:envelope" if path.startswith("/header") else "rejected:schema"
                    self.add(name, _dump(_set(w, path, bad)), expect, cat, base=base)

    def _amounts_and_currencies(self) -> None:
        cat = "amount"
        s = "rejected:schema"
        tokens = [
            ("send-negative", "/payload/send/amount", b"-1", s),
            ("send-zero", "/payload/send/amount", b"0", s),
            ("send-minus-zero", "/payload/send/amount", b"-0", s),
            ("send-2-pow-63", "/payload/send/amount", str(2**63).encode(), "rejected:number"),
            ("send-2-pow-64", "/payload/send/amount", str(2**64).encode(), "rejected:number"),
            ("send-minus-2-pow-63", "/payload/send/amount", str(-(2**63)).encode(), "rejected:number"),
            ("send-10-pow-16", "/payload/send/amount", str(10**16).encode(), "rejected:number"),
            ("send-2-pow-53", "/payload/send/amount", str(2**53).encode(), "rejected:number"),
            ("send-10-pow-15-plus-1", "/payload/send/amount", str(10**15 + 1).encode(), s),
            ("send-max-safe-integer", "/payload/send/amount", str(2**53 - 1).encode(), s),
            ("send-float-1e3", "/payload/send/amount", b"1e3", s),
            ("send-float-1000.0", "/payload/send/amount", b"1000.0", s),
            ("send-float-fraction", "/payload/send/amount", b"199.99", s),
            ("send-float-1e400", "/payload/send/amount", b"1e400", "rejected:number"),
            ("send-float-minus-1e400", "/payload/send/amount", b"-1e400", "rejected:number"),
            ("send-float-tiny", "/payload/send/amount", b"1e-400", s),
            ("send-thousand-digits", "/payload/send/amount", b"9" * 1000, "rejected:number"),
            ("send-string", "/payload/send/amount", b'"20000"', s),
            ("send-bool", "/payload/send/amount", b"true", s),
            ("send-null", "/payload/send/amount", b"null", s),
            ("send-array", "/payload/send/amount", b"[20000]", s),
            ("fee-negative", "/payload/fee/amount", b"-1", s),
            ("fee-float", "/payload/fee/amount", b"5.99", s),
            ("promised-zero", "/payload/receive_promised/amount", b"0", s),
            ("disclosed-bps-over-10000", "/payload/disclosed_cost_bps", b"10001", s),
            ("disclosed-bps-negative", "/payload/disclosed_cost_bps", b"-1", s),
            ("disclosed-bps-float", "/payload/disclosed_cost_bps", b"4.7", s),
        ]
        for n, path, tok, e in tokens:
            self.token(f"amount/{n}", "sent", path, tok, e, cat)
        self.token("amount/paid-zero", "paid", "/payload/paid/amount", b"0", s, cat)
        self.token("amount/paid-negative", "paid", "/payload/paid/amount", b"-345000", s, cat)
        self.token("amount/budget-zero", "project", "/payload/budget/amount", b"0", s, cat)
        self.token("amount/milestone-over-max", "project", "/payload/milestones/0/amount/amount",
                   str(10**15 + 1).encode(), s, cat)
        self.token("amount/disbursement-negative", "disb", "/payload/amount/amount", b"-5", s, cat)
        self.token("amount/disbursement-2-pow-63", "disb", "/payload/amount/amount", str(2**63).encode(),
                   "rejected:number", cat)
        cat = "currency"
        for n, v in (("lowercase", "usd"), ("unknown-xxx", "XXX"), ("crypto", "BTC"), ("empty", ""),
                     ("four-letters", "USDT"), ("symbol", "US$"), ("padded", " USD"), ("number", 840)):
            self.mutate(f"currency/send-{n}", "sent", "/payload/send/currency", v, s, cat)
        self.mutate("currency/fee-not-send-currency", "sent", "/payload/fee/currency", "MXN", s, cat)
        self.mutate("currency/paid-lowercase", "paid", "/payload/paid/currency", "mxn", s, cat)
        self.mutate("currency/milestone-other-than-budget", "project", "/payload/milestones/0/amount/currency",
                    "USD", s, cat)
        self.mutate("currency/disbursement-withdrawn-code", "disb", "/payload/amount/currency", "MXV", s, cat)
        cat = "exchange_rate"
        for n, v in (("zero", "0"), ("zero-decimal", "0.0"), ("negative", "-17.25"), ("float", 17.25),
                     ("exponent", "1e3"), ("comma", "17,25"), ("nan", "NaN"), ("eleven-decimals", "17.25000000001"),
                     ("leading-zero", "017.25"), ("ten-integer-digits", "1234567890.5"), ("empty", "")):
            self.mutate(f"rate/{n}", "sent", "/payload/exchange_rate", v, s, cat)

    def _times(self) -> None:
        cat = "time"
        out = "rejected:time_out_of_range"
        far = [
            ("future-2h", self.now + timedelta(hours=2), out),
            ("future-1y", self.now + timedelta(days=365), out),
            ("future-9999", "9999-12-31T23:59:59.999999Z", out),
            ("past-1900", "1900-01-01T00:00:00Z", out),
            ("past-0001", "0001-01-01T00:00:00Z", out),
            ("past-3660-days", self.now - timedelta(days=3660), out),  # before the declared backfill
            ("future-60s-within-skew", self.now + timedelta(seconds=60), "accepted"),
            ("past-3640-days-within-backfill", self.now - timedelta(days=3640), "accepted"),
            ("microseconds", self.t_event + timedelta(microseconds=123456), "accepted"),
        ]
        for n, t, e in far:
            env = self.fresh(f"time/{n}", event_time=t)
            self.add(f"time/{n}", env.leaf_bytes(), e, cat)
        # TARDY's declared backfill ended 60 days ago: MAX_EVENT_AGE (30 days)
        # applies after it; an event 7-30 days old is accepted, and flagged late.
        for n, days, e in (("outside-backfill-older-than-max-age", 40, out),
                           ("inside-declared-backfill", 100, "accepted"),
                           ("published-late", 10, "accepted"),
                           ("published-on-time", 6, "accepted")):
            env = self.sign(f"time/{n}", TARDY, "transfer.sent", self.sent_payload(operator=TARDY),
                            event_time=self.now - timedelta(days=days))
            self.anchors[f"time/{n}"] = env
            self.add(f"time/{n}", env.leaf_bytes(), e, cat)
        stamp = format_time(self.t_event)
        bad = [
            ("offset-plus-2", stamp[:-1] + "+02:00"),
            ("offset-minus-5", stamp[:-1] + "-05:00"),
            ("offset-zero-numeric", stamp[:-1] + "+00:00"),
            ("lowercase-z", stamp[:-1] + "z"),
            ("naive", stamp[:-1]),
            ("space-separator", stamp.replace("T", " ")),
            ("no-seconds", stamp[:16] + "Z"),
            ("february-30", "2025-02-30T12:00:00Z"),
            ("hour-24", stamp[:11] + "24:00:00Z"),
            ("leap-second", stamp[:17] + "60Z"),
            ("seven-fraction-digits", stamp[:-1] + ".1234567Z"),
            ("year-zero", "0000-01-01T00:00:00Z"),
            ("five-digit-year", "10000-01-01T00:00:00Z"),
            ("date-only", stamp[:10]),
            ("trailing-newline", stamp + "\n"),
        ]
        for n, v in bad:
            self.mutate(f"time/header-{n}", "sent", "/header/event_time", v, "rejected:envelope", cat)
        for n, v in bad[:6]:
            self.mutate(f"time/available-by-{n}", "sent", "/payload/available_by", v, "rejected:schema", cat)
        self.mutate("time/paid-at-month-13", "paid", "/payload/paid_at", "2025-13-01T00:00:00Z",
                    "rejected:schema", cat)
        self.mutate("time/made-at-epoch-int", "disb", "/payload/made_at", 1700000000, "rejected:schema", cat)
        self.mutate("time/milestone-due-offset", "project", "/payload/milestones/0/due",
                    "2026-01-01T00:00:00+01:00", "rejected:schema", cat)

    def _signatures(self) -> None:
        cat = "signature"
        bad = "rejected:bad_signature"
        intruder = private_key("intruder")

        def flipped(n: str, byte: int, bit: int = 0) -> None:
            env = self.fresh(n)
            sig = bytearray(env.signature)
            sig[byte] ^= 1 << bit
            self.add(n, _dump({**_wire(env), "signature": base64.b64encode(bytes(sig)).decode()}), bad, cat)

        flipped("sig/flip-first-byte", 0)
        flipped("sig/flip-byte-31", 31, 7)
        flipped("sig/flip-last-byte", 63, 3)
        for n, b in (("all-zero", bytes(64)), ("all-ff", b"\xff" * 64)):
            env = self.fresh(f"sig/{n}")
            self.add(f"sig/{n}", _dump({**_wire(env), "signature": base64.b64encode(b).decode()}), bad, cat)
        # another key, claiming the registered key id: a forgery
        n = "sig/other-key-claims-registered-key-id"
        self.add(n, _dump(self.resign_with(_wire(self.fresh(n)), intruder)), bad, cat)
        # signed without the domain separator, or over non-canonical bytes
        env = self.fresh("sig/no-domain-separator")
        self.add("sig/no-domain-separator",
                 _dump(self.resign_with(_wire(env), private_key(OPERATOR), prefix=b"")), bad, cat)
        env = self.fresh("sig/other-domain-separator")
        self.add("sig/other-domain-separator",
                 _dump(self.resign_with(_wire(env), private_key(OPERATOR), prefix=b"cuentas-claras/event/v2\n")),
                 bad, cat)
        # the signature of another valid event spliced in
        a, b = self.fresh("sig/spliced"), self.fresh("sig/spliced-donor")
        self.add("sig/spliced", _dump({**_wire(a), "signature": _wire(b)["signature"]}), bad, cat)
        # tampering after signing (schema-valid changes)
        tamper = [
            ("tamper-send-amount", "/payload/send/amount", 20001),
            ("tamper-fee", "/payload/fee/amount", 0),
            ("tamper-exchange-rate", "/payload/exchange_rate", "17.26"),
            ("tamper-corridor", "/payload/corridor/to", "GT"),
            ("tamper-seq", "/header/seq", 9999),
            ("tamper-event-time", "/header/event_time", format_time(self.t_event + timedelta(seconds=1))),
            ("tamper-event-id", "/header/event_id", event_id_from(b"hostile/tampered-id")),
        ]
        for n, path, v in tamper:
            self.mutate(f"sig/{n}", "sent", path, v, bad, cat)
        # key ids that are not the publisher's registered key
        env = self.sign("sig/unregistered-key", OPERATOR, "transfer.sent", self.sent_payload(), key=intruder)
        self.add("sig/unregistered-key", env.leaf_bytes(), "rejected:unknown_key", cat)
        env = self.sign("sig/committee-key-as-operator", OPERATOR, "transfer.sent", self.sent_payload(),
                        key=private_key(COMMITTEE))
        self.add("sig/committee-key-as-operator", env.leaf_bytes(), "rejected:unknown_key", cat)
        env = self.fresh("sig/relabelled-publisher")
        self.add("sig/relabelled-publisher", _dump(_set(_wire(env), "/header/publisher_id", REVOKED)),
                 "rejected:unknown_key", cat)
        self.mutate("sig/key-id-zeros", "sent", "/header/key_id", "00000000", "rejected:unknown_key", cat)
        # malformed signature strings: refused by the envelope schema
        env = self.fresh("sig/malformed-base")
        sig = env.signature_b64()
        assert sig.endswith("==")
        spellings = [
            ("non-canonical-padding-bits", sig[:-3] + chr(ord(sig[-3]) + 1) + "=="),
            ("base64url", sig.replace("+", "-").replace("/", "_") if ("+" in sig or "/" in sig)
             else "-" + sig[1:]),
            ("no-padding", sig.rstrip("=")),
            ("short-63-bytes", base64.b64encode(env.signature[:63]).decode()),
            ("long-65-bytes", base64.b64encode(env.signature + b"\x00").decode()),
            ("embedded-newline", sig[:40] + "\n" + sig[40:]),
            ("empty", ""),
            ("hex", env.signature.hex()),
        ]
        for n, v in spellings:
            self.add(f"sig/malformed-{n}", _dump({**_wire(env), "signature": v}), "rejected:envelope", cat,
                     base=env)

    def _keys_and_roles(self) -> None:
        cat = "authorization"
        revoked_after = self.t_revoke + timedelta(days=1)
        before = self.t_revoke - timedelta(days=1)
        add = lambda n, env, e: self.add(n, env.leaf_bytes(), e, cat)  # noqa: E731
        own = lambda pub: self.sent_payload(operator=pub)  # noqa: E731  a transfer of its own
        add("auth/revoked-key-after-revocation",
            self.sign("auth/revoked-key-after-revocation", REVOKED, "transfer.sent", own(REVOKED),
                      event_time=revoked_after), "rejected:key_revoked")
        add("auth/revoked-key-paid-out-after-revocation",
            self.sign("auth/revoked-key-paid-out-after-revocation", REVOKED, "transfer.paid_out",
                      self.paid_payload(), event_time=self.t_event), "rejected:key_revoked")
        add("auth/revoked-key-at-revocation-instant",
            self.sign("auth/revoked-key-at-revocation-instant", REVOKED, "transfer.sent", own(REVOKED),
                      event_time=self.t_revoke), "rejected:key_revoked")
        # Revocation and rotation are judged at arrival too (issue 13): an event
        # dated before them but arriving after them is refused (it used to be
        # accepted: a thief with the key could backdate).
        env = self.sign("auth/revoked-key-backdated-before-revocation", REVOKED, "transfer.sent", own(REVOKED),
                        event_time=before)
        self.anchors["revoked-before"] = env
        add("auth/revoked-key-backdated-before-revocation", env, "rejected:key_revoked")
        old, new = private_key(ROTATED), private_key(ROTATED + "#2")
        add("auth/rotated-old-key-after-rotation",
            self.sign("auth/rotated-old-key-after-rotation", ROTATED, "transfer.sent", own(ROTATED),
                      key=old, event_time=revoked_after), "rejected:key_expired")
        add("auth/rotated-old-key-backdated-before-rotation",
            self.sign("auth/rotated-old-key-backdated-before-rotation", ROTATED, "transfer.sent", own(ROTATED),
                      key=old, event_time=before), "rejected:key_expired")
        add("auth/rotated-new-key",
            self.sign("auth/rotated-new-key", ROTATED, "transfer.sent", own(ROTATED), key=new),
            "accepted")
        add("auth/rotated-new-key-before-its-validity",
            self.sign("auth/rotated-new-key-before-its-validity", ROTATED, "transfer.sent",
                      own(ROTATED), key=new, event_time=before), "rejected:key_not_yet_valid")
        add("auth/retired-publisher-after-revocation",
            self.sign("auth/retired-publisher-after-revocation", RETIRED, "transfer.sent", own(RETIRED),
                      event_time=revoked_after), "rejected:publisher_revoked")
        add("auth/retired-publisher-backdated-before-revocation",
            self.sign("auth/retired-publisher-backdated-before-revocation", RETIRED, "transfer.sent",
                      own(RETIRED), event_time=before), "rejected:publisher_revoked")
        add("auth/key-not-yet-valid",
            self.sign("auth/key-not-yet-valid", LATE, "transfer.sent", own(LATE),
                      event_time=self.now - timedelta(days=2)), "rejected:key_not_yet_valid")
        add("auth/late-key-once-valid",
            self.sign("auth/late-key-once-valid", LATE, "transfer.sent", own(LATE)), "accepted")
        add("auth/unknown-publisher",
            self.sign("auth/unknown-publisher", GHOST, "transfer.sent", self.sent_payload()),
            "rejected:unknown_publisher")
        add("auth/unknown-publisher-paid-out",
            self.sign("auth/unknown-publisher-paid-out", GHOST, "transfer.paid_out", self.paid_payload()),
            "rejected:unknown_publisher")
        # roles
        role = "rejected:role_not_allowed"
        for n, pub, kind in (("committee-publishes-transfer", COMMITTEE, "sent"),
                             ("committee-publishes-payout", COMMITTEE, "paid"),
                             ("committee-publishes-disbursement", COMMITTEE, "disb"),
                             ("operator-publishes-project", OPERATOR, "project"),
                             ("operator-publishes-disbursement", OPERATOR, "disb"),
                             ("government-publishes-transfer", GOVERNMENT, "sent"),
                             ("government-registers-project", GOVERNMENT, "project")):
            add(f"auth/{n}", self.fresh(f"auth/{n}", kind, pub=pub), role)
        party = "rejected:party_mismatch"
        add("auth/government-disburses-for-another-party",
            self.sign("auth/government-disburses-for-another-party", GOVERNMENT, "disbursement.made",
                      self.disb_payload(party_id="mun-neighbour")), party)
        add("auth/government-disburses-as-another-level",
            self.sign("auth/government-disburses-as-another-level", GOVERNMENT, "disbursement.made",
                      self.disb_payload(level="federal")), party)
        add("auth/government-disburses-for-own-party",
            self.sign("auth/government-disburses-for-own-party", GOVERNMENT, "disbursement.made",
                      self.disb_payload()), "accepted")

    def _authority(self) -> None:
        """Who may speak for which subject (issue 13): each case names the attack it stops."""
        cat = "authority"
        owner = "rejected:not_subject_owner"
        # phase 1: decided from the event and the registry alone
        n = "authority/transfer-sent-naming-another-operator"
        self.add(n, self.sign(n, RIVAL, "transfer.sent", self.sent_payload()).leaf_bytes(), owner, cat)
        n = "authority/project-for-another-club"
        p = self.project_payload()
        p["club_id"] = RIVAL_CLUB
        self.add(n, self.sign(n, COMMITTEE, "project.registered", p).leaf_bytes(), owner, cat)
        proj = self.anchors["project"]
        n = "authority/verification-signed-for-another-verifier"
        v = self._verification(proj, STRANGER)
        v["verifier_id"] = VERIFIER
        self.add(n, self.sign(n, STRANGER, "milestone.verified", v).leaf_bytes(), owner, cat)
        n = "authority/committee-verifies-its-own-report"
        v = self._verification(proj, COMMITTEE)
        self.add(n, self.sign(n, COMMITTEE, "milestone.verified", v).leaf_bytes(), "rejected:role_not_allowed", cat)
        n = "authority/transfer-naming-a-payout-agent"
        named = self.sent_payload()
        named["payout_agents"] = [AGENT]
        agent_sent = self.sign(n, OPERATOR, "transfer.sent", named)
        self.add(n, agent_sent.leaf_bytes(), "accepted", cat)
        # phase 2: the subject is in the log (phase 1)
        sent = self.anchors["sent"]
        tid = sent.payload["transfer_id"]
        n = "authority/payout-by-another-operator"
        self.add(n, self.sign(n, RIVAL, "transfer.paid_out", self.paid_payload(tid)).leaf_bytes(), owner, cat,
                 phase=2)
        n = "authority/payout-by-an-agent-the-transfer-does-not-name"
        self.add(n, self.sign(n, AGENT, "transfer.paid_out", self.paid_payload(tid)).leaf_bytes(), owner, cat,
                 phase=2)
        n = "authority/cancellation-by-another-operator"
        self.add(n, self.sign(n, RIVAL, "transfer.cancelled", {"transfer_id": agent_sent.payload["transfer_id"],
                                                               "cancelled_at": format_time(self.t_event),
                                                               "reason_code": "sender_request"}).leaf_bytes(),
                 owner, cat, phase=2)
        n = "authority/second-transfer-sent-backdated"
        p = copy.deepcopy(dict(sent.payload))
        p["receive_promised"]["amount"] = 1000
        self.add(n, self.sign(n, OPERATOR, "transfer.sent", p, event_time=self.t_event - timedelta(days=3)).leaf_bytes(),
                 "rejected:subject_exists", cat, phase=2)
        n = "authority/second-project-registration"
        p = copy.deepcopy(dict(proj.payload))
        p["shares"] = {"club": 10000, "municipal": 0, "state": 0, "federal": 0}
        self.add(n, self.sign(n, COMMITTEE, "project.registered", p).leaf_bytes(), "rejected:subject_exists", cat,
                 phase=2)
        n = "authority/report-on-another-clubs-project"
        rep = {"project_id": proj.payload["project_id"], "milestone_id": "m1-pozo",
               "spent": {"amount": 99000000, "currency": "MXN"}, "progress_pct": 100,
               "reported_at": format_time(self.t_event), "evidence": [hashlib.sha256(b"x").hexdigest()]}
        self.add(n, self.sign(n, RIVAL_CLUB, "milestone.reported", rep).leaf_bytes(), owner, cat, phase=2)
        n = "authority/verification-by-a-verifier-the-project-does-not-name"
        self.add(n, self.sign(n, STRANGER, "milestone.verified", self._verification(proj, STRANGER)).leaf_bytes(),
                 owner, cat, phase=2)
        n = "authority/payout-before-its-transfer"
        paid = self.paid_payload(tid)
        paid["paid_at"] = format_time(sent.time() - timedelta(hours=1))
        self.add(n, self.sign(n, OPERATOR, "transfer.paid_out", paid).leaf_bytes(), "rejected:time_before_origin",
                 cat, phase=2)
        # phase 3: allowed, once the subject is known
        n = "authority/payout-by-the-named-agent"
        self.add(n, self.sign(n, AGENT, "transfer.paid_out",
                              self.paid_payload(agent_sent.payload["transfer_id"])).leaf_bytes(), "accepted", cat,
                 phase=3)
        n = "authority/verification-by-the-named-verifier"
        self.add(n, self.sign(n, VERIFIER, "milestone.verified", self._verification(proj, VERIFIER)).leaf_bytes(),
                 "accepted", cat, phase=3)

    def _verification(self, proj: Envelope, verifier: str) -> dict[str, Any]:
        return {"project_id": proj.payload["project_id"], "milestone_id": "m1-pozo",
                "verified_at": format_time(self.t_event), "verifier_id": verifier, "outcome": "confirmed"}

    def _registry_forgeries(self) -> None:
        cat = "registry_forgery"
        na = "rejected:not_authority"
        op = private_key(OPERATOR)
        reg = {"publisher_id": "mto-evil", "kind": "operator", "roles": list(ROLES_BY_KIND["operator"]),
               "public_key": format_verifier_key("mto-evil", _pub("mto-evil")), "valid_from": "2000-01-01T00:00:00Z"}
        n = "registry/operator-registers-a-publisher"
        self.add(n, self.sign(n, OPERATOR, "publisher.registered", reg, key=op).leaf_bytes(), na, cat)
        n = "registry/operator-claims-to-be-the-authority"
        self.add(n, self.sign(n, AUTHORITY, "publisher.registered", reg, key=op, seq=1000).leaf_bytes(), na, cat)
        # The authority's first event (the platform publisher's registration) has seq 1:
        # a forgery reusing it is a forgery, not the authority's equivocation.
        n = "registry/operator-claims-authority-seq-1"
        self.add(n, self.sign(n, AUTHORITY, "publisher.registered", reg, key=op, seq=1).leaf_bytes(), na, cat)
        # A non-registry event claiming to come from the authority, signed by another key:
        # a forgery (unknown key), never the authority's own misconduct.  Regression: the
        # registry used to answer role_not_allowed before checking who signed, raising a
        # role_violation flag against the authority from anyone.
        n = "registry/forged-transfer-claiming-authority"
        self.add(n, self.sign(n, AUTHORITY, "transfer.sent", self.sent_payload(), key=op, seq=1001).leaf_bytes(),
                 "rejected:unknown_key", cat)
        n = "registry/operator-revokes-a-competitor"
        self.add(n, self.sign(n, OPERATOR, "publisher.revoked",
                              {"publisher_id": COMMITTEE, "key_id": None, "revoked_at": format_time(self.t_event),
                               "reason_code": "key_compromise"}, key=op).leaf_bytes(), na, cat)
        n = "registry/operator-rotates-own-key"
        self.add(n, self.sign(n, OPERATOR, "publisher.key_rotated",
                              {"publisher_id": OPERATOR, "new_public_key": format_verifier_key(OPERATOR, _pub("intruder")),
                               "valid_from": format_time(self.t_event), "old_key_valid_until": format_time(self.t_event)},
                              key=op).leaf_bytes(), na, cat)

    def _sql_injection(self) -> None:
        cat = "sql_injection"
        sent_fields = ["/header/event_id", "/header/type", "/header/publisher_id", "/header/key_id",
                       "/header/event_time", "/signature", "/payload/transfer_id", "/payload/operator",
                       "/payload/corridor/from", "/payload/corridor/to", "/payload/send/currency",
                       "/payload/fee/currency", "/payload/exchange_rate", "/payload/receive_promised/currency",
                       "/payload/available_by", "/payload/destination/kind", "/payload/destination/beneficiary",
                       "/payload/sender", "/payload/receipt_digest"]
        for path in sent_fields:
            for i, sqli in enumerate(SQLI):
                expect = "rejected:schema" if path.startswith("/payload") else "rejected:envelope"
                name = f"sqli/sent{path}/{i}"
                base = self.fresh(name)
                self.add(name, _dump(_set(_wire(base), path, sqli)), expect, cat, base=base)
        other = {
            "paid": ["/payload/transfer_id", "/payload/paid/currency", "/payload/paid_at", "/payload/payout_ref"],
            "project": ["/payload/project_id", "/payload/club_id", "/payload/federation_id", "/payload/country",
                        "/payload/state", "/payload/municipality", "/payload/project_type",
                        "/payload/parties/federal", "/payload/milestones/1/milestone_id",
                        "/payload/agreement_signed_at"],
            "disb": ["/payload/pledge_id", "/payload/disbursement_id", "/payload/party_level",
                     "/payload/party_id", "/payload/made_at", "/payload/reference"],
        }
        j = 0
        for kind, paths in other.items():
            for path in paths:
                j += 1
                self.mutate(f"sqli/{kind}{path}", kind, path, SQLI[j % len(SQLI)], "rejected:schema", cat)
        # as member names, and as a whole document
        for i, sqli in enumerate(SQLI[:2]):
            self.mutate(f"sqli/payload-member-name/{i}", "sent", f"/payload/{sqli.replace('/', '')}", 1,
                        "rejected:schema", cat)
            self.mutate(f"sqli/header-member-name/{i}", "sent", f"/header/{sqli.replace('/', '')}", 1,
                        "rejected:envelope", cat)
        base = self.fresh("sqli/base")
        self.add("sqli/top-level-string", _dump(SQLI[0]), "rejected:envelope", cat, base=base)
        # the id the publisher hands over (the cc-event-id header) is hostile too:
        # it is echoed in the acknowledgement and never reaches SQL as code
        for i, sqli in enumerate(SQLI):
            self.add(f"sqli/handed-event-id/{i}", f"not json {i}: {sqli}".encode(), "rejected:json", cat,
                     base=base, label=sqli)

    def _non_canonical(self) -> None:
        cat = "non_canonical"
        env = self.fresh("noncanon/pretty-printed")
        self.add("noncanon/pretty-printed", json.dumps(_wire(env), indent=2).encode(), "stored_safely", cat)
        env = self.fresh("noncanon/reordered-members")
        self.add("noncanon/reordered-members", _dump(_reorder(_wire(env))), "stored_safely", cat)
        env = self.fresh("noncanon/ascii-escapes")
        self.add("noncanon/ascii-escapes", _dump(_wire(env), ascii_only=True).replace(
            b'"' + env.payload["transfer_id"].encode() + b'"',
            _escape_letters(env.payload["transfer_id"]).encode()), "stored_safely", cat)
        env = self.fresh("noncanon/escaped-solidus-and-hyphen")
        raw = env.leaf_bytes().replace(b"/", b"\\/").replace(b'"tr-', b'"tr\\u002d')
        self.add("noncanon/escaped-solidus-and-hyphen", raw, "stored_safely", cat)
        env = self.fresh("noncanon/crlf-tabs")
        self.add("noncanon/crlf-tabs", json.dumps(_wire(env), separators=(" ,\r\n\t", " :\t")).encode(),
                 "stored_safely", cat)
        p = self.sent_payload()
        p["fee"]["amount"] = 0
        env = self.sign("noncanon/fee-minus-zero", OPERATOR, "transfer.sent", p)
        self.add("noncanon/fee-minus-zero", _with_token(_wire(env), "/payload/fee/amount", b"-0"),
                 "stored_safely", cat)
        env = self.fresh("noncanon/escaped-member-names")
        self.add("noncanon/escaped-member-names",
                 env.leaf_bytes().replace(b'"payload"', b'"p\\u0061yload"').replace(b'"seq"', b'"\\u0073eq"'),
                 "stored_safely", cat)

    def _replays(self) -> None:
        cat = "replay"
        sent, paid = self.anchors["sent"], self.anchors["paid"]
        for kind in ("sent", "paid", "project", "disb"):
            self.add(f"replay/exact-{kind}", self.anchors[kind].leaf_bytes(), "duplicate", cat, phase=2)
        self.add("replay/exact-sent-again", sent.leaf_bytes(), "duplicate", cat, phase=2)
        self.add("replay/pretty-printed", json.dumps(_wire(sent), indent=1).encode(), "duplicate", cat, phase=2)
        self.add("replay/reordered", _dump(_reorder(_wire(paid))), "duplicate", cat, phase=2)
        # refused on arrival after the revocation, refused again (it never reached the log)
        self.add("replay/revoked-key-event-from-before-revocation", self.anchors["revoked-before"].leaf_bytes(),
                 "rejected:key_revoked", cat, phase=2)
        flipped = next(c for c in self.cases if c.name == "sig/flip-first-byte")
        self.add("replay/rejected-forgery-resent", flipped.raw, "rejected:bad_signature", cat, phase=2)
        # equivocation: the same event id with other content, signed by its publisher
        cat = "equivocation"
        p = copy.deepcopy(dict(sent.payload))
        p["send"]["amount"] += 1
        env = self.sign("equivocation/other-amount", OPERATOR, "transfer.sent", p, event_id=sent.event_id,
                        seq=sent.seq)
        self.add("equivocation/other-amount", env.leaf_bytes(), "rejected:equivocation", cat, phase=2)
        env = self.sign("equivocation/other-time", OPERATOR, "transfer.paid_out", dict(paid.payload),
                        event_id=paid.event_id, seq=paid.seq, event_time=self.t_event + timedelta(seconds=5))
        self.add("equivocation/other-time", env.leaf_bytes(), "rejected:equivocation", cat, phase=2)
        proj = self.anchors["project"]
        p = copy.deepcopy(dict(proj.payload))
        p["budget"]["amount"] = 100000001
        p["milestones"][1]["amount"]["amount"] = 60000001
        env = self.sign("equivocation/project-budget", COMMITTEE, "project.registered", p,
                        event_id=proj.event_id, seq=proj.seq)
        self.add("equivocation/project-budget", env.leaf_bytes(), "rejected:equivocation", cat, phase=2)
        # a third party re-uses a logged event id with a forged signature: a forgery,
        # which must not become an equivocation flag against the honest publisher
        self.add("equivocation/forged-by-third-party",
                 _dump(_set(_wire(sent), "/payload/send/amount", 1)), "rejected:bad_signature", cat, phase=2)
        cat = "seq_reuse"
        env = self.sign("seq/reused-by-publisher", OPERATOR, "transfer.sent", self.sent_payload(), seq=sent.seq)
        self.add("seq/reused-by-publisher", env.leaf_bytes(), "rejected:seq_reused", cat, phase=2)
        env = self.sign("seq/reused-paid-out", OPERATOR, "transfer.paid_out", self.paid_payload(), seq=paid.seq)
        self.add("seq/reused-paid-out", env.leaf_bytes(), "rejected:seq_reused", cat, phase=2)
        env = self.sign("seq/reused-forged", OPERATOR, "transfer.sent", self.sent_payload(), seq=sent.seq)
        forged = self.resign_with(_wire(env), private_key("intruder"))
        self.add("seq/reused-forged", _dump(forged), "rejected:bad_signature", cat, phase=2)

    def _reconciler_stress(self) -> None:
        """Extreme values the schemas allow; accepted, and the reconcilers must survive them."""
        cat = "extreme_valid"
        far, first = "9999-12-31T23:59:59.999999Z", "0001-01-01T00:00:00Z"

        def sent(n: str, **over: Any) -> Envelope:
            p = self.sent_payload()
            for path, v in over.items():
                p = _set(p, path, v)
            env = self.sign(n, OPERATOR, "transfer.sent", p)
            self.add(n, env.leaf_bytes(), "stored_safely", cat, phase=3)
            return env

        env = sent("extreme/max-amounts", **{"/send/amount": 10**15, "/fee/amount": 10**15,
                                             "/receive_promised/amount": 10**15, "/disclosed_cost_bps": 10000})
        paid = self.paid_payload(env.payload["transfer_id"])
        paid["paid"]["amount"] = 1
        e2 = self.sign("extreme/max-amounts-paid-1", OPERATOR, "transfer.paid_out", paid)
        self.add("extreme/max-amounts-paid-1", e2.leaf_bytes(), "stored_safely", cat, phase=3)
        sent("extreme/max-exchange-rate", **{"/exchange_rate": "999999999.9999999999", "/send/amount": 1,
                                             "/receive_promised/amount": 10**15})
        env = sent("extreme/min-exchange-rate", **{"/exchange_rate": "0.0000000001", "/send/amount": 1,
                                                   "/fee/amount": 0, "/receive_promised/amount": 10**15,
                                                   "/disclosed_cost_bps": 0})
        paid = self.paid_payload(env.payload["transfer_id"])
        paid["paid"]["amount"] = 1
        e2 = self.sign("extreme/min-exchange-rate-paid-1", OPERATOR, "transfer.paid_out", paid)
        self.add("extreme/min-exchange-rate-paid-1", e2.leaf_bytes(), "stored_safely", cat, phase=3)
        sent("extreme/available-by-year-9999", **{"/available_by": far})
        sent("extreme/available-by-year-1", **{"/available_by": first})
        # A payout dated year 1 reaches the log before its transfer (phase 4): the
        # reconcilers must judge it (dated before its origin: disregarded, flagged).
        # The other way round the gate refuses it (see authority/payout-before-its-transfer).
        p = self.sent_payload()
        env = self.sign("extreme/paid-at-year-1-sent", OPERATOR, "transfer.sent", p)
        self.add("extreme/paid-at-year-1-sent", env.leaf_bytes(), "stored_safely", cat, phase=4)
        paid = self.paid_payload(env.payload["transfer_id"])
        paid["paid_at"] = first
        e2 = self.sign("extreme/paid-at-year-1", OPERATOR, "transfer.paid_out", paid)
        self.add("extreme/paid-at-year-1", e2.leaf_bytes(), "stored_safely", cat, phase=3)
        env = self.sign("extreme/max-seq", OPERATOR, "transfer.sent", self.sent_payload(), seq=2**53 - 1)
        self.add("extreme/max-seq", env.leaf_bytes(), "stored_safely", cat, phase=4)
        # the same sequence number in a forgery: it must not count as the committee's
        env = self.sign("seq/forged-max-seq", COMMITTEE, "project.registered", self.project_payload(),
                        seq=2**53 - 1)
        self.add("seq/forged-max-seq", _dump(self.resign_with(_wire(env), private_key("intruder"))),
                 "rejected:bad_signature", "seq_reuse", phase=4)
        p = self.project_payload()
        p["milestones"][0]["due"] = far
        env = self.sign("extreme/milestone-due-year-9999", COMMITTEE, "project.registered", p)
        self.add("extreme/milestone-due-year-9999", env.leaf_bytes(), "stored_safely", cat, phase=3)
        p = self.project_payload()
        p["milestones"] = [{"milestone_id": f"m{i:03d}", "due": format_time(self.now + timedelta(days=i)),
                            "amount": {"amount": 2000000, "currency": "MXN"}} for i in range(50)]
        p["agreement_signed_at"] = first
        env = self.sign("extreme/fifty-milestones", COMMITTEE, "project.registered", p)
        self.add("extreme/fifty-milestones", env.leaf_bytes(), "stored_safely", cat, phase=3)
        d = self.disb_payload()
        d["made_at"], d["amount"]["amount"] = first, 10**15
        env = self.sign("extreme/disbursement-year-1-max-amount", GOVERNMENT, "disbursement.made", d)
        self.add("extreme/disbursement-year-1-max-amount", env.leaf_bytes(), "stored_safely", cat, phase=3)

    # -- self-checks -----------------------------------------------------------------

    def _check(self) -> None:
        names = Counter(c.name for c in self.cases)
        assert not [n for n, k in names.items() if k > 1], "case names must be unique"
        first = [c for c in self.cases if c.phase != 2]
        # quarantine rows are keyed by the raw bytes' hash, outbox rows by the handed id
        raws = Counter(c.raw for c in first if c.outcome == "rejected")
        assert all(k == 1 for k in raws.values()), "rejected raw inputs must be distinct"
        ids = Counter((c.publisher, c.event_id) for c in first)
        assert all(k == 1 for k in ids.values()), [k for k, v in ids.items() if v > 1]
        for c in self.cases:
            assert c.expect in ("accepted", "duplicate", "stored_safely") or c.expect.startswith("rejected:")
            if not c.parses:
                assert c.event_id == c.name or c.category == "sql_injection", c.name


def build_corpus(now: datetime) -> Corpus:
    """The corpus for a platform whose clock reads ``now`` (give or take a few minutes)."""
    corpus = Corpus(now)
    corpus.build()
    return corpus

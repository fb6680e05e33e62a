"""``cuentas verify`` against hostile receipts and checkpoints, as a person would run it.

A valid receipt is built purely in memory (signed envelopes, an RFC 9162 tree, a
checkpoint signed by the log key and cosigned by a witness); every case is a
mutation of it or of the command line.  Each malformed one must exit 1 with exactly
one line on stderr starting ``cuentas:`` and no traceback; the valid ones exit 0.
No broker and no database: ``python -m cuentas verify`` runs as a subprocess.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from schemas.envelope import Envelope, sign_event
from schemas.keys import ALG_COSIGNATURE_V1, format_verifier_key, public_key_bytes
from schemas.merkle import inclusion_proof, root_hash
from schemas.note import (
    Checkpoint,
    Note,
    Signature,
    add_signatures,
    cosign,
    format_checkpoint,
    format_note,
    parse_note,
    sign_checkpoint,
    sign_note,
)
from schemas.receipt import build_receipt
from tests.hostile.corpus import private_key

ROOT = Path(__file__).resolve().parents[2]
LOG = "cuentasclaras.example/log"
WITNESS = "witness.hostile"
PUB = "mto-hostile"
LOG_KEY, WITNESS_KEY, PUB_KEY = private_key("log"), private_key("witness"), private_key(PUB)
LOG_VK = format_verifier_key(LOG, public_key_bytes(LOG_KEY))
WITNESS_VK = format_verifier_key(WITNESS, public_key_bytes(WITNESS_KEY), ALG_COSIGNATURE_V1)
PUB_VK = format_verifier_key(PUB, public_key_bytes(PUB_KEY))
ARGS = ["--log-key", LOG_VK, "--witness-key", WITNESS_VK, "--min-witnesses", "1"]
SIZE, INDEX, TS = 7, 3, 1_767_225_600


def _event(i: int, key: Any = PUB_KEY) -> Envelope:
    return sign_event(key, publisher_id=PUB, event_type="transfer.paid_out",
                      payload={"transfer_id": f"tr-verify-{i}", "paid": {"amount": 1000 + i, "currency": "MXN"},
                               "paid_at": "2026-01-01T00:00:00Z", "payout_ref": f"po-{i}"},
                      seq=i, event_time=datetime(2026, 1, 1, tzinfo=UTC))


def _forge(env: Envelope) -> Envelope:
    """``env`` with one bit of its signature flipped (it still parses)."""
    sig = bytearray(env.signature)
    sig[0] ^= 1
    return Envelope(env.event_id, env.event_type, env.schema_version, env.publisher_id, env.key_id, env.seq,
                    env.event_time, env.payload, bytes(sig))


def _receipt(envs: list[Envelope], index: int = INDEX, *, checkpoint: Callable[[Checkpoint], str] | None = None,
             publisher_key: str | None = PUB_VK) -> dict[str, Any]:
    leaves = [e.leaf_bytes() for e in envs]
    cp = Checkpoint(LOG, len(leaves), root_hash(leaves))
    note = checkpoint(cp) if checkpoint else _cosigned(cp)
    r = build_receipt(leaves[index], index, len(leaves), inclusion_proof(index, leaves), note, publisher_key)
    return json.loads(r.to_json())


def _cosigned(cp: Checkpoint, *extra: Signature) -> str:
    note = sign_checkpoint(cp, LOG_KEY)
    return add_signatures(note, [cosign(format_checkpoint(cp), WITNESS, WITNESS_KEY, TS), *extra])


ENVS = [_event(i) for i in range(1, SIZE + 1)]
GOOD = _receipt(ENVS)
GOOD_BYTES = (json.dumps(GOOD, indent=2) + "\n").encode()
CP = Checkpoint(LOG, SIZE, root_hash([e.leaf_bytes() for e in ENVS]))
CP_TEXT = format_checkpoint(CP)


@dataclass
class VCase:
    name: str
    data: bytes | None  # file content; None: the path given in args is used as is
    args: list[str] = field(default_factory=lambda: list(ARGS))
    ok: bool = False
    stdin: bool = False
    bug: str | None = None  # a known production bug makes this case fail today




def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode()


def _with(**changes: Any) -> bytes:
    obj = copy.deepcopy(GOOD)
    for k, v in changes.items():
        if v is _DEL:
            del obj[k]
        else:
            obj[k] = v
    return _dumps(obj)


_DEL = object()


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def _note_with(text: str, *sigs: Signature) -> str:
    return format_note(Note(text, list(sigs)))


def _flip_sig(sig: Signature, at: int = -1) -> Signature:
    b = bytearray(sig.signature)
    b[at] ^= 1
    return Signature(sig.name, sig.key_id, bytes(b))


def _cases() -> list[VCase]:
    cs: list[VCase] = []
    add = lambda name, data, **kw: cs.append(VCase(name, data, **kw))  # noqa: E731
    proof = GOOD["inclusion_proof"]
    good_note = GOOD["checkpoint"]
    parsed = parse_note(good_note)
    log_sig, wit_sig = parsed.signatures
    assert log_sig.name == LOG and wit_sig.name == WITNESS

    # valid: must exit 0
    add("valid", GOOD_BYTES, ok=True)
    add("valid-compact", _dumps(GOOD), ok=True)
    add("valid-from-stdin", GOOD_BYTES, ok=True, stdin=True)
    add("valid-no-witness-required", GOOD_BYTES, args=["--log-key", LOG_VK], ok=True)
    other = sign_note(CP_TEXT, "someone.else", private_key("someone"))
    add("valid-extra-unknown-signature", _with(checkpoint=_cosigned(CP, other)), ok=True)

    # the file itself
    add("empty-file", b"")
    add("truncated-json", GOOD_BYTES[: len(GOOD_BYTES) // 2])
    add("truncated-last-byte", GOOD_BYTES.rstrip()[:-1])
    add("binary-garbage", bytes(range(256)) * 4)
    add("json-array", b"[" + GOOD_BYTES + b"]")
    add("json-string", b'"receipt"')
    add("bom", b"\xef\xbb\xbf" + GOOD_BYTES)
    add("invalid-utf8", GOOD_BYTES.replace(b'"format"', b'"form\xffat"'))
    add("nul-byte", GOOD_BYTES.replace(b'"format"', b'"form\x00at"'))
    add("lone-surrogate", GOOD_BYTES.replace(b'"format"', b'"form\\ud800at"'))
    add("duplicate-key", GOOD_BYTES.replace(b'"format"', b'"tree_size": 1, "format"').replace(
        b'"tree_size": 1, "format"', b'"format": "x", "format"', 1))
    add("huge-file-2mb", GOOD_BYTES[:-2] + b" " * (2 << 20) + b"}\n")
    add("deep-nesting", b'{"format":' + b"[" * 5000 + b"]" * 5000 + b"}")
    add("integer-2-pow-63", _with(leaf_index=2**53).replace(str(2**53).encode(), str(2**63).encode()))
    add("nan", _with(leaf_index=0).replace(b'"leaf_index": 0', b'"leaf_index": NaN'))

    # receipt members
    add("wrong-format-tag", _with(format="cuentas-claras/receipt/v2"))
    add("format-not-string", _with(format=1))
    add("missing-inclusion-proof", _with(inclusion_proof=_DEL))
    add("missing-checkpoint", _with(checkpoint=_DEL))
    add("unknown-member", _with(note="trust me"))
    add("event-not-object", _with(event="{}"))
    add("event-empty-object", _with(event={}))
    add("leaf-index-string", _with(leaf_index=str(INDEX)))
    add("leaf-index-negative", _with(leaf_index=-1))
    add("leaf-index-bool", _with(leaf_index=True))
    add("leaf-index-float", _with(leaf_index=3.0))
    add("index-equal-size", _with(leaf_index=SIZE))
    add("index-beyond-size", _with(leaf_index=SIZE + 100))
    add("tree-size-smaller", _with(tree_size=SIZE - 1))
    add("tree-size-larger", _with(tree_size=SIZE + 1))
    add("tree-size-zero", _with(tree_size=0))
    add("proof-hash-31-bytes", _with(inclusion_proof=[_b64(base64.b64decode(proof[0])[:31]), *proof[1:]]))
    add("proof-hash-33-bytes", _with(inclusion_proof=[_b64(base64.b64decode(proof[0]) + b"\x00"), *proof[1:]]))
    add("proof-hash-not-base64", _with(inclusion_proof=["%%%" + proof[0][3:], *proof[1:]]))
    add("proof-hash-number", _with(inclusion_proof=[1, *proof[1:]]))
    add("proof-not-list", _with(inclusion_proof=proof[0]))
    add("proof-extra-hash", _with(inclusion_proof=[*proof, proof[0]]))
    add("proof-missing-hash", _with(inclusion_proof=proof[:-1]))
    add("proof-empty", _with(inclusion_proof=[]))
    add("proof-65-hashes", _with(inclusion_proof=[proof[0]] * 65))
    flipped = bytearray(base64.b64decode(proof[0]))
    flipped[0] ^= 1
    add("proof-hash-flipped", _with(inclusion_proof=[_b64(bytes(flipped)), *proof[1:]]))
    add("proof-reversed", _with(inclusion_proof=proof[::-1]))

    # the event
    ev = copy.deepcopy(GOOD["event"])
    ev["payload"]["paid"]["amount"] += 1
    add("event-amount-tampered", _with(event=ev))
    ev = copy.deepcopy(GOOD["event"])
    ev["header"]["publisher_id"] = "mto-other"
    add("event-publisher-tampered", _with(event=ev))
    add("event-of-another-leaf", _with(event=json.loads(ENVS[INDEX + 1].leaf_bytes())))
    add("event-signature-forged-in-tree", _dumps(_receipt([*ENVS[:INDEX], _forge(ENVS[INDEX]), *ENVS[INDEX + 1:]])))
    add("publisher-key-of-another-publisher",
        _with(publisher_key=format_verifier_key("mto-other", public_key_bytes(private_key("mto-other")))))
    add("publisher-key-other-key-same-name",
        _with(publisher_key=format_verifier_key(PUB, public_key_bytes(private_key("intruder")))))
    add("publisher-key-garbled", _with(publisher_key="mto-hostile+00000000+AAAA"))
    add("publisher-key-not-string", _with(publisher_key=["x"]))

    # the checkpoint note
    add("checkpoint-not-string", _with(checkpoint={"note": good_note}))
    add("checkpoint-log-signature-flipped", _with(checkpoint=_note_with(CP_TEXT, _flip_sig(log_sig), wit_sig)))
    add("checkpoint-missing-blank-line", _with(checkpoint=good_note.replace("\n\n", "\n", 1)))
    add("checkpoint-no-signatures", _with(checkpoint=CP_TEXT + "\n"))
    add("checkpoint-no-trailing-newline", _with(checkpoint=good_note.rstrip("\n")))
    add("checkpoint-crlf", _with(checkpoint=good_note.replace("\n", "\r\n")))
    add("checkpoint-signature-prefix-hyphen", _with(checkpoint=good_note.replace("\u2014 ", "- ")))
    add("checkpoint-signature-non-canonical-base64",
        _with(checkpoint=good_note.replace(log_sig.line(), log_sig.line()[:-1] + "=" * 0 + "B")))
    evil = format_checkpoint(Checkpoint("evil.example/log", SIZE, CP.root))
    add("checkpoint-wrong-origin-signed-by-log-key", _with(checkpoint=_note_with(evil, sign_note(evil, LOG, LOG_KEY))))
    add("checkpoint-signed-by-another-key", _with(checkpoint=_note_with(CP_TEXT, sign_note(CP_TEXT, LOG, private_key("x")))))
    add("checkpoint-signed-under-another-name",
        _with(checkpoint=_note_with(CP_TEXT, sign_note(CP_TEXT, "other.example/log", LOG_KEY))))
    add("checkpoint-duplicate-log-signature", _with(checkpoint=good_note + log_sig.line() + "\n"))
    add("checkpoint-second-bad-log-signature", _with(checkpoint=good_note + _flip_sig(log_sig).line() + "\n"))
    many = [sign_note(CP_TEXT, f"signer{i}", private_key(f"s{i}")) for i in range(101)]
    add("checkpoint-101-signatures", _with(checkpoint=good_note + "".join(s.line() + "\n" for s in many)))
    for n, text in (("size-leading-zero", f"{LOG}\n0{SIZE}\n{_b64(CP.root)}\n"),
                    ("size-negative", f"{LOG}\n-{SIZE}\n{_b64(CP.root)}\n"),
                    ("size-2-pow-63", f"{LOG}\n{2**63}\n{_b64(CP.root)}\n"),
                    ("root-31-bytes", f"{LOG}\n{SIZE}\n{_b64(CP.root[:31])}\n"),
                    ("root-not-base64", f"{LOG}\n{SIZE}\n{'!' * 44}\n"),
                    ("too-few-lines", f"{LOG}\n{SIZE}\n"),
                    ("empty-extension-line", f"{LOG}\n{SIZE}\n{_b64(CP.root)}\n\n")):
        # signed by the log key: the signature verifies, the body does not parse
        if n == "empty-extension-line":
            note = text + "\n" + sign_note(text, LOG, LOG_KEY).line() + "\n"
        else:
            note = _note_with(text, sign_note(text, LOG, LOG_KEY))
        add(f"checkpoint-{n}", _with(checkpoint=note))
    other_root = Checkpoint(LOG, SIZE, bytes(32))
    add("checkpoint-other-root", _with(checkpoint=_cosigned(other_root)))

    # witnesses
    add("witness-cosignature-flipped", _with(checkpoint=_note_with(CP_TEXT, log_sig, _flip_sig(wit_sig))))
    huge_ts = Signature(WITNESS, wit_sig.key_id, (2**64 - 1).to_bytes(8, "big") + wit_sig.signature[8:])
    add("witness-timestamp-over-2-pow-63", _with(checkpoint=_note_with(CP_TEXT, log_sig, huge_ts)))
    short = Signature(WITNESS, wit_sig.key_id, wit_sig.signature[:40])
    add("witness-cosignature-short", _with(checkpoint=_note_with(CP_TEXT, log_sig, short)))
    other_cp = format_checkpoint(Checkpoint(LOG, SIZE + 1, CP.root))
    add("witness-cosigned-another-checkpoint",
        _with(checkpoint=_note_with(CP_TEXT, log_sig, cosign(other_cp, WITNESS, WITNESS_KEY, TS))))
    add("witness-missing", _with(checkpoint=_note_with(CP_TEXT, log_sig)))
    # Regression (issue 14.2): with --witness-key and no --min-witnesses, a checkpoint that had lost
    # its cosignature passed ("0 witness cosignature(s) checked"); one per key is the default now.
    add("witness-missing-default-min", _with(checkpoint=_note_with(CP_TEXT, log_sig)), args=ARGS[:4])
    add("valid-witness-default-min", GOOD_BYTES, args=ARGS[:4], ok=True)
    add("witness-missing-min-0", _with(checkpoint=_note_with(CP_TEXT, log_sig)), args=[*ARGS[:4], "--min-witnesses", "0"],
        ok=True)
    add("witness-key-twice-min-2", GOOD_BYTES, args=[*ARGS[:4], *ARGS[2:4], "--min-witnesses", "2"])
    unknown_w = format_verifier_key("witness.unknown", public_key_bytes(private_key("w2")), ALG_COSIGNATURE_V1)
    add("unknown-witness-key-min-1", GOOD_BYTES, args=["--log-key", LOG_VK, "--witness-key", unknown_w,
                                                        "--min-witnesses", "1"])
    add("min-witnesses-2-of-1", GOOD_BYTES, args=[*ARGS[:4], "--min-witnesses", "2"])
    add("min-witnesses-without-witness-keys", GOOD_BYTES, args=["--log-key", LOG_VK, "--min-witnesses", "1"])
    add("min-witnesses-negative", GOOD_BYTES, args=[*ARGS[:4], "--min-witnesses", "-1"])
    add("witness-key-given-as-log-key", GOOD_BYTES, args=["--log-key", WITNESS_VK])

    # the command line
    add("wrong-log-key", GOOD_BYTES, args=["--log-key", format_verifier_key(LOG, public_key_bytes(private_key("x")))])
    add("log-key-garbled", GOOD_BYTES, args=["--log-key", "not-a-key"])
    add("log-key-bad-key-id", GOOD_BYTES, args=["--log-key", LOG_VK.replace("+", "+0", 1)[:-1]])
    add("witness-key-garbled", GOOD_BYTES, args=[*ARGS[:2], "--witness-key", "w+1+2", "--min-witnesses", "1"])
    add("missing-file", None, args=["/nonexistent/receipt.json", *ARGS])
    add("directory-as-file", None, args=["/", *ARGS])
    return cs


CASES = _cases()


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str


def _run(case: VCase, tmp: Path) -> Result:
    if case.data is None:
        argv = case.args
    elif case.stdin:
        argv = ["-", *case.args]
    else:
        f = tmp / f"{case.name}.json"
        f.write_bytes(case.data)
        argv = [str(f), *case.args]
    p = subprocess.run([sys.executable, "-m", "cuentas", "verify", *argv], cwd=ROOT, capture_output=True,
                       input=case.data if case.stdin else None, timeout=60,
                       env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    return Result(p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace"))


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Result]:
    tmp = tmp_path_factory.mktemp("verify")
    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 2) * 2)) as pool:
        return dict(zip([c.name for c in CASES], pool.map(lambda c: _run(c, tmp), CASES), strict=True))


def test_enough_cases() -> None:
    assert sum(not c.ok for c in CASES) >= 30
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", [
    pytest.param(c, id=c.name, marks=[pytest.mark.xfail(strict=True, reason=c.bug)] if c.bug else [])
    for c in CASES])
def test_verify_exit_code_and_one_line(case: VCase, results: dict[str, Result]) -> None:
    r = results[case.name]
    assert "Traceback" not in r.stderr, r.stderr
    if case.ok:
        assert r.code == 0, r.stderr
        assert r.stdout.startswith("OK: event ") and r.stderr == ""
        return
    lines = r.stderr.splitlines()
    assert r.code == 1, (r.code, r.stdout, r.stderr)
    assert len(lines) == 1 and lines[0].startswith("cuentas:"), r.stderr
    assert len(lines[0]) < 2000  # one readable line, whatever the input
    assert "OK" not in r.stdout

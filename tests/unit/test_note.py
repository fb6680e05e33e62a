"""schemas.note: C2SP signed notes, checkpoints and Ed25519 cosignatures."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import note as N
from schemas.errors import MalformedInput, VerificationError
from schemas.keys import (
    ALG_COSIGNATURE_V1,
    VerifierKey,
    parse_verifier_key,
    public_key_bytes,
)

ORIGIN = "log.cuentas.example/v1"
ROOT = hashlib.sha256(b"some root").digest()
ROOT_B64 = base64.b64encode(ROOT).decode()


def _key(seed: int) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32)


LOG_KEY = _key(1)
LOG_VK = VerifierKey(ORIGIN, public_key_bytes(LOG_KEY))
W1_KEY, W2_KEY, W3_KEY = _key(2), _key(3), _key(4)
W1 = VerifierKey("witness.example/w1", public_key_bytes(W1_KEY), ALG_COSIGNATURE_V1)
W2 = VerifierKey("witness.example/w2", public_key_bytes(W2_KEY), ALG_COSIGNATURE_V1)
W3 = VerifierKey("witness.example/w3", public_key_bytes(W3_KEY), ALG_COSIGNATURE_V1)

# The example key and note of Go's golang.org/x/mod/sumdb/note (note_test.go).
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_SIG_LINE = "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="


def _go_private_key() -> Ed25519PrivateKey:
    raw = base64.b64decode(GO_SKEY.split("+", 4)[4])
    assert raw[0] == 0x01
    return Ed25519PrivateKey.from_private_bytes(raw[1:])


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def _signed_checkpoint(size: int = 10, extensions: tuple[str, ...] = ()) -> str:
    return N.sign_checkpoint(N.Checkpoint(ORIGIN, size, ROOT, extensions), LOG_KEY)


# --------------------------------------------------------------------------- signed notes


def test_go_reference_note_byte_for_byte() -> None:
    sig = N.sign_note(GO_TEXT, "PeterNeumann", _go_private_key())
    assert sig.key_id.hex() == "c74f20a3"
    assert sig.line() == GO_SIG_LINE
    text = N.format_note(N.Note(GO_TEXT, [sig]))
    assert text == GO_TEXT + "\n" + GO_SIG_LINE + "\n"
    note = N.parse_note(text.encode())
    assert note == N.Note(GO_TEXT, [sig])
    vk = parse_verifier_key(GO_VKEY)
    assert N.verify_note(note, [vk]) == [vk]
    bad = N.parse_note(text.replace("cryptography", "cryptographY"))
    with pytest.raises(VerificationError) as e:
        N.verify_note(bad, [vk])
    assert e.value.reason == "bad_signature"


def test_sign_and_verify_round_trip() -> None:
    text = "line one\n\nline three after a blank line\n"
    k2 = _key(9)
    vk2 = VerifierKey("other.example/k", public_key_bytes(k2))
    sigs = [N.sign_note(text, ORIGIN, LOG_KEY), N.sign_note(text, "other.example/k", k2)]
    out = N.format_note(N.Note(text, sigs))
    note = N.parse_note(out)
    assert note.text == text  # the LAST blank line separates the signatures
    assert note.signatures == sigs
    assert N.verify_note(note, [LOG_VK, vk2]) == [LOG_VK, vk2]
    assert N.verify_note(note, [vk2]) == [vk2]
    # Unknown keys are ignored as long as one known key verifies.
    stranger = VerifierKey("stranger.example", public_key_bytes(_key(10)))
    assert N.verify_note(note, [stranger, LOG_VK]) == [LOG_VK]


def test_verify_note_refusals() -> None:
    note = N.parse_note(_signed_checkpoint())
    stranger = VerifierKey("stranger.example", public_key_bytes(_key(10)))
    # Only unknown keys.
    with pytest.raises(VerificationError) as e:
        N.verify_note(note, [stranger])
    assert e.value.reason == "no_known_signature"
    with pytest.raises(VerificationError) as e:
        N.verify_note(note, [])
    assert e.value.reason == "no_known_signature"
    # Same name, other key (so another key id): an unknown key, ignored.
    impostor = VerifierKey(ORIGIN, public_key_bytes(_key(11)))
    with pytest.raises(VerificationError) as e:
        N.verify_note(note, [impostor])
    assert e.value.reason == "no_known_signature"
    # A line with the right name but the wrong key id is not from the known key.
    wrong_id = N.Note(
        note.text, [N.Signature(ORIGIN, b"\x00\x01\x02\x03", note.signatures[0].signature)]
    )
    with pytest.raises(VerificationError) as e:
        N.verify_note(wrong_id, [LOG_VK])
    assert e.value.reason == "no_known_signature"
    # A known (name, key id) whose signature does not verify refuses the whole note.
    sig = note.signatures[0]
    for bad_bytes in (bytes(64), sig.signature[:-1], sig.signature + b"\x00"):
        forged = N.Note(note.text, [N.Signature(ORIGIN, sig.key_id, bad_bytes)])
        with pytest.raises(VerificationError) as e:
            N.verify_note(forged, [LOG_VK])
        assert e.value.reason == "bad_signature"
    # ... even when another known key verifies.
    k2 = _key(12)
    vk2 = VerifierKey("other.example/k", public_key_bytes(k2))
    mixed = N.Note(
        note.text,
        [N.Signature(ORIGIN, sig.key_id, bytes(64)), N.sign_note(note.text, vk2.name, k2)],
    )
    with pytest.raises(VerificationError) as e:
        N.verify_note(mixed, [LOG_VK, vk2])
    assert e.value.reason == "bad_signature"


VALID_SIG = "— a.example/k " + _b64(b"\x01\x02\x03\x04" + b"s" * 64)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ("text\n\n" + VALID_SIG, "no_trailing_newline"),
        ("text\n" + VALID_SIG + "\n", "missing_blank_line"),
        ("text\n\n", "no_signatures"),
        ("text\n\n\n", "no_signatures"),
        ("text\n\n" + VALID_SIG.replace("—", "-") + "\n", "signature_prefix"),
        ("text\n\n" + VALID_SIG.replace("—", "–") + "\n", "signature_prefix"),  # en dash
        ("text\n\n" + VALID_SIG.replace("— ", "—") + "\n", "signature_prefix"),
        ("text\n\n " + VALID_SIG + "\n", "signature_prefix"),
        ("text\n\n" + VALID_SIG + "\n\n", "no_signatures"),
        ("text\n\n" + VALID_SIG + "\n" + "garbage\n", "signature_prefix"),
        ("text\n\n— a.example/k\n", "signature_line"),
        ("text\n\n— a.example/k \n", "signature_line"),
        ("text\n\n— " + _b64(b"x" * 70) + "\n", "signature_line"),
        ("text\n\n—  " + _b64(b"x" * 70) + "\n", "key_name"),
        ("text\n\n— a+b " + _b64(b"x" * 70) + "\n", "key_name"),
        ("text\n\n— a\u00a0b " + _b64(b"x" * 70) + "\n", "key_name"),
        ("text\n\n— a !!!!\n", "base64"),
        ("text\n\n— a AAAAAAA\n", "base64"),  # missing padding
        ("text\n\n— a AAAAAAB=\n", "base64"),  # non-canonical trailing bits
        ("text\n\n— a " + _b64(b"x" * 70) + " extra\n", "base64"),
        ("text\n\n— a " + _b64(b"x" * 70).rstrip("=") + "\n", "base64"),
        ("text\n\n— a ＡＡＡＡ\n", "base64"),  # fullwidth letters
        ("text\n\n— a " + _b64(b"\x01\x02\x03\x04") + "\n", "short_signature"),
        ("text\n\n— a " + _b64(b"\x01\x02") + "\n", "short_signature"),
        ("text\n\n" + VALID_SIG + "\n" + VALID_SIG + "\n", "duplicate_signature"),
        (
            "text\n\n"
            + VALID_SIG
            + "\n— a.example/k "
            + _b64(b"\x01\x02\x03\x04" + b"t" * 64)
            + "\n",
            "duplicate_signature",
        ),
        ("te\x00xt\n\n" + VALID_SIG + "\n", "control_character"),
        ("text\r\n\r\n" + VALID_SIG + "\r\n", "control_character"),
        ("text\n\n" + VALID_SIG + "\t\n", "control_character"),
        (b"\xfftext\n\n" + VALID_SIG.encode() + b"\n", "utf8"),
        (b"text\n\n" + VALID_SIG.encode()[:2] + b"\n", "utf8"),  # cut inside the em dash
        ("te\ud800xt\n\n" + VALID_SIG + "\n", "utf8"),  # lone surrogate
        ("x" * N.MAX_NOTE_SIZE + "\n\n" + VALID_SIG + "\n", "oversize"),
        (("x" * N.MAX_NOTE_SIZE + "\n\n" + VALID_SIG + "\n").encode(), "oversize"),
        (
            "text\n\n"
            + "".join(
                f"— k{i} " + _b64(b"\x01\x02\x03\x04" + b"s" * 64) + "\n"
                for i in range(N.MAX_SIGNATURES + 1)
            ),
            "too_many_signatures",
        ),
    ],
)
def test_parse_note_rejects(data: str | bytes, reason: str) -> None:
    with pytest.raises(MalformedInput) as e:
        N.parse_note(data)
    assert e.value.reason == reason


def test_parse_note_accepts_the_limits() -> None:
    sigs = "".join(
        f"— k{i} " + _b64(b"\x01\x02\x03\x04" + b"s" * 64) + "\n" for i in range(N.MAX_SIGNATURES)
    )
    assert len(N.parse_note("text\n\n" + sigs).signatures) == N.MAX_SIGNATURES
    # Same key id under different names, or same name under different ids: distinct keys.
    two = (
        "t\n\n— a " + _b64(b"\x01\x02\x03\x04s") + "\n— b " + _b64(b"\x01\x02\x03\x04s") + "\n"
        "— a " + _b64(b"\x01\x02\x03\x05s") + "\n"
    )
    assert len(N.parse_note(two).signatures) == 3
    # Signatures of other algorithms (any length >= 1) parse; verification skips them.
    assert N.parse_note("t\n\n— a " + _b64(b"\x01\x02\x03\x04" + b"p" * 2420) + "\n")


def test_format_note_refusals() -> None:
    sig = N.Signature("a", b"\x01\x02\x03\x04", b"s" * 64)
    for note, reason in (
        (N.Note("text\n", []), "no_signatures"),
        (N.Note("text", [sig]), "no_trailing_newline"),
        (N.Note("te\x01xt\n", [sig]), "control_character"),
        (N.Note("text\n", [N.Signature("a b", b"\x01\x02\x03\x04", b"s")]), "key_name"),
        (N.Note("text\n", [N.Signature("a", b"\x01\x02\x03", b"s")]), "key_id"),
        (N.Note("text\n", [N.Signature("a", b"\x01\x02\x03\x04", b"")]), "short_signature"),
        (N.Note("text\n", [sig, sig]), "duplicate_signature"),
    ):
        with pytest.raises(MalformedInput) as e:
            N.format_note(note)
        assert e.value.reason == reason
    with pytest.raises(MalformedInput) as e:
        N.sign_note("no newline", "a", LOG_KEY)
    assert e.value.reason == "no_trailing_newline"
    with pytest.raises(MalformedInput) as e:
        N.sign_note("text\n", "bad name", LOG_KEY)
    assert e.value.reason == "key_name"


# --------------------------------------------------------------------------- checkpoints


def test_checkpoint_format_and_parse() -> None:
    cp = N.Checkpoint(ORIGIN, 20852163, ROOT)
    text = N.format_checkpoint(cp)
    assert text == f"{ORIGIN}\n20852163\n{ROOT_B64}\n"
    assert N.parse_checkpoint(text) == cp
    assert N.parse_checkpoint(text.encode()) == cp
    ext = N.Checkpoint(ORIGIN, 0, hashlib.sha256(b"").digest(), ("ext one", "— two"))
    assert N.format_checkpoint(ext).endswith("\next one\n— two\n")
    assert N.parse_checkpoint(N.format_checkpoint(ext)) == ext
    big = N.Checkpoint(ORIGIN, 2**63 - 1, ROOT)
    assert N.parse_checkpoint(N.format_checkpoint(big)) == big


def test_c2sp_example_checkpoint() -> None:
    example = (
        "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n"
        "— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5"
        "/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
        "— witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oy"
        "in1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n"
    )
    note = N.parse_note(example)
    cp = N.parse_checkpoint(note.text)
    assert (cp.origin, cp.size) == ("example.com/behind-the-sofa", 20852163)
    log_sig, cosig = note.signatures
    assert len(log_sig.signature) == 64
    # timestamped_signature: 8-byte big-endian time (the spec's "time 1679315147") || 64 bytes.
    assert len(cosig.signature) == 72
    assert int.from_bytes(cosig.signature[:8], "big") == 1679315147
    assert N.format_note(note) == example


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (f"{ORIGIN}\n10\n{ROOT_B64}", "no_trailing_newline"),
        (f"{ORIGIN}\n10\n", "too_few_lines"),
        (f"{ORIGIN}\n", "too_few_lines"),
        ("\n", "too_few_lines"),
        (f"\n10\n{ROOT_B64}\n", "origin"),
        (f"{ORIGIN}\n010\n{ROOT_B64}\n", "size"),
        (f"{ORIGIN}\n00\n{ROOT_B64}\n", "size"),
        (f"{ORIGIN}\n\n{ROOT_B64}\n", "size"),
        (f"{ORIGIN}\n-1\n{ROOT_B64}\n", "size"),
        (f"{ORIGIN}\n+1\n{ROOT_B64}\n", "size"),
        (f"{ORIGIN}\n1.0\n{ROOT_B64}\n", "size"),
        (f"{ORIGIN}\n 1\n{ROOT_B64}\n", "size"),
        (f"{ORIGIN}\n1 \n{ROOT_B64}\n", "size"),
        (f"{ORIGIN}\n1_000\n{ROOT_B64}\n", "size"),
        (f"{ORIGIN}\n\u0661\n{ROOT_B64}\n", "size"),  # Arabic-Indic one
        (f"{ORIGIN}\n9223372036854775808\n{ROOT_B64}\n", "size"),  # 2^63
        (f"{ORIGIN}\n{'9' * 5000}\n{ROOT_B64}\n", "size"),
        (f"{ORIGIN}\n10\n{_b64(ROOT[:31])}\n", "root_hash"),
        (f"{ORIGIN}\n10\n{_b64(ROOT + b'x')}\n", "root_hash"),
        (f"{ORIGIN}\n10\n{ROOT_B64.rstrip('=')}\n", "root_hash"),
        (f"{ORIGIN}\n10\n{ROOT.hex()}\n", "root_hash"),
        (f"{ORIGIN}\n10\n{ROOT_B64[:-2]}B=\n", "root_hash"),  # non-canonical
        (f"{ORIGIN}\n10\n\n", "root_hash"),
        (f"{ORIGIN}\n10\n{ROOT_B64}\n\n", "extension"),
        (f"{ORIGIN}\n10\n{ROOT_B64}\next\n\nmore\n", "extension"),
        (f"{ORIGIN}\r\n10\n{ROOT_B64}\n", "control_character"),
        (b"\xff\n10\n" + ROOT_B64.encode() + b"\n", "utf8"),
    ],
)
def test_parse_checkpoint_rejects(text: str | bytes, reason: str) -> None:
    with pytest.raises(MalformedInput) as e:
        N.parse_checkpoint(text)
    assert e.value.reason == reason


def test_checkpoint_constructor_validates() -> None:
    for kwargs, reason in (
        ({"origin": ""}, "origin"),
        ({"origin": "a\nb"}, "origin"),
        ({"size": -1}, "size"),
        ({"size": 2**63}, "size"),
        ({"size": True}, "size"),
        ({"root": ROOT[:31]}, "root_hash"),
        ({"extensions": ("",)}, "extension"),
        ({"extensions": ("a\nb",)}, "extension"),
    ):
        args: dict[str, object] = {"origin": ORIGIN, "size": 1, "root": ROOT, **kwargs}
        with pytest.raises(MalformedInput) as e:
            N.Checkpoint(**args)  # type: ignore[arg-type]
        assert e.value.reason == reason


def test_sign_and_open_checkpoint() -> None:
    signed = _signed_checkpoint(42, ("ext",))
    cp, note = N.open_checkpoint(signed, LOG_VK)
    assert cp == N.Checkpoint(ORIGIN, 42, ROOT, ("ext",))
    assert note.signatures[0].name == ORIGIN
    assert N.open_checkpoint(signed.encode(), LOG_VK)[0] == cp
    # Wrong key, tampered body.
    other = VerifierKey(ORIGIN, public_key_bytes(_key(20)))
    with pytest.raises(VerificationError) as e:
        N.open_checkpoint(signed, other)
    assert e.value.reason == "no_known_signature"
    with pytest.raises(VerificationError) as e:
        N.open_checkpoint(signed.replace("\n42\n", "\n43\n"), LOG_VK)
    assert e.value.reason == "bad_signature"
    # A note signed by a key whose name is not the origin.
    text = N.format_checkpoint(N.Checkpoint(ORIGIN, 1, ROOT))
    k = _key(21)
    vk = VerifierKey("not.the.origin", public_key_bytes(k))
    note_text = N.format_note(N.Note(text, [N.sign_note(text, vk.name, k)]))
    with pytest.raises(VerificationError) as e:
        N.open_checkpoint(note_text, vk)
    assert (e.value.reason, e.value.expected, e.value.got) == ("origin_mismatch", vk.name, ORIGIN)
    # A verified note whose text is not a checkpoint.
    junk = N.format_note(N.Note("hello\n", [N.sign_note("hello\n", ORIGIN, LOG_KEY)]))
    with pytest.raises(MalformedInput) as me:
        N.open_checkpoint(junk, LOG_VK)
    assert me.value.reason == "too_few_lines"
    # The origin is the log key's name, so it must be a valid key name to sign.
    with pytest.raises(MalformedInput) as me:
        N.sign_checkpoint(N.Checkpoint("has space", 1, ROOT), LOG_KEY)
    assert me.value.reason == "key_name"


# --------------------------------------------------------------------------- cosignatures


def test_cosignature_is_built_exactly_per_spec() -> None:
    signed = _signed_checkpoint(20852163, ("an extension",))
    body = N.parse_note(signed).text
    ts = 1679315147
    sig = N.cosign(body, W1.name, W1_KEY, ts)
    # Key id: SHA-256(name || 0x0A || 0x04 || public key)[:4].
    pub = public_key_bytes(W1_KEY)
    assert sig.key_id == hashlib.sha256(W1.name.encode() + b"\n\x04" + pub).digest()[:4]
    assert sig.key_id == W1.key_id
    # Signature: 8-byte big-endian time || Ed25519 over the message below.
    assert len(sig.signature) == 72
    assert sig.signature[:8] == bytes.fromhex("00000000641850cb") == ts.to_bytes(8, "big")
    message = (
        b"cosignature/v1\n"
        b"time 1679315147\n"
        + ORIGIN.encode()
        + b"\n20852163\n"
        + ROOT_B64.encode()
        + b"\nan extension\n"
    )
    assert N.cosignature_message(body, ts) == message
    Ed25519PublicKey.from_public_bytes(pub).verify(sig.signature[8:], message)
    # Deterministic (Ed25519), so cosigning twice gives the same line.
    assert N.cosign(body, W1.name, W1_KEY, ts) == sig


def test_cosignature_round_trip_and_quorum() -> None:
    signed = _signed_checkpoint(7)
    body = N.parse_note(signed).text
    c1 = N.cosign(body, W1.name, W1_KEY, 100)
    c2 = N.cosign(body, W2.name, W2_KEY, 200)
    merged = N.add_signatures(signed, [c1, c2])
    assert merged.count("\n— ") == 3
    assert N.add_signatures(merged, [c2, c1]) == merged  # idempotent
    # A newer cosignature by a witness already present does not replace the first.
    assert N.add_signatures(merged, [N.cosign(body, W1.name, W1_KEY, 999)]) == merged
    note = N.parse_note(merged)
    assert N.verify_note(note, [LOG_VK]) == [LOG_VK]  # cosignatures are not note signatures
    assert N.verify_cosignatures(note, [W1, W2, W3], 2) == [(W1, 100), (W2, 200)]
    assert N.verify_cosignatures(note, [W2], 1) == [(W2, 200)]
    assert N.verify_cosignatures(note, [], 0) == []
    with pytest.raises(VerificationError) as e:
        N.verify_cosignatures(note, [W1, W2, W3], 3)
    assert (e.value.reason, e.value.expected, e.value.got) == ("not_enough_witnesses", 3, 2)
    # The log's own key, or a witness key given as a plain Ed25519 key, counts for nothing.
    w1_plain = VerifierKey(W1.name, W1.public_key)
    with pytest.raises(VerificationError) as e:
        N.verify_cosignatures(note, [LOG_VK, w1_plain], 1)
    assert (e.value.reason, e.value.got) == ("not_enough_witnesses", 0)
    with pytest.raises(MalformedInput):
        N.verify_cosignatures(note, [W1], -1)
    # open_checkpoint still works on the cosigned note.
    assert N.open_checkpoint(merged, LOG_VK)[0].size == 7


def test_bad_cosignatures_refuse_the_note() -> None:
    signed = _signed_checkpoint(7)
    body = N.parse_note(signed).text
    c1 = N.cosign(body, W1.name, W1_KEY, 100)
    c2 = N.cosign(body, W2.name, W2_KEY, 200)
    changed_time = N.Signature(c1.name, c1.key_id, (101).to_bytes(8, "big") + c1.signature[8:])
    for bad, reason in (
        (changed_time, "bad_signature"),
        (N.Signature(c1.name, c1.key_id, c1.signature[:-1]), "bad_signature"),
        (N.Signature(c1.name, c1.key_id, c1.signature[8:]), "bad_signature"),
        (N.Signature(c1.name, c1.key_id, b"\x80" + c1.signature[1:]), "bad_timestamp"),
    ):
        note = N.parse_note(N.add_signatures(signed, [bad, c2]))
        with pytest.raises(VerificationError) as e:
            N.verify_cosignatures(note, [W1, W2], 1)
        assert e.value.reason == reason
    # A cosignature over another checkpoint does not verify for this one.
    other_body = N.format_checkpoint(N.Checkpoint(ORIGIN, 8, ROOT))
    stale = N.cosign(other_body, W1.name, W1_KEY, 100)
    note = N.parse_note(N.add_signatures(signed, [stale]))
    with pytest.raises(VerificationError) as e:
        N.verify_cosignatures(note, [W1], 1)
    assert e.value.reason == "bad_signature"


def test_cosign_refusals() -> None:
    body = N.format_checkpoint(N.Checkpoint(ORIGIN, 7, ROOT))
    for ts in (-1, 2**63, True):
        with pytest.raises(MalformedInput) as e:
            N.cosign(body, W1.name, W1_KEY, ts)
        assert e.value.reason == "timestamp"
    assert N.cosign(body, W1.name, W1_KEY, 2**63 - 1).signature[:8] == b"\x7f" + b"\xff" * 7
    with pytest.raises(MalformedInput) as e:
        N.cosign("not a checkpoint\n", W1.name, W1_KEY, 1)
    assert e.value.reason == "too_few_lines"
    with pytest.raises(MalformedInput) as e:
        N.cosign(_signed_checkpoint(7), W1.name, W1_KEY, 1)  # the signed note, not its body
    assert e.value.reason == "extension"
    with pytest.raises(MalformedInput) as e:
        N.cosign(body, "bad name", W1_KEY, 1)
    assert e.value.reason == "key_name"


# --------------------------------------------------------------------------- fuzzing


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.binary(max_size=400), st.text(max_size=400)))
def test_parse_note_fuzz_only_raises_malformed_input(data: bytes | str) -> None:
    try:
        note = N.parse_note(data)
    except MalformedInput:
        return
    assert N.parse_note(N.format_note(note)) == note


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.binary(max_size=200), st.text(max_size=200)))
def test_parse_checkpoint_fuzz_only_raises_malformed_input(data: bytes | str) -> None:
    try:
        cp = N.parse_checkpoint(data)
    except MalformedInput:
        return
    assert N.parse_checkpoint(N.format_checkpoint(cp)) == cp


_SIGNED = N.add_signatures(
    _signed_checkpoint(5, ("x",)),
    [N.cosign(N.format_checkpoint(N.Checkpoint(ORIGIN, 5, ROOT, ("x",))), W1.name, W1_KEY, 9)],
)


@settings(max_examples=500, deadline=None)
@given(
    pos=st.integers(0, len(_SIGNED.encode())),
    cut=st.integers(0, 4),
    insert=st.binary(max_size=4) | st.sampled_from([b"\n", b"\xe2\x80\x94 ", b"=", b"+", b" "]),
)
def test_mutated_signed_checkpoints_fail_cleanly(pos: int, cut: int, insert: bytes) -> None:
    raw = _SIGNED.encode()
    data = raw[:pos] + insert + raw[pos + cut :]
    try:
        cp, note = N.open_checkpoint(data, LOG_VK)
        N.verify_cosignatures(note, [W1], 1)
    except (MalformedInput, VerificationError):
        return
    # Anything that still opens and verifies must be the same statement.
    assert cp == N.parse_checkpoint(N.parse_note(_SIGNED).text)

"""C2SP signed notes, tlog checkpoints and Ed25519 witness cosignatures.

* Signed note (https://c2sp.org/signed-note): UTF-8 text ending in a newline,
  a blank line, then one ``— <key name> <base64(key id || signature)>`` line
  per signature.
* Checkpoint (https://c2sp.org/tlog-checkpoint): a note whose text is the
  origin, the tree size in decimal and the base64 root hash, one per line,
  plus optional extension lines.
* Cosignature (https://c2sp.org/tlog-cosignature, Ed25519 type 0x04): a
  witness signs ``cosignature/v1\\ntime <t>\\n`` followed by the checkpoint
  text, and its signature is ``8-byte big-endian t || 64-byte Ed25519``.

Parsing is strict and raises :class:`~schemas.errors.MalformedInput` with a
``reason`` code; signature checks raise :class:`~schemas.errors.VerificationError`.

MalformedInput reasons: ``oversize``, ``utf8``, ``control_character``,
``no_trailing_newline``, ``missing_blank_line``, ``no_signatures``,
``too_many_signatures``, ``signature_prefix``, ``signature_line``,
``key_name``, ``base64``, ``short_signature``, ``key_id``,
``duplicate_signature``, ``note_text``, ``too_few_lines``, ``origin``,
``size``, ``root_hash``, ``extension``, ``timestamp``, ``min_count``.

VerificationError reasons: ``bad_signature``, ``no_known_signature``,
``origin_mismatch``, ``bad_timestamp``, ``not_enough_witnesses``.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from schemas.errors import MalformedInput, VerificationError
from schemas.keys import (
    ALG_COSIGNATURE_V1,
    ALG_ED25519,
    VerifierKey,
    key_id,
    public_key_bytes,
    verify_ed25519,
)

__all__ = [
    "COSIGNATURE_HEADER",
    "MAX_NOTE_SIZE",
    "MAX_SIGNATURES",
    "MAX_TIMESTAMP",
    "Checkpoint",
    "Note",
    "Signature",
    "add_signatures",
    "cosign",
    "cosignature_message",
    "format_checkpoint",
    "format_note",
    "open_checkpoint",
    "parse_checkpoint",
    "parse_note",
    "sign_checkpoint",
    "sign_note",
    "verify_cosignatures",
    "verify_note",
]

#: Largest signed note accepted, in UTF-8 bytes.  Checkpoints are a few hundred
#: bytes; this leaves room for the 16 signatures C2SP signed-note says a
#: verifier MUST accept even if some are post-quantum (~5 kB each).
MAX_NOTE_SIZE = 256 * 1024
#: Most signature lines accepted in one note (Go's sumdb/note uses 100 too).
MAX_SIGNATURES = 100
#: Largest cosignature timestamp (C2SP tlog-cosignature: MUST NOT exceed 2^63 - 1).
MAX_TIMESTAMP = (1 << 63) - 1
#: Domain-separation header line of an Ed25519 cosignature (C2SP tlog-cosignature).
COSIGNATURE_HEADER = "cosignature/v1\n"

_SIG_PREFIX = "\u2014 "  # EM DASH + SPACE (C2SP signed-note, "Format")
_KEY_ID_SIZE = 4
_ED25519_SIG_SIZE = 64
_TIMESTAMP_SIZE = 8

# C2SP signed-note: signed notes MUST NOT contain ASCII control characters
# other than newline.
_CONTROL_RE = re.compile(r"[\x00-\x09\x0b-\x1f]")
# Key names: non-empty, no Unicode spaces, no "+" (C2SP signed-note).
_NAME_RE = re.compile(r"[^\s+]+")
# Checkpoint tree size: ASCII decimal, no leading zeros unless "0".
_SIZE_RE = re.compile(r"0|[1-9][0-9]*")
_MAX_TREE_SIZE = (1 << 63) - 1


@dataclass(frozen=True, slots=True)
class Signature:
    """One signature line: key name, 4-byte key id and the signature bytes after the id."""

    name: str
    key_id: bytes
    signature: bytes

    def line(self) -> str:
        """``— <name> <base64(key id || signature)>`` without the newline."""
        b64 = base64.b64encode(self.key_id + self.signature).decode("ascii")
        return f"{_SIG_PREFIX}{self.name} {b64}"


@dataclass(frozen=True, slots=True)
class Note:
    """A signed note: its text (ending in a newline) and its signatures, in order."""

    text: str
    signatures: list[Signature] = field(default_factory=list)


# --------------------------------------------------------------------------- checks


def _check_name(name: str, what: str = "key name") -> None:
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise MalformedInput(
            f"{what} {name!r} must be non-empty with no spaces or '+'", reason="key_name"
        )


def _check_text(text: str, what: str = "note text") -> bytes:
    """Validate signable note text and return its UTF-8 bytes."""
    if not isinstance(text, str):
        raise MalformedInput(f"{what} must be a str", reason="note_text")
    try:
        raw = text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise MalformedInput(f"{what} is not valid UTF-8: {e}", reason="utf8") from e
    if not text.endswith("\n"):
        raise MalformedInput(f"{what} must end with a newline", reason="no_trailing_newline")
    if m := _CONTROL_RE.search(text):
        raise MalformedInput(
            f"{what} contains control character {m.group()!r}", reason="control_character"
        )
    if len(raw) > MAX_NOTE_SIZE:
        raise MalformedInput(f"{what} is over {MAX_NOTE_SIZE} bytes", reason="oversize")
    return raw


def _check_signature(sig: Signature) -> None:
    _check_name(sig.name)
    if len(sig.key_id) != _KEY_ID_SIZE:
        raise MalformedInput(
            f"key id must be {_KEY_ID_SIZE} bytes, got {len(sig.key_id)}", reason="key_id"
        )
    if not sig.signature:
        raise MalformedInput("signature is empty", reason="short_signature")


def _b64decode_strict(s: str) -> bytes:
    """Standard base64 with padding (RFC 4648 section 4), canonical encoding only."""
    try:
        raw = base64.b64decode(s, validate=True)
    except (binascii.Error, ValueError) as e:
        raise MalformedInput(f"bad base64 {s[:40]!r}: {e}", reason="base64") from e
    # Non-zero trailing bits would give several spellings of the same bytes;
    # only the canonical one is accepted so a signature has one line.
    if base64.b64encode(raw).decode("ascii") != s:
        raise MalformedInput(f"non-canonical base64 {s[:40]!r}", reason="base64")
    return raw


# --------------------------------------------------------------------------- signed notes


def parse_note(data: bytes | str) -> Note:
    """Parse a signed note (C2SP signed-note) without checking signatures.

    Strict: valid UTF-8 of at most :data:`MAX_NOTE_SIZE` bytes, no control
    characters but newline, text ending in a newline, the LAST blank line
    separating it from 1 to :data:`MAX_SIGNATURES` signature lines, each
    ``— <name> <base64>`` (U+2014 then a space) with a valid key name and
    canonical base64 of a 4-byte key id plus at least one signature byte.
    A second line for the same (name, key id) is refused
    (``duplicate_signature``): a note carries one signature per key.
    """
    if isinstance(data, bytes | bytearray | memoryview):
        raw = bytes(data)
        if len(raw) > MAX_NOTE_SIZE:
            raise MalformedInput(f"note is over {MAX_NOTE_SIZE} bytes", reason="oversize")
        try:
            s = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise MalformedInput(f"note is not valid UTF-8: {e}", reason="utf8") from e
    elif isinstance(data, str):
        s = data
        try:
            size = len(s.encode("utf-8"))
        except UnicodeEncodeError as e:
            raise MalformedInput(f"note is not valid UTF-8: {e}", reason="utf8") from e
        if size > MAX_NOTE_SIZE:
            raise MalformedInput(f"note is over {MAX_NOTE_SIZE} bytes", reason="oversize")
    else:
        raise MalformedInput("note must be bytes or str", reason="utf8")

    if m := _CONTROL_RE.search(s):
        raise MalformedInput(
            f"note contains control character {m.group()!r}", reason="control_character"
        )
    if not s.endswith("\n"):
        raise MalformedInput("note must end with a newline", reason="no_trailing_newline")
    # The text is separated from the signatures by the LAST empty line
    # (C2SP signed-note, "Format"); the text keeps its final newline.
    split = s.rfind("\n\n")
    if split < 0:
        raise MalformedInput(
            "note has no blank line before its signatures", reason="missing_blank_line"
        )
    text, block = s[: split + 1], s[split + 2 :]
    if not block:
        raise MalformedInput("note has no signature lines", reason="no_signatures")

    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise MalformedInput(
            f"note has {len(lines)} signatures, at most {MAX_SIGNATURES} accepted",
            reason="too_many_signatures",
        )
    sigs: list[Signature] = []
    seen: set[tuple[str, bytes]] = set()
    for n, line in enumerate(lines):
        where = f"signature[{n}]"
        if not line.startswith(_SIG_PREFIX):
            raise MalformedInput(
                f"{where} does not start with an em dash and a space",
                reason="signature_prefix",
                field=where,
            )
        name, sep, b64 = line[len(_SIG_PREFIX) :].partition(" ")
        if not sep or not b64:
            raise MalformedInput(
                f"{where} is not '— NAME BASE64'", reason="signature_line", field=where
            )
        if not _NAME_RE.fullmatch(name):
            raise MalformedInput(
                f"{where} has a bad key name {name!r}", reason="key_name", field=where
            )
        try:
            blob = _b64decode_strict(b64)
        except MalformedInput as e:
            e.field = where
            raise
        if len(blob) <= _KEY_ID_SIZE:
            raise MalformedInput(
                f"{where} is {len(blob)} bytes: a 4-byte key id and a signature are required",
                reason="short_signature",
                field=where,
            )
        sig = Signature(name, blob[:_KEY_ID_SIZE], blob[_KEY_ID_SIZE:])
        if (name, sig.key_id) in seen:
            raise MalformedInput(
                f"{where} repeats a signature by {name} {sig.key_id.hex()}",
                reason="duplicate_signature",
                field=where,
            )
        seen.add((name, sig.key_id))
        sigs.append(sig)
    return Note(text, sigs)


def format_note(note: Note) -> str:
    """The text, a blank line and one signature line per signature (C2SP signed-note).

    Raises ``MalformedInput`` for anything :func:`parse_note` would refuse.
    """
    _check_text(note.text)
    if not note.signatures:
        raise MalformedInput("a signed note needs at least one signature", reason="no_signatures")
    if len(note.signatures) > MAX_SIGNATURES:
        raise MalformedInput(
            f"at most {MAX_SIGNATURES} signatures per note", reason="too_many_signatures"
        )
    seen: set[tuple[str, bytes]] = set()
    for sig in note.signatures:
        _check_signature(sig)
        if (sig.name, sig.key_id) in seen:
            raise MalformedInput(
                f"two signatures by {sig.name} {sig.key_id.hex()}", reason="duplicate_signature"
            )
        seen.add((sig.name, sig.key_id))
    out = note.text + "\n" + "".join(sig.line() + "\n" for sig in note.signatures)
    if len(out.encode("utf-8")) > MAX_NOTE_SIZE:
        raise MalformedInput(f"note is over {MAX_NOTE_SIZE} bytes", reason="oversize")
    return out


def sign_note(text: str, name: str, private_key: Ed25519PrivateKey) -> Signature:
    """Ed25519 note signature (type 0x01) over the UTF-8 note text (C2SP signed-note)."""
    raw = _check_text(text)
    _check_name(name)
    kid = key_id(name, public_key_bytes(private_key), ALG_ED25519)
    return Signature(name, kid, private_key.sign(raw))


def verify_note(note: Note, known_keys: Sequence[VerifierKey]) -> list[VerifierKey]:
    """Check a note's Ed25519 (type 0x01) signatures against the known keys.

    Per C2SP signed-note: a signature whose (name, key id) matches no known key
    is ignored; one that matches a known key MUST verify, else the whole note
    is refused (``VerificationError(reason="bad_signature")``); and if no known
    key verified it, ``reason="no_known_signature"``.  Keys of other types
    (cosigner keys, 0x04) are not used here, see :func:`verify_cosignatures`.
    Returns the keys that verified, in signature order.
    """
    msg = note.text.encode("utf-8")
    by_id = {(k.name, k.key_id): k for k in known_keys if k.alg == ALG_ED25519}
    ok: list[VerifierKey] = []
    for sig in note.signatures:
        k = by_id.get((sig.name, sig.key_id))
        if k is None:
            continue
        if not verify_ed25519(k.public_key, sig.signature, msg):
            raise VerificationError(
                f"signature by known key {sig.name}+{sig.key_id.hex()} does not verify",
                reason="bad_signature",
                expected=str(k),
                got=sig.line(),
            )
        if k not in ok:
            ok.append(k)
    if not ok:
        raise VerificationError(
            "no signature from a known key",
            reason="no_known_signature",
            expected=[str(k) for k in known_keys],
            got=[f"{s.name}+{s.key_id.hex()}" for s in note.signatures],
        )
    return ok


def add_signatures(note_text: str, sigs: Iterable[Signature]) -> str:
    """Merge signature lines into a signed note and return the new note text.

    Existing lines keep their order and the new ones follow.  A signature for
    a (name, key id) the note already has is dropped -- the first one wins --
    so merging the same cosignatures twice changes nothing.
    """
    note = parse_note(note_text)
    merged = list(note.signatures)
    have = {(s.name, s.key_id) for s in merged}
    for s in sigs:
        if (s.name, s.key_id) not in have:
            _check_signature(s)
            merged.append(s)
            have.add((s.name, s.key_id))
    return format_note(Note(note.text, merged))


# --------------------------------------------------------------------------- checkpoints


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A C2SP tlog-checkpoint body: origin, tree size, root hash, extension lines."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.origin, str) or not self.origin or "\n" in self.origin:
            raise MalformedInput(
                f"origin must be one non-empty line, got {self.origin!r}", reason="origin"
            )
        if _CONTROL_RE.search(self.origin):
            raise MalformedInput("origin contains a control character", reason="control_character")
        if (
            isinstance(self.size, bool)
            or not isinstance(self.size, int)
            or not 0 <= self.size <= _MAX_TREE_SIZE
        ):
            raise MalformedInput(f"tree size must be 0..2^63-1, got {self.size!r}", reason="size")
        if not isinstance(self.root, bytes) or len(self.root) != 32:
            raise MalformedInput("root hash must be 32 bytes", reason="root_hash")
        for ext in self.extensions:
            if not isinstance(ext, str) or not ext or "\n" in ext:
                raise MalformedInput(
                    f"extension lines must be non-empty single lines, got {ext!r}",
                    reason="extension",
                )
            if _CONTROL_RE.search(ext):
                raise MalformedInput(
                    "extension line contains a control character", reason="control_character"
                )


def format_checkpoint(cp: Checkpoint) -> str:
    """The checkpoint note text: origin, size, base64 root, extension lines, each ending in newline."""
    root = base64.b64encode(cp.root).decode("ascii")
    return "".join(f"{line}\n" for line in (cp.origin, str(cp.size), root, *cp.extensions))


def parse_checkpoint(text: str | bytes) -> Checkpoint:
    """Parse a checkpoint note text (C2SP tlog-checkpoint), not a whole signed note.

    Strict: at least three non-empty lines each ending in a newline; the size
    in ASCII decimal with no leading zeros (unless ``0``) and below 2^63; the
    root canonical base64 of exactly 32 bytes; extension lines non-empty.
    """
    if isinstance(text, bytes | bytearray | memoryview):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as e:
            raise MalformedInput(f"checkpoint is not valid UTF-8: {e}", reason="utf8") from e
    if not isinstance(text, str):
        raise MalformedInput("checkpoint must be str or bytes", reason="utf8")
    _check_text(text, "checkpoint")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise MalformedInput(
            f"checkpoint has {len(lines)} lines, at least 3 required", reason="too_few_lines"
        )
    origin, size_s, root_s, *exts = lines
    if not origin:
        raise MalformedInput("checkpoint origin line is empty", reason="origin", field="origin")
    if not _SIZE_RE.fullmatch(size_s) or len(size_s) > 19 or int(size_s) > _MAX_TREE_SIZE:
        raise MalformedInput(
            f"checkpoint size {size_s[:40]!r} is not a canonical decimal below 2^63",
            reason="size",
            field="size",
        )
    try:
        root = _b64decode_strict(root_s)
    except MalformedInput as e:
        raise MalformedInput(str(e), reason="root_hash", field="root") from e
    if len(root) != 32:
        raise MalformedInput(
            f"checkpoint root hash is {len(root)} bytes, expected 32",
            reason="root_hash",
            field="root",
        )
    for i, ext in enumerate(exts):
        if not ext:
            raise MalformedInput(
                "checkpoint extension lines must be non-empty",
                reason="extension",
                field=f"extension[{i}]",
            )
    return Checkpoint(origin, int(size_s), root, tuple(exts))


def sign_checkpoint(cp: Checkpoint, private_key: Ed25519PrivateKey) -> str:
    """The full signed note of a checkpoint, signed by the log key named after the origin."""
    text = format_checkpoint(cp)
    return format_note(Note(text, [sign_note(text, cp.origin, private_key)]))


def open_checkpoint(note_text: str | bytes, log_key: VerifierKey) -> tuple[Checkpoint, Note]:
    """Verify a signed checkpoint with the log's key and parse it.

    The log's signature must verify (``verify_note``) BEFORE the text is
    trusted, and the key name must equal the origin line
    (``VerificationError(reason="origin_mismatch")``).
    """
    note = parse_note(note_text)
    verify_note(note, [log_key])
    cp = parse_checkpoint(note.text)
    if cp.origin != log_key.name:
        raise VerificationError(
            "checkpoint origin is not the log key's name",
            reason="origin_mismatch",
            expected=log_key.name,
            got=cp.origin,
        )
    return cp, note


# --------------------------------------------------------------------------- cosignatures


def cosignature_message(checkpoint_text: str, timestamp: int) -> bytes:
    """What an Ed25519 witness signs (C2SP tlog-cosignature, "Ed25519 signed message").

    ``cosignature/v1\\ntime <timestamp>\\n`` followed by the whole checkpoint
    note text (extension lines included, no signature lines).
    """
    _check_timestamp(timestamp)
    raw = _check_text(checkpoint_text, "checkpoint")
    return f"{COSIGNATURE_HEADER}time {timestamp}\n".encode("ascii") + raw


def _check_timestamp(timestamp: int) -> None:
    if (
        isinstance(timestamp, bool)
        or not isinstance(timestamp, int)
        or not 0 <= timestamp <= MAX_TIMESTAMP
    ):
        raise MalformedInput(
            f"cosignature time must be 0..2^63-1, got {timestamp!r}", reason="timestamp"
        )


def cosign(
    checkpoint_text: str, witness_name: str, witness_key: Ed25519PrivateKey, timestamp: int
) -> Signature:
    """A witness's Ed25519 cosignature (type 0x04) of a checkpoint note text.

    ``checkpoint_text`` is the checkpoint body (what :func:`format_checkpoint`
    gives, i.e. ``Note.text``), not the signed note; it is parsed first so a
    witness never signs something that is not a checkpoint.  The signature
    bytes after the key id are the 8-byte big-endian time then the 64-byte
    Ed25519 signature (``timestamped_signature``).
    """
    parse_checkpoint(checkpoint_text)
    _check_name(witness_name, "witness name")
    msg = cosignature_message(checkpoint_text, timestamp)
    kid = key_id(witness_name, public_key_bytes(witness_key), ALG_COSIGNATURE_V1)
    return Signature(
        witness_name, kid, timestamp.to_bytes(_TIMESTAMP_SIZE, "big") + witness_key.sign(msg)
    )


def verify_cosignatures(
    note: Note, witness_keys: Sequence[VerifierKey], min_count: int
) -> list[tuple[VerifierKey, int]]:
    """Check Ed25519 cosignatures (type 0x04) and require at least ``min_count`` witnesses.

    Signatures that match no witness key by (name, key id) are ignored (the
    log's own, other witnesses'); keys of other types in ``witness_keys`` are
    not used.  A matching cosignature that does not verify refuses the note
    (``VerificationError(reason="bad_signature")``, or ``bad_timestamp`` for a
    time over 2^63 - 1).  Returns ``(key, timestamp)`` per distinct witness, in
    signature order; fewer than ``min_count`` gives
    ``VerificationError(reason="not_enough_witnesses", expected=min_count, got=n)``.
    """
    if isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 0:
        raise MalformedInput(f"min_count must be >= 0, got {min_count!r}", reason="min_count")
    text = note.text.encode("utf-8")
    by_id = {(k.name, k.key_id): k for k in witness_keys if k.alg == ALG_COSIGNATURE_V1}
    out: list[tuple[VerifierKey, int]] = []
    for sig in note.signatures:
        k = by_id.get((sig.name, sig.key_id))
        if k is None:
            continue
        blob = sig.signature
        if len(blob) != _TIMESTAMP_SIZE + _ED25519_SIG_SIZE:
            raise VerificationError(
                f"cosignature by {sig.name} is {len(blob)} bytes",
                reason="bad_signature",
                expected=_TIMESTAMP_SIZE + _ED25519_SIG_SIZE,
                got=len(blob),
            )
        ts = int.from_bytes(blob[:_TIMESTAMP_SIZE], "big")
        if ts > MAX_TIMESTAMP:
            raise VerificationError(
                f"cosignature by {sig.name} has time {ts} over 2^63-1",
                reason="bad_timestamp",
                expected=f"<= {MAX_TIMESTAMP}",
                got=ts,
            )
        msg = f"{COSIGNATURE_HEADER}time {ts}\n".encode("ascii") + text
        if not verify_ed25519(k.public_key, blob[_TIMESTAMP_SIZE:], msg):
            raise VerificationError(
                f"cosignature by known witness {sig.name}+{sig.key_id.hex()} does not verify",
                reason="bad_signature",
                expected=str(k),
                got=sig.line(),
            )
        if all(k != seen for seen, _ in out):
            out.append((k, ts))
    if len(out) < min_count:
        raise VerificationError(
            f"{len(out)} known witnesses cosigned, {min_count} required",
            reason="not_enough_witnesses",
            expected=min_count,
            got=len(out),
        )
    return out

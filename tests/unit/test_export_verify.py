"""`cuentas verify --export`: every entry of an exported log proven into its signed checkpoints.

Exports are built here with the pure core (entry bundles, hash tiles from
``append_leaf_hashes``, checkpoints signed by a log key and cosigned by a
witness), then tampered with the way a dishonest mirror would.  Each
tampering must be refused and named (issue 14, items 1 and 2).
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

from schemas.envelope import sign_event
from schemas.errors import CuentasError, MalformedInput, VerificationError
from schemas.export_verify import verify_export
from schemas.keys import ALG_COSIGNATURE_V1, VerifierKey, public_key_bytes
from schemas.merkle import append_leaf_hashes, frontier_root, inclusion_proof, leaf_hash, node_hash
from schemas.note import Checkpoint, add_signatures, cosign, format_checkpoint, sign_checkpoint
from schemas.receipt import build_receipt
from schemas.tiles import TILE_WIDTH, encode_entry_bundle, entries_path, tile_path, tile_updates
from schemas.witness_policy import WitnessPolicy
from tests.hostile.corpus import private_key

ROOT = Path(__file__).resolve().parents[2]
LOG = "cuentasclaras.example/log"
LOG_KEY, W_KEY = private_key("export-log"), private_key("export-witness")
LOG_VK = VerifierKey(LOG, public_key_bytes(LOG_KEY))
W_VK = VerifierKey("witness.export", public_key_bytes(W_KEY), ALG_COSIGNATURE_V1)
STRICT = WitnessPolicy.of([W_VK])


def entry(i: int, pad: int = 0) -> bytes:
    return b'{"entry":%d,"pad":"%s"}' % (i, b"x" * pad)


def note_for(leaves: list[bytes], size: int, *, witness: bool = True) -> str:
    frontier, _ = append_leaf_hashes([], 0, [leaf_hash(x) for x in leaves[:size]])
    cp = Checkpoint(LOG, size, frontier_root(frontier))
    note = sign_checkpoint(cp, LOG_KEY)
    if witness:
        note = add_signatures(note, [cosign(format_checkpoint(cp), W_VK.name, W_KEY, 1_767_225_600)])
    return note


def write_export(out: Path, leaves: list[bytes], earlier: tuple[int, ...] = (), *, witness: bool = True) -> Path:
    """What `cuentas log export` writes for a log of ``leaves`` with checkpoints at ``earlier`` sizes."""
    size = len(leaves)
    _, nodes = append_leaf_hashes([], 0, [leaf_hash(x) for x in leaves])
    for (level, index), data in tile_updates(nodes).items():
        p = out / tile_path(level, index, len(data) // 32)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    for b in range(0, size, TILE_WIDTH):
        bundle = leaves[b : b + TILE_WIDTH]
        p = out / entries_path(b // TILE_WIDTH, len(bundle))
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(encode_entry_bundle(bundle))
    (out / "checkpoints").mkdir(parents=True, exist_ok=True)
    for s in earlier:
        (out / "checkpoints" / str(s)).write_text(note_for(leaves, s, witness=witness))
    (out / "checkpoint").write_text(note_for(leaves, size, witness=witness))
    return out


LEAVES = [entry(i) for i in range(600)]  # level 0: 2 full tiles + 1 partial; level 1: width 2


@pytest.fixture
def export(tmp_path: Path) -> Path:
    return write_export(tmp_path / "export", LEAVES, (1, 7, 256, 300, 599))


def refused(path: Path, reason: str, *, policy: WitnessPolicy = STRICT, receipt: bytes | None = None) -> str:
    with pytest.raises(CuentasError) as e:
        verify_export(path, LOG_VK, policy=policy, receipt=receipt)
    assert getattr(e.value, "reason", None) == reason, (e.value.reason, str(e.value))  # type: ignore[attr-defined]
    return str(e.value)


def flip_hash(path: Path, position: int) -> None:
    data = bytearray(path.read_bytes())
    data[position * 32] ^= 1
    path.write_bytes(bytes(data))


# --- the honest export -----------------------------------------------------------------------------


def test_an_honest_export_is_proven_entry_by_entry(export: Path) -> None:
    report = verify_export(export, LOG_VK, policy=STRICT)
    assert report.size == 600 and report.checkpoints == 5
    assert report.witnesses == ("witness.export",)
    # tile/0/000, tile/0/001, tile/0/002.p/88 and tile/1/000.p/2: every stored tile compared
    assert report.tiles == 4
    assert str(report).startswith("OK: all 600 entries are proven into the signed checkpoint")


def test_an_empty_log(tmp_path: Path) -> None:
    out = write_export(tmp_path / "e", [])
    assert verify_export(out, LOG_VK, policy=STRICT).size == 0


@pytest.mark.parametrize("size", [1, 2, 255, 256, 257, 511, 512, 513, 65536 + 257])
def test_edges_of_tiles(tmp_path: Path, size: int) -> None:
    leaves = [entry(i) for i in range(size)]
    out = write_export(tmp_path / "e", leaves, tuple(sorted({1, size // 2 or 1, size - 1 or 1})))
    assert verify_export(out, LOG_VK, policy=STRICT).size == size


# --- issue 14.1: a mirror that rewrote history -----------------------------------------------------


@pytest.mark.parametrize("earlier", [(), (1, 7, 256, 300, 599)])
def test_regression_entry_and_its_leaf_hash_rewritten_together_are_refused(
    tmp_path: Path, earlier: tuple[int, ...]
) -> None:
    """Regression: entries were checked against the level-0 tiles only and the root rebuilt from the
    level-1 tiles, so an entry rewritten together with its level-0 hash passed ("OK: ... match")."""
    export = write_export(tmp_path / "export", LEAVES, earlier)
    bundle = export / entries_path(0)
    forged = [entry(i) for i in range(TILE_WIDTH)]
    forged[100] = b'{"entry":100,"pad":"rewritten"}'
    bundle.write_bytes(encode_entry_bundle(forged))
    tile0 = export / tile_path(0, 0)
    data = bytearray(tile0.read_bytes())
    data[100 * 32 : 101 * 32] = leaf_hash(forged[100])
    tile0.write_bytes(bytes(data))
    msg = refused(export, "tile_mismatch")
    assert "tile/1/000.p/2 hash 0" in msg and "entries 0 to 255" in msg


def test_an_entry_alone_rewritten_is_named(export: Path) -> None:
    bundle = export / entries_path(1)
    forged = [entry(i) for i in range(TILE_WIDTH, 2 * TILE_WIDTH)]
    forged[10] = b"{}"
    bundle.write_bytes(encode_entry_bundle(forged))
    msg = refused(export, "entry_mismatch")
    assert "entry 266 (tile/entries/001)" in msg and "tile/0/001" in msg


def test_a_level_1_tile_rewritten_is_refused(export: Path) -> None:
    flip_hash(export / tile_path(1, 0, 2), 1)
    assert "tile/1/000.p/2 hash 1" in refused(export, "tile_mismatch")


def test_regression_a_level_1_tile_under_a_level_2_tile_is_checked(tmp_path: Path) -> None:
    """Regression: the root was rebuilt from the fewest tiles (here one level-2 hash covering the first
    65536 entries), so a rewritten level-1 tile under it was never read and the copy passed."""
    leaves = [entry(i) for i in range(65536 + 300)]
    out = write_export(tmp_path / "big", leaves)
    assert verify_export(out, LOG_VK, policy=STRICT).size == len(leaves)
    flip_hash(out / tile_path(1, 0), 17)
    assert "tile/1/000 hash 17 differs" in refused(out, "tile_mismatch")


def test_a_level_0_tile_rewritten_is_refused(export: Path) -> None:
    flip_hash(export / tile_path(0, 2, 88), 87)
    assert "entry 599" in refused(export, "entry_mismatch")


def test_an_older_partial_tile_must_be_a_prefix(export: Path) -> None:
    # A mirror keeps the partial tiles of earlier sizes; a client at that size reads them.
    _, nodes = append_leaf_hashes([], 0, [leaf_hash(x) for x in LEAVES[:520]])
    old = tile_updates(nodes)[(0, 2)]
    p = export / tile_path(0, 2, 8)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(old)
    assert verify_export(export, LOG_VK, policy=STRICT).tiles == 5
    flip_hash(p, 3)
    assert "tile/0/002.p/8 is not a prefix" in refused(export, "tile_mismatch")


def test_a_checkpoint_rewritten_is_refused(export: Path) -> None:
    text = (export / "checkpoint").read_text()
    (export / "checkpoint").write_text(text.replace("\n600\n", "\n601\n", 1))
    assert refused(export, "bad_signature").startswith("checkpoint: ")


def test_a_checkpoint_signed_over_another_root_is_refused(export: Path) -> None:
    forged = Checkpoint(LOG, 300, node_hash(leaf_hash(b"a"), leaf_hash(b"b")))
    (export / "checkpoints" / "300").write_text(sign_checkpoint(forged, LOG_KEY))
    msg = refused(export, "root_mismatch")
    assert "the first 300 entries" in msg and "checkpoints/300" in msg


def test_a_fork_at_the_head_size_is_refused(export: Path) -> None:
    forged = Checkpoint(LOG, 600, bytes(32))
    (export / "checkpoints" / "600").write_text(sign_checkpoint(forged, LOG_KEY))
    refused(export, "fork")


def test_regression_a_rolled_back_head_is_an_error_not_consistent(tmp_path: Path) -> None:
    """Regression: a checkpoint larger than the head was skipped and still counted as consistent."""
    out = write_export(tmp_path / "rb", LEAVES[:300], (7, 256))
    # The log had published a larger checkpoint; the mirror serves an older head.
    (out / "checkpoints" / "600").write_text(note_for(LEAVES, 600))
    msg = refused(out, "rollback")
    assert "checkpoints/600" in msg and "larger than the head checkpoint (300)" in msg


def test_checkpoint_files_are_named_by_their_size(export: Path) -> None:
    shutil.copy(export / "checkpoints" / "7", export / "checkpoints" / "8")
    refused(export, "checkpoint_name")
    (export / "checkpoints" / "8").unlink()
    (export / "checkpoints" / "seven").write_text("x")
    refused(export, "checkpoint_name")


def test_missing_and_short_files(export: Path) -> None:
    (export / tile_path(1, 0, 2)).write_bytes(b"\x00" * 40)
    refused(export, "tile_length")
    (export / tile_path(1, 0, 2)).unlink()
    assert "tile/1/000.p/2" in refused(export, "missing_file")


# --- issue 14.2: witnesses in export mode ------------------------------------------------------------


def test_witness_cosignatures_are_required_in_export_mode(tmp_path: Path) -> None:
    out = write_export(tmp_path / "nw", LEAVES, (7,), witness=False)
    assert "0 of the 1 trusted witness(es) cosigned" in refused(out, "not_enough_witnesses")
    assert verify_export(out, LOG_VK, policy=WitnessPolicy.of([W_VK], 0)).witnesses == ()
    assert verify_export(out, LOG_VK).size == 600  # no witness key given: nothing required


def test_a_bad_cosignature_on_an_earlier_checkpoint_is_refused(export: Path) -> None:
    p = export / "checkpoints" / "256"
    lines = p.read_text().splitlines(keepends=True)
    name, b64 = lines[-1].rstrip("\n").rsplit(" ", 1)
    sig = bytearray(base64.b64decode(b64))
    sig[-1] ^= 1
    lines[-1] = f"{name} {base64.b64encode(bytes(sig)).decode()}\n"
    p.write_text("".join(lines))
    assert refused(export, "bad_signature").startswith("checkpoints/256: ")


# --- receipts against the export ---------------------------------------------------------------------


EVENTS = [
    sign_event(private_key("op.export"), publisher_id="op.export", event_type="transfer.paid_out", seq=i,
               event_time="2026-01-01T00:00:00Z",
               payload={"transfer_id": f"tr-{i}", "paid": {"amount": 100 + i, "currency": "MXN"},
                        "paid_at": "2026-01-01T00:00:00Z", "payout_ref": f"po-{i}"}).leaf_bytes()
    for i in range(1, 301)
]


def _receipt(size: int, index: int) -> bytes:
    leaves = EVENTS[:size]
    r = build_receipt(leaves[index], index, size, inclusion_proof(index, leaves), note_for(EVENTS, size))
    return r.to_json().encode()


def test_a_receipt_against_an_earlier_checkpoint(tmp_path: Path) -> None:
    out = write_export(tmp_path / "ev", EVENTS, (100, 299))
    report = verify_export(out, LOG_VK, policy=STRICT, receipt=_receipt(100, 42))
    assert report.receipt_indices == (42,) and "the receipt's event is entry 42" in str(report)
    # a checkpoint size the export does not list: still proven from the entries
    assert verify_export(out, LOG_VK, policy=STRICT, receipt=_receipt(250, 249)).receipt_checked
    # a bundle of receipts
    from schemas.receipt import bundle_json, parse_receipt

    bundle = bundle_json([parse_receipt(_receipt(100, 3)), parse_receipt(_receipt(299, 298))]).encode()
    assert "entries 3, 298" in str(verify_export(out, LOG_VK, policy=STRICT, receipt=bundle))
    # a receipt of another log of the same size is a fork of this one
    other = write_export(tmp_path / "other", LEAVES[:300], (100,))
    refused(other, "root_mismatch", receipt=_receipt(250, 3))


def test_a_receipt_newer_than_the_export_is_refused(tmp_path: Path) -> None:
    out = write_export(tmp_path / "old", EVENTS[:200])
    refused(out, "size_order", receipt=_receipt(300, 1))


# --- O(tile) memory ----------------------------------------------------------------------------------


def test_memory_stays_near_one_tile(tmp_path: Path) -> None:
    leaves = [entry(i, pad=200) for i in range(20_000)]  # ~4.7 MB of entries, ~1.3 MB of tiles
    out = write_export(tmp_path / "mem", leaves, (5000, 19_999))
    del leaves
    tracemalloc.start()
    try:
        verify_export(out, LOG_VK, policy=STRICT)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000, peak


# --- the command line --------------------------------------------------------------------------------


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cuentas", "verify", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})


def test_cli_export_mode(tmp_path: Path) -> None:
    out = write_export(tmp_path / "cli", LEAVES, (7,), witness=False)
    ok = _cli("--export", str(out), "--log-key", str(LOG_VK))
    assert ok.returncode == 0 and ok.stdout.startswith("OK: all 600 entries"), ok.stderr
    assert "no witness key given" in ok.stdout
    bad = _cli("--export", str(out), "--log-key", str(LOG_VK), "--witness-key", str(W_VK))
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert bad.stderr.count("\n") == 1 and bad.stderr.startswith("cuentas: checkpoint: 0 of the 1 trusted")
    lowered = _cli("--export", str(out), "--log-key", str(LOG_VK), "--witness-key", str(W_VK),
                   "--min-witnesses", "0")
    assert lowered.returncode == 0, lowered.stderr
    flip_hash(out / tile_path(1, 0, 2), 0)
    bad = _cli("--export", str(out), "--log-key", str(LOG_VK))
    assert bad.returncode == 1 and bad.stderr.startswith("cuentas: tile/1/000.p/2 hash 0 differs")


def test_errors_are_cuentas_errors() -> None:
    assert issubclass(MalformedInput, CuentasError) and issubclass(VerificationError, CuentasError)

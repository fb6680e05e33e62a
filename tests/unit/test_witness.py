"""schemas.witness: a witness only moves forward along consistency proofs."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import merkle as M
from schemas.errors import MalformedInput, ProofError, VerificationError
from schemas.note import Checkpoint
from schemas.witness import ForkDetected, RollbackDetected, WitnessState, decide

ORIGIN = "log.cuentas.example/v1"
HASHES = [M.leaf_hash(f"entry {i}".encode()) for i in range(100)]
FORK = [*HASHES[:40], *(M.leaf_hash(f"evil {i}".encode()) for i in range(40, 100))]


def cp(size: int, hashes: list[bytes] = HASHES, origin: str = ORIGIN) -> Checkpoint:
    return Checkpoint(origin, size, M.root_from_leaf_hashes(hashes[:size]))


def state(size: int, hashes: list[bytes] = HASHES) -> WitnessState:
    return WitnessState(ORIGIN, size, M.root_from_leaf_hashes(hashes[:size]))


def proof(size1: int, size2: int, hashes: list[bytes] = HASHES) -> list[bytes]:
    return M.consistency_proof_from_hashes(size1, hashes[:size2])


def test_first_checkpoint_is_accepted() -> None:
    assert decide(None, cp(10), []) == state(10)
    assert decide(None, cp(0), []) == WitnessState(ORIGIN, 0, M.EMPTY_ROOT)


def test_accepts_growth_with_a_valid_proof() -> None:
    s = state(1)
    for size in (2, 3, 8, 9, 40, 41, 64, 99, 100):
        s = decide(s, cp(size), proof(s.size, size))
        assert s == state(size)


def test_accepts_the_same_checkpoint_again() -> None:
    assert decide(state(10), cp(10), []) == state(10)
    with pytest.raises(ProofError) as e:
        decide(state(10), cp(10), [HASHES[0]])
    assert e.value.reason == "wrong_proof_length"


def test_growth_from_the_empty_tree_needs_no_proof() -> None:
    assert decide(state(0), cp(5), []) == state(5)
    assert decide(state(0), cp(0), []) == state(0)
    with pytest.raises(ProofError):
        decide(state(0), cp(5), [HASHES[0]])


def test_refuses_rollback() -> None:
    for old, new in ((10, 9), (10, 0), (100, 1)):
        with pytest.raises(RollbackDetected) as e:
            decide(state(old), cp(new), [])
        assert isinstance(e.value, VerificationError)
        assert (e.value.reason, e.value.expected, e.value.got) == ("rollback", old, new)


def test_refuses_a_fork_at_the_same_size() -> None:
    with pytest.raises(ForkDetected) as e:
        decide(state(50), cp(50, FORK), [])
    assert isinstance(e.value, VerificationError)
    assert e.value.reason == "fork"
    assert e.value.expected == (50, state(50).root.hex())
    assert e.value.got == (50, cp(50, FORK).root.hex())


def test_refuses_a_bigger_tree_that_does_not_extend_the_old_one() -> None:
    # The forked log shares the first 40 leaves only.
    assert decide(state(30), cp(60, FORK), proof(30, 60, FORK)) == state(60, FORK)
    for old in (41, 50, 64):
        with pytest.raises(ForkDetected) as e:
            # The forked log's own (valid for its tree) proof.
            decide(state(old), cp(80, FORK), proof(old, 80, FORK))
        assert isinstance(e.value.__cause__, ProofError)
        assert e.value.expected == (old, state(old).root.hex())
        assert e.value.got == (80, cp(80, FORK).root.hex())
        with pytest.raises(ForkDetected):
            # The honest proof, offered with the forked root.
            decide(state(old), cp(80, FORK), proof(old, 80))


def test_structurally_bad_proofs_are_proof_errors() -> None:
    good = proof(10, 20)
    for bad, reason in (
        ([], "wrong_proof_length"),
        (good[:-1], "wrong_proof_length"),
        ([*good, good[0]], "wrong_proof_length"),
        ([good[0][:31], *good[1:]], "bad_hash_length"),
    ):
        with pytest.raises(ProofError) as e:
            decide(state(10), cp(20), bad)
        assert e.value.reason == reason
        assert not isinstance(e.value, ForkDetected | RollbackDetected)


def test_refuses_another_log_and_impossible_empty_roots() -> None:
    with pytest.raises(VerificationError) as e:
        decide(state(10), cp(20, origin="other.example/log"), proof(10, 20))
    assert (e.value.reason, e.value.expected) == ("origin_mismatch", ORIGIN)
    bad_empty = Checkpoint(ORIGIN, 0, hashlib.sha256(b"x").digest())
    for s in (None, state(0), state(5)):
        with pytest.raises(VerificationError) as e:
            decide(s, bad_empty, [])
        assert e.value.reason == "bad_empty_root"


def test_state_validation() -> None:
    root = M.EMPTY_ROOT
    for args, reason in (
        (("", 1, root), "origin"),
        ((ORIGIN, -1, root), "size"),
        ((ORIGIN, 1, root[:31]), "root_hash"),
    ):
        with pytest.raises(MalformedInput) as e:
            WitnessState(*args)
        assert e.value.reason == reason


@settings(max_examples=200, deadline=None)
@given(old=st.integers(1, 100), new=st.integers(1, 100), forked=st.booleans())
def test_decide_property(old: int, new: int, forked: bool) -> None:
    """Accept exactly the honest, non-shrinking updates; never raise anything else."""
    hashes = FORK if forked else HASHES
    offered = cp(new, hashes)
    p = proof(old, new, hashes) if old <= new else []
    honest = not forked or new <= 40
    try:
        got = decide(state(old), offered, p)
    except RollbackDetected:
        assert new < old
        return
    except ForkDetected:
        assert new >= old and not honest
        return
    assert new >= old and (honest or old <= 40)
    assert got == WitnessState(ORIGIN, new, offered.root)

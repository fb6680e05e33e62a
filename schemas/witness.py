"""The pure decision of a transparency-log witness (C2SP tlog-witness semantics).

A witness remembers, per log origin, the latest (size, root) it cosigned and
only moves forward along a consistency proof (RFC 9162 2.1.4.2).  Everything
else is refused: a smaller size is a rollback, a different root for the same
size or a bigger tree that does not extend the old one is a fork.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from schemas.errors import MalformedInput, ProofError, VerificationError
from schemas.merkle import EMPTY_ROOT, verify_consistency
from schemas.note import Checkpoint

__all__ = ["ForkDetected", "RollbackDetected", "WitnessState", "decide"]


class ForkDetected(VerificationError):
    """The log showed two views that cannot both be true (split view / rewritten history).

    ``expected`` is the (size, root hex) the witness holds, ``got`` the
    offered (size, root hex).
    """

    def __init__(
        self, message: str, *, expected: object | None = None, got: object | None = None
    ) -> None:
        super().__init__(message, reason="fork", expected=expected, got=got)


class RollbackDetected(VerificationError):
    """The log offered a smaller tree than one the witness already cosigned.

    ``expected`` is the minimum size (the one held), ``got`` the offered size.
    """

    def __init__(
        self, message: str, *, expected: object | None = None, got: object | None = None
    ) -> None:
        super().__init__(message, reason="rollback", expected=expected, got=got)


@dataclass(frozen=True, slots=True)
class WitnessState:
    """What a witness keeps per log: the last checkpoint it accepted."""

    origin: str
    size: int
    root: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.origin, str) or not self.origin:
            raise MalformedInput("witness state needs an origin", reason="origin")
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 0:
            raise MalformedInput(f"bad witness state size {self.size!r}", reason="size")
        if not isinstance(self.root, bytes) or len(self.root) != 32:
            raise MalformedInput("witness state root must be 32 bytes", reason="root_hash")


def decide(state: WitnessState | None, new: Checkpoint, proof: Sequence[bytes]) -> WitnessState:
    """Accept ``new`` (and return the state to store) or raise.

    * ``state is None`` (first sight of this log): ``new`` is accepted as is
      (trust on first use) and ``proof`` is not looked at.
    * A different origin: ``VerificationError(reason="origin_mismatch")``.
    * A size-0 checkpoint whose root is not SHA-256("") can never be valid:
      ``VerificationError(reason="bad_empty_root")``.
    * ``new.size < state.size``: :class:`RollbackDetected`.
    * Same size: the root must be the same, else :class:`ForkDetected`; the
      proof must be empty (``ProofError(reason="wrong_proof_length")``).
    * Old size 0: any growth is consistent with the empty tree (no proof
      exists, RFC 9162 defines none from size 0), ``proof`` must be empty.
    * Bigger size: ``proof`` must be a valid RFC 9162 2.1.4.2 consistency proof
      from (state.size, state.root) to (new.size, new.root).  If its hashes
      rebuild another old or new root the log is caught in a fork
      (:class:`ForkDetected`, the ``ProofError`` as ``__cause__``); if the proof
      is structurally wrong (bad length, bad hash sizes) it proves nothing
      either way and its ``ProofError`` is raised as is.  Either way the
      checkpoint is refused.
    """
    if new.size == 0 and new.root != EMPTY_ROOT:
        raise VerificationError(
            "a checkpoint of size 0 must have the empty-tree root",
            reason="bad_empty_root",
            expected=EMPTY_ROOT.hex(),
            got=new.root.hex(),
        )
    accepted = WitnessState(new.origin, new.size, new.root)
    if state is None:
        return accepted
    if new.origin != state.origin:
        raise VerificationError(
            "checkpoint is for another log",
            reason="origin_mismatch",
            expected=state.origin,
            got=new.origin,
        )
    if new.size < state.size:
        raise RollbackDetected(
            f"log went back from {state.size} to {new.size} leaves",
            expected=state.size,
            got=new.size,
        )
    held = (state.size, state.root.hex())
    offered = (new.size, new.root.hex())
    if new.size == state.size:
        if new.root != state.root:
            raise ForkDetected(
                f"two different roots for tree size {new.size}", expected=held, got=offered
            )
        # RFC 9162 2.1.4.2 has nothing to check between equal sizes: only
        # the empty proof is acceptable (audit-log.md edge case).
        if proof:
            raise ProofError(
                "consistency proof between equal tree sizes must be empty",
                reason="wrong_proof_length",
                expected=0,
                got=len(proof),
            )
        return accepted
    if state.size == 0:
        if proof:
            raise ProofError(
                "no proof exists from the empty tree",
                reason="wrong_proof_length",
                expected=0,
                got=len(proof),
            )
        return accepted
    try:
        verify_consistency(state.size, new.size, proof, state.root, new.root)
    except ProofError as e:
        if e.reason in ("root_mismatch", "old_root_mismatch"):
            raise ForkDetected(
                f"tree of {new.size} leaves does not extend the {state.size} the witness holds",
                expected=held,
                got=offered,
            ) from e
        raise
    return accepted

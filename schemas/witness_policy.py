"""Which witnesses a verifier trusts, and how many of them must have cosigned a checkpoint.

One value used by every verifier of the platform -- ``cuentas verify`` (a
receipt, an exported log), and the dashboard's green check -- so that they
cannot disagree about what "witnessed" means.

The default is strict: every witness key given must have cosigned (one valid
C2SP tlog-cosignature per key).  A verifier that trusts several witnesses but
accepts fewer of them lowers ``min_required`` explicitly.  A policy without
keys requires nothing and checks nothing (the log's own signature is still
checked by whoever opens the checkpoint).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from schemas.errors import MalformedInput, VerificationError
from schemas.keys import ALG_COSIGNATURE_V1, VerifierKey
from schemas.note import Note, verify_cosignatures

__all__ = ["WitnessPolicy"]


@dataclass(frozen=True, slots=True)
class WitnessPolicy:
    """Trusted witness keys (C2SP tlog-cosignature, type 0x04) and the cosignatures required."""

    keys: tuple[VerifierKey, ...] = ()
    min_required: int = 0

    def __post_init__(self) -> None:
        for k in self.keys:
            if not isinstance(k, VerifierKey) or k.alg != ALG_COSIGNATURE_V1:
                raise MalformedInput(
                    f"{k} is not a witness key: witness keys are C2SP cosignature keys (type 0x04)",
                    reason="witness_key",
                )
        if len(set(self.keys)) != len(self.keys):
            raise MalformedInput("the same witness key is given twice", reason="witness_key")
        n = self.min_required
        if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= len(self.keys):
            raise MalformedInput(
                f"cannot require {n!r} witness cosignatures with {len(self.keys)} witness key(s) "
                f"given (0 to {len(self.keys)})",
                reason="min_witnesses",
            )

    @classmethod
    def of(cls, keys: Iterable[VerifierKey], min_required: int | None = None) -> WitnessPolicy:
        """The policy for ``keys`` (duplicates dropped); by default one cosignature per key."""
        unique = tuple(dict.fromkeys(keys))
        return cls(unique, len(unique) if min_required is None else min_required)

    def check(self, note: Note) -> tuple[tuple[VerifierKey, int], ...]:
        """The trusted witnesses whose cosignature of ``note`` verifies, with their times.

        Raises ``VerificationError`` with ``bad_signature`` / ``bad_timestamp``
        when a cosignature under a trusted key does not verify (never ignored:
        it is forged or corrupt), and ``not_enough_witnesses`` (naming the
        missing witnesses) when fewer than ``min_required`` cosigned.
        Cosignatures by keys not in the policy are ignored.
        """
        got = tuple(verify_cosignatures(note, self.keys, 0)) if self.keys else ()
        if len(got) < self.min_required:
            seen = {k for k, _ in got}
            missing = [k.name for k in self.keys if k not in seen]
            raise VerificationError(
                f"{len(got)} of the {len(self.keys)} trusted witness(es) cosigned the checkpoint, "
                f"{self.min_required} required (missing: {', '.join(missing)})",
                reason="not_enough_witnesses",
                expected=self.min_required,
                got=len(got),
            )
        return got

    def describe(self, cosigned: int) -> str:
        """``"cosigned by 2 of 3 trusted witnesses (2 required)"``, or that none are trusted."""
        if not self.keys:
            return "no witness key given: cosignatures not checked"
        return (
            f"cosigned by {cosigned} of {len(self.keys)} trusted witness(es) "
            f"({self.min_required} required)"
        )

"""Exception roots of Cuentas Claras, one per concern, named by meaning.

Every failure the platform expects (bad input, a signature or proof that does
not check out, a service that cannot be reached) is one of these, so adapters
and the CLI can turn it into one clear line for a person instead of a
traceback.  Foreign exceptions are wrapped with ``raise ... from e``.
"""

from __future__ import annotations

__all__ = [
    "CuentasError",
    "MalformedInput",
    "VerificationError",
    "ProofError",
    "UnavailableService",
    "ConfigurationError",
]


class CuentasError(Exception):
    """Root of every error this project raises on purpose."""


class MalformedInput(CuentasError, ValueError):
    """Input bytes that cannot be parsed or break a rule of their contract.

    ``reason`` is a stable machine-readable code (``schema``, ``json``,
    ``oversize``...), ``field`` the JSON pointer or name of the offending part
    when one is known.
    """

    def __init__(self, message: str, *, reason: str = "malformed", field: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.field = field


class VerificationError(CuentasError):
    """A signature, proof or check that did not verify.

    Carries a stable ``reason`` code and, when it makes sense, what was
    ``expected`` and what was ``got`` (for example two root hashes).
    """

    def __init__(
        self,
        message: str,
        *,
        reason: str = "verification_failed",
        expected: object | None = None,
        got: object | None = None,
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.expected = expected
        self.got = got


class ProofError(VerificationError, ValueError):
    """A Merkle inclusion or consistency proof that does not verify (RFC 9162 2.1)."""

    def __init__(
        self,
        message: str,
        *,
        reason: str = "bad_proof",
        expected: object | None = None,
        got: object | None = None,
    ) -> None:
        super().__init__(message, reason=reason, expected=expected, got=got)


class UnavailableService(CuentasError):
    """A service the platform needs (broker, database, dashboard) cannot be reached."""


class ConfigurationError(CuentasError):
    """A setting is missing, contradictory or unusable."""

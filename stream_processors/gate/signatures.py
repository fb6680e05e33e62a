"""Ed25519 verification ahead of the gate's decision, on a small thread pool.

The signature check is most of the gate's CPU.  libsodium (PyNaCl, through
cffi) releases the GIL while it verifies, so the adapter verifies a batch's signatures on two
threads before its transaction and hands the verdicts to
:func:`~stream_processors.gate.decision.decide_batch` as a value
(``{signature_key(env, public_key): ok}``); the decision verifies inline only
what is not covered (keys learned from a reload or from the batch itself).
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

from schemas.envelope import Envelope
from schemas.keys import verify_ed25519
from schemas.registry import SignatureKey, TrustRegistry, signature_key

__all__ = ["verify_all", "verify_ahead"]

_POOL: ThreadPoolExecutor | None = None


def _one(job: tuple[Envelope, bytes]) -> bool:
    env, pub = job
    return verify_ed25519(pub, env.signature, env.signed_bytes())


_THREADS = 2


def _slice(jobs: list[tuple[Envelope, bytes]]) -> list[bool]:
    return [_one(j) for j in jobs]


def verify_all(jobs: list[tuple[Envelope, bytes]]) -> list[bool]:
    """Verify ``(envelope, public key)`` jobs on a small thread pool (libsodium, called through
    cffi, releases the GIL).

    One task per thread, each a contiguous slice: ``ThreadPoolExecutor.map``
    ignores ``chunksize`` (only the process pool honours it), so mapping job by
    job made a future, a lock and a condition per signature, 6-10% of the
    gate's samples in the drain profile.
    """
    global _POOL
    if len(jobs) < 2 * _THREADS:
        return _slice(jobs)
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=_THREADS, thread_name_prefix="verify")
    step = -(-len(jobs) // _THREADS)
    futures = [_POOL.submit(_slice, jobs[i:i + step]) for i in range(0, len(jobs), step)]
    return [ok for f in futures for ok in f.result()]


def verify_ahead(registry: TrustRegistry, envelopes: Iterable[Envelope]) -> dict[SignatureKey, bool]:
    """The verdict of every signature of ``envelopes`` whose key ``registry`` knows."""
    jobs = registry.signature_jobs(envelopes)
    if not jobs:
        return {}
    return {signature_key(env, pk): ok for (env, pk), ok in zip(jobs, verify_all(jobs), strict=True)}

"""infra.log_store.load_registry: the trust registry replayed from the registry's log events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from infra.log_store import load_registry
from producers.simulator import simulate
from schemas.keys import VerifierKey, public_key_bytes

AUTHORITY = "registry.test"
AUTHORITY_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))


ARRIVED = datetime(2025, 1, 2, tzinfo=UTC)


class FakeCursor:
    """Answers the registry query with the given leaves, all arrived at ``ARRIVED`` (the SQL runs in
    integration tests)."""

    def __init__(self, leaves: list[bytes]) -> None:
        self.leaves = leaves
        self.sql: list[str] = []
        self.params: list[Any] = []

    def execute(self, sql: str, params: Any = None) -> None:
        self.sql.append(sql)
        self.params.append(params)

    def fetchall(self) -> list[tuple[memoryview, datetime]]:
        return [(memoryview(leaf), ARRIVED) for leaf in self.leaves]


def test_registrations_and_a_revocation_replay_in_log_order() -> None:
    sim = simulate(
        5,
        events=600,
        start=datetime(2025, 1, 1, tzinfo=UTC),
        span=timedelta(days=30),
        anomalies=True,
    )
    envs = sim.registry_envelopes(AUTHORITY_KEY, AUTHORITY)
    cur = FakeCursor([e.leaf_bytes() for e in envs])
    reg = load_registry(cur, VerifierKey(AUTHORITY, public_key_bytes(AUTHORITY_KEY)))
    assert "accepted_at" in cur.sql[0] and "ORDER BY idx" in cur.sql[0]
    assert sorted(cur.params[0][0]) == ["publisher.key_rotated", "publisher.registered", "publisher.revoked"]
    assert set(reg.publishers) == {p.publisher_id for p in sim.publishers}
    # each registration is replayed at its recorded arrival: the end of its backfill
    assert all(info.registered_at == ARRIVED for info in reg.publishers.values())
    (revocation,) = [a for a in sim.registry if a.event_type == "publisher.revoked"]
    info = reg.publisher(revocation.publisher_id)
    assert info is not None
    key = info.key(str(revocation.payload["key_id"]))
    assert key is not None and key.revoked_at is not None
    others = [p for p in sim.publishers if p.publisher_id != revocation.publisher_id]
    assert all(k.revoked_at is None for p in others for k in reg.publishers[p.publisher_id].keys)


def test_an_empty_log_gives_an_empty_registry() -> None:
    reg = load_registry(FakeCursor([]), VerifierKey(AUTHORITY, public_key_bytes(AUTHORITY_KEY)))
    assert not reg.publishers

"""Registering publishers: the registry authority signs who may publish what.

Registry events travel like any other event (through the gate, into the
log), signed by the authority key that is the platform's root of trust.
Register a publisher before it publishes; its first events are otherwise
rejected as ``unknown_publisher``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from infra.identities import PLATFORM_PUBLISHER, Identity, PlatformKeys
from infra.settings import Settings
from producers.publisher import Publisher
from schemas.catalog import ROLES_BY_KIND
from schemas.envelope import Envelope
from schemas.keys import format_verifier_key, public_key_bytes
from schemas.times import format_time

__all__ = ["registration_payload", "register", "bootstrap_platform", "authority_publisher"]


def registration_payload(publisher_id: str, kind: str, public_key: bytes, *, roles: list[str] | None = None,
                         party: dict[str, str] | None = None, valid_from: datetime | None = None,
                         club_id: str | None = None, backfill_until: datetime | None = None) -> dict[str, Any]:
    """A ``publisher.registered`` payload: a committee is bound to ``club_id``; events dated from
    ``valid_from`` to the registration's arrival (or ``backfill_until``) are a declared backfill."""
    p: dict[str, Any] = {
        "publisher_id": publisher_id,
        "kind": kind,
        "roles": list(roles or ROLES_BY_KIND[kind]),
        "public_key": format_verifier_key(publisher_id, public_key),
        "valid_from": format_time(valid_from or datetime(2000, 1, 1, tzinfo=UTC)),
    }
    if party:
        p["party"] = party
    if club_id is not None:
        p["club_id"] = club_id
    if backfill_until is not None:
        p["backfill_until"] = format_time(backfill_until)
    return p


def authority_publisher(settings: Settings, authority: Identity) -> Publisher:
    return Publisher.open(settings, authority.name, authority.private_key)


def register(pub: Publisher, publisher_id: str, kind: str, public_key: bytes, **kw: Any) -> Envelope:
    return pub.publish("publisher.registered", registration_payload(publisher_id, kind, public_key, **kw))


def bootstrap_platform(settings: Settings, db_url: str) -> None:
    """Create the platform's keys and register the platform publisher once."""
    from infra.db import connect

    keys = PlatformKeys.load(settings)
    conn = connect(db_url, settings.database_schema, retries=3)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT 1 FROM log_entries WHERE event_type = 'publisher.registered' AND publisher_id = %s"
                " AND convert_from(leaf, 'UTF8')::jsonb -> 'payload' ->> 'publisher_id' = %s LIMIT 1",
                (keys.authority.name, PLATFORM_PUBLISHER),
            )
            if cur.fetchone():
                return
    finally:
        conn.close()
    pub = authority_publisher(settings, keys.authority)
    try:
        if pub.outbox.counts().handed == 0:
            register(pub, PLATFORM_PUBLISHER, "platform", public_key_bytes(keys.platform.private_key))
        else:
            pub.resend_due(0)  # handed before but not in the log: the broker may have lost it
        pub.flush()
    finally:
        pub.close()

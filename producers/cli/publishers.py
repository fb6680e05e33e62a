"""``cuentas publishers register|list``: administration of the registry on this platform.

Registry events are signed by the platform's registry authority key (read,
never created, from ``<data dir>/keys/registry.key``) and published like any
other event; the registry itself is read back from the log.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from producers.cli.common import (
    check_id,
    current_settings,
    parse_start,
    print_json,
    publisher_locks,
    running_platform,
)
from schemas.catalog import ROLES_BY_KIND
from schemas.envelope import Envelope
from schemas.errors import ConfigurationError, MalformedInput

if TYPE_CHECKING:
    from infra.settings import Settings
    from producers.publisher import Publisher
    from schemas.registry import TrustRegistry

__all__ = [
    "registry_authority",
    "read_registry",
    "cmd_publishers_register",
    "cmd_publishers_list",
    "add_parser",
]


def registry_authority(settings: Settings) -> Any:
    """The registry authority's identity, read (never created) from its key file."""
    from infra.identities import AUTHORITY_NAME, Identity, key_path, passphrase
    from infra.keystore import read_private_key

    path = key_path(settings, "registry")
    if not path.exists():
        raise ConfigurationError(
            f"no registry authority key at {path}: run this where `cuentas up` runs "
            "(same CUENTAS_DATA_DIR), or set REGISTRY_KEY_FILE"
        )
    return Identity(AUTHORITY_NAME, read_private_key(path, passphrase()))


def read_registry(settings: Settings, db_url: str, authority: Any) -> TrustRegistry:
    """The trust registry as the running platform's log has it."""
    from infra.db import connection
    from infra.log_store import load_registry

    with connection(db_url, settings.database_schema, retries=2) as conn, conn.cursor() as cur:
        return load_registry(cur, authority.verifier)


def _settle_one(
    pub: Publisher, envs: Sequence[Envelope], timeout: float
) -> list[tuple[Envelope, tuple[str, str | None, str | None, int | None] | None]]:
    pub.settle(timeout=timeout)
    return [(e, pub.outbox.status_of(e.event_id)) for e in envs]


def cmd_publishers_register(args: argparse.Namespace) -> int:
    """``cuentas publishers register``: publish ``publisher.registered``, wait for the verdict."""
    from producers.registry import authority_publisher, registration_payload
    from schemas.keys import ALG_ED25519, parse_verifier_key

    pid = check_id(args.id, "publisher id")
    vk = parse_verifier_key(args.key, alg=ALG_ED25519)
    if vk.name != pid:
        raise MalformedInput(
            f"the verifier key is named {vk.name!r}, not {pid!r}: a key is bound to its publisher "
            f"id (make one with `cuentas keys new {pid}`)",
            reason="verifier_key",
        )
    party = None
    if args.party_level or args.party_id:
        if not (args.party_level and args.party_id):
            raise MalformedInput("give both --party-level and --party-id", reason="party")
        party = {"level": args.party_level, "id": check_id(args.party_id, "--party-id")}
    if (args.kind == "government") != (party is not None):
        raise MalformedInput(
            "a government publisher needs --party-level and --party-id (and only a government)",
            reason="party",
        )
    roles = [r.strip() for r in args.roles.split(",") if r.strip()] if args.roles else None
    valid_from = parse_start(args.valid_from) if args.valid_from else datetime.now(UTC)
    payload = registration_payload(
        pid,
        args.kind,
        vk.public_key,
        roles=roles,
        party=party,
        valid_from=valid_from.replace(microsecond=0),
    )
    s = current_settings()
    s2, db_url = running_platform(s)
    authority = registry_authority(s)
    reg = read_registry(s, db_url, authority)
    if reg.publisher(pid) is not None:
        raise ConfigurationError(
            f"{pid} is already registered; a new key is added by rotation "
            "(`cuentas keys rotate`), not by registering again"
        )
    from infra.identities import AUTHORITY_NAME

    with publisher_locks(s, [AUTHORITY_NAME]):
        pub = authority_publisher(s2, authority)
        try:
            env = pub.sign("publisher.registered", payload, seq=pub.outbox.next_seq())
            pub.publish_envelope(env)
            ((_, status),) = _settle_one(pub, [env], args.timeout)
        finally:
            pub.close()
    result = {
        "publisher_id": pid,
        "event_id": env.event_id,
        "status": status[0] if status else "pending",
        "reason": status[1] if status else None,
        "log_index": status[3] if status else None,
    }
    if args.json:
        print_json(result)
    if status is None or status[0] == "pending":
        if not args.json:
            print(
                f"{pid}: no acknowledgement within {args.timeout:g}s; the registration stays "
                "in the outbox and is re-sent on the next run (are the processors running?)"
            )
        return 1
    if status[0] == "rejected":
        if not args.json:
            print(f"{pid}: registration rejected: {status[1]}: {status[2]}")
        return 1
    if not args.json:
        print(f"registered {pid} ({args.kind}) with key {vk.key_id.hex()}; log index {status[3]}")
    return 0


def cmd_publishers_list(args: argparse.Namespace) -> int:
    """``cuentas publishers list``: every registered publisher, its kind, party and keys."""
    s = current_settings()
    _, db_url = running_platform(s, need_db=True)
    state = read_registry(s, db_url, registry_authority(s)).to_state()
    pubs = state["publishers"]
    if args.json:
        print_json(pubs)
        return 0
    if not pubs:
        print("no publishers registered yet")
        return 0
    width = max(len(p) for p in pubs)
    for pid, p in pubs.items():
        party = f"{p['party']['level']} {p['party']['id']}" if p["party"] else "-"
        keys = []
        for k in p["keys"]:
            kid = k["public_key"].split("+")[1]
            state_txt = (
                "revoked " + k["revoked_at"]
                if k["revoked_at"]
                else ("until " + k["valid_until"] if k["valid_until"] else "valid")
            )
            keys.append(f"{kid} ({state_txt})")
        revoked = f"  REVOKED {p['revoked_at']}" if p["revoked_at"] else ""
        print(f"{pid:<{width}}  {p['kind']:<10} {party:<30} {', '.join(keys)}{revoked}")
    return 0


def add_parser(sub: Any) -> None:
    """Add ``cuentas publishers`` and its actions."""
    pubs = sub.add_parser(
        "publishers",
        help="the registry: who may publish what",
        description="Registry events are signed by the registry authority "
        "key of this platform (<data dir>/keys/registry.key).",
    )
    ps = pubs.add_subparsers(dest="publishers_command", metavar="ACTION", required=True)
    reg = ps.add_parser("register", help="admit a publisher with its first key")
    reg.add_argument("id", metavar="ID", help="publisher id, e.g. mto-remesas-norte")
    reg.add_argument("--kind", required=True, choices=sorted(ROLES_BY_KIND))
    reg.add_argument(
        "--key",
        required=True,
        metavar="VERIFIER_KEY",
        help="from `cuentas keys show FILE`: ID+KEYID+BASE64",
    )
    reg.add_argument(
        "--party-level",
        choices=("municipal", "state", "federal"),
        help="government publishers: the level they speak for",
    )
    reg.add_argument("--party-id", help="government publishers: the party id")
    reg.add_argument("--roles", help="comma-separated event types (default: the kind's roles)")
    reg.add_argument("--valid-from", metavar="ISO", help="first valid event time (default now)")
    reg.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        help="seconds to wait for the acknowledgement (default 60)",
    )
    reg.add_argument("--json", action="store_true", help="machine-readable output")
    reg.set_defaults(func=cmd_publishers_register)
    ls = ps.add_parser("list", help="registered publishers, their keys and roles")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    ls.set_defaults(func=cmd_publishers_list)

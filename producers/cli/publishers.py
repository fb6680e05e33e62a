"""``cuentas publishers register|revoke|rotate|list``: the registry authority's commands.

Registry events are signed by the platform's registry authority key (read,
never created, from ``<data dir>/keys/registry.key``) and published like any
other event; the registry itself is read back from the log.  Revocations and
rotations take effect at their arrival: every event reaching the log after
them is refused, whatever time it claims (``docs/adr/0007-authority-and-time.md``).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from producers.cli.common import (
    check_id,
    current_settings,
    parse_duration,
    parse_start,
    print_json,
    publisher_locks,
    running_platform,
)
from schemas.catalog import ROLES_BY_KIND
from schemas.envelope import Envelope
from schemas.errors import ConfigurationError, MalformedInput
from schemas.times import format_time

if TYPE_CHECKING:
    from infra.settings import Settings
    from producers.publisher import Publisher
    from schemas.registry import KeyInfo, PublisherInfo, TrustRegistry

__all__ = [
    "registry_authority",
    "read_registry",
    "key_state",
    "registry_listing",
    "cmd_publishers_register",
    "cmd_publishers_revoke",
    "cmd_publishers_rotate",
    "cmd_publishers_list",
    "add_parser",
]

#: ``publisher.revoked``'s reason codes.
REVOCATION_REASONS = ("key_compromise", "retired", "superseded")


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


def _publish_registry_event(
    s: Settings, s2: Settings, authority: Any, event_type: str, payload: Mapping[str, Any], timeout: float
) -> tuple[Envelope, tuple[str, str | None, str | None, int | None] | None]:
    """Sign one registry event with the authority key, publish it and wait for the gate's verdict."""
    from infra.identities import AUTHORITY_NAME
    from producers.registry import authority_publisher

    with publisher_locks(s, [AUTHORITY_NAME]):
        pub = authority_publisher(s2, authority)
        try:
            env = pub.sign(event_type, payload, seq=pub.outbox.next_seq())
            pub.publish_envelope(env)
            ((_, status),) = _settle_one(pub, [env], timeout)
        finally:
            pub.close()
    return env, status


def _report(
    args: argparse.Namespace,
    pid: str,
    what: str,
    env: Envelope,
    status: tuple[str, str | None, str | None, int | None] | None,
    done: str,
    extra: Mapping[str, Any] | None = None,
) -> int:
    """Print the verdict on one registry event (``--json`` or one line); exit status."""
    result = {
        "publisher_id": pid,
        "event_id": env.event_id,
        "event_type": env.event_type,
        "status": status[0] if status else "pending",
        "reason": status[1] if status else None,
        "log_index": status[3] if status else None,
        **(extra or {}),
    }
    if args.json:
        print_json(result)
    if status is None or status[0] == "pending":
        if not args.json:
            print(
                f"{pid}: no acknowledgement within {args.timeout:g}s; the {what} stays "
                "in the outbox and is re-sent on the next run (are the processors running?)"
            )
        return 1
    if status[0] == "rejected":
        if not args.json:
            print(f"{pid}: {what} rejected: {status[1]}: {status[2]}")
        return 1
    if not args.json:
        print(f"{done}; log index {status[3]}")
    return 0


def _platform() -> tuple[Settings, Settings, str, Any, TrustRegistry]:
    s = current_settings()
    s2, db_url = running_platform(s)
    authority = registry_authority(s)
    return s, s2, db_url, authority, read_registry(s, db_url, authority)


def _verifier_key(text: str, pid: str) -> Any:
    from schemas.keys import ALG_ED25519, parse_verifier_key

    vk = parse_verifier_key(text, alg=ALG_ED25519)
    if vk.name != pid:
        raise MalformedInput(
            f"the verifier key is named {vk.name!r}, not {pid!r}: a key is bound to its publisher "
            f"id (make one with `cuentas keys new {pid}`)",
            reason="verifier_key",
        )
    return vk


def cmd_publishers_register(args: argparse.Namespace) -> int:
    """``cuentas publishers register``: publish ``publisher.registered``, wait for the verdict."""
    from producers.registry import registration_payload

    pid = check_id(args.id, "publisher id")
    vk = _verifier_key(args.key, pid)
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
    club = check_id(args.club_id, "--club-id") if args.club_id else None
    if (args.kind == "committee") != (club is not None):
        raise MalformedInput(
            "a committee is bound to its club: give --club-id (and only for a committee)",
            reason="club",
        )
    roles = [r.strip() for r in args.roles.split(",") if r.strip()] if args.roles else None
    valid_from = parse_start(args.valid_from) if args.valid_from else datetime.now(UTC)
    backfill = parse_start(args.backfill_until) if args.backfill_until else None
    payload = registration_payload(
        pid,
        args.kind,
        vk.public_key,
        roles=roles,
        party=party,
        valid_from=valid_from.replace(microsecond=0),
        club_id=club,
        backfill_until=None if backfill is None else backfill.replace(microsecond=0),
    )
    s, s2, _, authority, reg = _platform()
    if reg.publisher(pid) is not None:
        raise ConfigurationError(
            f"{pid} is already registered; a new key is added by rotation "
            f"(`cuentas publishers rotate {pid} --key ...`), not by registering again"
        )
    env, status = _publish_registry_event(s, s2, authority, "publisher.registered", payload, args.timeout)
    club_txt = f", club {club}" if club else ""
    return _report(args, pid, "registration", env, status,
                   f"registered {pid} ({args.kind}{club_txt}) with key {vk.key_id.hex()}")


def cmd_publishers_revoke(args: argparse.Namespace) -> int:
    """``cuentas publishers revoke``: publish ``publisher.revoked`` for one key or the whole publisher."""
    pid = check_id(args.id, "publisher id")
    at = parse_start(args.at) if args.at else datetime.now(UTC)
    s, s2, _, authority, reg = _platform()
    info = reg.publisher(pid)
    if info is None:
        raise ConfigurationError(f"{pid} is not registered (see `cuentas publishers list`)")
    if args.key_id is not None and info.key(args.key_id) is None:
        raise ConfigurationError(
            f"{pid} has no key {args.key_id}; its keys are {', '.join(k.key_id for k in info.keys)}"
        )
    payload = {
        "publisher_id": pid,
        "key_id": args.key_id,
        "revoked_at": format_time(at.replace(microsecond=0)),
        "reason_code": args.reason,
    }
    env, status = _publish_registry_event(s, s2, authority, "publisher.revoked", payload, args.timeout)
    which = f"key {args.key_id} of {pid}" if args.key_id else pid
    return _report(args, pid, "revocation", env, status,
                   f"revoked {which} from {payload['revoked_at']} ({args.reason}): every event reaching the "
                   "log from now on is refused, whatever time it claims", {"revoked_at": payload["revoked_at"],
                                                                           "key_id": args.key_id})


def cmd_publishers_rotate(args: argparse.Namespace) -> int:
    """``cuentas publishers rotate``: publish ``publisher.key_rotated``: a new key, the old ones bounded."""
    pid = check_id(args.id, "publisher id")
    vk = _verifier_key(args.key, pid)
    overlap = parse_duration(args.overlap) if args.overlap not in ("0", "0s") else None
    now = datetime.now(UTC).replace(microsecond=0)
    s, s2, _, authority, reg = _platform()
    info = reg.publisher(pid)
    if info is None:
        raise ConfigurationError(f"{pid} is not registered (see `cuentas publishers list`)")
    if info.key(vk.key_id.hex()) is not None:
        raise ConfigurationError(f"key {vk.key_id.hex()} is already a key of {pid}")
    until = now + overlap if overlap is not None else now
    payload = {
        "publisher_id": pid,
        "new_public_key": str(vk),
        "valid_from": format_time(now),
        "old_key_valid_until": format_time(until),
    }
    env, status = _publish_registry_event(s, s2, authority, "publisher.key_rotated", payload, args.timeout)
    return _report(args, pid, "rotation", env, status,
                   f"rotated {pid} to key {vk.key_id.hex()}; its older keys are refused for every event "
                   f"reaching the log after {payload['old_key_valid_until']}",
                   {"key_id": vk.key_id.hex(), "old_key_valid_until": payload["old_key_valid_until"]})


def key_state(key: KeyInfo, info: PublisherInfo, now: datetime) -> tuple[str, str | None]:
    """``(state, since or until)`` of one key at ``now``: ``active``, ``not_yet_valid`` (until when),
    ``rotated_out`` (until when it is valid, or since when it is not), ``revoked`` (since when)."""
    revoked = [t for t in (key.revoked_at, info.revoked_at) if t is not None]
    if revoked and min(revoked) <= now:
        return "revoked", format_time(min(revoked))
    if key.valid_until is not None:
        return "rotated_out", format_time(key.valid_until)
    if key.valid_from > now:
        return "not_yet_valid", format_time(key.valid_from)
    return "active", None


def registry_listing(reg: TrustRegistry, now: datetime) -> dict[str, Any]:
    """Every publisher with its kind, roles, party, club, backfill and each key's state at ``now``."""
    state = reg.to_state()["publishers"]
    out: dict[str, Any] = {}
    for pid, p in state.items():
        info = reg.publisher(pid)
        assert info is not None
        keys = []
        for k, ks in zip(info.keys, p["keys"], strict=True):
            st, when = key_state(k, info, now)
            keys.append({**ks, "key_id": k.key_id, "state": st, "state_since_or_until": when})
        end = info.backfill_end
        out[pid] = {**p, "keys": keys, "backfill_end": None if end is None else format_time(end)}
    return out


def _describe_key(k: Mapping[str, Any], now: datetime) -> str:
    st, when = k["state"], k["state_since_or_until"]
    if st == "revoked":
        return f"{k['key_id']} (revoked since {when})"
    if st == "rotated_out":
        from schemas.times import parse_time

        ended = parse_time(when) <= now
        return f"{k['key_id']} (rotated out {'since' if ended else 'until'} {when})"
    if st == "not_yet_valid":
        return f"{k['key_id']} (valid from {when})"
    return f"{k['key_id']} (active)"


def cmd_publishers_list(args: argparse.Namespace) -> int:
    """``cuentas publishers list``: every registered publisher, its kind, party or club, and its keys."""
    s = current_settings()
    _, db_url = running_platform(s, need_db=True)
    now = datetime.now(UTC)
    pubs = registry_listing(read_registry(s, db_url, registry_authority(s)), now)
    if args.json:
        print_json(pubs)
        return 0
    if not pubs:
        print("no publishers registered yet")
        return 0
    width = max(len(p) for p in pubs)
    for pid, p in pubs.items():
        if p["party"]:
            speaks = f"{p['party']['level']} {p['party']['id']}"
        elif p.get("club_id"):
            speaks = f"club {p['club_id']}"
        else:
            speaks = "-"
        keys = ", ".join(_describe_key(k, now) for k in p["keys"])
        revoked = f"  REVOKED {p['revoked_at']}" if p["revoked_at"] else ""
        print(f"{pid:<{width}}  {p['kind']:<12} {speaks:<30} {keys}{revoked}")
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
    reg.add_argument(
        "--club-id",
        help="committees: the club they speak for (its projects, reports and contributions)",
    )
    reg.add_argument("--roles", help="comma-separated event types (default: the kind's roles)")
    reg.add_argument(
        "--valid-from",
        metavar="ISO",
        help="first valid event time (default now); events dated from here to the "
        "registration's arrival are a declared backfill",
    )
    reg.add_argument(
        "--backfill-until",
        metavar="ISO",
        help="end the declared backfill earlier than the registration's arrival",
    )
    reg.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        help="seconds to wait for the acknowledgement (default 60)",
    )
    reg.add_argument("--json", action="store_true", help="machine-readable output")
    reg.set_defaults(func=cmd_publishers_register)

    rev = ps.add_parser(
        "revoke",
        help="revoke one key, or the whole publisher",
        description="Publishes publisher.revoked. From its arrival on, every event "
        "signed with the key (or by the publisher) is refused, whatever time it claims; "
        "events already in the log stay.",
    )
    rev.add_argument("id", metavar="ID", help="publisher id")
    rev.add_argument(
        "--key-id", metavar="K", help="the key to revoke (8 hex; default: the whole publisher)"
    )
    rev.add_argument("--reason", required=True, choices=REVOCATION_REASONS)
    rev.add_argument(
        "--at",
        metavar="ISO",
        help="revoked from (default now; earlier when a compromise began earlier)",
    )
    rev.add_argument("--timeout", type=float, default=60.0, help="seconds to wait (default 60)")
    rev.add_argument("--json", action="store_true", help="machine-readable output")
    rev.set_defaults(func=cmd_publishers_revoke)

    rot = ps.add_parser(
        "rotate",
        help="add a publisher's new key; its older keys end after an overlap",
        description="Publishes publisher.key_rotated: the new key is valid from now; the "
        "older keys are refused for every event reaching the log after the overlap.",
    )
    rot.add_argument("id", metavar="ID", help="publisher id")
    rot.add_argument(
        "--key",
        required=True,
        metavar="VERIFIER_KEY",
        help="the new key, from `cuentas keys rotate FILE` or `cuentas keys show FILE`",
    )
    rot.add_argument(
        "--overlap",
        default="7d",
        metavar="D",
        help="how long the older keys stay valid (default 7d; 0 ends them now)",
    )
    rot.add_argument("--timeout", type=float, default=60.0, help="seconds to wait (default 60)")
    rot.add_argument("--json", action="store_true", help="machine-readable output")
    rot.set_defaults(func=cmd_publishers_rotate)

    ls = ps.add_parser(
        "list", help="registered publishers, their roles, party or club, and each key's state"
    )
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    ls.set_defaults(func=cmd_publishers_list)

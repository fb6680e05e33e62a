"""``cuentas keys new|show|rotate``: a publisher's Ed25519 signing key, in a file of mode 600.

Next to ``FILE`` sits ``FILE.pub``, its C2SP verifier key (public), so the
publisher id travels with the key.  Rotation keeps the old key as
``FILE.old`` and prints the ``publisher.key_rotated`` event the registry
authority must publish before the new key is used.
"""

from __future__ import annotations

import argparse
import contextlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from producers.cli.common import (
    ID_RE,
    check_id,
    current_settings,
    key_passphrase,
    parse_duration,
    print_json,
    write_atomic,
)
from schemas.errors import ConfigurationError, MalformedInput
from schemas.times import format_time

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

__all__ = ["cmd_keys_new", "cmd_keys_show", "cmd_keys_rotate", "add_parser"]


def _sidecar(path: Path) -> Path:
    """``FILE.pub``: the key's verifier key, public, so the key's publisher id travels with it."""
    return path.with_name(path.name + ".pub")


def _key_name(path: Path, name: str | None, key: Ed25519PrivateKey | None = None) -> str:
    """The publisher id of a key file: ``--name``, else its sidecar, else ``ID.key``."""
    if name:
        return check_id(name, "--name")
    pub = _sidecar(path)
    if key is not None and pub.exists():
        from schemas.keys import parse_verifier_key, public_key_bytes

        with contextlib.suppress(OSError, MalformedInput):
            vk = parse_verifier_key(pub.read_text().strip())
            if vk.public_key == public_key_bytes(key):
                return vk.name
    base = path.name.removesuffix(".old")
    if not base.endswith(".key") or not ID_RE.match(base := base.removesuffix(".key")):
        raise MalformedInput(
            f"cannot tell the publisher id of {path.name!r} (no {_sidecar(path).name} next to it "
            "and not named ID.key); give it with --name",
            reason="id",
        )
    return base


def _key_info(name: str, key: Ed25519PrivateKey, path: Path) -> dict[str, Any]:
    from schemas.keys import VerifierKey, public_key_bytes

    vk = VerifierKey(name, public_key_bytes(key))
    return {"name": name, "file": str(path), "key_id": vk.key_id.hex(), "verifier_key": str(vk)}


def cmd_keys_new(args: argparse.Namespace) -> int:
    """``cuentas keys new NAME``: a new key file (never over an existing one) and its sidecar."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from infra.identities import publisher_key_path
    from infra.keystore import write_private_key

    name = check_id(args.name, "publisher id")
    out = Path(args.out) if args.out else publisher_key_path(current_settings(), name)
    if out.exists():
        raise ConfigurationError(
            f"{out} already exists; a key is never overwritten (rotate it with "
            f"`cuentas keys rotate {out}`)"
        )
    key = Ed25519PrivateKey.generate()
    write_private_key(out, key, key_passphrase(args.passphrase_env))
    info = _key_info(name, key, out)
    write_atomic(_sidecar(out), info["verifier_key"] + "\n")
    if args.json:
        print_json(info)
        return 0
    print(f"wrote {out} (mode 600{', encrypted' if key_passphrase(args.passphrase_env) else ''})")
    print(info["verifier_key"])
    print(f"next: cuentas publishers register {name} --kind KIND --key {info['verifier_key']}"
          " (a committee also --club-id CLUB)")
    return 0


def cmd_keys_show(args: argparse.Namespace) -> int:
    """``cuentas keys show FILE``: the key's verifier key."""
    from infra.keystore import read_private_key

    path = Path(args.file)
    key = read_private_key(path, key_passphrase(args.passphrase_env))
    info = _key_info(_key_name(path, args.name, key), key, path)
    if args.json:
        print_json(info)
    else:
        print(info["verifier_key"])
    return 0


def cmd_keys_rotate(args: argparse.Namespace) -> int:
    """``cuentas keys rotate FILE``: a new key, the old one kept, the registry event to publish."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from infra.keystore import read_private_key, write_private_key
    from schemas.catalog import validate_payload

    path = Path(args.file)
    pw = key_passphrase(args.passphrase_env)
    old = read_private_key(path, pw)
    name = _key_name(path, args.name, old)
    old_path = path.with_name(path.name + ".old")
    if old_path.exists():
        raise ConfigurationError(
            f"{old_path} already exists (an earlier rotation); move it somewhere safe first"
        )
    overlap = parse_duration(args.overlap)
    new = Ed25519PrivateKey.generate()
    staged = path.with_name(path.name + ".new")
    write_private_key(staged, new, pw)
    path.replace(old_path)
    staged.replace(path)
    now = datetime.now(UTC).replace(microsecond=0)
    info_new, info_old = _key_info(name, new, path), _key_info(name, old, old_path)
    if _sidecar(path).exists():
        _sidecar(path).replace(_sidecar(old_path))
    write_atomic(_sidecar(path), info_new["verifier_key"] + "\n")
    payload = {
        "publisher_id": name,
        "new_public_key": info_new["verifier_key"],
        "valid_from": format_time(now),
        "old_key_valid_until": format_time(now + overlap),
    }
    validate_payload("publisher.key_rotated", 1, payload)
    if args.json:
        print_json(
            {
                "new": info_new,
                "old": info_old,
                "registry_event": {"type": "publisher.key_rotated", "payload": payload},
            }
        )
        return 0
    print(f"new key in {path}, old key kept in {old_path}")
    print(f"new verifier key: {info_new['verifier_key']}")
    print("The registry authority must publish this event before the new key is used")
    print(f"(the old key {info_old['key_id']} stays valid until {payload['old_key_valid_until']}):")
    print(json.dumps({"type": "publisher.key_rotated", "payload": payload}, sort_keys=True))
    print(f"next, where the platform runs: cuentas publishers rotate {name} --key {info_new['verifier_key']} "
          f"--overlap {args.overlap}")
    return 0


def add_parser(sub: Any) -> None:
    """Add ``cuentas keys`` and its actions."""
    keys = sub.add_parser(
        "keys",
        help="create, show and rotate a publisher's signing key",
        description="A publisher signs every event with its Ed25519 key, kept "
        "in a PKCS#8 file of mode 600 (optionally passphrase-encrypted).",
    )
    ks = keys.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    new = ks.add_parser("new", help="create a key file and print its verifier key")
    new.add_argument("name", metavar="NAME", help="the publisher id the key belongs to")
    new.add_argument(
        "--out",
        metavar="FILE",
        help="where to write it (default <data dir>/keys/publishers/NAME.key)",
    )
    new.add_argument(
        "--passphrase-env",
        metavar="VAR",
        help="encrypt with the passphrase in this environment variable",
    )
    new.add_argument("--json", action="store_true", help="machine-readable output")
    new.set_defaults(func=cmd_keys_new)
    show = ks.add_parser("show", help="print a key file's C2SP verifier key NAME+KEYID+BASE64")
    show.add_argument("file", metavar="FILE")
    show.add_argument("--name", help="publisher id (default: the file name without .key)")
    show.add_argument("--passphrase-env", metavar="VAR")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.set_defaults(func=cmd_keys_show)
    rot = ks.add_parser(
        "rotate",
        help="new key in FILE, old one kept as FILE.old",
        description="Writes a new key to FILE, keeps the old one as FILE.old and "
        "prints the publisher.key_rotated event the registry authority must "
        "publish before the new key is used.",
    )
    rot.add_argument("file", metavar="FILE")
    rot.add_argument("--name", help="publisher id (default: the file name without .key)")
    rot.add_argument(
        "--overlap", default="7d", help="how long the old key stays valid (default 7d)"
    )
    rot.add_argument("--passphrase-env", metavar="VAR")
    rot.add_argument("--json", action="store_true", help="machine-readable output")
    rot.set_defaults(func=cmd_keys_rotate)

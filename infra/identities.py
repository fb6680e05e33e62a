"""The platform's own keys: registry authority, log, platform publisher, demo witness.

Also the one place that says where key files live (:func:`key_path`,
:func:`publisher_key_path`): ``<data dir>/keys/<role>.key`` unless a setting
(``REGISTRY_KEY_FILE``, ``LOG_KEY_FILE``) names the file.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from infra.keystore import load_or_create
from infra.settings import Settings
from schemas.keys import VerifierKey, public_key_bytes

__all__ = [
    "AUTHORITY_NAME",
    "PLATFORM_PUBLISHER",
    "KeyRole",
    "keys_dir",
    "key_path",
    "publisher_key_path",
    "Identity",
    "PlatformKeys",
    "passphrase",
]

AUTHORITY_NAME = "registry.cuentasclaras"
PLATFORM_PUBLISHER = "platform.cuentasclaras"

#: The platform's own key files: the registry authority, the log, the
#: platform publisher (flag.changed), and the demo witness of ``cuentas up``.
KeyRole = Literal["registry", "log", "platform", "witness"]


def keys_dir(settings: Settings) -> Path:
    """``<data dir>/keys``: the folder of every key file no setting names."""
    return settings.data_path / "keys"


def key_path(settings: Settings, role: KeyRole) -> Path:
    """Where the key file of ``role`` is: its setting when set, else ``<data dir>/keys/<role>.key``."""
    named = {"registry": settings.registry_key_file, "log": settings.log_key_file}.get(role, "")
    return Path(named) if named else keys_dir(settings) / f"{role}.key"


def publisher_key_path(settings: Settings, publisher_id: str) -> Path:
    """The default key file of a publisher made by ``cuentas keys new``: ``<data dir>/keys/publishers/<id>.key``."""
    return keys_dir(settings) / "publishers" / f"{publisher_id}.key"


def passphrase() -> bytes | None:
    p = os.environ.get("CUENTAS_KEY_PASSPHRASE")
    return p.encode() if p else None


@dataclass(frozen=True)
class Identity:
    name: str
    private_key: Ed25519PrivateKey

    @property
    def verifier(self) -> VerifierKey:
        return VerifierKey(self.name, public_key_bytes(self.private_key))


@dataclass(frozen=True)
class PlatformKeys:
    authority: Identity
    log: Identity
    platform: Identity

    @classmethod
    def load(cls, settings: Settings) -> PlatformKeys:
        """The platform's keys (created when missing); the log's public key is published as well.

        Whoever holds the log's private key writes its verifier key to
        ``<data dir>/public/log.pub`` (:mod:`infra.public_keys`), so verifiers
        (the dashboard, ``cuentas log keys``) never need the private key.
        """
        from infra.public_keys import publish_log_key

        pw = passphrase()
        keys = cls(
            authority=Identity(AUTHORITY_NAME, load_or_create(key_path(settings, "registry"), pw)),
            log=Identity(settings.log_origin, load_or_create(key_path(settings, "log"), pw)),
            platform=Identity(PLATFORM_PUBLISHER, load_or_create(key_path(settings, "platform"), pw)),
        )
        with contextlib.suppress(OSError):  # a read-only data dir: verifiers derive it (CLI) or wait
            publish_log_key(settings, keys.log.verifier)
        return keys

    @staticmethod
    def exist(settings: Settings) -> bool:
        """Whether all three key files are there (``load`` would create the missing ones)."""
        return all(key_path(settings, role).is_file() for role in ("registry", "log", "platform"))

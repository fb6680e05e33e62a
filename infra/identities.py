"""The platform's own keys: registry authority, log, platform publisher, demo witness."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from infra.keystore import load_or_create
from infra.settings import Settings
from schemas.keys import VerifierKey, public_key_bytes

__all__ = ["AUTHORITY_NAME", "PLATFORM_PUBLISHER", "Identity", "PlatformKeys", "passphrase"]

AUTHORITY_NAME = "registry.cuentasclaras"
PLATFORM_PUBLISHER = "platform.cuentasclaras"


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
        keys = settings.data_path / "keys"
        pw = passphrase()
        return cls(
            authority=Identity(AUTHORITY_NAME, load_or_create(Path(settings.registry_key_file or keys / "registry.key"), pw)),
            log=Identity(settings.log_origin, load_or_create(Path(settings.log_key_file or keys / "log.key"), pw)),
            platform=Identity(PLATFORM_PUBLISHER, load_or_create(keys / "platform.key", pw)),
        )

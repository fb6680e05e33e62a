"""Private keys on disk: PKCS#8 PEM, mode 0600, optionally passphrase-encrypted.

Secrets never reach a log line: errors name the file, not its content.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from schemas.errors import ConfigurationError
from schemas.keys import VerifierKey, public_key_bytes

__all__ = ["write_private_key", "read_private_key", "load_or_create", "verifier_key_for"]


def write_private_key(path: Path, key: Ed25519PrivateKey, passphrase: bytes | None = None) -> None:
    enc: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption()
    )
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Create with 0600 from the start: no window where others can read it.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    os.chmod(path, 0o600)


def read_private_key(path: Path, passphrase: bytes | None = None) -> Ed25519PrivateKey:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ConfigurationError(f"cannot read key file {path}: {e.strerror}") from e
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise ConfigurationError(f"key file {path} is readable by others (mode {mode:o}); run chmod 600 {path}")
    try:
        key = serialization.load_pem_private_key(data, password=passphrase)
    except TypeError as e:
        raise ConfigurationError(f"key file {path} is encrypted: give its passphrase (CUENTAS_KEY_PASSPHRASE)") from e
    except ValueError as e:
        raise ConfigurationError(f"key file {path} is not a readable Ed25519 key (wrong passphrase?)") from e
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigurationError(f"key file {path} does not hold an Ed25519 key")
    return key


def load_or_create(path: Path, passphrase: bytes | None = None) -> Ed25519PrivateKey:
    if path.exists():
        return read_private_key(path, passphrase)
    key = Ed25519PrivateKey.generate()
    write_private_key(path, key, passphrase)
    return key


def verifier_key_for(name: str, key: Ed25519PrivateKey) -> VerifierKey:
    return VerifierKey(name, public_key_bytes(key))

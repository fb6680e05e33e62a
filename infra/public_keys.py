"""The public verifier keys a verifier needs, readable without any private key.

``<data dir>/public/log.pub`` holds the log's verifier key and
``<data dir>/public/witnesses/<name>.pub`` the key of each witness the
platform runs itself (the demo witness of ``cuentas up``), one C2SP verifier
key line per file.  Each file is written by the process that holds the
private key -- :meth:`infra.identities.PlatformKeys.load` for the log,
``cuentas up`` and ``cuentas witness run --demo`` for the demo witness -- one
file per key so concurrent writers never lose each other's update.

The dashboard reads only these files (and ``WITNESS_KEYS``); ``cuentas log
keys`` reads them too and, on the platform's own machine only, falls back to
deriving the public keys from the key files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from infra.identities import key_path, passphrase
from infra.keystore import read_private_key
from infra.settings import Settings
from schemas.errors import CuentasError, MalformedInput
from schemas.keys import (
    ALG_COSIGNATURE_V1,
    ALG_ED25519,
    VerifierKey,
    parse_verifier_key,
    public_key_bytes,
)

__all__ = [
    "DEMO_WITNESS",
    "TrustedKeys",
    "log_key_file",
    "publish_log_key",
    "publish_witness_key",
    "public_dir",
    "read_log_key",
    "read_witness_keys",
    "trusted_keys",
]

#: The key name of the witness `cuentas up` runs.
DEMO_WITNESS = "witness.demo"


@dataclass(frozen=True)
class TrustedKeys:
    """The log's verifier key (None when unknown) and the trusted witnesses' keys."""

    log: VerifierKey | None
    witnesses: tuple[VerifierKey, ...]

    def as_dict(self) -> dict[str, object]:
        """``{"log": "...", "witnesses": ["..."]}`` (what ``cuentas log keys --json`` prints)."""
        return {"log": "" if self.log is None else str(self.log), "witnesses": [str(w) for w in self.witnesses]}


def public_dir(settings: Settings) -> Path:
    """``PUBLIC_DIR`` (else ``<data dir>/public``): also the root of the receipt check's static site."""
    return settings.public_path


def log_key_file(settings: Settings) -> Path:
    return public_dir(settings) / "log.pub"


def _write(path: Path, line: str) -> None:
    try:
        if path.read_text(encoding="utf-8") == line:
            return
    except OSError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(line, encoding="utf-8")
    os.chmod(tmp, 0o644)  # public by design
    os.replace(tmp, path)


def publish_log_key(settings: Settings, key: VerifierKey) -> None:
    """Write the log's verifier key where verifiers without private keys read it."""
    _write(log_key_file(settings), f"{key}\n")


def publish_witness_key(settings: Settings, key: VerifierKey) -> None:
    """Write a witness's verifier key (C2SP cosignature key, type 0x04) next to the log's."""
    if key.alg != ALG_COSIGNATURE_V1:
        raise MalformedInput(f"{key.name}: a witness key is a cosignature key (type 0x04)", reason="witness_key")
    _write(public_dir(settings) / "witnesses" / f"{key.name}.pub", f"{key}\n")


def _read_key(path: Path, alg: int) -> VerifierKey | None:
    try:
        return parse_verifier_key(path.read_text(encoding="utf-8").strip(), alg=alg)
    except (OSError, UnicodeDecodeError, MalformedInput):
        return None


def read_log_key(settings: Settings) -> VerifierKey | None:
    """The published log key, if there is one under the configured origin (``LOG_ORIGIN``)."""
    key = _read_key(log_key_file(settings), ALG_ED25519)
    return key if key is not None and key.name == settings.log_origin else None


def read_witness_keys(settings: Settings) -> tuple[VerifierKey, ...]:
    """The published witnesses' keys, by name."""
    wdir = public_dir(settings) / "witnesses"
    if not wdir.is_dir():
        return ()
    keys = (_read_key(p, ALG_COSIGNATURE_V1) for p in sorted(wdir.glob("*.pub")))
    return tuple(k for k in keys if k is not None)


def _derived(path: Path, name: str, alg: int, pw: bytes | None) -> VerifierKey | None:
    # Never creates a key: a verifier that invented its own key would verify nothing.
    if not path.is_file():
        return None
    try:
        return VerifierKey(name, public_key_bytes(read_private_key(path, pw)), alg)
    except CuentasError:
        return None


def trusted_keys(settings: Settings, *, derive: bool = False) -> TrustedKeys:
    """The log key and the trusted witnesses' keys.

    Log: the published ``log.pub``; with ``derive`` (the CLI on the platform's
    machine) else the public half of the log's key file.  Witnesses:
    ``WITNESS_KEYS`` when set, else the published witnesses, else (with
    ``derive``) the demo witness's key file.
    """
    log = read_log_key(settings)
    if log is None and derive:
        log = _derived(key_path(settings, "log"), settings.log_origin, ALG_ED25519, passphrase())
    if settings.witness_keys.strip():
        witnesses = tuple(
            parse_verifier_key(k.strip(), alg=ALG_COSIGNATURE_V1)
            for k in settings.witness_keys.split(",")
            if k.strip()
        )
    else:
        witnesses = read_witness_keys(settings)
        if not witnesses and derive:
            # `cuentas witness run` writes its key without a passphrase.
            demo = _derived(key_path(settings, "witness"), DEMO_WITNESS, ALG_COSIGNATURE_V1, None)
            witnesses = () if demo is None else (demo,)
    return TrustedKeys(log, tuple(dict.fromkeys(witnesses)))

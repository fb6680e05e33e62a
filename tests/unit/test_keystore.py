"""Private keys on disk: 0600 from creation, refused when readable by others, optional passphrase."""

from __future__ import annotations

import os

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from infra.keystore import load_or_create, read_private_key, write_private_key
from schemas.errors import ConfigurationError
from schemas.keys import public_key_bytes


def test_created_0600_and_round_trips(tmp_path):
    p = tmp_path / "k" / "a.key"
    k = load_or_create(p)
    assert os.stat(p).st_mode & 0o777 == 0o600
    assert public_key_bytes(read_private_key(p)) == public_key_bytes(k)


def test_readable_by_others_is_refused_with_one_line(tmp_path):
    p = tmp_path / "a.key"
    write_private_key(p, Ed25519PrivateKey.generate())
    os.chmod(p, 0o644)
    with pytest.raises(ConfigurationError, match="chmod 600"):
        read_private_key(p)


def test_passphrase_encrypted(tmp_path):
    p = tmp_path / "a.key"
    k = Ed25519PrivateKey.generate()
    write_private_key(p, k, b"correct horse")
    assert b"ENCRYPTED" in p.read_bytes()
    assert public_key_bytes(read_private_key(p, b"correct horse")) == public_key_bytes(k)
    with pytest.raises(ConfigurationError, match="passphrase"):
        read_private_key(p)
    with pytest.raises(ConfigurationError, match="wrong passphrase"):
        read_private_key(p, b"wrong")
    assert "correct horse" not in str(p.read_bytes())

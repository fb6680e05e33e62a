"""`cuentas log keys` and the public key files: the keys a verifier needs, no private key required (issue 14.3)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from infra.identities import PlatformKeys, key_path, keys_dir
from infra.keystore import load_or_create
from infra.public_keys import (
    DEMO_WITNESS,
    log_key_file,
    publish_witness_key,
    read_witness_keys,
    trusted_keys,
)
from infra.settings import Settings, load_settings
from schemas.errors import MalformedInput
from schemas.keys import ALG_COSIGNATURE_V1, VerifierKey, parse_verifier_key, public_key_bytes

ROOT = Path(__file__).resolve().parents[2]


def settings_for(data: Path, **env: str) -> Settings:
    return load_settings({"CUENTAS_DATA_DIR": str(data), **env})


def witness(name: str = DEMO_WITNESS) -> VerifierKey:
    return VerifierKey(name, public_key_bytes(Ed25519PrivateKey.generate()), ALG_COSIGNATURE_V1)


def cli(data: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items()
            if k not in ("WITNESS_KEYS", "LOG_KEY_FILE", "LOG_ORIGIN", "CUENTAS_CONFIG", "DATABASE_URL")}
    return subprocess.run([sys.executable, "-m", "cuentas", "log", "keys", *args], cwd=data, capture_output=True,
                          text=True, timeout=60, env={**base, "CUENTAS_DATA_DIR": str(data), **env})


def test_whoever_holds_the_log_key_publishes_its_public_half(tmp_path: Path) -> None:
    s = settings_for(tmp_path / "data")
    keys = PlatformKeys.load(s)
    assert parse_verifier_key(log_key_file(s).read_text().strip()) == keys.log.verifier
    assert trusted_keys(s).log == keys.log.verifier
    assert log_key_file(s).stat().st_mode & 0o777 == 0o644


def test_log_keys_needs_no_private_key(tmp_path: Path) -> None:
    data = tmp_path / "data"
    s = settings_for(data)
    keys = PlatformKeys.load(s)
    w = witness()
    publish_witness_key(s, w)
    shutil.rmtree(keys_dir(s))  # no private key at all on this machine
    got = cli(data, "--json")
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout) == {"log": str(keys.log.verifier), "witnesses": [str(w)]}
    text = cli(data)
    assert text.returncode == 0 and f"log key:      {keys.log.verifier}" in text.stdout
    assert f"cuentas verify receipt.json --log-key {keys.log.verifier} --witness-key {w}" in text.stdout


def test_on_the_platforms_machine_the_key_files_stand_in(tmp_path: Path) -> None:
    data = tmp_path / "data"
    s = settings_for(data)
    keys = PlatformKeys.load(s)
    demo = load_or_create(key_path(s, "witness"))
    shutil.rmtree(data / "public")
    assert trusted_keys(s).log is None  # the dashboard's view: public files only
    derived = trusted_keys(s, derive=True)
    assert derived.log == keys.log.verifier
    assert derived.witnesses == (VerifierKey(DEMO_WITNESS, public_key_bytes(demo), ALG_COSIGNATURE_V1),)
    got = cli(data, "--json")
    assert got.returncode == 0 and json.loads(got.stdout)["log"] == str(keys.log.verifier)
    assert not (data / "public").exists()  # reading keys writes nothing


def test_witness_keys_setting_wins(tmp_path: Path) -> None:
    data = tmp_path / "data"
    s = settings_for(data)
    PlatformKeys.load(s)
    publish_witness_key(s, witness())
    mine = witness("witness.mine")
    assert trusted_keys(settings_for(data, WITNESS_KEYS=f" {mine} , {mine}")).witnesses == (mine,)
    got = cli(data, "--json", WITNESS_KEYS=str(mine))
    assert json.loads(got.stdout)["witnesses"] == [str(mine)]
    bad = cli(data, WITNESS_KEYS="not-a-key")
    assert bad.returncode == 1 and bad.stderr.startswith("cuentas: ") and bad.stderr.count("\n") == 1


def test_no_log_key_is_one_clear_line(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    got = cli(tmp_path / "data")
    assert got.returncode == 1 and "Traceback" not in got.stderr
    assert got.stderr.startswith("cuentas: no log key here: ") and got.stderr.count("\n") == 1


def test_witness_files(tmp_path: Path) -> None:
    s = settings_for(tmp_path / "data")
    a, b = witness("witness.a"), witness("witness.b")
    publish_witness_key(s, b)
    publish_witness_key(s, a)
    publish_witness_key(s, a)  # idempotent
    assert read_witness_keys(s) == (a, b)
    (s.data_path / "public" / "witnesses" / "junk.pub").write_text("garbage\n")
    assert read_witness_keys(s) == (a, b)
    with pytest.raises(MalformedInput):
        publish_witness_key(s, VerifierKey("witness.c", public_key_bytes(Ed25519PrivateKey.generate())))


def test_a_log_key_under_another_origin_is_not_trusted(tmp_path: Path) -> None:
    s = settings_for(tmp_path / "data")
    PlatformKeys.load(s)
    assert trusted_keys(settings_for(tmp_path / "data", LOG_ORIGIN="other.example/log")).log is None

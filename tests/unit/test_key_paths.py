"""Where the platform's key files live: one rule (infra.identities.key_path) for every reader and writer."""

from __future__ import annotations

from infra.identities import PlatformKeys, key_path, keys_dir, publisher_key_path
from infra.settings import load_settings


def test_defaults_under_the_data_dir(tmp_path):
    s = load_settings({"CUENTAS_DATA_DIR": str(tmp_path)})
    assert keys_dir(s) == tmp_path.resolve() / "keys"
    for role in ("registry", "log", "platform", "witness"):
        assert key_path(s, role) == tmp_path.resolve() / "keys" / f"{role}.key"
    assert publisher_key_path(s, "op.remesas-norte") == tmp_path.resolve() / "keys" / "publishers" / "op.remesas-norte.key"


def test_settings_name_the_registry_and_log_files(tmp_path):
    s = load_settings({"CUENTAS_DATA_DIR": str(tmp_path / "d"), "REGISTRY_KEY_FILE": str(tmp_path / "auth.pem"),
                       "LOG_KEY_FILE": str(tmp_path / "log.pem")})
    assert key_path(s, "registry") == tmp_path / "auth.pem"
    assert key_path(s, "log") == tmp_path / "log.pem"
    assert key_path(s, "platform") == (tmp_path / "d").resolve() / "keys" / "platform.key"


def test_load_creates_the_files_key_path_names(tmp_path):
    s = load_settings({"CUENTAS_DATA_DIR": str(tmp_path), "LOG_KEY_FILE": str(tmp_path / "elsewhere" / "log.pem")})
    assert not PlatformKeys.exist(s)
    PlatformKeys.load(s)
    assert PlatformKeys.exist(s)
    assert (tmp_path / "elsewhere" / "log.pem").is_file()
    assert sorted(p.name for p in keys_dir(s).iterdir()) == ["platform.key", "registry.key"]

"""TLS and SASL settings reach both Kafka clients (kafka-python and Faust/aiokafka) correctly."""

from __future__ import annotations

import ssl

import certifi
import faust
import pytest

from infra.kafka import client_config, faust_broker_options
from infra.settings import load_settings
from schemas.errors import ConfigurationError


def s(**env: str):
    return load_settings({"KAFKA_BOOTSTRAP_SERVERS": "k1:9093, k2:9093", **env})


def test_plaintext_defaults():
    cfg = client_config(s())
    assert cfg == {"bootstrap_servers": ["k1:9093", "k2:9093"], "security_protocol": "PLAINTEXT"}
    opts = faust_broker_options(s())
    assert opts["broker"] == "kafka://k1:9093;kafka://k2:9093" and "broker_credentials" not in opts


def test_mutual_tls():
    ca = certifi.where()
    cfg = client_config(s(KAFKA_SECURITY_PROTOCOL="SSL", KAFKA_SSL_CAFILE=ca))
    assert cfg["security_protocol"] == "SSL" and cfg["ssl_cafile"] == ca
    opts = faust_broker_options(s(KAFKA_SECURITY_PROTOCOL="SSL", KAFKA_SSL_CAFILE=ca))
    assert isinstance(opts["broker_credentials"], ssl.SSLContext)


def test_sasl_scram_over_tls():
    env = {"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SSL_CAFILE": certifi.where(),
           "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512", "KAFKA_SASL_USERNAME": "cuentas", "KAFKA_SASL_PASSWORD": "pw"}
    cfg = client_config(s(**env))
    assert cfg["sasl_mechanism"] == "SCRAM-SHA-512"
    assert cfg["sasl_plain_username"] == "cuentas" and cfg["sasl_plain_password"] == "pw"
    creds = faust_broker_options(s(**env))["broker_credentials"]
    assert isinstance(creds, faust.SASLCredentials)
    assert creds.username == "cuentas" and creds.ssl_context is not None
    assert creds.mechanism.value == "SCRAM-SHA-512"


def test_password_is_redacted_in_settings_output():
    red = s(KAFKA_SASL_PASSWORD="hunter2", DATABASE_URL="postgresql://u:secret@h/db").redacted()
    assert red["kafka_sasl_password"] == "***" and red["database_url"] == "***"
    assert "hunter2" not in repr(red) and "secret" not in repr(red)


@pytest.mark.parametrize("env,needle", [
    ({"KAFKA_SECURITY_PROTOCOL": "TLS"}, "KAFKA_SECURITY_PROTOCOL"),
    ({"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_MECHANISM": "GSSAPI"},
     "KAFKA_SASL_MECHANISM"),
    ({"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT"}, "KAFKA_SASL_USERNAME"),
])
def test_bad_settings_name_the_setting(env, needle):
    with pytest.raises(ConfigurationError, match=needle):
        client_config(s(**env))

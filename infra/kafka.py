"""Kafka adapter: client settings (TLS/SASL), topics, and offsets read the safe way.

Nothing here is specific to the embedded broker.  One measured quirk shapes
it: ListOffsets "latest" is wrong on the embedded broker when the last batch
holds several records, so high watermarks are read from a Fetch response
(``KafkaConsumer.highwater``) and never from ``end_offsets()``.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
from collections.abc import Iterable
from typing import Any

from infra.settings import Settings
from schemas.errors import ConfigurationError, UnavailableService
from schemas.routing import TOPICS

__all__ = [
    "topic_names",
    "client_config",
    "faust_broker_options",
    "set_faust_fetch_max_wait",
    "ensure_topics",
    "high_watermarks",
    "list_topics",
    "topic_ids",
    "check_reachable",
    "make_producer",
]

log = logging.getLogger(__name__)

def topic_names(settings: Settings) -> dict[str, str]:
    """Every topic the platform uses (``schemas.routing.TOPICS``), with the deployment's prefix."""
    return {name: settings.topic(name) for name in TOPICS}


def client_config(settings: Settings) -> dict[str, Any]:
    """kafka-python keyword arguments for bootstrap, TLS and SASL."""
    proto = settings.kafka_security_protocol.upper()
    if proto not in {"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"}:
        raise ConfigurationError(f"KAFKA_SECURITY_PROTOCOL={proto!r} is not one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL")
    cfg: dict[str, Any] = {
        "bootstrap_servers": [s.strip() for s in settings.kafka_bootstrap_servers.split(",") if s.strip()],
        "security_protocol": proto,
    }
    if proto in {"SSL", "SASL_SSL"}:
        if settings.kafka_ssl_cafile:
            cfg["ssl_cafile"] = settings.kafka_ssl_cafile
        if settings.kafka_ssl_certfile:
            cfg["ssl_certfile"] = settings.kafka_ssl_certfile
            cfg["ssl_keyfile"] = settings.kafka_ssl_keyfile or None
    if proto.startswith("SASL"):
        mech = settings.kafka_sasl_mechanism.upper()
        if mech not in {"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"}:
            raise ConfigurationError(f"KAFKA_SASL_MECHANISM={mech!r} is not PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
        if not settings.kafka_sasl_username:
            raise ConfigurationError("KAFKA_SASL_USERNAME is required with a SASL security protocol")
        cfg.update(
            sasl_mechanism=mech,
            sasl_plain_username=settings.kafka_sasl_username,
            sasl_plain_password=settings.kafka_sasl_password,
        )
    return cfg


def _ssl_context(settings: Settings) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=settings.kafka_ssl_cafile or None)
    if settings.kafka_ssl_certfile:
        ctx.load_cert_chain(settings.kafka_ssl_certfile, settings.kafka_ssl_keyfile or None)
    return ctx


_FETCH_WAIT_MS: list[int] = []


def set_faust_fetch_max_wait(ms: int) -> None:
    """Make Faust's consumers wait at most ``ms`` per fetch.

    faust-streaming 0.15 creates its aiokafka consumer with a hard-coded
    ``fetch_max_wait_ms=1500`` and has no setting for it.  Kafka answers a
    fetch as soon as ``fetch_min_bytes`` (1) are there, so that only matters
    when idle; the embedded broker (Tansu) instead holds every fetch for the
    whole wait even when records arrive (measured: 380 ms per record at 1500,
    15 ms at 100), which added up to 1.5 s to each hop of the pipeline.  The
    value is set on the consumer before it starts (aiokafka reads it then).
    """
    from faust.transport.drivers import aiokafka as faust_aiokafka

    cls: Any = faust_aiokafka.AIOKafkaConsumerThread
    if not _FETCH_WAIT_MS:
        original = cls._create_worker_consumer

        def create(self: Any, transport: Any) -> Any:
            consumer = original(self, transport)
            consumer._fetch_max_wait_ms = _FETCH_WAIT_MS[0]
            return consumer

        cls._create_worker_consumer = create
        _FETCH_WAIT_MS.append(ms)
    _FETCH_WAIT_MS[0] = ms


def faust_broker_options(settings: Settings) -> dict[str, Any]:
    """faust.App keyword arguments equivalent to :func:`client_config`."""
    import faust

    cfg = client_config(settings)
    set_faust_fetch_max_wait(settings.kafka_fetch_max_wait_ms)
    proto = cfg["security_protocol"]
    scheme = "kafka://"
    opts: dict[str, Any] = {
        "broker": ";".join(scheme + b for b in cfg["bootstrap_servers"]),
        "broker_session_timeout": settings.kafka_session_timeout_s,
        "broker_rebalance_timeout": settings.kafka_rebalance_timeout_s,
        "broker_heartbeat_interval": settings.kafka_heartbeat_s,
    }
    if proto == "SSL":
        opts["broker_credentials"] = _ssl_context(settings)
    elif proto.startswith("SASL"):
        opts["broker_credentials"] = faust.SASLCredentials(
            username=settings.kafka_sasl_username,
            password=settings.kafka_sasl_password,
            mechanism=settings.kafka_sasl_mechanism.upper(),
            ssl_context=_ssl_context(settings) if proto == "SASL_SSL" else None,
        )
    return opts


def check_reachable(settings: Settings, timeout: float = 10.0) -> None:
    """Raise UnavailableService naming the brokers when none answers."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    boot = client_config(settings)["bootstrap_servers"]
    servers = ",".join(boot)
    # A refused or silent TCP connection answers at once; only then spend the
    # Kafka handshake's timeouts on a broker that is at least listening.
    from infra.procs import port_open

    def _hp(s: str) -> tuple[str, int]:
        host, _, port = s.rpartition(":")
        return host.strip("[]") or "localhost", int(port or 9092)

    if not any(port_open(*_hp(b), timeout=min(3.0, timeout)) for b in boot):
        raise UnavailableService(
            f"cannot reach Kafka at {servers}: connection refused or timed out "
            "(check KAFKA_BOOTSTRAP_SERVERS and that the brokers run)"
        )
    try:
        admin = KafkaAdminClient(**client_config(settings), request_timeout_ms=int(timeout * 1000))
        try:
            admin.list_topics()
        finally:
            admin.close()
    except (KafkaError, OSError, ValueError) as e:
        raise UnavailableService(
            f"cannot reach Kafka at {servers}: {type(e).__name__} "
            "(check KAFKA_BOOTSTRAP_SERVERS, that the brokers run, and the TLS/SASL settings)"
        ) from e


def ensure_topics(settings: Settings, names: Iterable[str] | None = None) -> list[str]:
    """Create any missing platform topic; return the ones created."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    from kafka.errors import KafkaError, TopicAlreadyExistsError

    wanted = list(names) if names is not None else list(topic_names(settings).values())
    try:
        admin = KafkaAdminClient(**client_config(settings), request_timeout_ms=15000)
    except (KafkaError, OSError) as e:
        raise UnavailableService(f"cannot reach Kafka to create topics: {e}") from e
    created = []
    try:
        existing = set(admin.list_topics())
        missing = [t for t in wanted if t not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(
                    [NewTopic(t, settings.kafka_partitions, settings.kafka_replication_factor) for t in missing]
                )
            created = missing
    finally:
        admin.close()
    return created


def topic_ids(settings: Settings, topics: Iterable[str]) -> dict[str, str]:
    """The topic id (one incarnation of a topic) of each topic, '' if unknown."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(**client_config(settings), enable_auto_commit=False)
    try:
        ids: dict[str, str] = {}
        topics = list(topics)
        consumer.topics()  # forces a metadata refresh for all topics
        for t in topics:
            tid = consumer._client.cluster.topic_id(t)  # populated from Metadata v10+
            ids[t] = str(tid) if tid else ""
        return ids
    finally:
        consumer.close()


def list_topics(settings: Settings) -> set[str]:
    """The topics the cluster knows (from Metadata)."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(**client_config(settings), enable_auto_commit=False)
    try:
        return set(consumer.topics())
    finally:
        consumer.close()


def high_watermarks(settings: Settings, topics: Iterable[str], timeout: float = 5.0) -> dict[tuple[str, int], int]:
    """(topic, partition) -> high watermark, read from Fetch responses."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(**client_config(settings), enable_auto_commit=False,
                             fetch_max_wait_ms=100, max_partition_fetch_bytes=1024)
    try:
        tps: list[Any] = []
        for t in topics:
            parts = consumer.partitions_for_topic(t) or set()
            tps.extend(TopicPartition(t, p) for p in parts)
        if not tps:
            return {}
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        import time

        deadline = time.monotonic() + timeout
        out: dict[tuple[str, int], int] = {}
        while time.monotonic() < deadline and len(out) < len(tps):
            consumer.poll(timeout_ms=200, max_records=500)
            for tp in tps:
                hw = consumer.highwater(tp)
                if hw is not None:
                    out[(tp.topic, tp.partition)] = hw
        return out
    finally:
        consumer.close()


def make_producer(settings: Settings, **overrides: Any) -> Any:
    """An idempotent, acks=all kafka-python producer."""
    from kafka import KafkaProducer
    from kafka.errors import KafkaError

    try:
        return KafkaProducer(
            **client_config(settings),
            acks="all",
            linger_ms=5,
            batch_size=256 * 1024,
            max_request_size=2 * 1024 * 1024,
            **overrides,
        )
    except (KafkaError, OSError) as e:
        raise UnavailableService(f"cannot reach Kafka to publish: {e}") from e

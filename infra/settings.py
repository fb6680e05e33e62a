"""Every setting of the platform, read from the environment and an optional TOML file.

One frozen dataclass, one place: each field names its environment variable and
explains itself, and the README's settings table is generated from these
fields (``cuentas settings --markdown``), with a test that keeps the two equal.

Precedence: environment variable > TOML file (``CUENTAS_CONFIG`` or
``./cuentas.toml``, keys are the variable names in lower case) > default.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from schemas.errors import ConfigurationError
from schemas.thresholds import DEFAULT_THRESHOLDS as _TH
from schemas.thresholds import LATE_PUBLICATION, MAX_EVENT_AGE, MAX_FUTURE_SKEW

__all__ = ["Settings", "load_settings", "settings_table_markdown", "processor_layout"]


def _s(env: str, default: Any, doc: str, *, secret: bool = False) -> Any:
    return field(default=default, metadata={"env": env, "doc": doc, "secret": secret})


@dataclass(frozen=True)
class Settings:
    # --- where things live -------------------------------------------------
    data_dir: str = _s("CUENTAS_DATA_DIR", ".data", "Folder for the embedded broker and database, keys, outboxes and logs.")
    # --- Kafka ---------------------------------------------------------------
    kafka_bootstrap_servers: str = _s(
        "KAFKA_BOOTSTRAP_SERVERS", "", "Comma-separated Kafka brokers. Unset: the embedded broker (Tansu) starts."
    )
    kafka_security_protocol: str = _s(
        "KAFKA_SECURITY_PROTOCOL", "PLAINTEXT", "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL."
    )
    kafka_ssl_cafile: str = _s("KAFKA_SSL_CAFILE", "", "CA bundle that signed the brokers' certificates (SSL, SASL_SSL).")
    kafka_ssl_certfile: str = _s("KAFKA_SSL_CERTFILE", "", "Client certificate for mutual TLS (optional).")
    kafka_ssl_keyfile: str = _s("KAFKA_SSL_KEYFILE", "", "Private key of the client certificate (optional).")
    kafka_sasl_mechanism: str = _s("KAFKA_SASL_MECHANISM", "PLAIN", "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.")
    kafka_sasl_username: str = _s("KAFKA_SASL_USERNAME", "", "SASL user name.")
    kafka_sasl_password: str = _s("KAFKA_SASL_PASSWORD", "", "SASL password (never logged).", secret=True)
    kafka_topic_prefix: str = _s("KAFKA_TOPIC_PREFIX", "cc.", "Prefix of every topic name (lets several platforms or tests share a cluster).")
    kafka_partitions: int = _s("KAFKA_PARTITIONS", 4, "Partitions of each topic the platform creates.")
    kafka_replication_factor: int = _s("KAFKA_REPLICATION_FACTOR", 1, "Replication factor of topics the platform creates (3 on a real cluster).")
    kafka_session_timeout_s: float = _s(
        "KAFKA_SESSION_TIMEOUT_S", 10.0, "Consumer session timeout. Small on the embedded broker: it answers JoinGroup after about half of it."
    )
    kafka_rebalance_timeout_s: float = _s("KAFKA_REBALANCE_TIMEOUT_S", 10.0, "Consumer-group rebalance timeout.")
    kafka_heartbeat_s: float = _s("KAFKA_HEARTBEAT_S", 2.0, "Consumer heartbeat interval.")
    kafka_fetch_max_wait_ms: int = _s(
        "KAFKA_FETCH_MAX_WAIT_MS", 200,
        "Longest a processor's fetch waits at the broker for new records. Small: the embedded broker holds a fetch this long even when records arrive.",
    )
    processor_workers: int = _s("PROCESSOR_WORKERS", 1, "Copies of the PROCESSOR_ROLES processes `cuentas up` starts; copies share partitions through consumer groups.")
    processor_uvloop: int = _s("PROCESSOR_UVLOOP", 1, "1: run the stream processors' event loop on uvloop (libuv); 0: asyncio's own.")
    processor_roles: str = _s("PROCESSOR_ROLES", "gate,checkpointer,receipts,redrive;reconcilers", "The stream-processor processes `cuentas up` starts, separated by ';', each the components it runs (gate, checkpointer, receipts, redrive, reconcilers; 'all' for every one): one process per role by default, so verification and the rules use two cores.")
    embedded_kafka_port: int = _s("EMBEDDED_KAFKA_PORT", 19092, "Port of the embedded broker (0: any free port).")
    # --- PostgreSQL ----------------------------------------------------------
    database_url: str = _s(
        "DATABASE_URL", "", "PostgreSQL URL for the processors (writer role). Unset: the embedded PostgreSQL starts.", secret=True
    )
    dashboard_database_url: str = _s(
        "DASHBOARD_DATABASE_URL", "", "PostgreSQL URL for the public dashboard (read-only role). Unset: derived from DATABASE_URL with the reader role.", secret=True
    )
    review_database_url: str = _s(
        "REVIEW_DATABASE_URL", "", "PostgreSQL URL for the dashboard's reviewer desk (role cuentas_review: sign-in and review requests, nothing else). Unset: derived from DATABASE_URL with that role.", secret=True
    )
    review_requests_interval_s: float = _s("REVIEW_REQUESTS_INTERVAL_S", 1.0, "How often the processors apply reviewers' requests (the dashboard only records them).")
    database_schema: str = _s("DATABASE_SCHEMA", "cuentas", "Schema holding the platform's tables (lets tests isolate themselves).")
    embedded_postgres_port: int = _s("EMBEDDED_POSTGRES_PORT", 15432, "Port of the embedded PostgreSQL on 127.0.0.1 (0: any free port).")
    # --- dashboard -------------------------------------------------------------
    dashboard_host: str = _s("DASHBOARD_HOST", "127.0.0.1", "Address the dashboard listens on.")
    dashboard_port: int = _s("DASHBOARD_PORT", 8501, "Port of the dashboard.")
    min_group_size: int = _s("MIN_GROUP_SIZE", 5, "Aggregates over fewer transfers than this are not shown (the public record cannot count people: pseudonyms are per transfer).")
    sign_in_max_failures_per_minute: int = _s(
        "SIGN_IN_MAX_FAILURES_PER_MINUTE", 30,
        "Failed reviewer sign-ins per minute, over all user names, beyond which every sign-in is refused until the minute passes (besides the per-name lockout); 0: no global limit.",
    )
    # --- the public static site: receipt check page and documents ------------------
    public_dir: str = _s("PUBLIC_DIR", "", "Folder of the public static site: the receipt check page, receipt documents (receipts/), the latest cosigned checkpoint and the public verifier keys. Unset: <data dir>/public.")
    receipt_check_host: str = _s("RECEIPT_CHECK_HOST", "127.0.0.1", "Address the static server of `cuentas up` (the receipt check page and documents) listens on.")
    receipt_check_port: int = _s("RECEIPT_CHECK_PORT", 8502, "Port of that static server (0: do not start it).")
    receipt_check_url: str = _s("RECEIPT_CHECK_URL", "", "Public address of the receipt check page when PUBLIC_DIR is served by a static host or CDN. Unset: http://RECEIPT_CHECK_HOST:RECEIPT_CHECK_PORT/.")
    receipt_docs_interval_s: float = _s("RECEIPT_DOCS_INTERVAL_S", 2.0, "How often the processors write the receipt documents of transfers whose events or flags changed.")
    # --- the log -------------------------------------------------------------
    log_origin: str = _s("LOG_ORIGIN", "cuentasclaras.example/log", "Checkpoint origin line and log key name (C2SP tlog-checkpoint).")
    log_key_file: str = _s("LOG_KEY_FILE", "", "Private key of the log. Unset: <data dir>/keys/log.key, created on first start.")
    registry_key_file: str = _s("REGISTRY_KEY_FILE", "", "Private key of the registry authority. Unset: <data dir>/keys/registry.key.")
    witness_keys: str = _s(
        "WITNESS_KEYS", "", "Comma-separated verifier keys of the witnesses the dashboard and `cuentas log keys` trust. Unset: the witnesses the platform runs (their public keys in <data dir>/public/witnesses)."
    )
    min_witnesses: str = _s(
        "MIN_WITNESSES", "", "How many of the trusted witnesses must have cosigned a checkpoint for the dashboard's green check. Unset: every one of them."
    )
    checkpoint_interval_s: float = _s("CHECKPOINT_INTERVAL_S", 1.0, "Shortest time between two checkpoints.")
    # --- ingestion gate ----------------------------------------------------------
    max_event_bytes: int = _s("MAX_EVENT_BYTES", 65536, "Largest signed event accepted; larger ones are quarantined as oversize.")
    max_future_skew_s: int = _s("MAX_FUTURE_SKEW_S", int(MAX_FUTURE_SKEW.total_seconds()), "How far after its arrival an event's claimed time may be.")
    max_event_age_days: float = _s("MAX_EVENT_AGE_DAYS", MAX_EVENT_AGE / timedelta(days=1), "How far before its arrival an event's claimed time may be, outside the publisher's declared backfill.")
    late_publication_days: float = _s("LATE_PUBLICATION_DAYS", LATE_PUBLICATION / timedelta(days=1), "Outside the declared backfill, an event arriving this long after its claimed time raises published_late.")
    batch_size: int = _s("BATCH_SIZE", 2000, "Most events a processor handles in one database transaction.")
    batch_window_s: float = _s("BATCH_WINDOW_S", 0.05, "Longest a processor waits to fill a batch.")
    redrive_after_s: float = _s("REDRIVE_AFTER_S", 30.0, "Accepted events not reconciled after this long are forwarded again.")
    outbox_resend_after_s: float = _s("OUTBOX_RESEND_AFTER_S", 20.0, "Publishers republish events not acknowledged after this long.")
    publish_bundle_events: int = _s("PUBLISH_BUNDLE_EVENTS", 256, "Most signed events the publisher SDK sends in one Kafka record (a bundle per partition, each event still signed and acknowledged); 1 sends every event alone.")
    publish_bundle_bytes: int = _s("PUBLISH_BUNDLE_BYTES", 256 * 1024, "Most bytes of events in one bundle the publisher SDK sends (well under the 1 MiB record limit of brokers and clients).")
    # --- reconciliation thresholds -----------------------------------------------
    # (defaults: schemas.thresholds, the one place they are written)
    payout_tolerance_bps: int = _s("PAYOUT_TOLERANCE_BPS", _TH.payout_tolerance_bps, "Payout may fall short of the promise by this much (basis points) before it is flagged.")
    corridor_cost_ceiling_bps: int = _s("CORRIDOR_COST_CEILING_BPS", _TH.corridor_cost_ceiling_bps, "Cost ceiling per transfer (SDG 10.c: no corridor above 5%).")
    payout_grace_hours: float = _s("PAYOUT_GRACE_HOURS", _TH.payout_grace / timedelta(hours=1), "Hours after the promised time after which a missing payout is a loss, not a delay.")
    no_milestone_days: float = _s("NO_MILESTONE_DAYS", _TH.no_milestone_period / timedelta(days=1), "Days after funds arrive within which a milestone must be reported.")
    unverified_days: float = _s("UNVERIFIED_DAYS", _TH.unverified_period / timedelta(days=1), "Days within which reported spending must be verified.")
    cancellation_window_minutes: float = _s("CANCELLATION_WINDOW_MINUTES", _TH.cancellation_window / timedelta(minutes=1), "A transfer cancelled this soon after it was sent must be refunded with its fee (12 CFR 1005.34(a)).")
    refund_period_business_days: int = _s("REFUND_PERIOD_BUSINESS_DAYS", _TH.refund_period_business_days, "Business days (Mon-Fri, UTC) after a cancellation within which the refund is due (12 CFR 1005.34(b)).")
    funds_return_days: float = _s("FUNDS_RETURN_DAYS", _TH.funds_return_period / timedelta(days=1), "Days after a project's cancellation within which the money it owes each party must be returned.")
    clock_lateness_s: float = _s("CLOCK_LATENESS_S", 3600.0, "Event-time lateness allowed before deadlines fire (out-of-order tolerance).")
    clock_idle_s: float = _s("CLOCK_IDLE_S", 10.0, "A partition with no new events for this long (wall clock) stops holding the event-time clock back.")

    # ---------------------------------------------------------------------------
    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).resolve()

    @property
    def public_path(self) -> Path:
        """The public static site's folder (``PUBLIC_DIR``, else ``<data dir>/public``)."""
        return Path(self.public_dir).resolve() if self.public_dir.strip() else self.data_path / "public"

    @property
    def receipt_check_address(self) -> str:
        """Where people open the receipt check page (``RECEIPT_CHECK_URL``, else the static server's)."""
        if self.receipt_check_url.strip():
            return self.receipt_check_url.strip().rstrip("/") + "/"
        return f"http://{self.receipt_check_host}:{self.receipt_check_port}/"

    @property
    def embedded_kafka(self) -> bool:
        return not self.kafka_bootstrap_servers.strip()

    @property
    def embedded_postgres(self) -> bool:
        return not self.database_url.strip()

    def topic(self, name: str) -> str:
        return f"{self.kafka_topic_prefix}{name}"

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    def redacted(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            out[f.name] = "***" if f.metadata.get("secret") and v else v
        return out


def _coerce(f: dataclasses.Field[Any], raw: Any) -> Any:
    typ = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    try:
        if typ == "int":
            return int(raw)
        if typ == "float":
            return float(raw)
        return str(raw)
    except (TypeError, ValueError) as e:
        raise ConfigurationError(f"setting {f.metadata['env']}={raw!r} is not a valid {typ}") from e


def load_settings(env: Mapping[str, str] | None = None, config_file: str | None = None) -> Settings:
    """Read settings from ``env`` (default ``os.environ``) and the TOML file."""
    env = os.environ if env is None else env
    path = config_file or env.get("CUENTAS_CONFIG") or "cuentas.toml"
    file_values: dict[str, Any] = {}
    if Path(path).is_file():
        try:
            file_values = {k.upper(): v for k, v in tomllib.loads(Path(path).read_text()).items()}
        except (tomllib.TOMLDecodeError, OSError) as e:
            raise ConfigurationError(f"cannot read settings file {path}: {e}") from e
    elif config_file or env.get("CUENTAS_CONFIG"):
        raise ConfigurationError(f"settings file {path} does not exist")
    values: dict[str, Any] = {}
    for f in dataclasses.fields(Settings):
        name = f.metadata["env"]
        if name in env:
            values[f.name] = _coerce(f, env[name])
        elif name in file_values:
            values[f.name] = _coerce(f, file_values[name])
    return Settings(**values)


def settings_table_markdown() -> str:
    rows = ["| Variable | Default | What it does |", "|---|---|---|"]
    for f in dataclasses.fields(Settings):
        default = f.default if f.default not in ("", None) else "(unset)"
        rows.append(f"| `{f.metadata['env']}` | `{default}` | {f.metadata['doc']} |")
    return "\n".join(rows)


def processor_layout(settings: Settings) -> list[tuple[str, str | None]]:
    """(name, CUENTAS_COMPONENTS or None for every component) of each processors process to start.

    ``PROCESSOR_ROLES`` lists processes separated by ';', each its components;
    ``PROCESSOR_WORKERS`` copies of that list share partitions through the
    consumer group.  By default the gate and the reconcilers run in separate
    processes (issue 16): signature checks and parsing no longer share one
    interpreter with the rules.
    """
    roles = [r.strip().replace(" ", "") for r in settings.processor_roles.split(";") if r.strip()] or ["all"]
    # Each distinct component set is its own consumer group (stream_processors.app.app_id): a consuming
    # component in two different sets would read its topics once per set.
    for comp in ("gate", "reconcilers"):
        sets = {r for r in roles if r == "all" or comp in r.split(",")}
        if len(sets) > 1:
            raise ConfigurationError(
                f"PROCESSOR_ROLES={settings.processor_roles!r}: {comp} is in {len(sets)} different processes"
                f" ({'; '.join(sorted(sets))}); repeat one process instead (or raise PROCESSOR_WORKERS)")
    workers = max(1, settings.processor_workers)
    out: list[tuple[str, str | None]] = []
    for i in range(1, workers + 1):
        for role in roles:
            comps = None if role == "all" else role
            label = "" if comps is None else "-" + comps.split(",")[0]
            name = f"processors{label}" + (f"-{i}" if workers > 1 else "")
            out.append((name, comps))
    # Names are log files and restart bookkeeping: unique, numbered where a role repeats.
    names = [n for n, _c in out]
    seen: dict[str, int] = {}
    unique = []
    for n, c in out:
        if names.count(n) > 1:
            seen[n] = seen.get(n, 0) + 1
            n = f"{n}-{seen[n]}"
        unique.append((n, c))
    return unique

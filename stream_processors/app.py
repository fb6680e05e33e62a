"""The Faust application: builds the app and installs the requested components.

Each agent or timer lives in its own module under :mod:`stream_processors.agents`
(the ingestion gate, the reconcilers, the deadline timer, the checkpointer,
the re-drive, the sequence-gap check, the incarnation watch), a thin adapter
that hands each batch to plain functions running in one PostgreSQL
transaction together with the consumer's progress, and only then produces
acknowledgements and forwards.  Faust acks a batch after the loop body
returns, so the body never raises: database trouble is retried inside
:class:`~stream_processors.pg.PgWorker` until it commits.
"""

from __future__ import annotations

import faust

from infra.identities import PlatformKeys
from infra.kafka import faust_broker_options
from infra.settings import Settings
from stream_processors.agents import ALWAYS, COMPONENTS
from stream_processors.agents.incarnation import EXIT_NEW_INCARNATION
from stream_processors.context import Context

__all__ = ["create_app", "app_id", "EXIT_NEW_INCARNATION", "DEFAULT_COMPONENTS"]

#: What a worker runs unless told otherwise (``CUENTAS_COMPONENTS``).
DEFAULT_COMPONENTS = ("gate", "checkpointer", "receipts", "redrive", "reconcilers")


def app_id(settings: Settings, components: tuple[str, ...]) -> str:
    """The Faust app id, i.e. the consumer group, of a worker running ``components``.

    Workers running every component share ``<prefix>processors``.  A worker
    running some of them (``PROCESSOR_ROLES``, one process per role, issue 16)
    gets a group of its own role: Faust runs ``on_leader`` timers (deadlines,
    checkpointer, re-drive, sequence gaps, receipt documents) only on the
    group's leader, and in a group mixing roles the leader may be a process
    that does not have the timer at all (seen in the kill fault test: a dirty
    project never swept).  Copies of one role still share its group.
    """
    base = f"{settings.kafka_topic_prefix}processors"
    if set(components) >= set(DEFAULT_COMPONENTS):
        return base
    return base + "-" + "-".join(c for c in DEFAULT_COMPONENTS if c in components)


def create_app(settings: Settings, db_url: str, *, components: tuple[str, ...] = DEFAULT_COMPONENTS) -> faust.App:
    keys = PlatformKeys.load(settings)
    app = faust.App(
        app_id(settings, components),
        **faust_broker_options(settings),
        value_serializer="raw",
        key_serializer="raw",
        web_enabled=False,
        consumer_auto_offset_reset="earliest",
        datadir=str(settings.data_path / "faust"),
        topic_partitions=settings.kafka_partitions,
        topic_replication_factor=settings.kafka_replication_factor,
        producer_acks=-1,
        stream_buffer_maxsize=max(4096, settings.batch_size * 2),
        broker_commit_every=settings.batch_size,
        broker_commit_interval=1.0,
    )
    ctx = Context(app, settings, db_url, keys)
    for install in ALWAYS:
        install(app, ctx)
    app.on_partitions_assigned.connect(ctx.on_partitions_assigned)  # type: ignore[arg-type]
    for name, installs in COMPONENTS.items():
        if name in components:
            for install in installs:
                install(app, ctx)
    return app

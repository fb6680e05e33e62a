"""Bundled forwards: many accepted events in one Kafka record (ADR 0005).

The gate forwards what it accepted to ``accepted.transfers`` and
``accepted.projects``.  One record per event cost a produce, a fetch and a
trip through Faust's per-record stream machinery for each event a second
time, which profiles showed to be the largest single cost of the pipeline.
Instead the gate groups a committed batch by destination partition (the
partition the event's key would land on, so every event of one transfer or
project still shares a partition, in log order) and sends one *bundle* per
partition:

    header  cc-bundle: 1
    value   [[<log index>, <canonical signed envelope>], ...]

The envelope bytes are embedded as they are (they are canonical JSON), so
building a bundle is a concatenation and reading one is one ``orjson.loads``.
Records without the header are single forwards (``log-index`` header plus
the envelope), which the re-drive still sends; readers accept both.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from schemas.routing import partition_for

__all__ = ["BUNDLE_HEADER", "Forward", "encode_bundle", "decode_bundle", "is_bundle", "group_by_partition"]

BUNDLE_HEADER = "cc-bundle"

#: (log index, partition key, envelope bytes)
Forward = tuple[int, bytes, bytes]


def group_by_partition(forwards: Iterable[Forward], partitions: int, max_events: int = 2000,
                       max_bytes: int = 512 * 1024) -> dict[int, list[list[Forward]]]:
    """Forwards grouped by destination partition, in order, in bundles of at most ``max_events``
    events and about ``max_bytes`` bytes (a bundle holds at least one event): well under the
    1 MiB record limit that brokers and clients apply by default."""
    out: dict[int, list[list[Forward]]] = {}
    size: dict[int, int] = {}
    partitions = max(1, partitions)
    for f in forwards:
        # Where the clients' default partitioner would put the event's own record.
        p = partition_for(f[1], partitions)
        bundles = out.setdefault(p, [[]])
        if bundles[-1] and (len(bundles[-1]) >= max_events or size[p] + len(f[2]) > max_bytes):
            bundles.append([])
            size[p] = 0
        bundles[-1].append(f)
        size[p] = size.get(p, 0) + len(f[2]) + 24
    return out


def encode_bundle(forwards: Sequence[Forward]) -> bytes:
    return b"[" + b",".join(b"[%d,%s]" % (idx, leaf) for idx, _key, leaf in forwards) + b"]"


def is_bundle(headers: Any) -> bool:
    return any(k == BUNDLE_HEADER for k, _v in headers or ())


def decode_bundle(value: bytes) -> list[tuple[int, dict[str, Any]]]:
    """The ``(log index, envelope object)`` pairs of a bundle; ValueError if it is not one."""
    try:
        items = orjson.loads(value)
    except orjson.JSONDecodeError as e:
        raise ValueError(f"a bundle is JSON: {e}") from e
    if not isinstance(items, list):
        raise ValueError("a bundle is a JSON array")
    out: list[tuple[int, dict[str, Any]]] = []
    for it in items:
        if not (isinstance(it, list) and len(it) == 2 and isinstance(it[0], int) and isinstance(it[1], dict)):
            raise ValueError("a bundle item is [log index, envelope]")
        out.append((it[0], it[1]))
    return out

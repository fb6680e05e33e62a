"""Bundles: many signed events in one Kafka record, on both hops (ADR 0005, issue 16).

One record per event cost a produce, a fetch and a trip through Faust's
per-record stream machinery for every event, which profiles showed to be the
largest fixed cost of the pipeline.  So events travel in *bundles*, one per
destination partition (the partition the event's own key would land on, so
every event of one transfer or project still shares a partition, in order):

    header  cc-bundle: 1
    value   [[<n>, <canonical signed envelope>], ...]

* Second hop (the gate's forwards to ``accepted.*``): ``n`` is the event's
  log index.  Only the gate writes these, from events it verified and logged.
* First hop (a publisher's SDK to ``publish.*``): ``n`` is the item's position
  in the bundle.  Every event in it stays individually signed, keyed (the
  record goes to the partition of its events' keys) and acknowledged; the gate
  splits the bundle (:func:`split_publisher_bundle`) and decides each event
  as if it had come alone.  Records without the header are single events.

The envelope bytes are embedded as they are (canonical JSON), so building a
bundle is a concatenation.  Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Final

import orjson

from schemas.routing import partition_for

__all__ = [
    "BUNDLE_HEADER",
    "Forward",
    "encode_bundle",
    "decode_bundle",
    "is_bundle",
    "group_by_partition",
    "split_publisher_bundle",
]

BUNDLE_HEADER: Final = "cc-bundle"

#: (number: log index or position, partition key, envelope bytes)
Forward = tuple[int, bytes, bytes]

#: Bytes a bundle item costs beyond its envelope ("[n," and "],"), for the size bound.
_ITEM_OVERHEAD: Final = 24


def group_by_partition(forwards: Iterable[Forward], partitions: int, max_events: int = 2000,
                       max_bytes: int = 512 * 1024) -> dict[int, list[list[Forward]]]:
    """Forwards grouped by destination partition, in order, in bundles of at most ``max_events``
    events and about ``max_bytes`` bytes (a bundle holds at least one event): well under the
    1 MiB record limit that brokers and clients apply by default."""
    out: dict[int, list[list[Forward]]] = {}
    size: dict[int, int] = {}
    partitions = max(1, partitions)
    max_events = max(1, max_events)
    for f in forwards:
        # Where the clients' default partitioner would put the event's own record.
        p = partition_for(f[1], partitions)
        bundles = out.setdefault(p, [[]])
        if bundles[-1] and (len(bundles[-1]) >= max_events or size[p] + len(f[2]) > max_bytes):
            bundles.append([])
            size[p] = 0
        bundles[-1].append(f)
        size[p] = size.get(p, 0) + len(f[2]) + _ITEM_OVERHEAD
    return out


def encode_bundle(forwards: Sequence[Forward]) -> bytes:
    return b"[" + b",".join(b"[%d,%s]" % (idx, leaf) for idx, _key, leaf in forwards) + b"]"


def is_bundle(headers: Any) -> bool:
    return any(k == BUNDLE_HEADER for k, _v in headers or ())


def decode_bundle(value: bytes) -> list[tuple[int, dict[str, Any]]]:
    """The ``(n, envelope object)`` pairs of a bundle written by the platform; ValueError if it is not one."""
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


def split_publisher_bundle(value: bytes) -> list[bytes] | None:
    """The envelopes of a publisher's bundle, each as the exact bytes it had inside it, or None.

    The bytes come from untrusted publishers, and the gate must judge each
    event exactly as if it had come alone (the strict parser's refusals:
    duplicate members, escapes, numbers; ``schemas.canonical``).  A parsed
    object has lost what those refusals look at, so the bundle is accepted
    only if it is *exactly* what :func:`encode_bundle` makes of the canonical
    spelling of its own items (orjson, sorted members): then each item's
    bytes are that spelling, with nothing a parse could have dropped (a
    duplicate member would have made the rebuilt bundle shorter).  The SDK
    always sends such bundles; anything else -- not JSON, not a non-empty
    array of ``[position, object]`` in order, spelt otherwise -- is None and
    the gate refuses the record as a whole (the publisher's outbox then
    resends its events one by one and each gets its own verdict).
    """
    try:
        items = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    if type(items) is not list or not items:
        return None
    raws: list[bytes] = []
    parts: list[bytes] = []
    for i, it in enumerate(items):
        if not (type(it) is list and len(it) == 2 and it[0] == i and type(it[0]) is int and type(it[1]) is dict):
            return None
        try:
            raw = orjson.dumps(it[1], option=orjson.OPT_SORT_KEYS)
        except TypeError:  # pragma: no cover - orjson serialises whatever it parsed
            return None
        raws.append(raw)
        parts.append(b"[%d,%s]" % (i, raw))
    if b"[" + b",".join(parts) + b"]" != value:
        return None
    return raws

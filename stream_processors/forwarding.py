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
the envelope), which the re-drive still sends; readers accept both.  The
format itself lives in :mod:`schemas.bundles`, shared with the publisher SDK,
which bundles the first hop the same way (issue 16).
"""

from __future__ import annotations

from schemas.bundles import (
    BUNDLE_HEADER,
    Forward,
    decode_bundle,
    encode_bundle,
    group_by_partition,
    is_bundle,
)

__all__ = ["BUNDLE_HEADER", "Forward", "encode_bundle", "decode_bundle", "is_bundle", "group_by_partition"]

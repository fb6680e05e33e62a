"""Bundled forwards (ADR 0005) and the COPY text encoding used by the log writer and entity store."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from infra.db import _copy_field
from schemas.routing import partition_for
from stream_processors.forwarding import (
    decode_bundle,
    encode_bundle,
    group_by_partition,
    is_bundle,
)


def leaf(i: int) -> bytes:
    return json.dumps({"header": {"event_id": f"e{i}"}, "payload": {"n": i, "s": "a\tb\\c"}},
                      separators=(",", ":"), sort_keys=True).encode()


def test_bundle_round_trip_keeps_order_and_bytes_meaning():
    fw = [(i * 7, b"k%d" % i, leaf(i)) for i in range(50)]
    got = decode_bundle(encode_bundle(fw))
    assert [i for i, _ in got] == [i * 7 for i in range(50)]
    assert [o for _, o in got] == [json.loads(f[2]) for f in fw]


@pytest.mark.parametrize("bad", [b"{}", b"[1]", b"[[1]]", b"[[\"1\", {}]]", b"[[1, []]]", b"not json"])
def test_malformed_bundle_is_a_value_error(bad):
    with pytest.raises(ValueError):
        decode_bundle(bad)


def test_is_bundle_reads_the_header():
    assert is_bundle([("cc-bundle", b"1")])
    assert not is_bundle([("log-index", b"3")])
    assert not is_bundle(None)


def test_partition_matches_the_clients_default_partitioner():
    # aiokafka (Faust) and kafka-python (the SDK) must agree with us, or a
    # bundle would land on another partition than its events' own records.
    from aiokafka.partitioner import DefaultPartitioner

    for i in range(200):
        key = f"tr-{i}".encode()
        assert partition_for(key, 4) == DefaultPartitioner()(key, list(range(4)), list(range(4)))


@given(st.lists(st.binary(min_size=1, max_size=8), max_size=300), st.integers(1, 16), st.integers(1, 40))
def test_grouping_keeps_every_forward_once_in_order_per_key(keys, parts, max_events):
    fw = [(i, k, b"{}") for i, k in enumerate(keys)]
    groups = group_by_partition(fw, parts, max_events)
    flat = [f for bundles in groups.values() for b in bundles for f in b]
    assert sorted(flat) == sorted(fw)
    for p, bundles in groups.items():
        assert all(0 < len(b) <= max_events for b in bundles)
        seq = [f for b in bundles for f in b]
        assert [f[0] for f in seq] == sorted(f[0] for f in seq)  # log order kept within a partition
        assert all(partition_for(f[1], parts) == p for f in seq)


def test_copy_text_format_escapes():
    assert _copy_field(None) == "\\N"
    assert _copy_field(b"\x00\xff") == "\\\\x00ff"
    assert _copy_field("a\tb\nc\\d\re") == "a\\tb\\nc\\\\d\\re"
    assert _copy_field(5) == "5"
    assert _copy_field(True) == "t"
    assert _copy_field(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2026-01-02T03:04:05+00:00"


def test_bundles_stay_under_the_byte_bound_unless_one_event_is_larger():
    fw = [(i, b"same-key", b"x" * 100_000) for i in range(30)] + [(30, b"same-key", b"y" * 700_000)]
    (bundles,) = group_by_partition(fw, 4, max_events=2000, max_bytes=512 * 1024).values()
    assert [f for b in bundles for f in b] == fw
    assert all(sum(len(f[2]) for f in b) <= 512 * 1024 or len(b) == 1 for b in bundles)

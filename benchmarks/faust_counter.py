"""A bare Faust agent that only reads and counts: the framework's ceiling on this broker.

Run as a subprocess by the e2e benchmark (``python -m benchmarks.faust_counter``)
with the same broker options and batch settings as the processors::

    BENCH_BROKER=127.0.0.1:PORT BENCH_TOPIC=bench.baseline BENCH_EXPECT=100000
    BENCH_RESULT=/tmp/out.json BENCH_MODE=batch|each BENCH_GROUP=... BENCH_DATADIR=...

``batch`` iterates ``stream.take_events(BATCH_SIZE, within=BATCH_WINDOW_S)``
like the gate does; ``each`` iterates events one by one.  When it has counted
BENCH_EXPECT records it writes the first/last receive times and exits.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any


def main() -> int:
    import faust

    from infra.kafka import faust_broker_options
    from infra.settings import load_settings

    env = os.environ
    expect = int(env["BENCH_EXPECT"])
    result = env["BENCH_RESULT"]
    mode = env.get("BENCH_MODE", "batch")
    s = load_settings({"KAFKA_BOOTSTRAP_SERVERS": env["BENCH_BROKER"],
                       "KAFKA_SESSION_TIMEOUT_S": "6", "KAFKA_REBALANCE_TIMEOUT_S": "6", "KAFKA_HEARTBEAT_S": "1",
                       "KAFKA_PARTITIONS": env.get("BENCH_PARTITIONS", "4")},
                      config_file=env["BENCH_CONFIG"])
    app = faust.App(
        env["BENCH_GROUP"],
        **faust_broker_options(s),
        value_serializer="raw",
        key_serializer="raw",
        web_enabled=False,
        consumer_auto_offset_reset="earliest",
        datadir=env["BENCH_DATADIR"],
        topic_partitions=s.kafka_partitions,
        stream_buffer_maxsize=max(4096, s.batch_size * 2),
        broker_commit_every=s.batch_size,
        broker_commit_interval=1.0,
    )
    topic = app.topic(env["BENCH_TOPIC"], value_type=bytes, key_type=bytes)
    state: dict[str, Any] = {"n": 0, "first": None, "bytes": 0}

    def done() -> None:
        with open(result + ".tmp", "w") as f:
            json.dump({"count": state["n"], "bytes": state["bytes"], "first": state["first"], "last": time.time(),
                       "mode": mode}, f)
        os.replace(result + ".tmp", result)

    if mode == "each":
        @app.agent(topic, name="count")
        async def count_each(stream: Any) -> None:
            async for event in stream.events():
                if state["first"] is None:
                    state["first"] = time.time()
                state["n"] += 1
                state["bytes"] += len(event.message.value or b"")
                if state["n"] == expect:
                    done()
    else:
        @app.agent(topic, name="count")
        async def count_batches(stream: Any) -> None:
            async for events in stream.take_events(s.batch_size, within=s.batch_window_s):
                if state["first"] is None:
                    state["first"] = time.time()
                state["n"] += len(events)
                state["bytes"] += sum(len(e.message.value or b"") for e in events)
                if state["n"] >= expect and not os.path.exists(result):
                    done()

    from faust.worker import Worker

    Worker(app, loglevel="WARNING", quiet=True).execute_from_commandline()
    return 0


if __name__ == "__main__":
    sys.exit(main())

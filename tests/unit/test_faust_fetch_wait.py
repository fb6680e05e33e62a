"""Faust's consumers use KAFKA_FETCH_MAX_WAIT_MS, not faust-streaming's hard-coded 1500 ms.

Regression: on the embedded broker, which holds a fetch for its whole wait
even when records arrive, the hard-coded wait added up to 1.5 s to each hop
of the pipeline (p50 publication -> reconciled was 1.3 s at 250 events/s).
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import faust

from infra.kafka import faust_broker_options
from infra.settings import load_settings


def test_worker_consumer_gets_the_configured_fetch_wait():
    s = load_settings({"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9", "KAFKA_FETCH_MAX_WAIT_MS": "77"})

    async def build() -> int:
        app = faust.App("fetch-wait-test", **faust_broker_options(s), web_enabled=False)
        consumer = app.consumer._thread._create_worker_consumer(app.transport)
        return int(consumer._fetch_max_wait_ms)

    # On a thread of its own: a test that ran before in this process (the
    # browser test's Playwright sync API) may leave an event loop marked as
    # running on the main thread, where asyncio.run() refuses to start.
    with ThreadPoolExecutor(max_workers=1) as pool:
        assert pool.submit(lambda: asyncio.run(build())).result() == 77

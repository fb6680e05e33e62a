"""Run the stream processors as one Faust worker: ``python -m stream_processors``."""

from __future__ import annotations

import logging
import sys

from infra.runtime import resolve
from infra.settings import load_settings
from schemas.errors import CuentasError


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        s = load_settings()
        ep = resolve(s)
        s = s.replace(kafka_bootstrap_servers=ep.kafka_bootstrap)
        import os

        if s.processor_uvloop:
            # Before Faust (mode) creates its loop: every get_event_loop() is then uvloop's.
            import asyncio

            import uvloop

            asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        from stream_processors.app import create_app

        comps = os.environ.get("CUENTAS_COMPONENTS")
        app = create_app(s, ep.database_url, **({"components": tuple(comps.split(","))} if comps else {}))
    except CuentasError as e:
        print(f"processors: {e}", file=sys.stderr)
        return 1
    from faust.worker import Worker

    worker = Worker(app, loglevel="INFO", quiet=True)
    worker.execute_from_commandline()
    return 0


if __name__ == "__main__":
    sys.exit(main())

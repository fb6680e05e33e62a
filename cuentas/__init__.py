"""The composition root of Cuentas Claras: the ``cuentas`` command, ``cuentas up`` and ``cuentas status``.

The only package that imports every room (producers, stream processors,
dashboard, benchmarks) and the adapters in ``infra``; nothing imports it.
"""

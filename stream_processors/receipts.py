"""Receipts for the processors' commands: one event, a transfer's events, a flag's evidence.

The receipts themselves are built by :mod:`infra.receipts` (the same builder
the dashboard uses); this module finds which events a command is about.
"""

from __future__ import annotations

from infra.receipts import receipt_for, receipts_for

__all__ = ["receipt_for", "receipts_for"]

"""`cuentas status`: the health of each component, for people and machines."""

from __future__ import annotations

import urllib.request
from typing import Any

from infra import db as dbmod
from infra import log_store
from infra.kafka import check_reachable, high_watermarks, list_topics, topic_names
from infra.runtime import resolve
from infra.settings import Settings
from schemas.errors import CuentasError
from schemas.l10n import DEFAULT_LOCALE, format_integer

__all__ = ["collect_status", "render_status"]


def collect_status(settings: Settings) -> dict[str, Any]:
    report: dict[str, Any] = {"components": {}, "healthy": False}
    comp = report["components"]
    try:
        ep = resolve(settings)
    except CuentasError as e:
        report["error"] = str(e)
        return report
    ks = settings.replace(kafka_bootstrap_servers=ep.kafka_bootstrap)
    # broker
    try:
        check_reachable(ks, timeout=5)
        comp["broker"] = {"ok": True, "bootstrap": ep.kafka_bootstrap}
    except CuentasError as e:
        comp["broker"] = {"ok": False, "error": str(e)}
    # topics and watermarks
    hw: dict[tuple[str, int], int] = {}
    if comp["broker"]["ok"]:
        names = list(topic_names(ks).values())
        existing = list_topics(ks)  # presence from metadata; watermarks only for lag
        missing = sorted(set(names) - existing)
        comp["topics"] = {"ok": not missing, "present": len(names) - len(missing), "missing": missing}
        hw = high_watermarks(ks, [n for n in names if n in existing])
    else:
        comp["topics"] = {"ok": False, "error": "broker unreachable"}
    # database
    try:
        conn = dbmod.connect(ep.database_url, settings.database_schema, timeout=5)
        try:
            applied = dbmod.applied_migrations(conn, settings.database_schema)
            wanted = {v for v, _, _ in dbmod.migrations()}
            pending = sorted(wanted - set(applied))
            comp["database"] = {"ok": not pending, "url": dbmod.describe_url(ep.database_url),
                                "migrations_applied": len(applied), "pending": pending}
            if not pending:
                with conn.cursor() as cur:
                    cur.execute("SELECT group_id, topic, partition, next_offset FROM consumer_progress")
                    lag: dict[str, int] = {}
                    for group, topic, part, nxt in cur.fetchall():
                        h = hw.get((topic, int(part)))
                        if h is not None:
                            lag[group] = lag.get(group, 0) + max(0, h - int(nxt))
                    size = log_store.log_size(cur)
                    cur.execute("SELECT count(*) FROM pending_reconcile")
                    pend = int(cur.fetchone()[0])  # type: ignore[index]
                    cur.execute("SELECT count(*) FROM witness_alarms")
                    alarms = int(cur.fetchone()[0])  # type: ignore[index]
                    cur.execute("SELECT count(*), max(checkpoint_size) FROM cosignatures")
                    cosigs, last_cosigned = cur.fetchone()  # type: ignore[misc]
                comp["processors"] = {"ok": bool(lag) or size == 0, "lag": lag, "log_size": size,
                                      "pending_reconcile": pend}
                comp["witnesses"] = {"ok": alarms == 0, "alarms": alarms, "cosignatures": int(cosigs),
                                     "last_cosigned_size": last_cosigned}
        finally:
            conn.close()
    except CuentasError as e:
        comp["database"] = {"ok": False, "error": str(e)}
    # dashboard
    if ep.dashboard_url:
        try:
            with urllib.request.urlopen(ep.dashboard_url + "/_stcore/health", timeout=3) as r:
                comp["dashboard"] = {"ok": r.status == 200, "url": ep.dashboard_url}
        except OSError as e:
            comp["dashboard"] = {"ok": False, "url": ep.dashboard_url, "error": str(e)}
    # the light receipt check page (issue 18): its address, and that it answers
    check_url = ep.receipt_check_url or settings.receipt_check_url.strip()
    if check_url:
        report["receipt_check_url"] = check_url
        try:
            with urllib.request.urlopen(check_url, timeout=3) as r:
                comp["receipt_check"] = {"ok": r.status == 200, "url": check_url}
        except OSError as e:
            comp["receipt_check"] = {"ok": False, "url": check_url, "error": str(e)}
    report["healthy"] = all(c.get("ok") for c in comp.values())
    return report


def _shown(v: Any, locale: str) -> str:
    """A detail's value for people: counts with the locale's digits (``lag={'processors': 1,234}``)."""
    if isinstance(v, int) and not isinstance(v, bool):
        return format_integer(v, locale)
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {_shown(x, locale)}" for k, x in v.items()) + "}"
    return str(v)


def render_status(report: dict[str, Any], locale: str = DEFAULT_LOCALE) -> str:
    if "error" in report:
        return f"not running: {report['error']}"
    lines = []
    for name, c in report["components"].items():
        mark = "ok  " if c.get("ok") else "FAIL"
        detail = ", ".join(f"{k}={_shown(v, locale)}" for k, v in c.items() if k != "ok")
        lines.append(f"{mark} {name:<11} {detail}")
    lines.append("healthy" if report["healthy"] else "unhealthy")
    return "\n".join(lines)

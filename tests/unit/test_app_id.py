"""Regression: one process per role needs one consumer group per role (issue 16).

Faust runs ``on_leader`` timers only on its group's leader.  With the gate and
the reconcilers in one group, the leader could be a gate process, and the
deadline timer (which also sweeps dirty projects) ran nowhere: the kill fault
test waited forever on one dirty project.
"""

from __future__ import annotations

from pathlib import Path

from infra.settings import load_settings, processor_layout
from stream_processors.app import DEFAULT_COMPONENTS, app_id


def _settings(tmp_path: Path, **env: str):  # type: ignore[no-untyped-def]
    config = tmp_path / "empty.toml"
    config.touch()
    return load_settings({"CUENTAS_DATA_DIR": str(tmp_path), **env}, config_file=str(config))


def test_each_role_has_its_own_group_and_copies_share_it(tmp_path: Path) -> None:
    s = _settings(tmp_path, PROCESSOR_WORKERS="2")
    layout = processor_layout(s)
    assert [c for _n, c in layout] == ["gate,checkpointer,receipts,redrive", "reconcilers"] * 2
    groups = [app_id(s, tuple(c.split(","))) for _n, c in layout if c]
    assert groups[0] == groups[2] and groups[1] == groups[3] and groups[0] != groups[1]
    assert len({n for n, _c in layout}) == 4
    # Everything in one process keeps the historical group.
    assert app_id(s, DEFAULT_COMPONENTS) == "cc.processors"
    assert processor_layout(_settings(tmp_path, PROCESSOR_ROLES="all")) == [("processors", None)]


def test_a_consuming_component_in_two_different_processes_is_refused(tmp_path: Path) -> None:
    """Each distinct component set is a consumer group: 'gate' in two sets would read every event twice."""
    import pytest

    from schemas.errors import ConfigurationError

    for roles in ("gate,checkpointer;gate;reconcilers", "all;reconcilers", "gate,reconcilers;reconcilers"):
        with pytest.raises(ConfigurationError):
            processor_layout(_settings(tmp_path, PROCESSOR_ROLES=roles))
    # The same set twice is fine: copies share one group.
    ok = processor_layout(_settings(tmp_path, PROCESSOR_ROLES="gate,checkpointer,receipts,redrive;reconcilers;reconcilers"))
    assert [c for _n, c in ok].count("reconcilers") == 2 and len({n for n, _c in ok}) == 3

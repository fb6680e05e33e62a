"""schemas.flag_workflow and schemas.flags: who may move a flag where, and what counts as open."""

from __future__ import annotations

from typing import Any, get_args

import pytest

from schemas.catalog import validate_payload
from schemas.errors import MalformedInput
from schemas.flag_workflow import (
    FLAG_STATUSES,
    OPEN_STATUSES,
    REVIEW_ACTIONS,
    REVIEWER_REASONS,
    SYSTEM_ACTOR,
    SYSTEM_REASONS,
    Condition,
    FlagStatus,
    check_review_reason,
    is_open,
    may_review,
    reason_allowed,
    review_targets,
    system_steps,
)
from schemas.flags import DISCREPANCY_FLAG_TYPES, FLAG_TYPES, INTEGRITY_FLAG_TYPES
from schemas.types_gen import FlagReason

REVIEWER = "rev_" + "a" * 26
CONDITIONS: tuple[Condition, ...] = get_args(Condition)

# Where the system leaves a flag, by (stored status, what the evidence says).
# None: not stored.  The specification of stream_processors.flag_store's sync.
FINAL: dict[tuple[FlagStatus | None, Condition], FlagStatus | None] = {
    (None, "open"): "open",
    (None, "resolved"): "resolved",
    (None, "absent"): None,
    ("open", "open"): "open",
    ("open", "resolved"): "resolved",
    ("open", "absent"): "withdrawn",
    ("acknowledged", "open"): "acknowledged",
    ("acknowledged", "resolved"): "resolved",
    ("acknowledged", "absent"): "withdrawn",
    ("resolved", "open"): "open",
    ("resolved", "resolved"): "resolved",
    ("resolved", "absent"): "withdrawn",
    ("withdrawn", "open"): "open",
    ("withdrawn", "resolved"): "resolved",
    ("withdrawn", "absent"): "withdrawn",
    ("dismissed", "open"): "dismissed",
    ("dismissed", "resolved"): "dismissed",
    ("dismissed", "absent"): "dismissed",
}


def _payload(status: str, previous: str | None, actor: str, reason: str) -> dict[str, Any]:
    return {
        "flag_id": "flg-short-0001",
        "flag_type": "short_payout",
        "status": status,
        "previous_status": previous,
        "subject": {"kind": "transfer", "id": "tx-0001"},
        "accountable": "op.remesas-sol",
        "severity": "high",
        "evidence": [],
        "actor": actor,
        "reason_code": reason,
        "changed_at": "2025-05-01T14:00:00Z",
    }


def test_the_table_covers_every_status_and_condition() -> None:
    assert set(FINAL) == {(s, c) for s in (None, *FLAG_STATUSES) for c in CONDITIONS}


@pytest.mark.parametrize(("status", "condition"), sorted(FINAL, key=str))
def test_system_steps_reach_the_specified_status_through_valid_changes(
    status: FlagStatus | None, condition: Condition
) -> None:
    current = status
    for new, reason in system_steps(status, condition):
        # every step is a flag.changed the contract accepts from the system
        validate_payload("flag.changed", 1, _payload(new, current, SYSTEM_ACTOR, reason))
        current = new
    assert current == FINAL[(status, condition)]


def test_a_dismissal_stands_and_an_open_flag_is_not_touched_again() -> None:
    for condition in CONDITIONS:
        assert system_steps("dismissed", condition) == ()
    assert system_steps("open", "open") == system_steps("acknowledged", "open") == ()
    assert system_steps("withdrawn", "resolved") == (
        ("open", "auto_detected"),
        ("resolved", "auto_resolved"),
    )


def test_reviewer_moves() -> None:
    assert review_targets("open") == ("acknowledged", "resolved", "dismissed")
    assert review_targets("acknowledged") == ("resolved", "dismissed")
    for closed in ("resolved", "dismissed", "withdrawn", "", "bogus"):
        assert review_targets(closed) == ()
    for status in FLAG_STATUSES:
        for target in FLAG_STATUSES:
            assert may_review(status, target) == (target in review_targets(status))
            if may_review(status, target):
                assert status != target and is_open(status)
                for reason in REVIEW_ACTIONS[target].reasons:
                    check_review_reason(target, reason)
                    validate_payload("flag.changed", 1, _payload(target, status, REVIEWER, reason))


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("acknowledged", "reviewer_resolved"),
        ("dismissed", "reviewer_ack"),
        ("open", "reviewer_ack"),
        ("withdrawn", "evidence_withdrawn"),
        ("resolved", "auto_resolved"),
        ("bogus", "reviewer_ack"),
    ],
)
def test_a_move_that_is_no_reviewer_action_is_refused(target: str, reason: str) -> None:
    with pytest.raises(MalformedInput) as e:
        check_review_reason(target, reason)
    assert e.value.reason == "flag_reason"


def test_reason_codes_split_between_system_and_reviewers_as_the_contract_does() -> None:
    every: tuple[FlagReason, ...] = get_args(FlagReason)
    assert set(SYSTEM_REASONS) | set(REVIEWER_REASONS) == set(every)
    assert not set(SYSTEM_REASONS) & set(REVIEWER_REASONS)
    assert {r for a in REVIEW_ACTIONS.values() for r in a.reasons} == set(REVIEWER_REASONS)
    for reason in every:
        for actor in (SYSTEM_ACTOR, REVIEWER):
            payload = _payload("resolved", "open", actor, reason)
            if reason_allowed(actor, reason):
                validate_payload("flag.changed", 1, payload)
            else:
                with pytest.raises(MalformedInput):
                    validate_payload("flag.changed", 1, payload)


def test_open_means_someone_still_has_to_act() -> None:
    assert OPEN_STATUSES == ("open", "acknowledged")
    assert [s for s in FLAG_STATUSES if is_open(s)] == list(OPEN_STATUSES)


def test_flag_types_split_into_discrepancies_and_integrity_alarms() -> None:
    from producers.simulator import DISCREPANCY_CLASSES
    from stream_processors.gate import INTEGRITY_REASONS
    from stream_processors.rules import FLAG_TYPES as RULE_FLAG_TYPES

    assert set(FLAG_TYPES) >= INTEGRITY_FLAG_TYPES
    assert set(DISCREPANCY_FLAG_TYPES) | INTEGRITY_FLAG_TYPES == set(FLAG_TYPES)
    # the rules raise the discrepancies, and authority_violation for an event they disregard
    assert (*DISCREPANCY_FLAG_TYPES, "authority_violation") == RULE_FLAG_TYPES
    assert set(DISCREPANCY_CLASSES) == set(DISCREPANCY_FLAG_TYPES)  # named after the flags
    # the gate's refusals raise all integrity types but the sequence check's and
    # published_late (raised by the gate for an event it accepts)
    assert {t for t, _ in INTEGRITY_REASONS.values()} | {"sequence_gap", "published_late"} == INTEGRITY_FLAG_TYPES

"""Scoring flags against a ground truth: true and false positives, misses, keys, quiet subjects."""

from __future__ import annotations

from typing import Any

from stream_processors.ground_truth import flag_identity, render_table, score

TRUTH: list[dict[str, Any]] = [
    {
        "class": "short_payout",
        "flag_type": "short_payout",
        "subject_kind": "transfer",
        "subject_id": "trf-1",
        "key": "",
        "status": "open",
    },
    {
        "class": "short_payout",
        "flag_type": "cost_above_disclosed",
        "subject_kind": "transfer",
        "subject_id": "trf-1",
        "key": "",
        "status": "open",
    },
    {
        "class": "missing_payout",
        "flag_type": "missing_payout",
        "subject_kind": "transfer",
        "subject_id": "trf-2",
        "key": "",
        "status": "open",
    },
    {
        "class": "late_disbursement",
        "flag_type": "late_disbursement",
        "subject_kind": "project",
        "subject_id": "prj-1",
        "key": "plg-a",
        "status": "resolved",
    },
    {
        "class": "late_disbursement",
        "flag_type": "late_disbursement",
        "subject_kind": "project",
        "subject_id": "prj-1",
        "key": "plg-b",
        "status": "resolved",
    },
    {
        "class": "sequence_gap",
        "flag_type": "sequence_gap",
        "subject_kind": "publisher",
        "subject_id": "mto-a",
        "key": None,
        "status": "open",
    },
    {"class": "replay", "expect": "no_flag", "subject_kind": "transfer", "subject_id": "trf-9"},
    {
        "class": "out_of_order",
        "expect": "no_flag",
        "subject_kind": "transfer",
        "subject_id": "trf-8",
    },
]


def flag(
    flag_type: str, kind: str, sid: str, key: str | None = "", status: str = "open"
) -> dict[str, Any]:
    return {
        "flag_type": flag_type,
        "subject_kind": kind,
        "subject_id": sid,
        "key": key,
        "status": status,
    }


def test_perfect_detection_scores_one_everywhere() -> None:
    flags = [
        flag("short_payout", "transfer", "trf-1"),
        flag("cost_above_disclosed", "transfer", "trf-1"),
        flag("missing_payout", "transfer", "trf-2"),
        flag("late_disbursement", "project", "prj-1", "plg-b", "resolved"),
        flag("late_disbursement", "project", "prj-1", "plg-a", "resolved"),
        flag("sequence_gap", "publisher", "mto-a", "anything"),
    ]
    s = score(TRUTH, flags)
    assert set(s) == {
        "short_payout",
        "missing_payout",
        "late_disbursement",
        "sequence_gap",
        "replay",
        "out_of_order",
    }
    for cls, row in s.items():
        assert (row["precision"], row["recall"], row["fp"], row["fn"]) == (1.0, 1.0, 0, 0), cls
    assert s["short_payout"]["tp"] == 2 and s["replay"]["tp"] == 1


def test_misses_false_alarms_and_wrong_keys() -> None:
    flags = [
        flag("short_payout", "transfer", "trf-1"),
        flag("short_payout", "transfer", "trf-7"),  # nobody expected it
        flag("late_disbursement", "project", "prj-1", "plg-a", "resolved"),
        flag("late_disbursement", "project", "prj-1", "plg-z", "resolved"),  # wrong key
        flag("equivocation", "publisher", "mto-b", "ev1"),  # a class absent from the truth
    ]
    s = score(TRUTH, flags)
    assert s["short_payout"] == {
        "tp": 1,
        "fp": 1,
        "fn": 1,
        "status_mismatch": 0, "pending": 0, "pending_detail": [],
        "precision": 0.5,
        "recall": 0.5,
    }
    assert (s["missing_payout"]["fn"], s["missing_payout"]["recall"]) == (1, 0.0)
    assert s["missing_payout"]["precision"] == 0.0
    ld = s["late_disbursement"]
    assert (ld["tp"], ld["fp"], ld["fn"]) == (1, 1, 1)
    assert s["equivocation"] == {
        "tp": 0,
        "fp": 1,
        "fn": 0,
        "status_mismatch": 0, "pending": 0, "pending_detail": [],
        "precision": 0.0,
        "recall": 1.0,
    }
    assert s["sequence_gap"]["fn"] == 1


def test_a_flag_on_a_quiet_subject_counts_against_that_class() -> None:
    s = score(
        TRUTH, [flag("late_payout", "transfer", "trf-9"), flag("paid_twice", "transfer", "trf-9")]
    )
    assert (s["replay"]["tp"], s["replay"]["fn"], s["replay"]["fp"]) == (0, 1, 2)
    assert "late_payout" not in s and "paid_twice" not in s
    assert s["out_of_order"]["tp"] == 1


def test_flag_changed_payloads_history_and_statuses() -> None:
    # flag.changed payloads carry no key: the key is then not compared.
    history = [
        {
            "flag_id": "flg_x",
            "flag_type": "late_disbursement",
            "status": "open",
            "subject": {"kind": "project", "id": "prj-1"},
        },
        {
            "flag_id": "flg_x",
            "flag_type": "late_disbursement",
            "status": "resolved",
            "subject": {"kind": "project", "id": "prj-1"},
        },
        {
            "flag_type": "missing_payout",
            "status": "open",
            "subject": {"kind": "transfer", "id": "trf-2"},
        },
        {
            "flag_type": "short_payout",
            "status": "dismissed",
            "subject": {"kind": "transfer", "id": "trf-1"},
        },
    ]
    assert flag_identity(history[0]) == ("late_disbursement", "project", "prj-1", None)
    s = score(TRUTH, history)
    assert (s["late_disbursement"]["tp"], s["late_disbursement"]["fn"]) == (1, 1)
    assert s["late_disbursement"]["status_mismatch"] == 0  # last status seen: resolved
    assert s["missing_payout"]["tp"] == 1
    assert s["short_payout"]["fn"] == 2  # dismissed flags do not count
    s2 = score(TRUTH, [flag("missing_payout", "transfer", "trf-2", status="resolved")])
    assert (s2["missing_payout"]["tp"], s2["missing_payout"]["status_mismatch"]) == (1, 1)


def test_empty_inputs() -> None:
    assert score([], []) == {}
    s = score([], [flag("short_payout", "transfer", "trf-1")])
    assert s["short_payout"]["precision"] == 0.0


def test_render_table() -> None:
    s = score(
        TRUTH,
        [
            flag("short_payout", "transfer", "trf-1"),
            flag("missing_payout", "transfer", "trf-2", status="resolved"),
        ],
    )
    text = render_table(s)
    lines = text.splitlines()
    assert lines[0].split() == ["class", "tp", "fp", "fn", "precision", "recall"]
    row = next(line for line in lines if line.startswith("short_payout"))
    assert row.split()[1:] == ["1", "0", "1", "1.000", "0.500"]
    assert "(1 with another status)" in next(
        line for line in lines if line.startswith("missing_payout")
    )
    assert lines[-1].split()[0] == "all" and len(lines) == len(s) + 4


def test_expected_flag_inside_a_waiting_period_is_pending_not_missed():
    """Issue 15.10: a sequence gap younger than its quiet time was reported missing."""
    truth = [
        {"class": "sequence_gap", "flag_type": "sequence_gap", "subject_kind": "publisher",
         "subject_id": "gov-federal", "key": None, "status": "open"},
        {"class": "missing_payout", "flag_type": "missing_payout", "subject_kind": "transfer",
         "subject_id": "trf-9", "key": "", "status": "open"},
    ]
    without = score(truth, [])
    assert without["sequence_gap"]["fn"] == 1 and without["sequence_gap"]["recall"] == 0.0
    waiting = {("publisher", "gov-federal"): "sequence gap seen at 10:00, flagged after 30 s of quiet"}
    scores = score(truth, [], waiting=waiting)
    gap = scores["sequence_gap"]
    assert (gap["tp"], gap["fn"], gap["pending"]) == (0, 0, 1)
    assert gap["recall"] == 1.0
    assert gap["pending_detail"] == [{"flag_type": "sequence_gap", "subject_kind": "publisher",
                                      "subject_id": "gov-federal", "why": waiting[("publisher", "gov-federal")]}]
    # a subject with no waiting period is still a miss
    assert scores["missing_payout"]["fn"] == 1
    table = render_table(scores)
    assert "pending (not counted; still inside a waiting period): 1" in table
    assert "sequence_gap on publisher gov-federal: sequence gap seen at 10:00" in table


def test_waiting_never_hides_a_found_flag_or_a_false_positive():
    truth = [{"class": "short_payout", "flag_type": "short_payout", "subject_kind": "transfer",
              "subject_id": "trf-1", "key": "", "status": "open"}]
    flags = [{"flag_type": "short_payout", "subject_kind": "transfer", "subject_id": "trf-1", "key": "",
              "status": "open"},
             {"flag_type": "paid_twice", "subject_kind": "transfer", "subject_id": "trf-1", "key": "",
              "status": "open"}]
    scores = score(truth, flags, waiting={("transfer", "trf-1"): "next deadline later"})
    assert scores["short_payout"]["tp"] == 1 and scores["short_payout"]["pending"] == 0
    assert scores["paid_twice"]["fp"] == 1

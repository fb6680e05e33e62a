"""`cuentas publish FILE.jsonl` line by line, and the `cuentas keys` commands.

The publisher is an in-memory fake with the SDK's shape (sign, publish_many,
settle, an outbox answering status_of): what is under test is that every bad
line is reported with its number and the field and rule it breaks, that bad
lines never stop good ones, and that the platform's verdict reaches the line
it belongs to.
"""

from __future__ import annotations

import json
import stat
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cuentas.cli import main
from infra.settings import Settings
from producers.cli import (
    LineProblem,
    parse_duration,
    parse_lines,
    parse_start,
    prepare_lines,
    publish_lines,
)
from producers.cli.common import publisher_locks
from schemas.catalog import validate_payload
from schemas.envelope import Envelope, sign_event
from schemas.errors import ConfigurationError, MalformedInput
from schemas.keys import parse_verifier_key

NOW = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)
PUB = "mto-prueba"

Status = tuple[str, str | None, str | None, int | None]


class FakeOutbox:
    def __init__(self) -> None:
        self.rows: dict[str, Status] = {}
        self.seq = 1

    def next_seq(self) -> int:
        return self.seq

    def status_of(self, event_id: str) -> Status | None:
        return self.rows.get(event_id)

    def pending(self) -> int:
        return sum(1 for r in self.rows.values() if r[0] == "pending")


class FakePublisher:
    """Signs for real; ``verdict`` plays the platform (None: no acknowledgement yet)."""

    def __init__(self, verdict: Callable[[Envelope], Status | None]) -> None:
        self.publisher_id = PUB
        self.key = Ed25519PrivateKey.from_private_bytes(bytes(32))
        self.outbox = FakeOutbox()
        self.verdict = verdict
        self.published: list[Envelope] = []
        self.settled = 0
        self.closed = False

    def sign(
        self,
        event_type: str,
        payload: Mapping[str, Any],
        *,
        event_time: datetime | str | None = None,
        event_id: str | None = None,
        seq: int | None = None,
    ) -> Envelope:
        return sign_event(
            self.key,
            publisher_id=self.publisher_id,
            event_type=event_type,
            payload=dict(payload),
            seq=seq or self.outbox.next_seq(),
            event_time=event_time or NOW,
            event_id=event_id,
        )

    def publish_many(self, envs: list[Envelope]) -> None:
        for e in envs:
            self.published.append(e)
            self.outbox.rows[e.event_id] = ("pending", None, None, None)
            self.outbox.seq = max(self.outbox.seq, e.seq + 1)

    def settle(self, timeout: float = 0, progress: Any = None) -> None:
        self.settled += 1
        for e in self.published:
            v = self.verdict(e)
            if v is not None:
                self.outbox.rows[e.event_id] = v

    def close(self) -> None:
        self.closed = True


def sent(transfer_id: str = "trf-0001", amount: int = 20000) -> dict[str, Any]:
    return {
        "transfer_id": transfer_id,
        "operator": PUB,
        "corridor": {"from": "US", "to": "MX"},
        "send": {"amount": amount, "currency": "USD"},
        "fee": {"amount": 499, "currency": "USD"},
        "exchange_rate": "17.25",
        "receive_promised": {"amount": 345000, "currency": "MXN"},
        "available_by": "2025-05-01T13:00:00Z",
        "destination": {"kind": "beneficiary", "beneficiary": "ben_" + "a" * 26},
        "sender": "snd_" + "b" * 26,
        "receipt_digest": "c" * 64,
        "disclosed_cost_bps": 448,
    }


def paid(transfer_id: str) -> dict[str, Any]:
    return {
        "transfer_id": transfer_id,
        "paid": {"amount": 345000, "currency": "MXN"},
        "paid_at": "2025-05-01T12:10:00Z",
        "payout_ref": "po-000001",
    }


def line(obj: Any) -> str:
    return json.dumps(obj)


FILE = [
    line({"type": "transfer.sent", "payload": sent("trf-0001")}),  # 1 ok
    'not json {"type": ',  # 2
    "",  # 3 blank: skipped
    "[1, 2]",  # 4
    line({"type": "transfer.sent", "payload": sent("trf-0005"), "colour": "red"}),  # 5
    line({"payload": sent("trf-0006")}),  # 6
    line({"type": "transfer.sent", "payload": sent("trf-0007", amount=-5)}),  # 7
    line({"type": "transfer.teleported", "payload": {}}),  # 8
    line({"type": "publisher.registered", "payload": {}}),  # 9
    line({"type": "transfer.sent", "payload": sent("trf-0010"), "event_time": "yesterday"}),  # 10
    line({"type": "transfer.paid_out", "payload": paid("trf-0011")}),  # 11 platform rejects
    line(
        {
            "type": "transfer.paid_out",
            "payload": paid("trf-0012"),
            "event_time": "2025-05-01T12:30:00Z",
        }
    ),  # 12 no acknowledgement
    line(
        {
            "type": "transfer.cancelled",
            "payload": {
                "transfer_id": "trf-0013",
                "cancelled_at": "2025-05-01T12:05:00Z",
                "reason_code": "sender_request",
            },
        }
    ),  # 13 ok
    line(
        {"type": "transfer.paid_out", "payload": {**paid("trf-0014"), "note": "Juan Pérez"}}
    ),  # 14
]


def platform(env: Envelope) -> Status | None:
    tid = env.payload["transfer_id"]
    if tid == "trf-0011":
        return ("rejected", "role_not_allowed", "mto-prueba may not publish that", None)
    if tid == "trf-0012":
        return None
    return ("accepted", None, None, 100 + env.seq)


def test_every_invalid_line_is_reported_exactly_and_the_rest_published() -> None:
    pub = FakePublisher(platform)
    report = publish_lines(pub, FILE, timeout=1)
    got = {p.line: (p.reason, p.field, p.by) for p in report.rejected}
    assert got == {
        2: ("json", None, "cuentas"),
        4: ("shape", None, "cuentas"),
        5: ("shape", "colour", "cuentas"),
        6: ("shape", "type", "cuentas"),
        7: ("schema", "/payload/send/amount", "cuentas"),
        8: ("unknown_type", "/header/type", "cuentas"),
        9: ("role", "/header/type", "cuentas"),
        10: ("envelope", "/header/event_time", "cuentas"),
        11: ("role_not_allowed", None, "platform"),
        14: ("schema", "/payload/note", "cuentas"),
    }
    assert [a["line"] for a in report.accepted] == [1, 13]
    assert [p["line"] for p in report.pending] == [12]
    assert not report.ok
    # Only the good lines were signed, with consecutive sequence numbers.
    assert [e.seq for e in pub.published] == [1, 2, 3, 4]
    assert [e.payload["transfer_id"] for e in pub.published] == [
        "trf-0001",
        "trf-0011",
        "trf-0012",
        "trf-0013",
    ]
    assert pub.published[2].event_time == "2025-05-01T12:30:00Z"
    text = report.render()
    assert "line 7: payload/send/amount: -5 is less than the minimum of 1" in text
    assert "line 11: rejected by the platform: role_not_allowed" in text
    assert "line 2: not valid JSON" in text
    assert "line 12: pending" in text
    assert text.splitlines()[-1] == (
        "accepted 2, rejected 10 (9 before publishing, 1 by the platform), pending 1"
    )
    d = report.as_dict()
    assert d["counts"] == {"accepted": 2, "rejected": 10, "pending": 1}
    assert d["rejected"][0] == {
        "line": 2,
        "reason": "json",
        "field": None,
        "by": "cuentas",
        "message": d["rejected"][0]["message"],
    }


def test_parse_lines_shape_only() -> None:
    good, bad = parse_lines(
        [
            '{"type": "x.y", "payload": {}}',
            "  ",
            '{"type": 3, "payload": {}}',
            '{"type": "x.y", "payload": {}, "event_id": 7}',
        ]
    )
    assert [g.line for g in good] == [1]
    assert [(b.line, b.field) for b in bad] == [(3, "type"), (4, "event_id")]
    assert str(bad[0]).startswith("line 3: type:")


def test_a_line_already_in_the_outbox_is_not_signed_again() -> None:
    pub = FakePublisher(platform)
    first = publish_lines(
        pub,
        [line({"type": "transfer.sent", "payload": sent("trf-0001"), "event_id": "a" * 26})],
        timeout=1,
    )
    assert first.ok and len(pub.published) == 1
    again = publish_lines(
        pub,
        [line({"type": "transfer.sent", "payload": sent("trf-0001"), "event_id": "a" * 26})],
        timeout=1,
    )
    assert again.ok and len(pub.published) == 1  # re-signing would be an equivocation
    assert again.accepted == [
        {"line": 1, "event_id": "a" * 26, "log_index": 101, "duplicate": False}
    ]


def test_oversize_events_are_refused_before_publishing() -> None:
    pub = FakePublisher(platform)
    parsed, _ = parse_lines([line({"type": "transfer.sent", "payload": sent()})])
    envs, problems, _ = prepare_lines(pub, parsed, max_bytes=200)
    assert envs == [] and [p.reason for p in problems] == ["oversize"]
    assert isinstance(problems[0], LineProblem) and "200 byte limit" in problems[0].message


def test_an_empty_file_publishes_nothing_and_waits_for_nothing() -> None:
    pub = FakePublisher(platform)
    report = publish_lines(pub, ["", "   "], timeout=1)
    assert report.ok and pub.settled == 0


def test_cuentas_publish_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CUENTAS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    monkeypatch.delenv("CUENTAS_KEY_PASSPHRASE", raising=False)
    fake = FakePublisher(platform)
    opened: list[tuple[str, bytes]] = []

    def fake_open(settings: Any, publisher_id: str, key: Any, *a: Any, **kw: Any) -> FakePublisher:
        opened.append((publisher_id, key.public_key().public_bytes_raw()))
        fake.publisher_id = publisher_id
        return fake

    monkeypatch.setattr("producers.publisher.Publisher.open", fake_open)
    assert main(["keys", "new", PUB, "--out", str(tmp_path / "k.key")]) == 0
    src = tmp_path / "events.jsonl"
    src.write_text("\n".join(FILE) + "\n")
    capsys.readouterr()
    assert main(["publish", str(src), "--as", PUB, "--key", str(tmp_path / "k.key"), "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["counts"] == {"accepted": 2, "rejected": 10, "pending": 1}
    assert opened[0][0] == PUB and fake.closed
    good = tmp_path / "good.jsonl"
    good.write_text(FILE[0] + "\n" + FILE[12] + "\n")
    assert main(["publish", str(good), "--as", PUB, "--key", str(tmp_path / "k.key")]) == 0
    assert capsys.readouterr().out.strip().endswith("accepted 2, rejected 0, pending 0")


# --- keys -----------------------------------------------------------------------------


def test_keys_new_show_rotate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CUENTAS_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("CUENTAS_KEY_PASSPHRASE", raising=False)
    monkeypatch.setenv("MY_PW", "correct horse")
    assert main(["keys", "new", "gob-mun-zac-jerez", "--passphrase-env", "MY_PW", "--json"]) == 0
    made = json.loads(capsys.readouterr().out)
    path = Path(made["file"])
    assert path == tmp_path / "keys" / "publishers" / "gob-mun-zac-jerez.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert b"ENCRYPTED" in path.read_bytes()
    vk = parse_verifier_key(made["verifier_key"])
    assert vk.name == "gob-mun-zac-jerez" and vk.key_id.hex() == made["key_id"]
    assert main(["keys", "new", "gob-mun-zac-jerez"]) == 1  # never overwrites
    assert "already exists" in capsys.readouterr().err
    assert main(["keys", "show", str(path), "--passphrase-env", "MY_PW"]) == 0
    assert capsys.readouterr().out.strip() == made["verifier_key"]
    assert main(["keys", "show", str(path)]) == 1  # encrypted, no passphrase: one line
    assert capsys.readouterr().err.count("\n") == 1
    assert main(["keys", "rotate", str(path), "--passphrase-env", "MY_PW", "--json"]) == 0
    rotated = json.loads(capsys.readouterr().out)
    assert rotated["old"]["verifier_key"] == made["verifier_key"]
    assert Path(str(path) + ".old").exists() and stat.S_IMODE(path.stat().st_mode) == 0o600
    event = rotated["registry_event"]
    assert event["type"] == "publisher.key_rotated"
    validate_payload("publisher.key_rotated", 1, event["payload"])
    p = event["payload"]
    assert p["new_public_key"] == rotated["new"]["verifier_key"] != made["verifier_key"]
    assert datetime.fromisoformat(p["old_key_valid_until"]) - datetime.fromisoformat(
        p["valid_from"]
    ) == timedelta(days=7)
    assert main(["keys", "rotate", str(path), "--passphrase-env", "MY_PW"]) == 1  # .old exists


def test_duration_and_start_parsing() -> None:
    assert parse_duration("90d") == timedelta(days=90)
    assert parse_duration("1h30m") == timedelta(minutes=90)
    assert parse_duration("45") == timedelta(seconds=45)
    assert parse_duration("2w") == timedelta(days=14)
    for bad in ("", "ten", "5x", "-3d", "0s"):
        with pytest.raises(MalformedInput):
            parse_duration(bad)
    assert parse_start("2025-01-01") == datetime(2025, 1, 1, tzinfo=UTC)
    assert parse_start("2025-01-01T06:00:00-06:00") == datetime(2025, 1, 1, 12, tzinfo=UTC)
    with pytest.raises(MalformedInput):
        parse_start("last tuesday")


def test_simulate_usage_errors_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--events", "10"]) == 1
    assert main(["simulate", "--seed", "1", "--duration", "10m"]) == 1
    assert main(["simulate", "--seed", "1"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "cuentas: --seed N is required (or --demo)",
        "cuentas: --duration needs --rate: it publishes rate x duration events (or give "
        "--events N to publish as fast as possible)",
        "cuentas: give --events N or --duration D (with --rate R)",
    ]


def test_a_key_file_carries_its_publisher_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("CUENTAS_KEY_PASSPHRASE", raising=False)
    key = tmp_path / "mine.pem"
    assert main(["keys", "new", "mto-remesas-norte", "--out", str(key)]) == 0
    made = capsys.readouterr().out.splitlines()[1]
    assert (tmp_path / "mine.pem.pub").read_text().strip() == made
    assert main(["keys", "show", str(key)]) == 0  # name from the .pub next to it
    assert capsys.readouterr().out.strip() == made
    assert main(["keys", "rotate", str(key), "--json"]) == 0
    rotated = json.loads(capsys.readouterr().out)
    assert (tmp_path / "mine.pem.old.pub").read_text().strip() == made
    assert rotated["registry_event"]["payload"]["publisher_id"] == "mto-remesas-norte"
    (tmp_path / "mine.pem.pub").unlink()
    assert main(["keys", "show", str(key)]) == 1
    assert "give it with --name" in capsys.readouterr().err


def test_one_process_per_publisher(tmp_path: Path) -> None:
    s = Settings(data_dir=str(tmp_path))
    with publisher_locks(s, ["mto-a", "mto-b"]):
        busy = pytest.raises(ConfigurationError, match="mto-b is in use by another process")
        with busy, publisher_locks(s, ["mto-b"]):
            pass  # pragma: no cover
        with publisher_locks(s, ["mto-c"]):
            pass
    with publisher_locks(s, ["mto-b"]):  # released with the first holder
        pass


def test_pending_lines_say_why_when_the_platform_said_something() -> None:
    def unknown(env: Envelope) -> Status | None:
        return None

    pub = FakePublisher(unknown)
    report = publish_lines(pub, [FILE[0]], timeout=1)
    eid = report.pending[0]["event_id"]
    pub.outbox.rows[eid] = (
        "pending",
        "unknown_publisher",
        "publisher mto-prueba is not registered",
        None,
    )
    report = publish_lines(
        pub, [line({"type": "transfer.sent", "payload": sent(), "event_id": eid})], timeout=1
    )
    assert report.pending[0]["reason"] == "unknown_publisher"
    assert "is it registered? see `cuentas publishers list`" in report.render()

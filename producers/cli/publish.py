"""``cuentas publish FILE.jsonl``: validate, sign and publish a publisher's own events.

Each line ``{"type", "payload", "event_time"?, "event_id"?}`` is checked and
signed on its own (:func:`prepare_lines`): a bad line is reported with its
number and the field and rule it breaks, and never stops the others.  Then
every line is accepted, rejected (before publishing or by the platform) or
still pending (:class:`PublishReport`).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from producers.cli.common import (
    CHUNK,
    check_id,
    current_settings,
    key_passphrase,
    make_console,
    print_json,
    progress_bar,
    publisher_locks,
    running_platform,
)
from schemas.catalog import REGISTRY_EVENT_TYPES
from schemas.envelope import MAX_ENVELOPE_BYTES, Envelope
from schemas.errors import MalformedInput

if TYPE_CHECKING:
    from infra.settings import Settings
    from producers.publisher import Publisher

__all__ = [
    "LineProblem",
    "ParsedLine",
    "PublishReport",
    "PublisherLike",
    "parse_lines",
    "prepare_lines",
    "publish_lines",
    "cmd_publish",
    "add_parser",
]

_LINE_MEMBERS = frozenset({"type", "payload", "event_time", "event_id"})


@dataclass(frozen=True)
class LineProblem:
    """Why one line of the file was not published or not accepted."""

    line: int
    reason: str
    message: str
    field: str | None = None
    by: str = "cuentas"  # "cuentas": refused before signing; "platform": rejected by the gate

    def __str__(self) -> str:
        who = "rejected by the platform: " if self.by == "platform" else ""
        return f"line {self.line}: {who}{self.message}"


@dataclass(frozen=True)
class ParsedLine:
    """A well-shaped line of the file, not yet validated or signed."""

    line: int
    event_type: str
    payload: dict[str, Any]
    event_time: str | None
    event_id: str | None


def parse_lines(lines: Iterable[str]) -> tuple[list[ParsedLine], list[LineProblem]]:
    """Split a JSONL file into well-shaped lines and problems (1-based line numbers).

    Shape only: ``{"type": str, "payload": object, "event_time"?: str,
    "event_id"?: str}``; blank lines are skipped.  Payloads are checked when
    signed (``prepare_lines``).
    """
    good: list[ParsedLine] = []
    bad: list[LineProblem] = []
    for n, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            bad.append(LineProblem(n, "json", f"not valid JSON ({e.msg} at column {e.colno})"))
            continue
        if not isinstance(obj, dict):
            bad.append(
                LineProblem(
                    n,
                    "shape",
                    "each line must be a JSON object "
                    '{"type": ..., "payload": {...}, "event_time"?: ...}',
                )
            )
            continue
        extra = sorted(set(obj) - _LINE_MEMBERS)
        if extra:
            bad.append(
                LineProblem(
                    n,
                    "shape",
                    f"{extra[0]}: unknown member (allowed: type, payload, event_time, event_id)",
                    extra[0],
                )
            )
            continue
        problem = None
        if not isinstance(obj.get("type"), str):
            problem = ("type", 'type: is required and must be a string such as "transfer.sent"')
        elif not isinstance(obj.get("payload"), dict):
            problem = ("payload", "payload: is required and must be a JSON object")
        elif "event_time" in obj and not isinstance(obj["event_time"], str):
            problem = (
                "event_time",
                "event_time: must be an RFC 3339 string like 2025-05-01T12:00:00Z",
            )
        elif "event_id" in obj and not isinstance(obj["event_id"], str):
            problem = ("event_id", "event_id: must be a string of 26 base32 characters")
        if problem is not None:
            bad.append(LineProblem(n, "shape", problem[1], problem[0]))
            continue
        good.append(
            ParsedLine(n, obj["type"], obj["payload"], obj.get("event_time"), obj.get("event_id"))
        )
    return good, bad


class _Outbox(Protocol):
    def next_seq(self) -> int: ...

    def status_of(self, event_id: str) -> tuple[str, str | None, str | None, int | None] | None: ...

    def pending(self) -> int: ...


class PublisherLike(Protocol):
    """What ``publish_lines`` needs of ``producers.publisher.Publisher`` (tests pass a fake)."""

    publisher_id: str

    @property
    def outbox(self) -> _Outbox: ...

    def sign(
        self,
        event_type: str,
        payload: Mapping[str, Any],
        *,
        event_time: datetime | str | None = None,
        event_id: str | None = None,
        seq: int | None = None,
    ) -> Envelope: ...

    def publish_many(self, envs: list[Envelope]) -> None: ...

    def settle(self, timeout: float = ..., progress: Any = None) -> Any: ...


def prepare_lines(
    pub: PublisherLike,
    parsed: Sequence[ParsedLine],
    *,
    max_bytes: int = MAX_ENVELOPE_BYTES,
) -> tuple[list[tuple[int, Envelope]], list[LineProblem], list[tuple[int, str]]]:
    """Validate and sign each line with consecutive sequence numbers.

    Returns the signed envelopes, the lines refused (field and rule named), and
    lines whose ``event_id`` the outbox already holds (they are not signed
    again: a re-signed copy would differ and read as equivocation).
    """
    envs: list[tuple[int, Envelope]] = []
    problems: list[LineProblem] = []
    already: list[tuple[int, str]] = []
    seq = pub.outbox.next_seq()
    for p in parsed:
        if p.event_type in REGISTRY_EVENT_TYPES:
            problems.append(
                LineProblem(
                    p.line,
                    "role",
                    f"type: {p.event_type} is signed by the registry authority only "
                    "(use `cuentas publishers register`)",
                    "/header/type",
                )
            )
            continue
        if p.event_id is not None and pub.outbox.status_of(p.event_id) is not None:
            already.append((p.line, p.event_id))
            continue
        try:
            env = pub.sign(
                p.event_type, p.payload, event_time=p.event_time, event_id=p.event_id, seq=seq
            )
        except MalformedInput as e:
            problems.append(LineProblem(p.line, e.reason, str(e), e.field))
            continue
        size = len(env.leaf_bytes())
        if size > max_bytes:
            problems.append(
                LineProblem(
                    p.line,
                    "oversize",
                    f"the signed event is {size} bytes, over the {max_bytes} "
                    "byte limit (MAX_EVENT_BYTES)",
                )
            )
            continue
        envs.append((p.line, env))
        seq += 1
    return envs, problems, already


@dataclass
class PublishReport:
    """The outcome of ``cuentas publish``: every line is accepted, rejected or pending."""

    accepted: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[LineProblem] = field(default_factory=list)
    pending: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.rejected and not self.pending

    def as_dict(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "rejected": [asdict(p) for p in self.rejected],
            "pending": self.pending,
            "counts": {
                "accepted": len(self.accepted),
                "rejected": len(self.rejected),
                "pending": len(self.pending),
            },
        }

    def render(self) -> str:
        out = [str(p) for p in self.rejected]
        for p in self.pending:
            if p.get("reason") in ("unknown_publisher", "unknown_key"):
                out.append(
                    f"line {p['line']}: pending: {p['reason']}: {p.get('message')} (re-sent a few "
                    "more times in case the registration is on its way; is it registered? see "
                    "`cuentas publishers list`)"
                )
                continue
            out.append(
                f"line {p['line']}: pending: no acknowledgement yet (event {p['event_id']}; "
                "it stays in the outbox and is re-sent next time)"
            )
        dup = sum(1 for a in self.accepted if a.get("duplicate"))
        local = sum(1 for p in self.rejected if p.by == "cuentas")
        out.append(
            f"accepted {len(self.accepted)}"
            + (f" ({dup} already in the log)" if dup else "")
            + f", rejected {len(self.rejected)}"
            + (
                f" ({local} before publishing, {len(self.rejected) - local} by the platform)"
                if self.rejected
                else ""
            )
            + f", pending {len(self.pending)}"
        )
        return "\n".join(out)


def publish_lines(
    pub: PublisherLike,
    lines: Iterable[str],
    *,
    timeout: float = 120.0,
    max_bytes: int = MAX_ENVELOPE_BYTES,
    on_published: Callable[[int, int], None] | None = None,
    on_settle: Callable[[Any], None] | None = None,
) -> PublishReport:
    """Parse, sign, publish, wait for acknowledgements, and say what became of every line."""
    parsed, problems = parse_lines(lines)
    envs, refused, already = prepare_lines(pub, parsed, max_bytes=max_bytes)
    problems += refused
    total = len(envs)
    for i in range(0, total, CHUNK):
        pub.publish_many([e for _, e in envs[i : i + CHUNK]])
        if on_published:
            on_published(min(total, i + CHUNK), total)
    if envs or already:
        pub.settle(timeout=timeout, progress=on_settle)
    report = PublishReport(rejected=problems)
    tracked = [(n, e.event_id) for n, e in envs] + already
    for n, eid in tracked:
        st = pub.outbox.status_of(eid)
        status = st[0] if st else "pending"
        if status in ("accepted", "duplicate"):
            report.accepted.append(
                {
                    "line": n,
                    "event_id": eid,
                    "log_index": st[3] if st else None,
                    "duplicate": status == "duplicate",
                }
            )
        elif status == "rejected" and st is not None:
            report.rejected.append(
                LineProblem(n, st[1] or "rejected", f"{st[1]}: {st[2]}", by="platform")
            )
        else:
            pending: dict[str, Any] = {"line": n, "event_id": eid}
            if st is not None and st[1]:
                pending["reason"], pending["message"] = st[1], st[2]
            report.pending.append(pending)
    report.rejected.sort(key=lambda p: p.line)
    report.accepted.sort(key=lambda a: a["line"])
    report.pending.sort(key=lambda a: a["line"])
    return report


def cmd_publish(args: argparse.Namespace) -> int:
    """``cuentas publish FILE.jsonl --as ID --key KEYFILE``."""
    from infra.keystore import read_private_key
    from producers.publisher import Publisher

    pid = check_id(args.as_, "--as")
    path = Path(args.file)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise MalformedInput(f"cannot read {path}: {e}", reason="file") from e
    key = read_private_key(Path(args.key), key_passphrase(args.passphrase_env))
    s = current_settings()
    s2, _ = running_platform(s, need_db=False)
    console = make_console()
    with publisher_locks(s, [pid]):
        report = _publish_file(Publisher.open(s2, pid, key), lines, args, s, console)
    if args.json:
        print_json(report.as_dict())
    else:
        print(report.render())
    return 0 if report.ok else 1


def _publish_file(
    pub: Publisher, lines: list[str], args: argparse.Namespace, s: Settings, console: Any
) -> PublishReport:
    try:
        with progress_bar(console) as progress:
            sent = progress.add_task("publishing", total=None)
            acked = progress.add_task("acknowledged", total=None)
            base_pending = pub.outbox.pending()

            def on_published(done: int, total: int) -> None:
                progress.update(sent, completed=done, total=total)

            def on_settle(counts: Any) -> None:
                total = progress.tasks[sent].total or 0
                ours = max(0, counts.pending - base_pending)
                progress.update(acked, total=total, completed=max(0, total - ours))

            report = publish_lines(
                pub,
                lines,
                timeout=args.timeout,
                max_bytes=s.max_event_bytes,
                on_published=on_published,
                on_settle=on_settle,
            )
    finally:
        pub.close()
    return report


def add_parser(sub: Any) -> None:
    """Add ``cuentas publish``."""
    p = sub.add_parser(
        "publish",
        help="sign and publish events from a JSONL file",
        description='Each line: {"type": "transfer.sent", "payload": {...}, '
        '"event_time"?: "2025-05-01T12:00:00Z", "event_id"?: "..."}. Bad lines '
        "are reported with their number and never stop the others; exit 1 if "
        "any line is rejected or still pending.",
    )
    p.add_argument("file", metavar="FILE.jsonl")
    p.add_argument("--as", dest="as_", required=True, metavar="PUBLISHER")
    p.add_argument("--key", required=True, metavar="KEYFILE")
    p.add_argument("--passphrase-env", metavar="VAR")
    p.add_argument(
        "--timeout",
        type=float,
        default=120.0,
        help="seconds to wait for acknowledgements (default 120)",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_publish)

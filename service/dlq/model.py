"""Which dead letters `dlq replay` sends back, and the record it sends: plain values, no I/O.

A dead letter is the refused record as it came (key, value, headers) plus the `dlq.*`
headers the consumers added (consumers.py's `DeadLetter.headers`): `dlq.error`,
`dlq.reason`, `dlq.topic`, `dlq.partition`, `dlq.offset`, `dlq.at`, and
`dlq.value_dropped` when the value was too large to keep. The `dead_letter` row of the
same topic, partition and offset says whether it was replayed already (`replayed_at`).

The replayed record has the dead letter's key and value, its headers without the `dlq.*`
ones and without what the dead-letter producer (faststream) adds to every record (a
`correlation_id`, and an empty `content-type` when the record had none: kept, it would
make a binary-mode event without a content type "not JSON"), and
`ucaas-sync-replayed-from: <dlq topic>/<partition>/<offset>` (replacing one an earlier
replay left: the record was refused again since).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from connectors.events.cloudevents import Record
from connectors.events.replay import Outgoing

REPLAYED_FROM = "ucaas-sync-replayed-from"
DLQ_PREFIX = "dlq."
# Added by the dead-letter producer, not the record's own (an original `correlation_id`
# cannot be told from it, and goes too); `content-type` only when empty.
PRODUCER_HEADERS = frozenset({"correlation_id"})
CONTENT_TYPE = "content-type"


@dataclass(frozen=True, order=True)
class Origin:
    """Where a dead letter came from: the `dead_letter` row's topic, partition, offset."""

    topic: str
    partition: int
    offset: int

    def __str__(self) -> str:
        return f"{self.topic}/{self.partition}/{self.offset}"


@dataclass(frozen=True)
class Letter:
    """A record of the dead-letter topic, its `dlq.*` headers read."""

    record: Record
    origin: Origin | None  # None: no usable dlq.topic/partition/offset headers
    error: str | None
    reason: str | None
    at: datetime | None  # dlq.at, else the record's timestamp
    value_dropped: bool

    @property
    def where(self) -> str:
        return f"{self.record.topic}/{self.record.partition}/{self.record.offset}"

    @property
    def key(self) -> str | None:
        return None if self.record.key is None else self.record.key.decode("utf-8", "replace")


def letter_of(record: Record) -> Letter:
    headers = {k: v.decode("utf-8", "replace") for k, v in record.headers}
    return Letter(
        record=record,
        origin=_origin(headers),
        error=headers.get("dlq.error"),
        reason=headers.get("dlq.reason"),
        at=_time(headers.get("dlq.at")) or _from_ms(record.timestamp_ms),
        value_dropped="dlq.value_dropped" in headers,
    )


def _origin(headers: Mapping[str, str]) -> Origin | None:
    topic = headers.get("dlq.topic", "")
    partition, offset = headers.get("dlq.partition", ""), headers.get("dlq.offset", "")
    if not topic or not partition.isdigit() or not offset.isdigit():
        return None
    return Origin(topic, int(partition), int(offset))


def _time(text: str | None) -> datetime | None:
    try:
        at = datetime.fromisoformat(text or "")
    except ValueError:
        return None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _from_ms(ms: int | None) -> datetime | None:
    return None if ms is None or ms < 0 else datetime.fromtimestamp(ms / 1000, UTC)


class Skip(StrEnum):
    """Why a dead letter that passed the filters is not replayed."""

    REPLAYED = "already replayed"
    NO_ROW = "no dead_letter row (pruned?): --include-unrecorded replays it"
    NOT_A_DEAD_LETTER = "no dlq.topic/dlq.partition/dlq.offset headers"
    OTHER_TOPIC = "dead-lettered from another topic"
    VALUE_DROPPED = "its value was dropped (too large): nothing to replay"
    COPY = "a copy of a dead letter listed before (the same record, dead-lettered twice)"


@dataclass(frozen=True)
class Filters:
    """`--since`, `--error` (any of), `--include-unrecorded`."""

    since: datetime | None = None
    errors: frozenset[str] = frozenset()
    include_unrecorded: bool = False

    def admit(self, letter: Letter) -> bool:
        if self.errors and letter.error not in self.errors:
            return False
        return self.since is None or (letter.at is not None and letter.at >= self.since)


@dataclass(frozen=True)
class Decision:
    letter: Letter
    skip: Skip | None  # None: replayed (or would be)
    recorded: bool  # its dead_letter row exists (marked by an update, else inserted)

    @property
    def replays(self) -> bool:
        return self.skip is None


def source_of(dlq_topic: str, suffix: str) -> str | None:
    """`hr.events` of `hr.events.dlq`; None if the name does not end with the suffix."""
    source = dlq_topic.removesuffix(suffix)
    return source if suffix and source != dlq_topic and source else None


def decide(
    letters: Sequence[Letter],
    rows: Mapping[Origin, datetime | None],
    filters: Filters,
    source: str,
) -> tuple[list[Decision], int]:
    """One decision per letter the filters admit, in the topic's order, and how many they
    left out. `rows`: the dead_letter rows of `source` (origin -> replayed_at)."""
    decisions: list[Decision] = []
    seen: set[Origin] = set()
    left_out = 0
    for letter in letters:
        if not filters.admit(letter):
            left_out += 1
            continue
        origin = letter.origin
        recorded = origin is not None and origin in rows
        decisions.append(Decision(letter, _skip(letter, rows, filters, source, seen), recorded))
        if origin is not None:
            seen.add(origin)
    return decisions, left_out


def _skip(
    letter: Letter,
    rows: Mapping[Origin, datetime | None],
    filters: Filters,
    source: str,
    seen: set[Origin],
) -> Skip | None:
    origin = letter.origin
    if origin is None:
        return Skip.NOT_A_DEAD_LETTER
    if origin.topic != source:
        return Skip.OTHER_TOPIC
    if origin in seen:
        return Skip.COPY
    if origin not in rows and not filters.include_unrecorded:
        return Skip.NO_ROW
    if rows.get(origin) is not None:
        return Skip.REPLAYED
    if letter.value_dropped:
        return Skip.VALUE_DROPPED
    return None


def replayed(letter: Letter) -> Outgoing:
    """The record sent back to its source topic (the letter must have an origin)."""
    if letter.origin is None:
        raise ValueError(f"{letter.where}: not a dead letter, nothing to replay")
    headers = tuple(
        (name, value)
        for name, value in letter.record.headers
        if not name.startswith(DLQ_PREFIX)
        and name not in PRODUCER_HEADERS
        and name != REPLAYED_FROM
        and not (name.lower() == CONTENT_TYPE and not value.strip())
    )
    return Outgoing(
        topic=letter.origin.topic,
        key=letter.record.key,
        value=letter.record.value,
        headers=(*headers, (REPLAYED_FROM, letter.where.encode())),
    )


@dataclass
class Report:
    """What a run decided, and for a real run what became of each replay."""

    dlq_topic: str
    dry_run: bool
    decisions: list[Decision]
    left_out: int  # by --since / --error
    failed: dict[str, str] = field(default_factory=dict)  # letter.where -> why not replayed
    marked: int = 0  # dead_letter rows marked replayed

    def outcome(self, decision: Decision) -> str:
        if decision.skip is not None:
            return "skipped"
        if self.dry_run:
            return "would replay"
        return "failed" if decision.letter.where in self.failed else "replayed"

    @property
    def to_replay(self) -> list[Decision]:
        return [d for d in self.decisions if d.replays]

    @property
    def replayed(self) -> int:
        return 0 if self.dry_run else len(self.to_replay) - len(self.failed)

    def skipped(self) -> Counter[str]:
        return Counter(d.skip.name.lower() for d in self.decisions if d.skip is not None)

    def summary(self) -> str:
        verb = "would replay" if self.dry_run else "replayed"
        count = len(self.to_replay) if self.dry_run else self.replayed
        said = [f"{verb} {count} of {len(self.decisions) + self.left_out} dead letter(s)"]
        skipped = self.skipped()
        if skipped:
            said.append("skipped " + ", ".join(f"{n} {w}" for w, n in sorted(skipped.items())))
        if self.left_out:
            said.append(f"{self.left_out} left out by --since/--error")
        if self.failed:
            said.append(f"{len(self.failed)} not acknowledged by the broker")
        return "; ".join(said)

    def line(self, decision: Decision) -> dict[str, Any]:
        """One letter, for --json."""
        letter = decision.letter
        return {
            "record": letter.where,
            "origin": str(letter.origin) if letter.origin else None,
            "key": letter.key,
            "error": letter.error,
            "at": letter.at.isoformat() if letter.at else None,
            "outcome": self.outcome(decision),
            "why": decision.skip.value if decision.skip else self.failed.get(letter.where),
        }

    def as_json(self) -> dict[str, Any]:
        return {
            "summary": self.summary(),
            "topic": self.dlq_topic,
            "dry_run": self.dry_run,
            "considered": len(self.decisions),
            "replayed": self.replayed,
            "would_replay": len(self.to_replay) if self.dry_run else 0,
            "skipped": dict(self.skipped()),
            "left_out": self.left_out,
            "failed": len(self.failed),
            "marked": self.marked,
        }

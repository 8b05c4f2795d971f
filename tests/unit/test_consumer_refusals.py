"""A batch the database refuses for its data is taken record by record (no broker needed:
the consumer's taking step with a stand-in intake)."""

from __future__ import annotations

from collections.abc import Sequence

import orjson
import pytest
from sqlalchemy.exc import DBAPIError, OperationalError

from connectors.events.cloudevents import Envelope, Record, parse
from service.entrypoints.consumers import EventConsumer, refused_data
from service.intake.shell import Taken
from service.settings import KafkaSettings


class Refusal(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"sqlstate {sqlstate}")
        self.sqlstate = sqlstate


def envelope(event_id: str) -> Envelope:
    value = orjson.dumps(
        {"specversion": "1.0", "id": event_id, "source": "s", "type": "hr.user.joined", "data": {}}
    )
    return parse(Record("hr.events", 0, 0, None, value))


class Intake:
    """Refuses any batch holding an envelope whose id starts with 'bad'."""

    def __init__(self, error: type[DBAPIError] = DBAPIError, sqlstate: str = "22021") -> None:
        self.error = error
        self.sqlstate = sqlstate
        self.calls: list[list[str]] = []

    async def take(self, envelopes: Sequence[Envelope]) -> list[Taken]:
        self.calls.append([e.id for e in envelopes])
        if any(e.id.startswith("bad") for e in envelopes):
            raise self.error("INSERT INTO inbox", {}, Refusal(self.sqlstate))
        return [Taken("accepted", 1) for _ in envelopes]


def consumer(intake: Intake) -> EventConsumer:
    return EventConsumer(KafkaSettings(), intake, "127.0.0.1:9")  # type: ignore[arg-type]


async def test_refused_data_is_taken_one_by_one() -> None:
    intake = Intake()
    answers = await consumer(intake)._take([envelope("a"), envelope("bad-1"), envelope("c")])
    assert [a.outcome for a in answers] == ["accepted", "invalid", "accepted"]
    assert answers[1].error == "refused_by_database"
    assert intake.calls == [["a", "bad-1", "c"], ["a"], ["bad-1"], ["c"]]


async def test_a_failing_database_fails_the_batch() -> None:
    intake = Intake(OperationalError, sqlstate="08006")  # connection failure: try again later
    with pytest.raises(OperationalError):
        await consumer(intake)._take([envelope("a"), envelope("bad-1")])
    assert intake.calls == [["a", "bad-1"]]


@pytest.mark.parametrize(
    ("sqlstate", "refused"), [("22021", True), ("23505", True), ("08006", False), ("57014", False)]
)
def test_which_errors_are_the_datas_fault(sqlstate: str, refused: bool) -> None:
    assert refused_data(DBAPIError("x", {}, Refusal(sqlstate))) is refused

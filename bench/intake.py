"""The intake alone: mixed HR and CRM events taken into the outbox, no broker, no API.

N events of the end-to-end mix (bench/e2e_mix.py, after each tenant's onboarding) are
parsed as the consumer parses a Kafka record, then taken through `Intake.take` in
batches of `kafka.max_records` (500), one after the other, on a fresh database of each
kind asked for. Figures per database: events/s (parsing excluded: the time inside
`take`), SQL statements per batch (cursor executions: what costs round trips), and the
same batches taken again (every event a duplicate, as after a redelivery).

    .venv/bin/python bench/intake.py [--events 5000] [--database both|auto|sqlite|postgres]
                                     [--batch 500] [--profile FILE]

`--profile FILE` runs the first database's fresh pass under pyinstrument (install it in
the virtualenv: `.venv/bin/pip install pyinstrument`) and writes its text report there.
Prints progress, then one JSON line of figures last.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script: the project's root on sys.path, for `service` and `bench`.
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import argparse
import asyncio
import json
import os
import time
from collections.abc import Sequence
from itertools import count
from typing import Any

import orjson
import sqlalchemy as sa

from bench.e2e_mix import build
from bench.support import database, database_kind
from connectors.events.cloudevents import Envelope, Record, parse
from service.intake.licences import LicencePolicy
from service.intake.shell import Intake
from service.outbox import db
from service.outbox.unit_of_work import UnitOfWork
from service.settings import IntakeSettings, KafkaSettings

TOPICS = {"hr": KafkaSettings().hr_topic, "crm": KafkaSettings().crm_topic}


def envelopes(total: int) -> tuple[list[Envelope], list[Envelope], dict[str, int]]:
    """(onboarding, the mix) as the consumer would see them, and the mix's kinds."""
    mix = build(total)
    offsets = count()

    def envelope(event: Any) -> Envelope:
        body = orjson.dumps(event.body)
        key = str(event.body["subject"]).encode()
        return parse(Record(TOPICS[event.stream], 0, next(offsets), key, body))

    return [envelope(e) for e in mix.onboarding], [envelope(e) for e in mix.events], mix.kinds()


class Statements:
    """Counts the statements the engine sends (one per cursor execution)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.count = 0
        sa.event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, *args: Any) -> None:
        self.count += 1


async def run(
    kind: str, onboarding: list[Envelope], events: list[Envelope], batch: int, profile: str | None
) -> dict[str, Any]:
    with database(kind) as url:
        await asyncio.to_thread(db.upgrade, url)
        engine = db.make_engine(url, pool_size=2)
        statements = Statements(engine.sync_engine)
        intake = Intake(UnitOfWork(engine), LicencePolicy.load(None), IntakeSettings())
        try:
            await intake.take(onboarding)
            batches = [events[i : i + batch] for i in range(0, len(events), batch)]
            profiler = _profiler(profile)
            before = statements.count
            fresh_s = await _take_all(intake, batches)
            sent = statements.count - before
            if profiler is not None and profile:
                profiler.stop()
                report = profiler.output_text(unicode=True, show_all=False)
                await asyncio.to_thread(Path(profile).write_text, report)
                print(f"  profile written to {profile}", flush=True)
            outcomes = await _outcomes(engine)
            again_s = await _take_all(intake, batches)
        finally:
            await engine.dispose()
    figures = {
        "events": len(events),
        "batches": len(batches),
        "events_per_s": round(len(events) / fresh_s, 1),
        "seconds": round(fresh_s, 2),
        "statements_per_batch": round(sent / len(batches), 1),
        "redelivered_events_per_s": round(len(events) / again_s, 1),
        **outcomes,
    }
    print(f"  {kind}: {json.dumps(figures)}", flush=True)
    return figures


def _profiler(path: str | None) -> Any:
    if not path:
        return None
    from pyinstrument import Profiler  # noqa: PLC0415 (optional: only for --profile)

    profiler = Profiler(async_mode="enabled")
    profiler.start()
    return profiler


async def _take_all(intake: Intake, batches: Sequence[Sequence[Envelope]]) -> float:
    started = time.perf_counter()
    for records in batches:
        await intake.take(records)
    return time.perf_counter() - started


async def _outcomes(engine: Any) -> dict[str, int]:
    async with engine.connect() as conn:
        inbox = await conn.scalar(sa.text("SELECT count(*) FROM inbox"))
        outbox = await conn.scalar(sa.text("SELECT count(*) FROM outbox"))
        states = await conn.scalar(sa.text("SELECT count(*) FROM entity_state"))
    return {"inbox_rows": int(inbox), "commands": int(outbox), "entity_states": int(states)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument(
        "--database", choices=("both", "auto", "sqlite", "postgres"), default="both"
    )
    parser.add_argument("--batch", type=int, default=KafkaSettings().max_records)
    parser.add_argument("--profile", default=None, help="pyinstrument text report to FILE")
    args = parser.parse_args()
    kinds = ["postgres", "sqlite"] if args.database == "both" else [database_kind(args.database)]
    if args.database == "both" and database_kind("auto") == "sqlite":
        kinds = ["sqlite"]  # no PostgreSQL answers
    onboarding, events, mix = envelopes(args.events)
    print(f"{len(events)} events in batches of {args.batch}: {mix}", flush=True)
    figures: dict[str, Any] = {"load_average_at_start": os.getloadavg()[0]}
    for n, kind in enumerate(kinds):
        profile = args.profile if n == 0 else None
        figures[kind] = asyncio.run(run(kind, onboarding, events, args.batch, profile))
    print(json.dumps(figures))


if __name__ == "__main__":
    main()

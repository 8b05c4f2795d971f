"""Write the join links ucaas-sync publishes back into an iCalendar file, the way a
calendar add-on puts the video link into the invitation.

    python docs/examples/results_to_calendar.py --bootstrap 127.0.0.1:9092 \
        --topic ucaas.results --ics team.ics [--idle-s 5]

It reads the results topic from the start (no consumer group: a sketch, not a service),
keeps `ucaas.meeting.scheduled` and `ucaas.meeting.updated` of the feed's UIDs, dedupes
on the CloudEvent id (delivery is at least once), and sets LOCATION and an RFC 7986
CONFERENCE property on the matching VEVENT: the event itself for a single event, the
occurrence's override for an occurrence of a series (made from the series when the
file has none). A real connector would PATCH the event through Google's or Microsoft
Graph's API instead of rewriting a file; the matching (UID, RECURRENCE-ID) is the same.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from aiokafka import AIOKafkaConsumer
from icalendar import Calendar, Event

WANTED = ("ucaas.meeting.scheduled", "ucaas.meeting.updated")


def join_links(results: Iterable[dict[str, Any]]) -> dict[tuple[str, str | None], str]:
    """(UID, RECURRENCE-ID in UTC or None) -> the latest join link, each result once."""
    seen: set[str] = set()
    links: dict[tuple[str, str | None], str] = {}
    for event in results:
        data = event.get("data") or {}
        if event.get("id") in seen or event.get("type") not in WANTED:
            continue
        seen.add(str(event["id"]))
        if data.get("uid") and data.get("join_url"):
            links[(data["uid"], data.get("recurrence_id"))] = data["join_url"]
    return links


def _set_link(event: Event, url: str) -> None:
    for name in ("LOCATION", "CONFERENCE"):
        event.pop(name, None)
    event.add("location", url)
    event.add("conference", url, parameters={"VALUE": "URI", "FEATURE": "VIDEO"})


def with_join_links(ics: bytes, links: dict[tuple[str, str | None], str]) -> tuple[bytes, int]:
    """The calendar with the links written in, and how many events got one."""
    calendar = Calendar.from_ical(ics)
    events = list(calendar.walk("VEVENT"))
    zone = ZoneInfo(str(calendar.get("X-WR-TIMEZONE", "") or "UTC"))  # of floating times
    written = 0
    for (uid, recurrence_id), url in links.items():
        mine = [e for e in events if str(e.get("UID")) == uid]
        if not mine:
            continue
        if recurrence_id is None:
            target = next((e for e in mine if e.get("RECURRENCE-ID") is None), None)
        else:
            wanted = recurrence_id.replace("-", "").replace(":", "")
            target = next(
                (e for e in mine if e.get("RECURRENCE-ID") and _stamp(e, zone) == wanted), None
            )
            master = next((e for e in mine if e.get("RECURRENCE-ID") is None), None)
            if target is None and master is not None:
                target = _override(master, recurrence_id, zone)
                calendar.add_component(target)
        if target is not None:
            _set_link(target, url)
            written += 1
    return calendar.to_ical(), written


def _stamp(event: Event, floating: ZoneInfo) -> str:
    value = event.decoded("RECURRENCE-ID")
    if value.tzinfo is None:
        value = value.replace(tzinfo=floating)
    return value.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _override(master: Event, recurrence_id: str, floating: ZoneInfo) -> Event:
    """An occurrence of the series as an event of its own (RFC 5545 3.8.4.4), its
    RECURRENCE-ID in the form of the series' DTSTART: the same zone, or floating."""
    instant = datetime.fromisoformat(recurrence_id.replace("Z", "+00:00"))
    first = master.decoded("DTSTART")
    if first.tzinfo is None:  # floating: the calendar's zone, written without one
        start = instant.astimezone(floating).replace(tzinfo=None)
    else:
        start = instant.astimezone(first.tzinfo)
    duration = master.decoded("DTEND") - first if "DTEND" in master else None
    occurrence = Event()
    for name, value in master.property_items(recursive=False):
        if name not in ("BEGIN", "END", "RRULE", "RDATE", "EXDATE", "DTSTART", "DTEND"):
            occurrence.add(name, value)
    occurrence.add("recurrence-id", start)
    occurrence.add("dtstart", start)
    if duration is not None:
        occurrence.add("dtend", start + duration)
    return occurrence


async def read_results(bootstrap: str, topic: str, idle_s: float) -> list[dict[str, Any]]:

    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    found: list[dict[str, Any]] = []
    try:
        while batch := await consumer.getmany(timeout_ms=int(idle_s * 1000)):
            found += [json.loads(r.value) for rs in batch.values() for r in rs if r.value]
    finally:
        await consumer.stop()
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", default="ucaas.results")
    parser.add_argument("--ics", type=Path, required=True)
    parser.add_argument("--idle-s", type=float, default=5.0)
    args = parser.parse_args()
    results = asyncio.run(read_results(args.bootstrap, args.topic, args.idle_s))
    patched, written = with_join_links(args.ics.read_bytes(), join_links(results))
    args.ics.write_bytes(patched)
    print(f"{len(results)} results read, {written} events given their join link")


if __name__ == "__main__":
    main()

"""Many small calendar feeds polled by one process: what thousands of calendars cost.

`--feeds` feeds (2,000) of `--events` VEVENTs each (50, shaped as bench/calendar_feeds.py
shapes them: single events of two years past and the next three months, weekly and daily
series, overrides, attendees, zones by IANA and Windows name), served over loopback HTTP
by a server in a process of its own, and polled by the service's own FeedPoller,
FeedFetcher and registry, on a fresh database, in this process:

1. the first poll of every feed: fetched, parsed, expanded, diffed, meetings queued;
2. the measured poll, every feed due again, a mix as an enterprise's calendars give it:
   `--not-modified` of them answer 304 (the host sends validators), `--unchanged` answer
   200 with the same bytes and no validators (the body's hash is compared), the rest
   changed (a few events moved, retitled, removed, added), half with validators.

Figures of each poll: feeds per second, CPU per feed (ms) of this process (the poller,
its parse threads and the database driver; PostgreSQL's own processes are not counted,
the calendar server runs in another process), and the outcomes the poller counted.

    .venv/bin/python bench/feeds_many.py [--feeds 2000] [--events 50] [--concurrency 4]
                                         [--database auto|sqlite|postgres]

Prints one JSON line of figures last.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script: the project's root on sys.path, for `service` and `bench`.
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import argparse
import asyncio
import hashlib
import json
import multiprocessing
import platform
import random
import time
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing.sharedctypes import Synchronized
from typing import Any

from bench.calendar_feeds import Event, body_of, generate
from bench.support import database, database_kind
from service.app import gc_thresholds
from service.calendar.poller import FeedPoller
from service.calendar.registry import FeedRegistry
from service.domain.feeds import Feed
from service.outbox import db
from service.outbox.tables import FEEDS
from service.outbox.unit_of_work import UnitOfWork
from service.settings import CalendarSettings

ORGANIZER = "organiser@acme.example"  # bench/calendar_feeds.py's events' organiser


# -- the calendar host (its own process) ------------------------------------------------------
def kind_of(n: int, not_modified: float, unchanged: float) -> str:
    """What feed n does in the measured poll: "not_modified", "unchanged" or "changed"."""
    share = (n * 0.6180339887) % 1.0  # spread evenly over the feeds, not in blocks
    if share < not_modified:
        return "not_modified"
    return "unchanged" if share < not_modified + unchanged else "changed"


def bodies(n: int, events: int, today: date) -> tuple[bytes, bytes]:
    """Feed n's first and second version (a series retitled, a meeting added in three
    days); its UIDs its own (one feed, one owner)."""
    first = generate(events, today, seed=n)
    second = [Event(**vars(e)) for e in first]
    series = [e for e in second if e.rrule]
    if series:
        random.Random(n).choice(series).summary += " (updated)"
    start = datetime.combine(today + timedelta(days=3), clock(10), tzinfo=UTC)
    second.append(Event(f"new-{n}@bench", start, None, 30, "New meeting"))
    own = f"@feed{n}".encode()
    return body_of(first).replace(b"@bench", own), body_of(second).replace(b"@bench", own)


def serve(args: argparse.Namespace, today: date, port: Any, version: Synchronized[int]) -> None:
    """Serve /feed/N.ics: version 1, or version 2 for the changed feeds once `version` is
    2; with a strong ETag and 304s unless the feed is one of those without validators."""
    versions = [bodies(n, args.events, today) for n in range(args.feeds)]
    kinds = [kind_of(n, args.not_modified, args.unchanged) for n in range(args.feeds)]
    # Of the changed feeds, every other one has validators; the unchanged ones have none.
    validators = [
        k == "not_modified" or (k == "changed" and n % 2 == 0) for n, k in enumerate(kinds)
    ]

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: the fetcher's pool reuses connections

        def do_GET(self) -> None:
            n = int(self.path.removeprefix("/feed/").removesuffix(".ics"))
            second = version.value == 2 and kinds[n] == "changed"
            body = versions[n][1 if second else 0]
            etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
            if validators[n] and self.headers.get("If-None-Match") == etag:
                self.send_response(304)
                self.send_header("ETag", etag)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/calendar; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            if validators[n]:
                self.send_header("ETag", etag)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port.value = server.server_address[1]
    server.serve_forever()


# -- the poller (this process) ----------------------------------------------------------------
async def poll_round(poller: FeedPoller, feeds: int) -> dict[str, Any]:
    """Every feed polled once: the round's figures."""
    before = dict(poller.stats.fetches)
    parses = poller.stats.parses
    commands = poller.stats.commands
    target = sum(before.values()) + feeds
    cpu, began = time.process_time(), time.perf_counter()
    # The service's own loop (`ucaas-sync run`): a feed claimed as soon as a slot is free.
    running = asyncio.create_task(poller.run())
    while sum(poller.stats.fetches.values()) < target and not running.done():  # noqa: ASYNC110 - no event to wait on: the poller only counts
        await asyncio.sleep(0.05)
    await poller.stop()
    await running
    wall, used = time.perf_counter() - began, time.process_time() - cpu
    outcomes = {k: v - before.get(k, 0) for k, v in poller.stats.fetches.items()}
    return {
        "feeds": feeds,
        "wall_s": round(wall, 2),
        "feeds_per_s": round(feeds / wall, 1),
        "cpu_ms_per_feed": round(used * 1000 / feeds, 2),
        "cores": round(used / wall, 2),
        "outcomes": {k: v for k, v in sorted(outcomes.items()) if v},
        "parses": poller.stats.parses - parses,
        "commands": poller.stats.commands - commands,
    }


async def run(args: argparse.Namespace, url: str, port: int) -> dict[str, Any]:
    await asyncio.to_thread(db.upgrade, url)
    engine = db.make_engine(url)
    settings = CalendarSettings(
        interval_s=300.0, jitter=0.0, concurrency=args.concurrency, allow_private_addresses=True
    )
    poller = FeedPoller(FeedRegistry(engine), settings, uow=UnitOfWork(engine))
    feeds = [
        Feed(
            feed_id=f"feed-{n}",
            url=f"http://127.0.0.1:{port}/feed/{n}.ics",
            organizer_email=ORGANIZER,
            tenant=f"T{n % 20}",
        )
        for n in range(args.feeds)
    ]
    try:
        await poller.registry.register_all(feeds, source="bench")
        first = await poll_round(poller, args.feeds)
        print(f"first poll: {first}", flush=True)
        args.version.value = 2
        async with engine.begin() as conn:  # every feed due again now
            await conn.execute(FEEDS.update().values(next_fetch_at=datetime.now(UTC)))
        mixed = await poll_round(poller, args.feeds)
        print(f"measured poll: {mixed}", flush=True)
    finally:
        await poller.aclose()
        await engine.dispose()
    return {"first": first, "mixed": mixed}


def main(args: argparse.Namespace) -> dict[str, Any]:
    today = datetime.now(UTC).date()
    kind = database_kind(args.database)
    context = multiprocessing.get_context("fork")
    port = context.Value("i", 0)
    args.version = context.Value("i", 1)
    server = context.Process(target=serve, args=(args, today, port, args.version), daemon=True)
    server.start()
    try:
        while not port.value:  # the bodies are made before the server listens
            time.sleep(0.1)
        with database(kind) as url:
            gc_thresholds.tune()  # the poller runs here as in `ucaas-sync run`
            figures = asyncio.run(run(args, url, port.value))
    finally:
        server.terminate()
    kinds = [kind_of(n, args.not_modified, args.unchanged) for n in range(args.feeds)]
    mix = {k: kinds.count(k) for k in ("not_modified", "unchanged", "changed")}
    sample = bodies(0, args.events, today)[0]
    return {
        "bench": "feeds_many",
        "python": platform.python_version(),
        "database": kind,
        "feeds": args.feeds,
        "events_per_feed": args.events,
        "feed_kb": round(len(sample) / 1024, 1),
        "concurrency": args.concurrency,
        "mix": mix,
        "first_poll": figures["first"],
        "measured_poll": figures["mixed"],
        "feeds_per_s": figures["mixed"]["feeds_per_s"],
        "cpu_ms_per_feed": figures["mixed"]["cpu_ms_per_feed"],
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=2000)
    parser.add_argument("--events", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=4, help="feeds at once (the default)")
    parser.add_argument("--not-modified", type=float, default=0.4, help="share answering 304")
    parser.add_argument("--unchanged", type=float, default=0.4, help="share: same bytes, no ETag")
    parser.add_argument("--database", choices=("auto", "sqlite", "postgres"), default="auto")
    print(json.dumps(main(parser.parse_args())))

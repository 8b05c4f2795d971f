"""The demo's asynchronous part: the service running in this process (consumers,
dispatcher, feed poller and, when it is built, the admin API), the scenario published to
Kafka, the wait until everything is applied, and the summary.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from rich.console import Console

from connectors.ucaas import Credentials, UCaaSClient
from service.app.bootstrap import bootstrap
from service.app.runner import Parts, Running, serve
from service.devtools.demo import results, summary
from service.devtools.demo.feed import FeedServer, vcalendar
from service.devtools.demo.progress import Board, Snapshot, snapshot
from service.devtools.demo.scenario import Event, Scenario, Stream
from service.devtools.local_broker import structured
from service.settings import Settings

SETTLE_TIMEOUT_S = 120.0
TICK_S = 0.25


def admin_built() -> bool:
    """The admin API is an optional part of this tree until its module lands."""
    return importlib.util.find_spec("service.entrypoints.admin") is not None


@dataclass
class Demo:
    settings: Settings
    scenario: Scenario
    feed: FeedServer
    console: Console
    folder: Path
    sandbox_root: str
    serve_after: bool
    admin: bool
    started: float  # time.monotonic() when the demo began


class Publisher:
    """CloudEvents in structured mode, keyed by subject. Not idempotent: Tansu takes no
    other producer."""

    def __init__(self, settings: Settings) -> None:
        kafka = settings.kafka
        self.topics: dict[Stream, str] = {
            "hr": kafka.hr_topic,
            "crm": kafka.crm_topic,
            "calendar": kafka.calendar_topic,
        }
        self.producer = AIOKafkaProducer(
            **kafka.connection(kafka.bootstrap_servers or "").client_kwargs(),
            enable_idempotence=False,
            acks=1,
        )

    async def send(self, event: Event) -> None:
        value, headers = structured(event.body)
        await self.producer.send_and_wait(
            self.topics[event.stream],
            value,
            key=str(event.body["subject"]).encode(),
            headers=headers,
        )


class Watch:
    """Polls the database, keeps the board current, and waits for conditions until one
    shared deadline."""

    def __init__(self, demo: Demo, running: Running, board: Board) -> None:
        self.demo = demo
        self.running = running
        self.board = board
        self.deadline = time.monotonic() + SETTLE_TIMEOUT_S
        self.published = 0
        self.last: Snapshot | None = None

    async def tick(self) -> Snapshot:
        engine = self.running.service.engine
        self.last = await snapshot(engine, self.demo.scenario.feed_id)
        self.board.show(self.last, joined=self.running.consumer_started.is_set())
        return self.last

    async def until(self, done: Callable[[Snapshot], bool]) -> bool:
        while True:
            snap = await self.tick()
            if done(snap):
                return True
            if time.monotonic() > self.deadline:
                return False
            await asyncio.sleep(TICK_S)

    def settled(self, snap: Snapshot) -> bool:
        """Every event taken (or dead-lettered) and no command left to run."""
        return snap.taken + snap.dead_letters >= self.published and snap.open == 0

    def applied(self, version: int) -> Callable[[Snapshot], bool]:
        """The feed's `version` was fetched and a later poll is recorded: the poll that
        took it has queued its changes (one poll of a feed at a time)."""

        def check(snap: Snapshot) -> bool:
            served = self.demo.feed.first_served(version)
            fetched = snap.feed_fetched_at
            return (
                served is not None
                and fetched is not None
                and fetched >= served
                and snap.feed_status in ("ok", "unchanged")
                and self.settled(snap)
            )

        return check

    def stalled(self) -> str:
        snap = self.last
        if snap is None:
            return "nothing was read from the database"
        return (
            f"{self.published - snap.taken - snap.dead_letters} event(s) not taken, "
            f"{snap.open} command(s) open ({snap.commands.get('waiting', 0)} waiting), "
            f"calendar feed: {snap.feed_status or 'not fetched'}"
        )


async def drive(demo: Demo, running: Running) -> int:
    """Publish, wait, summarise: 0 when UCaaS has what the events asked for."""
    scenario, console, feed = demo.scenario, demo.console, demo.feed
    organiser = scenario.organiser.email
    calendar_name = f"{scenario.organiser.given} {scenario.organiser.family}"
    feed.publish(vcalendar(scenario.calendar[0], organiser, calendar_name))
    publisher = Publisher(demo.settings)
    meeting_ids: list[str] = []
    with Board(console, len(scenario.events)) as board:
        watch = Watch(demo, running, board)
        await publisher.producer.start()
        try:
            for phase in scenario.phases:
                board.say(f"[bold cyan]→[/] {phase.title}")
                for event in phase.events:
                    await publisher.send(event)
                    watch.published += 1
                    board.publish(watch.published)
                for note in phase.notes:
                    board.say(f"  [dim]{note}[/]")
                await watch.tick()
        finally:
            await publisher.producer.stop()
        ok = await watch.until(watch.applied(1))
        if ok:
            tenant = scenario.organiser.tenant
            store = running.service.store
            meeting_ids = [m.ucaas_id for m in await store.mappings_of("meeting", tenant)]
            board.feed_version(1, f"{len(meeting_ids)} meetings scheduled from version 1")
            feed.publish(vcalendar(scenario.calendar[-1], organiser, calendar_name))
            board.say("[bold cyan]→[/] Calendar: the quarterly review is cancelled in the feed")
            ok = await watch.until(watch.applied(2))
            if ok:
                board.feed_version(2, "version 2 applied")
    if not ok:
        console.print(
            f"[red]Gave up waiting after {SETTLE_TIMEOUT_S:.0f} s:[/] {watch.stalled()}. "
            f"The service's log: {demo.folder / 'demo.log'}"
        )
    async with client(demo.settings) as api:
        rows = summary.compare(summary.asked(scenario), await summary.found(api, meeting_ids))
    if demo.settings.results.enabled:
        kafka = demo.settings.kafka
        rows.append(
            await results.results_row(
                running.service.engine,
                kafka.connection(kafka.bootstrap_servers or ""),
                demo.settings.results.topics(),
            )
        )
    console.print(summary.table(rows))
    last = watch.last
    if last is not None:
        console.print(
            f"{watch.published} events published, {last.taken} taken, "
            f"{last.dead_letters} dead-lettered; {last.total} commands "
            f"({last.commands.get('done', 0)} done, {last.stuck} dead or held); "
            f"{last.calls} UCaaS calls"
        )
    matched = sum(r.ok for r in rows)
    good = ok and matched == len(rows)
    verdict = "[green]UCaaS has what the events asked for[/]" if good else "[red]mismatch[/]"
    took = time.monotonic() - demo.started
    console.print(f"{matched} of {len(rows)} checks match: {verdict} ({took:.0f} s)")
    return 0 if good else 1


def client(settings: Settings) -> UCaaSClient:
    return UCaaSClient(
        settings.ucaas_base_url,
        api_id=settings.ucaas_api_id,
        credentials=Credentials.of(settings.ucaas_admin_email, settings.ucaas_admin_password),
    )


def where_to_look(demo: Demo, running: Running) -> None:
    console = demo.console
    console.rule("Where to look")
    admin = running.admin_url
    if admin is not None:
        console.print(f"status page   {admin}/")
        console.print(f"admin API     {admin}")
        console.print(f"metrics       {admin}/metrics")
    console.print(
        f"UCaaS sandbox {demo.sandbox_root}/_sandbox/state "
        "(curl -u admin@sandbox.test:sandbox-admin)"
    )
    console.print(f"database      {(demo.folder / 'demo.db').resolve()}")
    console.print(f"service log   {(demo.folder / 'demo.log').resolve()}")
    kafka = demo.settings.kafka
    console.print(
        f"Kafka         {kafka.bootstrap_servers}: {kafka.hr_topic}, {kafka.crm_topic}, "
        f"{kafka.calendar_topic}; results on {', '.join(demo.settings.results.topics())}"
    )
    console.print(f"calendar feed {demo.feed.url}")


async def start(
    demo: Demo, stop: asyncio.Event, *, admin: bool
) -> tuple[asyncio.Task[None], Running]:
    """The service's parts, running; an error raised before they are ready is raised."""
    service = await bootstrap(demo.settings)
    ready: asyncio.Future[Running] = asyncio.get_running_loop().create_future()
    serving = asyncio.create_task(
        serve(service, Parts(admin=admin), stop, on_ready=ready.set_result)
    )
    started: list[asyncio.Future[Any]] = [ready, serving]
    await asyncio.wait(started, return_when=asyncio.FIRST_COMPLETED)
    if not ready.done():
        await serving  # it ended before it was ready: raises what stopped it
        raise RuntimeError("the service stopped before it was ready")
    return serving, ready.result()


async def run(demo: Demo) -> int:
    """The service until the scenario is applied (or, with --serve, until a signal)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        serving, running = await start(demo, stop, admin=demo.admin)
    except Exception as exc:
        if not demo.admin:
            raise
        # The admin API is optional: the demo's job does not depend on it.
        demo.console.print(
            f"[yellow]admin API not started ({type(exc).__name__}: {exc}); going on without it[/]"
        )
        serving, running = await start(demo, stop, admin=False)
    driving = asyncio.create_task(drive(demo, running))
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait([driving, stopping], return_when=asyncio.FIRST_COMPLETED)
        if not driving.done():
            driving.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await driving
            demo.console.print("[yellow]interrupted[/]")
            code = 130
        else:
            code = driving.result()
            where_to_look(demo, running)
            if demo.serve_after and not stop.is_set():
                demo.console.print(
                    "[bold]--serve:[/] the service, the broker, the sandbox and the feed keep "
                    "running; Ctrl-C stops them."
                )
                await stop.wait()
    finally:
        stopping.cancel()
        stop.set()
        await serving
    return code

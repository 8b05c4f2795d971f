"""Run the service's parts in one process until told to stop.

The parts (consumers, dispatcher, feed poller, results relay, admin API) can each be
switched off so
they scale apart. A broker that does not answer does not stop the others: the consumers
keep trying to connect with a growing pause, commands already accepted still go out,
and `/readyz` says what is missing. A broker that answers but refuses the TLS or SASL
settings (a certificate not trusted, a wrong password, a port speaking another
protocol) stops the service with one line (KafkaSettingsError): trying again would not
help, and a restart loop says more than a log repeating itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

import sqlalchemy as sa

from connectors.events.kafka_failures import KafkaSettingsError, KafkaUnreachableError
from connectors.events.kafka_security import probe
from service.app.bootstrap import Service
from service.backoff import backoff_s
from service.entrypoints.admin_host import refuse_open_admin
from service.entrypoints.consumers import EventConsumer
from service.outbox import statistics
from service.results.relay import ResultRelay
from service.settings import Settings
from service.views import Operations

if TYPE_CHECKING:
    from service.entrypoints.admin import AdminServer

log = logging.getLogger("ucaas_sync")

CONNECT_PAUSE_S = 1.0
CONNECT_PAUSE_CAP_S = 30.0


@dataclass(frozen=True)
class Parts:
    consumers: bool = True
    dispatcher: bool = True
    poller: bool = True
    admin: bool = True
    relay: bool = True  # when results are enabled

    def named(self) -> str:
        names = ("consumers", "dispatcher", "poller", "relay", "admin")
        on = [name for name in names if getattr(self, name)]
        return ", ".join(on) or "nothing"


@dataclass
class Running:
    """What is running, for the admin API (a `RunningService`), the demo and the tests."""

    service: Service
    parts: Parts
    consumer: EventConsumer | None = None
    consumer_started: asyncio.Event = field(default_factory=asyncio.Event)
    admin: AdminServer | None = None
    relay: ResultRelay | None = None

    @property
    def admin_url(self) -> str | None:
        return self.admin.url if self.admin is not None else None

    # -- what the admin API asks of it (service.entrypoints.admin_host.RunningService) -------
    @property
    def settings(self) -> Settings:
        return self.service.settings

    @cached_property
    def operations(self) -> Operations:
        return Operations(self.service.engine, self.service.store, self.service.settings)

    @property
    def parts_here(self) -> Mapping[str, bool]:
        return asdict(self.parts)

    @property
    def consumers_joined(self) -> bool:
        return self.consumer_started.is_set()

    async def check_database(self) -> None:
        async with self.service.engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))

    async def check_ucaas(self) -> None:
        await self.service.ucaas.datapool.timezones()  # authenticated, small, changes nothing

    def wake_dispatcher(self) -> None:
        if self.parts.dispatcher:
            self.service.dispatcher.wake()


async def _connect(consumer: EventConsumer, started: asyncio.Event) -> None:
    """Join the group; KafkaSettingsError (raised) when the broker refuses the settings."""
    for attempt in itertools.count(1):
        try:
            # one bounded connection first: aiokafka's own start hangs on a TLS handshake
            # to a plaintext port and words every refusal "Unable to bootstrap"
            await probe(consumer.connection)
            await consumer.start()
        except KafkaSettingsError:
            raise
        except Exception as exc:  # unreachable, or failing for its own reasons: retried
            pause = backoff_s(
                attempt, base_s=CONNECT_PAUSE_S, cap_s=CONNECT_PAUSE_CAP_S, jitter="none"
            )
            reason = (
                str(exc)
                if isinstance(exc, KafkaUnreachableError)
                else f"{type(exc).__name__}: {exc}"
            )
            log.error("%s; consumers retry in %.0f s", reason, pause)
            with contextlib.suppress(Exception):
                await consumer.stop()
            await asyncio.sleep(pause)
            continue
        started.set()
        log.info("consumers joined group %s", consumer.settings.group_id)
        return


async def serve(
    service: Service,
    parts: Parts,
    stop: asyncio.Event,
    *,
    on_ready: Callable[[Running], Awaitable[None] | None] | None = None,
) -> None:
    """Run `parts` of `service` until `stop` is set or a part fails; then stop in order:
    intake first (no new commands), then the poller, then the dispatcher drains. A part
    that failed is re-raised once everything has stopped."""
    running = Running(service, parts)
    failure: BaseException | None = None
    tasks: list[asyncio.Task[None]] = []
    connecting: asyncio.Task[None] | None = None
    keeper: asyncio.Task[None] | None = None
    try:
        if parts.admin:
            refuse_open_admin(service.settings.admin)
            from service.entrypoints.admin import AdminServer  # noqa: PLC0415 - optional part

            running.admin = AdminServer(running)
            await running.admin.start()
        # The dispatcher first: commands already accepted go out even while Kafka is away.
        if parts.dispatcher:
            tasks.append(asyncio.create_task(service.dispatcher.run(), name="dispatcher"))
        if parts.consumers:
            running.consumer = service.consumer()
            connecting = asyncio.create_task(
                _connect(running.consumer, running.consumer_started), name="connect"
            )
        if parts.poller:
            tasks.append(asyncio.create_task(service.poller.run(), name="poller"))
        if not service.settings.is_sqlite and (parts.dispatcher or parts.consumers):
            # not a part: it may end early (nothing it may analyse) and nothing stops then
            keeper = asyncio.create_task(statistics.keep_fresh(service.engine), name="statistics")
        if parts.relay and service.settings.results.enabled:
            running.relay = service.relay()
            tasks.append(asyncio.create_task(running.relay.run(), name="relay"))
        log.info(
            "ucaas-sync started: %s (%s, %d workers), database %s, admin %s",
            parts.named(),
            service.dispatcher.owner,
            service.settings.dispatch.workers,
            service.engine.url.render_as_string(hide_password=True),
            running.admin_url or "off",
        )
        if on_ready is not None:
            ready = on_ready(running)
            if ready is not None:
                await ready
        waiter = asyncio.create_task(stop.wait())
        watched = {waiter, *tasks, *([connecting] if connecting is not None else [])}
        while True:
            done, watched = await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
            if done == {connecting} and connecting is not None and not connecting.exception():
                continue  # joined the group: the rest runs on
            break
        waiter.cancel()
        for task in done - {waiter}:
            failure = failure or task.exception()
            if task.exception() is not None:
                log.error("%s stopped: %r", task.get_name(), task.exception())
    finally:
        if keeper is not None:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
        await _shut_down(running, tasks, connecting)
    if failure is not None:
        raise failure


async def _shut_down(
    running: Running, tasks: list[asyncio.Task[None]], connecting: asyncio.Task[None] | None
) -> None:
    service = running.service
    try:
        if connecting is not None:
            connecting.cancel()
            # its KafkaSettingsError, if any, is the failure serve() raises
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await connecting
        if running.consumer is not None:
            with contextlib.suppress(Exception):
                await running.consumer.stop()  # first: no new commands while the rest drains
        if running.parts.poller:
            await service.poller.stop()
        if running.parts.dispatcher:
            await service.dispatcher.stop()
        if running.relay is not None:
            await running.relay.stop()  # after the dispatcher: its last results go out too
        for task in tasks:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await task
    finally:
        try:
            if running.admin is not None:
                await running.admin.stop()
        finally:
            await service.aclose()

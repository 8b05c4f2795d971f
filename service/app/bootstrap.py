"""The one place that wires concrete parts: database, UCaaS client, outbox, dispatcher,
and the results (written with the outcomes, relayed to Kafka).

Nothing connects at import; `bootstrap()` does it, and `Service.aclose()` undoes it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from connectors.events.publisher import KafkaPublisher
from connectors.ucaas import CallRecord, Credentials, UCaaSClient
from service.calendar.poller import FeedPoller
from service.calendar.registry import FeedRegistry
from service.entrypoints.consumers import EventConsumer
from service.executors import REGISTRY, Executors
from service.executors.base import Accounts
from service.intake.licences import LicencePolicy
from service.intake.shell import Intake
from service.outbox import db
from service.outbox.claims import planned_engine
from service.outbox.dispatcher import CLAIMS_AT_ONCE, Dispatcher, record_call
from service.outbox.store import OutboxStore
from service.outbox.tenant_rates import TenantRates
from service.outbox.unit_of_work import UnitOfWork
from service.outbox.vault import vault_for
from service.results.model import ResultPolicy
from service.results.recorder import ResultRecorder
from service.results.relay import ResultRelay
from service.settings import Settings

log = logging.getLogger("ucaas_sync")

# Test seam for crash recovery: after this many successful UCaaS writes the process kills
# itself with SIGKILL, between the call and the commit of its outcome. A login (POST
# /login) changes nothing in UCaaS: it is not a write.
CRASH_AFTER_CALLS = "UCAAS_SYNC_CRASH_AFTER_CALLS"
DEFAULT_KAFKA = "127.0.0.1:9092"
NOT_WRITES = frozenset({("POST", "/login")})


@dataclass
class Service:
    settings: Settings
    engine: AsyncEngine
    store: OutboxStore
    uow: UnitOfWork
    ucaas: UCaaSClient
    accounts: Accounts
    dispatcher: Dispatcher
    intake: Intake
    poller: FeedPoller
    claims_engine: AsyncEngine | None = None  # PostgreSQL: the claims' own connections

    def consumer(self, bootstrap: str | None = None) -> EventConsumer:
        """The Kafka consumers for the configured broker (or `bootstrap`)."""
        kafka = self.settings.kafka
        return EventConsumer(
            kafka,
            self.intake,
            kafka.connection(bootstrap or kafka.bootstrap_servers or DEFAULT_KAFKA),
        )

    def relay(self, bootstrap: str | None = None) -> ResultRelay:
        """The results relay to the configured broker (or `bootstrap`)."""
        kafka = self.settings.kafka
        connection = kafka.connection(bootstrap or kafka.bootstrap_servers or DEFAULT_KAFKA)
        publisher = KafkaPublisher(connection, timeout_s=self.settings.results.publish_timeout_s)
        return ResultRelay(self.engine, publisher, self.settings.results)

    async def aclose(self) -> None:
        await self.poller.aclose()
        await self.ucaas.aclose()
        await self.engine.dispose()
        if self.claims_engine is not None:
            await self.claims_engine.dispose()


def call_hook() -> Callable[[CallRecord], None]:
    crash_after = int(os.environ.get(CRASH_AFTER_CALLS, "0") or 0)
    if crash_after <= 0:
        return record_call
    writes = 0

    def hook(record: CallRecord) -> None:
        nonlocal writes
        record_call(record)
        if (
            record.method != "GET"
            and (record.method, record.route) not in NOT_WRITES
            and record.status is not None
            and record.status < 400
        ):
            writes += 1
            if writes >= crash_after:
                os.kill(os.getpid(), signal.SIGKILL)

    return hook


async def bootstrap(settings: Settings | None = None, *, migrate: bool | None = None) -> Service:
    settings = settings or Settings()
    if migrate if migrate is not None else settings.is_sqlite:
        await asyncio.to_thread(db.upgrade, settings.database_url)
    engine = db.make_engine(settings.database_url, pool_size=settings.dispatch.workers + 4)
    if not settings.is_sqlite:
        try:
            await db.check_connection(engine)  # a TLS misconfiguration: one line, at start
        except BaseException:
            await engine.dispose()
            raise
    vault = vault_for(settings)
    results = settings.results
    recorder = (
        ResultRecorder(
            ResultPolicy(results.source, results.topic, results.per_domain, results.include_pins)
        )
        if results.enabled
        else None
    )
    # The claims' own connections start with the claim's plan: a claim is then its
    # statements alone, without a transaction to set the plan in (claims.py).
    claims_engine = (
        None if settings.is_sqlite else planned_engine(settings.database_url, CLAIMS_AT_ONCE)
    )
    store = OutboxStore(
        engine,
        vault,
        results=recorder,
        rates=TenantRates(settings.dispatch),
        claims_engine=claims_engine,
    )
    ucaas = UCaaSClient(
        settings.ucaas_base_url,
        api_id=settings.ucaas_api_id,
        credentials=Credentials(settings.ucaas_admin_email, settings.ucaas_admin_password),
        auth_mode=settings.ucaas_auth,
        token_lifetime_s=settings.ucaas_token_lifetime_s,
        timeout=settings.ucaas_timeout_s,
        max_connections=settings.ucaas_max_connections,
        on_call=call_hook(),
    )
    configured = {
        tenant: Credentials(login.username, login.password)
        for tenant, login in settings.tenant_logins.items()
    }
    accounts = Accounts(
        ucaas,
        store,
        admin_acts_for_tenants=settings.admin_acts_for_tenants,
        configured=configured,
    )
    dispatcher = Dispatcher(store, Executors(accounts, REGISTRY), settings.dispatch)
    uow = UnitOfWork(engine, on_commit=dispatcher.wake, results=recorder)
    policy = LicencePolicy.load(settings.intake.licence_policy)
    intake = Intake(uow, policy, settings.intake, vault=vault)
    poller = FeedPoller(FeedRegistry(engine, vault), settings.calendar, uow=uow)
    return Service(
        settings, engine, store, uow, ucaas, accounts, dispatcher, intake, poller, claims_engine
    )

"""The transactional outbox and its companions (SQLModel tables).

- inbox:        one row per accepted event id; a duplicate id is acknowledged and ignored
- outbox:       one row per command, with its status, attempts, lease and last error
- id_mapping:   external id -> UCaaS id per kind and tenant, with the state last pushed
- call_log:     one row per UCaaS call: each entity's provisioning history
- tenant_credential: per-tenant UCaaS logins, the password encrypted at rest
- dead_letter:  one row per record sent to a dead-letter topic, with its error and reason
- audit_log:    one row per operator action: who (the token's name), what, when, result
- result:       one row per result event (a command finished, died or was held), written
                in the outcome's transaction and relayed to the results topic

Times are stored as naive UTC and read back as aware UTC (`UtcDateTime`), the same on
SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator
from sqlmodel import JSON, Column, Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is UTC:  # nearly every value: utcnow() and what was read back
            return value.replace(tzinfo=None)
        if value.tzinfo is None:
            raise ValueError("naive datetime: pass UTC-aware times")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None else None


def _time(*, nullable: bool = False, index: bool = False) -> Any:
    return Field(default=None, sa_column=Column(UtcDateTime(), nullable=nullable, index=index))


class CommandStatus(StrEnum):
    PENDING = "pending"  # due at next_attempt_at
    IN_FLIGHT = "in_flight"  # claimed under a lease
    WAITING = "waiting"  # a prerequisite is missing; re-checked at next_attempt_at
    HELD = "held"  # not to run: waiting for approval, or behind a dead command
    DEAD = "dead"  # parked with its reason; retry or drop
    DONE = "done"
    DROPPED = "dropped"  # given up on by an operator


TERMINAL = (CommandStatus.DONE.value, CommandStatus.DROPPED.value)
RUNNABLE = (CommandStatus.PENDING.value, CommandStatus.WAITING.value)


class InboxEntry(SQLModel, table=True):
    __tablename__ = "inbox"

    source: str = Field(primary_key=True, max_length=255)
    event_id: str = Field(primary_key=True, max_length=255)
    type: str = Field(max_length=100)
    subject: str | None = Field(default=None, max_length=255, index=True)
    tenant: str | None = Field(default=None, max_length=100)
    fingerprint: str | None = Field(default=None, max_length=64, index=True)
    outcome: str = Field(max_length=255)
    commands: int = 0
    received_at: datetime = _time()


class OutboxRow(SQLModel, table=True):
    __tablename__ = "outbox"
    __table_args__ = (
        # Claims take due runnable rows, longest due first; FIFO checks look for earlier
        # open rows of the same entity. Both indexes leave out the finished rows, which
        # pile up, and rows not due yet sort after the due ones and are never read.
        sa.Index(
            "ix_outbox_due",
            "next_attempt_at",
            "id",
            postgresql_where=sa.text("status IN ('pending', 'waiting')"),
            sqlite_where=sa.text("status IN ('pending', 'waiting')"),
        ),
        sa.Index(
            "ix_outbox_open_entity",
            "entity",
            "id",
            postgresql_where=sa.text("status NOT IN ('done', 'dropped')"),
            sqlite_where=sa.text("status NOT IN ('done', 'dropped')"),
        ),
        sa.Index(
            "ix_outbox_leases",
            "lease_expires_at",
            postgresql_where=sa.text("status = 'in_flight'"),
            sqlite_where=sa.text("status = 'in_flight'"),
        ),
        # held rows are released by the command they name (holds.py), and can be many
        sa.Index(
            "ix_outbox_held_reason",
            "hold_reason",
            postgresql_where=sa.text("status = 'held'"),
            sqlite_where=sa.text("status = 'held'"),
        ),
        sa.Index("ix_outbox_status", "status"),
        sa.Index("ix_outbox_entity_all", "entity", "id"),
        # the deprovisioning guard counts a tenant's recent suspends and revokes
        sa.Index("ix_outbox_tenant_created", "tenant", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    entity: str = Field(max_length=255)
    kind: str = Field(max_length=40)
    tenant: str | None = Field(default=None, max_length=100)
    payload: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    status: str = Field(default=CommandStatus.PENDING.value, max_length=20)
    attempts: int = 0
    in_doubt: bool = Field(default=False, description="an earlier attempt may have acted")
    next_attempt_at: datetime = _time()
    lease_owner: str | None = Field(default=None, max_length=100)
    lease_expires_at: datetime | None = _time(nullable=True)
    last_error_code: str | None = Field(default=None, max_length=40)
    last_error: str | None = Field(default=None, max_length=1000)
    hold_reason: str | None = Field(default=None, max_length=255)
    event_source: str | None = Field(default=None, max_length=255)
    event_id: str | None = Field(default=None, max_length=255)
    created_at: datetime = _time()
    updated_at: datetime = _time()
    done_at: datetime | None = _time(nullable=True)
    approved_at: datetime | None = _time(nullable=True)  # a held burst let through
    # Effective-dated (an HR change dated ahead): until then the row neither runs nor holds
    # up its entity's later commands, and a later event may withdraw it.
    effective_at: datetime | None = _time(nullable=True)


class IdMapping(SQLModel, table=True):
    __tablename__ = "id_mapping"
    __table_args__ = (sa.Index("ix_id_mapping_natural", "kind", "tenant", "natural_key"),)

    kind: str = Field(primary_key=True, max_length=40)
    tenant: str = Field(primary_key=True, max_length=100)
    external_id: str = Field(primary_key=True, max_length=255)
    ucaas_id: str = Field(max_length=100, index=True)
    natural_key: str | None = Field(default=None, max_length=255)
    state: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    updated_at: datetime = _time()


class CallLog(SQLModel, table=True):
    __tablename__ = "call_log"

    id: int | None = Field(default=None, primary_key=True)
    command_id: int | None = Field(default=None, index=True)
    entity: str | None = Field(default=None, max_length=255, index=True)
    method: str = Field(max_length=10)
    route: str = Field(max_length=255)
    status: int | None = None
    api_code: int | None = None
    latency_ms: float = 0.0
    error: str | None = Field(default=None, max_length=255)
    at: datetime = _time(index=True)


class TenantCredential(SQLModel, table=True):
    __tablename__ = "tenant_credential"

    tenant: str = Field(primary_key=True, max_length=100)
    username: str = Field(max_length=255)
    secret: str = Field(max_length=1000, description="Fernet token of the password")
    source: str = Field(max_length=40, description="config or captured")
    updated_at: datetime = _time()


class EntityState(SQLModel, table=True):
    """What the events accepted so far ask of one entity (an employee, a company): the
    state translation reads and writes, in the same transaction as the commands."""

    __tablename__ = "entity_state"
    # a rehire under a new employee id is found by a leaver's e-mail or employee number
    __table_args__ = (
        sa.Index("ix_entity_state_natural", "kind", "tenant", "natural_key"),
        sa.Index("ix_entity_state_alt", "kind", "tenant", "alt_key"),
    )

    entity: str = Field(primary_key=True, max_length=255)
    kind: str = Field(max_length=40)
    tenant: str | None = Field(default=None, max_length=100, index=True)
    natural_key: str | None = Field(default=None, max_length=255)  # a user's e-mail
    alt_key: str | None = Field(default=None, max_length=255)  # a user's employee number
    state: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    last_event: str | None = Field(default=None, max_length=255)
    updated_at: datetime = _time()


class CalendarFeed(SQLModel, table=True):
    """A registered iCalendar feed and how its last fetch went."""

    __tablename__ = "calendar_feed"
    __table_args__ = (sa.Index("ix_calendar_feed_due", "removed", "next_fetch_at"),)

    feed_id: str = Field(primary_key=True, max_length=200)
    # sealed with the credential vault's key (a feed URL often carries a secret token)
    url: str = Field(max_length=4000)
    organizer_email: str = Field(max_length=255)
    tenant: str = Field(max_length=100)
    interval_s: float | None = None
    # the owner's other addresses, and whether the events they only attend are scheduled
    aliases: list[str] = Field(
        default_factory=list,
        sa_column=Column(JSON, nullable=False, server_default=sa.text("'[]'")),
    )
    schedule_attended: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})
    removed: bool = False
    source: str = Field(default="event", max_length=20, description="event or config")
    etag: str | None = Field(default=None, max_length=500)
    last_modified: str | None = Field(default=None, max_length=100)
    # SHA-256 of the last body planned: a 200 with the same body is not parsed again
    body_sha256: str | None = Field(default=None, max_length=64)
    next_fetch_at: datetime = _time()
    last_fetch_at: datetime | None = _time(nullable=True)
    last_status: str | None = Field(default=None, max_length=20)  # ok, unchanged, failed
    last_error: str | None = Field(default=None, max_length=500)
    failures: int = 0
    occurrences: int = 0
    updated_at: datetime = _time()
    # events of the last expansion skipped as unusable: how many, the first few {uid, reason}
    skipped_events: int = 0
    skipped_sample: list[dict[str, Any]] | None = Field(default=None, sa_column=Column(JSON))


class CalendarEventOwner(SQLModel, table=True):
    """Which feed schedules an event (organiser + UID) of a tenant: one tenant's feeds
    never schedule the same event twice (two feeds of one owner, a team calendar)."""

    __tablename__ = "calendar_event_owner"

    tenant: str = Field(primary_key=True, max_length=100)
    organizer: str = Field(primary_key=True, max_length=255)
    uid: str = Field(primary_key=True, max_length=255)
    feed_id: str = Field(max_length=200, index=True)
    updated_at: datetime = _time()


class DeadLetterRow(SQLModel, table=True):
    """A record sent to `<topic>.dlq`, kept for `status`, the admin API and the status
    page (the topic holds the record itself)."""

    __tablename__ = "dead_letter"
    __table_args__ = (sa.UniqueConstraint("topic", "partition", "offset", name="uq_dead_letter"),)

    id: int | None = Field(default=None, primary_key=True)
    topic: str = Field(max_length=255)
    partition: int
    offset: int = Field(sa_column=Column(sa.BigInteger, nullable=False))
    key: str | None = Field(default=None, max_length=255)
    event_id: str | None = Field(default=None, max_length=255)
    error: str = Field(max_length=40, index=True)
    reason: str = Field(max_length=1000)
    at: datetime = _time(index=True)
    # sent back to its source topic by `dlq replay`: a second replay skips it
    replayed_at: datetime | None = _time(nullable=True)


class AuditEntry(SQLModel, table=True):
    """One operator action, through the admin API or the CLI: who did what, when, and
    what came of it. Rows are only ever added."""

    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = _time(index=True)
    actor: str = Field(max_length=100, index=True)  # the token's name, or cli:<os user>
    role: str = Field(max_length=20)  # reader, operator
    action: str = Field(max_length=40, index=True)  # approve, deny, retry, drop, repair, ...
    target: str = Field(max_length=255)  # command 12, tenant CRM-1, feed F
    result: str = Field(max_length=40)  # ok, not_found, refused, failed
    detail: str | None = Field(default=None, max_length=1000)


class ResultRow(SQLModel, table=True):
    """A result event: what a command came to (done, dead, held for approval), as the
    structured CloudEvent the relay publishes. Written in the same transaction as the
    command's outcome, so a result exists if and only if its outcome does; `event_id` is
    made once, so a re-sent result is the same event and consumers dedupe on it."""

    __tablename__ = "result"
    __table_args__ = (
        # the relay reads the unpublished rows in id order; published ones pile up
        sa.Index(
            "ix_result_unpublished",
            "id",
            postgresql_where=sa.text("published_at IS NULL"),
            sqlite_where=sa.text("published_at IS NULL"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(max_length=64, unique=True)  # the CloudEvent's id
    type: str = Field(max_length=100)
    subject: str = Field(max_length=255, index=True)  # the entity
    command_id: int | None = Field(default=None, index=True)
    topic: str = Field(max_length=255)
    cloudevent: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime = _time(index=True)
    published_at: datetime | None = _time(nullable=True)


def table_of(model: type[Any]) -> sa.Table:
    """A SQLModel table class's Core table, typed."""
    return cast(sa.Table, model.__table__)


# Each table's Core object, named once: every module reads and writes through these.
INBOX = table_of(InboxEntry)
OUTBOX = table_of(OutboxRow)

# Fair claims (fairness.py) step from one tenant with runnable rows to the next, and take
# each tenant's due rows in due order: an expression index, for rows without a tenant
# share as the tenant ''. On the table, not in __table_args__: it needs the column objects.
sa.Index(
    "ix_outbox_tenant_due",
    sa.func.coalesce(OUTBOX.c.tenant, sa.literal_column("''")),
    OUTBOX.c.next_attempt_at,
    OUTBOX.c.id,
    postgresql_where=sa.text("status IN ('pending', 'waiting')"),
    sqlite_where=sa.text("status IN ('pending', 'waiting')"),
)
MAPPING = table_of(IdMapping)
CALLS = table_of(CallLog)
LOGINS = table_of(TenantCredential)
STATES = table_of(EntityState)
FEEDS = table_of(CalendarFeed)
EVENT_OWNERS = table_of(CalendarEventOwner)
DEAD_LETTERS = table_of(DeadLetterRow)
AUDIT = table_of(AuditEntry)
RESULTS = table_of(ResultRow)

"""A database holding a few entities' stories, written row by row (no dispatcher, no
broker): people of two tenants, their companies, a calendar feed's meeting, and one
person's event, commands, UCaaS calls and result events. What `find` searches and
`history` tells, for the search tests (integration and the status page's)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from service.outbox.tables import CALLS, INBOX, MAPPING, OUTBOX, RESULTS, STATES

ANN = "user:ACME:E1001"
ANN_EMAIL = "ann.lee@acme.example"
ANN_NUMBER = "N-77"
# HR data reaches the page: a name that is markup must show as text
ANN_LAST_NAME = 'Lee <img src=x data-testid="injected">'
MEETING_KEY = "ann-cal:standup-42@acme.example@20261210T090000Z"
MEETING = f"meeting:{MEETING_KEY}"
PROVISIONED = "ucaas.user.provisioned"
LICENSED = "ucaas.user.licensed"
EVENT_ID = "evt-ann-joined"


def _person(tenant: str, employee: str, email: str, first: str, last: str) -> dict[str, Any]:
    return {
        "entity": f"user:{tenant}:{employee}",
        "kind": "user",
        "tenant": tenant,
        "natural_key": email,
        "alt_key": ANN_NUMBER if employee == "E1001" and tenant == "ACME" else None,
        "state": {
            "status": "active",
            "profile": {"email": email, "first_name": first, "last_name": last},
            "apps": ["vc"],
        },
    }


def _company(crm_id: str, name: str, purchases: bool) -> dict[str, Any]:
    return {
        "entity": f"customer:{crm_id}",
        "kind": "company",
        "tenant": crm_id,
        "state": {
            "created": True,
            "profile": {"customer_name": name},
            "purchases": {"P-1": {"status": "active", "seats": 10}} if purchases else {},
        },
    }


def _command(entity: str, kind: str, tenant: str, at: datetime, **more: Any) -> dict[str, Any]:
    return {
        "entity": entity,
        "kind": kind,
        "tenant": tenant,
        "payload": {"tenant": tenant},
        "status": "done",
        "attempts": 1,
        "next_attempt_at": at,
        "created_at": at,
        "updated_at": at,
        "done_at": at,
        "event_source": None,
        "event_id": None,
        **more,
    }


def _result(
    event_id: str, kind: str, subject: str, command_id: int, at: datetime, published: bool
) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "type": kind,
        "subject": subject,
        "command_id": command_id,
        "topic": "ucaas.results",
        "cloudevent": {
            "specversion": "1.0",
            "id": event_id,
            "type": kind,
            "source": "ucaas-sync",
            "subject": subject,
            "data": {"entity": subject, "ucaas_id": "u-1", "email": ANN_EMAIL},
        },
        "created_at": at,
        "published_at": at + timedelta(seconds=1) if published else None,
    }


def story_rows(now: datetime | None = None, extra_people: int = 0) -> list[tuple[sa.Table, Any]]:
    """(table, rows) to insert in order; the outbox ids are 1, 2 (Ann's) and 3 (the
    meeting's). `extra_people`: more people of tenant ACME whose e-mails start "many"."""
    at = (now or datetime.now(UTC)) - timedelta(minutes=5)
    people = [
        _person("ACME", "E1001", ANN_EMAIL, "Ann", ANN_LAST_NAME),
        _person("ACME", "E1002", "bob@acme.example", "Bob", "Stone"),
        _person("GLOBEX", "E1001", "carl@globex.example", "Carl", "Weiss"),
    ] + [
        _person("ACME", f"M{i:04}", f"many{i:04}@acme.example", "Many", str(i))
        for i in range(extra_people)
    ]
    states = [
        *people,
        _company("ACME", "Acme Corporation", purchases=True),
        _company("GLOBEX", "Globex", purchases=False),
        {"entity": "feed:ann-cal", "kind": "feed", "tenant": "ACME", "state": {"meetings": {}}},
    ]
    for s in states:
        s.setdefault("natural_key", None)
        s.setdefault("alt_key", None)
        s.update(last_event=EVENT_ID, updated_at=at)
    mapping = {"state": {}, "updated_at": at}
    return [
        (STATES, states),
        (
            MAPPING,
            [
                {"kind": "user", "tenant": "ACME", "external_id": "E1001", "ucaas_id": "u-1"}
                | {"natural_key": ANN_EMAIL}
                | mapping,
                {"kind": "meeting", "tenant": "ACME", "external_id": MEETING_KEY}
                | {"ucaas_id": "m-1", "natural_key": None}
                | mapping,
            ],
        ),
        (
            INBOX,
            [
                {
                    "source": "hr",
                    "event_id": EVENT_ID,
                    "type": "hr.user.joined",
                    "subject": "E1001",
                    "tenant": "ACME",
                    "outcome": "accepted",
                    "commands": 2,
                    "received_at": at,
                }
            ],
        ),
        (
            OUTBOX,
            [
                _command(ANN, "create_user", "ACME", at, event_source="hr", event_id=EVENT_ID),
                _command(ANN, "assign_licence", "ACME", at + timedelta(seconds=1)),
                _command(MEETING, "schedule_meeting", "ACME", at + timedelta(seconds=2)),
            ],
        ),
        (
            CALLS,
            [
                {
                    "command_id": 1,
                    "entity": ANN,
                    "method": "POST",
                    "route": "/users",
                    "status": 200,
                    "latency_ms": 12.0,
                    "at": at + timedelta(milliseconds=100),
                }
            ],
        ),
        (
            RESULTS,
            [
                _result("res-ann-1", PROVISIONED, ANN, 1, at + timedelta(seconds=1), True),
                _result("res-ann-2", LICENSED, ANN, 2, at + timedelta(seconds=2), False),
            ],
        ),
    ]


def seed(url: str, now: datetime | None = None, extra_people: int = 0) -> None:
    """Insert the stories into a migrated database (a synchronous driver's URL)."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            for table, rows in story_rows(now, extra_people):
                conn.execute(sa.insert(table), rows)
    finally:
        engine.dispose()

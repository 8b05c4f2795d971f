"""One idempotent executor per command kind."""

from __future__ import annotations

from service.domain.commands import PAYLOADS, Kind
from service.executors import customers, meetings, users
from service.executors.base import Executor, Registry, healing
from service.executors.registry import Executors

EXECUTORS: dict[Kind, Executor] = {
    Kind.CREATE_USER: users.create_user,
    Kind.UPDATE_USER: users.update_user,
    Kind.SUSPEND_USER: users.suspend_user,
    Kind.REACTIVATE_USER: users.reactivate_user,
    Kind.ASSIGN_LICENCE: users.assign_licence,
    Kind.REVOKE_LICENCE: users.revoke_licence,
    Kind.CREATE_CUSTOMER: customers.create_customer,
    Kind.UPDATE_CUSTOMER: customers.update_customer,
    Kind.CLOSE_CUSTOMER: customers.close_customer,
    Kind.CREATE_SUBSCRIPTION: customers.create_subscription,
    Kind.SCHEDULE_MEETING: meetings.schedule_meeting,
    Kind.UPDATE_MEETING: meetings.update_meeting,
    Kind.CANCEL_MEETING: meetings.cancel_meeting,
}

REGISTRY: Registry = {kind.value: (PAYLOADS[kind], healing(EXECUTORS[kind])) for kind in Kind}

__all__ = ["EXECUTORS", "REGISTRY", "Executors"]

"""The UCaaS API's route groups. Each module exports ROUTES, a list of `Op`s.

Order matters where templates overlap: permanent rooms (`/meetings/permanent/...`) are
listed before meetings (`/meetings/{meeting_id}`).
"""

from __future__ import annotations

from sandbox.api import (
    access,
    contacts,
    customers,
    datapool,
    groups,
    lobby,
    meetings,
    reports,
    rooms,
    sessions,
    subscriptions,
    users,
)
from sandbox.http import Op

GROUPS = (
    access,
    sessions,
    customers,
    subscriptions,
    users,
    rooms,
    lobby,
    meetings,
    contacts,
    groups,
    datapool,
    reports,
)


def all_ops() -> list[Op]:
    return [op for group in GROUPS for op in group.ROUTES]

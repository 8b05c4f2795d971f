"""Reconcile: read users, customers, subscriptions, licences and meetings back from UCaaS,
report drift from what the service last pushed, and queue the commands that fix it."""

from __future__ import annotations

from service.reconcile.drift import detect
from service.reconcile.model import (
    KINDS,
    SOURCE,
    Comparison,
    Drift,
    MeetingOwner,
    Observed,
    OpenCommand,
    Pushed,
    RepairStatus,
    Report,
    What,
)
from service.reconcile.repair import repair_commands, with_repairs
from service.reconcile.shell import UnknownKindError, kinds_of, reconcile

__all__ = [
    "KINDS",
    "SOURCE",
    "Comparison",
    "Drift",
    "MeetingOwner",
    "Observed",
    "OpenCommand",
    "Pushed",
    "RepairStatus",
    "Report",
    "UnknownKindError",
    "What",
    "detect",
    "kinds_of",
    "reconcile",
    "repair_commands",
    "with_repairs",
]

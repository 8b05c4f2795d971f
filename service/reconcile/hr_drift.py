"""HR against UCaaS: which managed users HR no longer has (orphans), and which HR says have
left but are still active in UCaaS (leavers still active). Pure.

Judged per UCaaS user, not per employee id: a rehire under a new employee id maps a second
employee id to the same user, and the user is an orphan only when none of its employee
ids is in HR, a leaver only when none of them is active there (nor on leave). An employee
id named by a record the mapping refused counts as present.

Before anything is repaired, the snapshot itself is judged: an empty one, a page of a
paged ListResponse, or one without anybody of a tenant that has managed users would make
everyone an orphan.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from connectors.ucaas.models.users import User
from service.domain.commands import App
from service.reconcile.drift import employee_of
from service.reconcile.hr_model import Finding, Found, ManagedUser, Mapped, Person, Snapshot
from service.reconcile.hr_people import skipped_ids

ACTIVE = "A"
APPS: dict[str, App] = {"vc": "vc", "wb": "wb"}


def managed_users(
    users: Iterable[Mapped], licences: Iterable[tuple[str, str]]
) -> list[ManagedUser]:
    """The UCaaS users behind the user mappings, each with every employee id mapped to it
    and the licences (tenant, "employee:app" mappings) of those ids."""
    held: dict[tuple[str, str], list[App]] = defaultdict(list)
    for tenant, external_id in licences:
        employee, app = employee_of(external_id)
        if app in APPS:
            held[(tenant, employee)].append(APPS[app])
    groups: dict[tuple[str, str], list[Mapped]] = defaultdict(list)
    for mapped in users:
        groups[(mapped.tenant, mapped.ucaas_id)].append(mapped)
    out: list[ManagedUser] = []
    for (tenant, ucaas_id), mappings in sorted(groups.items()):
        # the suspend runs under the id holding licences (after their revokes, in order),
        # else under the latest mapped
        ordered = sorted(mappings, key=lambda m: m.employee_id)
        ordered.sort(key=lambda m: m.updated_at.timestamp() if m.updated_at else 0.0, reverse=True)
        ordered.sort(key=lambda m: not held.get((tenant, m.employee_id)))
        ids = tuple(m.employee_id for m in ordered)
        out.append(
            ManagedUser(
                tenant=tenant,
                ucaas_id=ucaas_id,
                employee_ids=ids,
                email=ordered[0].email,
                licences=tuple(
                    (e, app) for e in sorted(ids) for app in sorted(held.get((tenant, e), ()))
                ),
            )
        )
    return sorted(out, key=lambda u: (u.tenant, u.employee_ids))


@dataclass(frozen=True)
class HrIndex:
    """The snapshot, looked up by (tenant, employee id) and by e-mail."""

    people: Mapping[tuple[str, str], tuple[Person, ...]]
    unusable: frozenset[tuple[str | None, str]]
    active_emails: Mapping[tuple[str, str], str] = field(default_factory=dict)

    @classmethod
    def of(cls, snapshot: Snapshot) -> HrIndex:
        people: dict[tuple[str, str], list[Person]] = defaultdict(list)
        emails: dict[tuple[str, str], str] = {}
        for p in snapshot.people:
            people[(p.tenant, p.employee_id)].append(p)
            if p.active and p.email:
                emails[(p.tenant, p.email.lower())] = p.employee_id
        return cls(
            {k: tuple(v) for k, v in people.items()},
            frozenset(skipped_ids(snapshot.skipped)),
            emails,
        )

    def named(self, tenant: str, employee_id: str) -> tuple[Person, ...]:
        return self.people.get((tenant, employee_id), ())

    def refused(self, tenant: str, employee_id: str) -> bool:
        return (tenant, employee_id) in self.unusable or (None, employee_id) in self.unusable


def judge(user: ManagedUser, index: HrIndex) -> Found | None:
    """What HR says of a managed user: an orphan, a leaver, or nothing to report."""
    if any(index.refused(user.tenant, e) for e in user.employee_ids):
        return None  # HR has a record of them it could not map: reported as skipped
    people = [p for e in user.employee_ids for p in index.named(user.tenant, e)]
    if not people:
        return Found.ORPHAN
    if any(p.active or p.on_leave for p in people):
        return None
    return Found.LEAVER


def candidates(users: Sequence[ManagedUser], snapshot: Snapshot) -> list[ManagedUser]:
    """The users HR does not call active: those whose UCaaS state is to be read."""
    index = HrIndex.of(snapshot)
    return [u for u in users if judge(u, index) is not None]


def find(
    users: Sequence[ManagedUser],
    snapshot: Snapshot,
    observed: Mapping[str, User],
    on_leave: Iterable[str] = (),
) -> list[Finding]:
    """Orphans and leavers still active, in the order of `users`. `observed` holds the
    UCaaS users read back by id (an id absent there is not in UCaaS); `on_leave` the
    entities whose desired state (the intake's) is on leave: not leavers."""
    index = HrIndex.of(snapshot)
    resting = frozenset(on_leave)
    out: list[Finding] = []
    for user in users:
        what = judge(user, index)
        actual = observed.get(user.ucaas_id)
        status = actual.status if actual is not None else None
        rehired = _rehired(user, index)
        if what is Found.LEAVER:
            if status == ACTIVE and not user.entities & resting:
                out.append(Finding(what, user, status, needs=not rehired, reason=rehired))
        elif what is Found.ORPHAN:
            out.append(_orphan(user, status, actual is not None, rehired))
    return out


def _rehired(user: ManagedUser, index: HrIndex) -> str | None:
    """Why not to deprovision a user whose e-mail HR has, active, under another employee
    id: a rehire the intake has not taken yet would be suspended."""
    holder = index.active_emails.get((user.tenant, (user.email or "").lower()))
    if holder is None:
        return None
    return f"HR has {user.email} as employee {holder} (a rehire not taken yet?): left alone"


def _orphan(user: ManagedUser, status: str | None, seen: bool, rehired: str | None) -> Finding:
    if rehired is not None:
        return Finding(Found.ORPHAN, user, status, needs=False, reason=rehired)
    if not seen:
        return Finding(Found.ORPHAN, user, None, needs=False, reason="not in UCaaS")
    needs = status == ACTIVE or bool(user.licences)
    why = None if needs else "already suspended, no licence mapped"
    return Finding(Found.ORPHAN, user, status, needs=needs, reason=why)


def suspicions(
    snapshot: Snapshot, tenants: Iterable[str], managed: Mapping[str, int]
) -> tuple[str, ...]:
    """Why the snapshot does not look like the whole population: --repair refuses it
    unless forced. `managed` is each tenant's managed UCaaS users."""
    found: list[str] = []
    if not snapshot.people and not snapshot.skipped:
        found.append(f"the snapshot {snapshot.source} holds nobody")
    if snapshot.declared is not None and snapshot.declared > snapshot.records:
        found.append(
            f"totalResults is {snapshot.declared} but {snapshot.records} resources are "
            "present (a page of a paged answer?)"
        )
    if snapshot.start_index is not None and snapshot.start_index > 1:
        found.append(f"startIndex is {snapshot.start_index}: a later page, not the whole list")
    for tenant in sorted(tenants):
        if managed.get(tenant, 0) and not snapshot.count(tenant):
            found.append(
                f"no people of tenant {tenant} in the snapshot, which has "
                f"{managed[tenant]} managed users"
            )
    return tuple(found)

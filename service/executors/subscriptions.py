"""create_subscription, set_subscription_status, set_subscription_seats.

Subscriptions are keyed by the CRM purchase (kind `subscription`, tenant the company's CRM
id). After a lost answer the customer's subscription of the same plan that no other
purchase maps to is adopted. Every command of a company's purchases is one FIFO entity
(`subscriptions:<crm id>`), so a purchase's status and seat changes run after its
creation, and adoptions never race.

Status and seats go through `PATCH /subscriptions/{id}`. The reference documents only
`status` (A, S, X) there; `no_of_license` is the sandbox's extension (docs/api-notes.md).
So a seat change reads the seats back from the answer: an API that ignores the key leaves
the command dead with that reason instead of done.
"""

from __future__ import annotations

from connectors.ucaas import ApiError, NotFoundError
from connectors.ucaas.models.subscriptions import (
    NewSubscription,
    NewSubscriptionTerms,
    SubscriptionChanges,
    SubscriptionQuery,
    SubscriptionTermChanges,
)
from service.domain.commands import (
    CreateSubscription,
    PurchasePayload,
    SetSubscriptionSeats,
    SetSubscriptionStatus,
)
from service.executors.base import Exec
from service.executors.customers import customer_id_of
from service.executors.registry import executes
from service.outbox.mappings import IdMappingView
from service.outbox.outcomes import Dead, Done, MappingKey, MappingWrite, Outcome, WaitForError

SEATS_IN_USE = 1257  # fewer seats than the licences assigned (sandbox code)


def _key(p: PurchasePayload) -> MappingKey:
    return MappingKey("subscription", p.crm_id, p.purchase_id)


@executes(CreateSubscription)
async def create_subscription(x: Exec, p: CreateSubscription) -> Outcome:
    key = _key(p)
    if await x.store.mapping(key):
        return Done(note="already mapped")
    customer_id = await customer_id_of(x, p.crm_id)
    state = p.model_dump(mode="json")
    if x.lookup_first:
        adopted = await _unmapped_subscription(x, customer_id, p)
        if adopted is not None:
            mapping = MappingWrite(key, adopted, p.app, state)
            return Done(mappings=(mapping,), note="adopted the existing subscription")
    saved = await x.platform.subscriptions.add(
        NewSubscription(
            customer_id=customer_id,
            plan_id=p.plan_id,
            room_type="standard",
            subscription=NewSubscriptionTerms(subsxn_date=p.start, no_of_license=p.seats),
        )
    )
    return Done(mappings=(MappingWrite(key, saved.subscription.subscription_id, p.app, state),))


async def _unmapped_subscription(x: Exec, customer_id: str, p: CreateSubscription) -> str | None:
    taken = {m.ucaas_id for m in await x.store.mappings_of("subscription", p.crm_id)}
    query = SubscriptionQuery(search_by="customer_id", search_string=customer_id)
    async for sub in x.platform.subscriptions.iterate(query):
        if sub.plan_id == p.plan_id and sub.subscription_id not in taken:
            return sub.subscription_id
    return None


def _pushed(mapping: IdMappingView, **changes: object) -> MappingWrite:
    """The mapping with what this command pushed added to its state (reconcile compares
    UCaaS with it)."""
    return MappingWrite(mapping.key, mapping.ucaas_id, mapping.natural_key, mapping.state | changes)


def _never_made(p: PurchasePayload) -> str:
    # Its create_subscription ran before it on the same entity; no mapping means that it
    # was dropped by an operator (or never finished).
    return (
        f"purchase {p.purchase_id} of {p.crm_id} has no subscription (create_subscription dropped?)"
    )


@executes(SetSubscriptionStatus)
async def set_subscription_status(x: Exec, p: SetSubscriptionStatus) -> Outcome:
    mapping = await x.mapping("subscription", p.crm_id, p.purchase_id)
    ending = p.status != "A"
    if mapping is None:
        if ending:
            return Done(note=f"{_never_made(p)}: nothing to suspend or expire")
        return Dead("no_subscription", f"{_never_made(p)}: nothing to reactivate")
    changes = SubscriptionChanges(subscription=SubscriptionTermChanges(status=p.status))
    try:
        await x.platform.subscriptions.update(mapping.ucaas_id, changes)
    except NotFoundError:
        await x.recheck()
        gone = f"subscription {mapping.ucaas_id} of purchase {p.purchase_id} is gone from UCaaS"
        if ending:
            return Done(note=f"{gone}: nothing to suspend or expire")
        return Dead("404", f"{gone}: nothing to reactivate")
    return Done(mappings=(_pushed(mapping, status=p.status),))


@executes(SetSubscriptionSeats)
async def set_subscription_seats(x: Exec, p: SetSubscriptionSeats) -> Outcome:
    mapping = await x.mapping("subscription", p.crm_id, p.purchase_id)
    if mapping is None:
        return Dead("no_subscription", f"{_never_made(p)}: no seats to change")
    changes = SubscriptionChanges(subscription=SubscriptionTermChanges(no_of_license=p.seats))
    try:
        saved = await x.platform.subscriptions.update(mapping.ucaas_id, changes)
    except NotFoundError:
        await x.recheck()
        return Dead(
            "404", f"subscription {mapping.ucaas_id} is gone from UCaaS: no seats to change"
        )
    except ApiError as exc:
        if SEATS_IN_USE not in exc.codes:
            raise
        # The sync cannot choose whose licence goes. Leavers' revokes free seats and wake
        # the tenant's waiting commands; past the wait limit it is parked with this reason.
        raise WaitForError(
            f"{SEATS_IN_USE}: more licences assigned than {p.seats} seats; waiting for revokes"
        ) from exc
    seats = saved.subscription.qty
    if seats is None:  # the reference's answer has qty; read it back if it was left out
        found = await x.platform.subscriptions.get(mapping.ucaas_id)
        seats = found.user_license.qty if found.user_license else None
    if seats != p.seats:
        return Dead(
            "seats_unchanged",
            f"the UCaaS API answered {seats} seats, not {p.seats}: it did not take the seat "
            "change (the reference documents only status on PATCH /subscriptions). Change the "
            "seats in UCaaS, then retry this command: it checks them.",
        )
    return Done(mappings=(_pushed(mapping, seats=p.seats),))

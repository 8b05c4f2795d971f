"""create_customer, update_customer, close_customer, create_subscription.

Customers are keyed by the CRM id, which is also their `customer_code` in UCaaS: the
natural key to find one after an answer was lost. Subscriptions are keyed by the CRM
purchase; after a lost answer the customer's subscription of the same plan that no other
purchase maps to is adopted.
"""

from __future__ import annotations

from typing import Any

from connectors.ucaas import AlreadyExistsError, NotFoundError
from connectors.ucaas.models.customers import AddressIn, CustomerChanges, NewCustomer
from connectors.ucaas.models.subscriptions import (
    NewSubscription,
    NewSubscriptionTerms,
    SubscriptionQuery,
)
from service.domain.commands import (
    Address,
    CloseCustomer,
    CreateCustomer,
    CreateSubscription,
    UpdateCustomer,
)
from service.executors.base import Exec
from service.executors.registry import executes
from service.outbox.outcomes import (
    CapturedLogin,
    Dead,
    Done,
    MappingKey,
    MappingWrite,
    Outcome,
    WaitForError,
)


def _address(address: Address) -> AddressIn:
    return AddressIn.model_validate(address.model_dump(exclude_none=True))


def _customer_mapping(crm_id: str, ucaas_id: str, state: dict[str, Any]) -> MappingWrite:
    return MappingWrite(MappingKey("customer", "", crm_id), ucaas_id, crm_id, state)


@executes(CreateCustomer)
async def create_customer(x: Exec, p: CreateCustomer) -> Outcome:
    if await x.mapping("customer", "", p.crm_id, fresh=True):
        return Done(note="already mapped")
    state = p.profile.model_dump(mode="json", exclude_none=True)
    existing = await x.platform.customers.find_by_code(p.crm_id) if x.lookup_first else None
    if existing is None:
        profile = p.profile
        new = NewCustomer(
            customer_name=profile.customer_name,
            customer_legal_name=profile.customer_legal_name,
            customer_code=p.crm_id,
            contact_name=profile.contact_name,
            contact_email=profile.contact_email,
            individual=profile.individual,
            office_address=_address(profile.office_address),
            billing_address=_address(profile.billing_address) if profile.billing_address else None,
        )
        try:
            created = await x.platform.customers.add(new)
        except AlreadyExistsError as exc:
            existing = await x.platform.customers.find_by_code(p.crm_id)
            if existing is None:
                # e.g. 1333: the contact e-mail belongs to another customer. A person decides.
                return Dead(str(exc.code), f"{exc.api_message} (no customer has code {p.crm_id})")
        else:
            access = created.portal_access
            login = CapturedLogin(p.crm_id, access.username, access.password) if access else None
            mapping = _customer_mapping(p.crm_id, created.customer.customer_id, state)
            return Done(mappings=(mapping,), login=login)
    return Done(
        mappings=(_customer_mapping(p.crm_id, existing.customer_id, state),),
        note="adopted the existing customer",
    )


async def _customer_id(x: Exec, crm_id: str) -> str:
    mapping = await x.mapping("customer", "", crm_id)
    if mapping is None:
        raise WaitForError(f"customer {crm_id} is not created yet")
    return mapping.ucaas_id


@executes(UpdateCustomer)
async def update_customer(x: Exec, p: UpdateCustomer) -> Outcome:
    customer_id = await _customer_id(x, p.crm_id)
    changes = CustomerChanges.model_validate(p.changes)
    try:
        await x.platform.customers.edit(customer_id, changes)
    except NotFoundError:
        await x.recheck()
        found = await x.platform.customers.find_by_code(p.crm_id)
        if found is None:
            return Dead("404", f"customer {p.crm_id} no longer exists in UCaaS")
        await x.platform.customers.edit(found.customer_id, changes)
        customer_id = found.customer_id
    mapping = await x.mapping("customer", "", p.crm_id)
    state = {**(mapping.state if mapping else {}), **p.changes}
    return Done(mappings=(_customer_mapping(p.crm_id, customer_id, state),))


@executes(CloseCustomer)
async def close_customer(x: Exec, p: CloseCustomer) -> Outcome:
    customer_id = await _customer_id(x, p.crm_id)
    try:
        await x.platform.customers.edit(customer_id, CustomerChanges(status=p.status))
    except NotFoundError:
        await x.recheck()
        return Done(note="customer already gone")
    mapping = await x.mapping("customer", "", p.crm_id)
    state = {**(mapping.state if mapping else {}), "status": p.status}
    return Done(mappings=(_customer_mapping(p.crm_id, customer_id, state),))


@executes(CreateSubscription)
async def create_subscription(x: Exec, p: CreateSubscription) -> Outcome:
    key = MappingKey("subscription", p.crm_id, p.purchase_id)
    if await x.store.mapping(key):
        return Done(note="already mapped")
    customer_id = await _customer_id(x, p.crm_id)
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

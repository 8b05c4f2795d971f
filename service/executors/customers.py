"""create_customer, update_customer, close_customer, reopen_customer.

Customers are keyed by the CRM id, which is also their `customer_code` in UCaaS: the
natural key to find one after an answer was lost. A customer's status (A active, S
suspended, C closed) is changed with `PATCH /customers/{id}`. Subscriptions: see
subscriptions.py.
"""

from __future__ import annotations

from typing import Any

from connectors.ucaas import AlreadyExistsError, NotFoundError
from connectors.ucaas.models.customers import AddressIn, CustomerChanges, NewCustomer
from service.domain.commands import (
    Address,
    CloseCustomer,
    CreateCustomer,
    ReopenCustomer,
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


async def customer_id_of(x: Exec, crm_id: str) -> str:
    mapping = await x.mapping("customer", "", crm_id)
    if mapping is None:
        raise WaitForError(f"customer {crm_id} is not created yet")
    return mapping.ucaas_id


@executes(UpdateCustomer)
async def update_customer(x: Exec, p: UpdateCustomer) -> Outcome:
    customer_id = await customer_id_of(x, p.crm_id)
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
    customer_id = await customer_id_of(x, p.crm_id)
    try:
        await x.platform.customers.edit(customer_id, CustomerChanges(status=p.status))
    except NotFoundError:
        await x.recheck()
        return Done(note="customer already gone")
    mapping = await x.mapping("customer", "", p.crm_id)
    state = {**(mapping.state if mapping else {}), "status": p.status}
    return Done(mappings=(_customer_mapping(p.crm_id, customer_id, state),))


@executes(ReopenCustomer)
async def reopen_customer(x: Exec, p: ReopenCustomer) -> Outcome:
    customer_id = await customer_id_of(x, p.crm_id)
    try:
        await x.platform.customers.edit(customer_id, CustomerChanges(status="A"))
    except NotFoundError:
        await x.recheck()
        return Dead("404", f"customer {p.crm_id} no longer exists in UCaaS: nothing to reopen")
    mapping = await x.mapping("customer", "", p.crm_id)
    state = {**(mapping.state if mapping else {}), "status": "A"}
    return Done(mappings=(_customer_mapping(p.crm_id, customer_id, state),))

"""Customer Management API: get, list, add, edit."""

from __future__ import annotations

from collections.abc import AsyncIterator

from connectors.ucaas.core import ApiCore
from connectors.ucaas.models.base import Page
from connectors.ucaas.models.customers import (
    Customer,
    CustomerChanges,
    CustomerCreated,
    CustomerQuery,
    CustomerUpdated,
    NewCustomer,
)


class CustomersAPI:
    def __init__(self, core: ApiCore) -> None:
        self._core = core

    async def get(self, customer_id: str) -> Customer:
        return await self._core.call(
            Customer,
            "GET",
            "/customers/{customer_id}",
            key="customer",
            path={"customer_id": customer_id},
        )

    async def list(self, query: CustomerQuery | None = None) -> Page[Customer]:
        return await self._core.page("/customers", "customers", Customer, query)

    def iterate(self, query: CustomerQuery | None = None) -> AsyncIterator[Customer]:
        return self._core.iterate("/customers", "customers", Customer, query)

    async def find_by_code(self, customer_code: str) -> Customer | None:
        """The natural-key lookup the sync uses before creating a customer."""
        query = CustomerQuery(search_by="customer_code", search_string=customer_code)
        async for customer in self.iterate(query):
            if customer.customer_code == customer_code:
                return customer
        return None

    async def add(self, customer: NewCustomer) -> CustomerCreated:
        return await self._core.call(CustomerCreated, "POST", "/customers", json=customer.payload())

    async def edit(self, customer_id: str, changes: CustomerChanges) -> CustomerUpdated:
        return await self._core.call(
            CustomerUpdated,
            "PATCH",
            "/customers/{customer_id}",
            path={"customer_id": customer_id},
            json=changes.payload(),
        )

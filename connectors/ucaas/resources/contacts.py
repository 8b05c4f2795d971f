"""Contact Management API, contacts: add, edit, get, list, delete.

Contacts belong to the account the client logged in as; another account's contact is a
`NotFoundError`. A repeated e-mail is `AlreadyExistsError` (code 1721): look it up with
`find_by_email` and adopt it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from connectors.ucaas.core import ApiCore
from connectors.ucaas.models.base import Page
from connectors.ucaas.models.contacts import (
    Contact,
    ContactChanges,
    ContactQuery,
    ContactResult,
    NewContact,
)

ITEM = "/contacts/{contact_id}"


class ContactsAPI:
    def __init__(self, core: ApiCore) -> None:
        self._core = core

    async def add(self, contact: NewContact) -> ContactResult:
        return await self._core.call(ContactResult, "POST", "/contacts", json=contact.payload())

    async def edit(self, contact_id: str, changes: ContactChanges) -> ContactResult:
        return await self._core.call(
            ContactResult,
            "PATCH",
            ITEM,
            path={"contact_id": contact_id},
            json=changes.payload(),
        )

    async def get(self, contact_id: str) -> Contact:
        return await self._core.call(
            Contact, "GET", ITEM, key="contact", path={"contact_id": contact_id}
        )

    async def list(self, query: ContactQuery | None = None) -> Page[Contact]:
        return await self._core.page("/contacts", "contacts", Contact, query)

    def iterate(self, query: ContactQuery | None = None) -> AsyncIterator[Contact]:
        return self._core.iterate("/contacts", "contacts", Contact, query)

    async def find_by_email(self, email: str) -> Contact | None:
        """The natural-key lookup that reconciles a 1721 conflict."""
        async for contact in self.iterate(ContactQuery(search_by="email", search_string=email)):
            if (contact.email or "").lower() == email.lower():
                return contact
        return None

    async def delete(self, contact_id: str) -> ContactResult:
        return await self._core.call(ContactResult, "DELETE", ITEM, path={"contact_id": contact_id})

"""Contact Management API, contact groups: add, edit, get, list, delete, members.

Members change with `PATCH /contact-groups/{group_id}` and the header
`X-License: add-contact|delete-contact` (the reference's header name). Both are safe to
repeat: a member added twice stays once, removing a non-member does nothing. A group of
another account is a `NotFoundError` (code 1818); a repeated name is `AlreadyExistsError`
(1805 on add, 1810 on edit).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from connectors.ucaas.core import ApiCore
from connectors.ucaas.models.base import Page
from connectors.ucaas.models.contacts import (
    ContactIds,
    Group,
    GroupChanges,
    GroupQuery,
    GroupResult,
    NewGroup,
)

ITEM = "/contact-groups/{group_id}"


class ContactGroupsAPI:
    def __init__(self, core: ApiCore) -> None:
        self._core = core

    async def add(self, group: NewGroup) -> GroupResult:
        return await self._core.call(GroupResult, "POST", "/contact-groups", json=group.payload())

    async def edit(self, group_id: str, changes: GroupChanges) -> GroupResult:
        return await self._core.call(
            GroupResult, "PATCH", ITEM, path={"group_id": group_id}, json=changes.payload()
        )

    async def get(self, group_id: str) -> Group:
        return await self._core.call(Group, "GET", ITEM, key="group", path={"group_id": group_id})

    async def list(self, query: GroupQuery | None = None) -> Page[Group]:
        return await self._core.page("/contact-groups", "groups", Group, query)

    def iterate(self, query: GroupQuery | None = None) -> AsyncIterator[Group]:
        return self._core.iterate("/contact-groups", "groups", Group, query)

    async def find_by_name(self, group_name: str) -> Group | None:
        """The natural-key lookup that reconciles a 1805/1810 conflict (names are unique
        per account regardless of case; the search matches a substring)."""
        query = GroupQuery(search_by="group_name", search_string=group_name)
        async for group in self.iterate(query):
            if (group.group_name or "").lower() == group_name.lower():
                return group
        return None

    async def delete(self, group_id: str) -> GroupResult:
        return await self._core.call(GroupResult, "DELETE", ITEM, path={"group_id": group_id})

    async def add_contacts(self, group_id: str, contact_ids: Sequence[str]) -> GroupResult:
        return await self._members(group_id, contact_ids, "add-contact")

    async def delete_contacts(self, group_id: str, contact_ids: Sequence[str]) -> GroupResult:
        return await self._members(group_id, contact_ids, "delete-contact")

    async def _members(self, group_id: str, contact_ids: Sequence[str], action: str) -> GroupResult:
        body = ContactIds(contact_ids=list(contact_ids))
        return await self._core.call(
            GroupResult,
            "PATCH",
            ITEM,
            path={"group_id": group_id},
            json=body.payload(),
            headers={"X-License": action},
        )

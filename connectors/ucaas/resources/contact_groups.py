"""TODO: contact_groups."""

from __future__ import annotations

from connectors.ucaas.core import ApiCore


class ContactGroupsAPI:
    def __init__(self, core: ApiCore) -> None:
        self._core = core

"""TODO: meetings."""

from __future__ import annotations

from connectors.ucaas.core import ApiCore


class MeetingsAPI:
    def __init__(self, core: ApiCore) -> None:
        self._core = core

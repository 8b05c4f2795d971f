"""What the admin API needs of the process it serves, and where it refuses to be served.

`RunningService` is all the admin API and its server ask of a running service: the
runner's `Running` is one, and the admin knows nothing more of how the parts are run.
Without a token the admin API is open: `refuse_open_admin` allows that on loopback only.
This module imports no web framework, so the runner and the CLI check cheaply.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Protocol

from service.settings import AdminSettings, Settings
from service.views import Operations


class RunningService(Protocol):
    """A running service as the admin API sees it."""

    @property
    def settings(self) -> Settings: ...

    @property
    def operations(self) -> Operations:
        """The operator's read model (and actions) over this service's database."""
        ...

    @property
    def parts_here(self) -> Mapping[str, bool]:
        """Which parts (consumers, dispatcher, poller, admin) run in this process."""
        ...

    @property
    def consumers_joined(self) -> bool: ...

    async def check_database(self) -> None:
        """Raises when the database does not answer."""

    async def check_ucaas(self) -> None:
        """Raises when the UCaaS API does not answer an authenticated call."""

    def wake_dispatcher(self) -> None:
        """Look for due commands now (when the dispatcher runs here)."""


class AdminRefusedError(RuntimeError):
    """The admin API would be open to the network without a token: set one, or bind it
    to loopback."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name: whatever it resolves to, treat it as the network


def refuse_open_admin(admin: AdminSettings) -> None:
    # any token closes the API: then every request needs one (a reader-only setup can
    # read, and nobody can act through the API)
    if not is_loopback(admin.host) and not admin.named_tokens():
        raise AdminRefusedError(
            f"the admin API on {admin.host} needs a token: set UCAAS_SYNC_ADMIN_TOKEN "
            "(or _READ_TOKEN, _TOKENS) or UCAAS_SYNC_ADMIN_HOST=127.0.0.1"
        )

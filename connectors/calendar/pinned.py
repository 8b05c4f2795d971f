"""Connections to the very addresses that were checked.

Checking a host's addresses and then letting the HTTP client resolve the name again when
it connects leaves a gap: a DNS answer that changes in between (DNS rebinding) sends the
request wherever the second answer points, a private network included. Here the name is
resolved once per connection, by `addresses_of`, which refuses what must not be reached;
the TCP connection goes to one of the addresses it returned, never to a fresh lookup's.

Only the TCP target changes: httpcore still gives the URL's host name as TLS server name
(SNI and the certificate's host name check) and httpx the Host header, so a virtual host
behind the address answers as it would by name.
"""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable, Iterable, Sequence

import httpcore
import httpx

# host, port -> the addresses that may be connected to, in the order to try them; raises
# when the host must not be reached at all.
AddressesOf = Callable[[str, int], Awaitable[Sequence[str]]]

LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)  # httpx's defaults


class PinnedBackend(httpcore.AsyncNetworkBackend):
    """An httpcore network backend that connects to `addresses_of(host, port)`'s answer."""

    def __init__(
        self, addresses_of: AddressesOf, inner: httpcore.AsyncNetworkBackend | None = None
    ) -> None:
        self.addresses_of = addresses_of
        self.inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface names it
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self.addresses_of(host, port)
        failed: httpcore.ConnectError | httpcore.ConnectTimeout | None = None
        # In order, as a name's connect would: a host whose first address is unreachable
        # (an AAAA record on a machine without an IPv6 route) is still reached by another.
        for address in addresses:
            try:
                return await self.inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failed = exc
        raise failed or httpcore.ConnectError(f"{host} has no address to connect to")

    async def sleep(self, seconds: float) -> None:  # between httpcore's connect retries
        await self.inner.sleep(seconds)


class PinnedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport (its request mapping, errors and streams), its connections
    made by `backend`.

    httpx takes no network backend of its own yet (encode/httpx#3749 would add one), so
    the connection pool it builds is replaced by the same pool on `backend` (should httpx
    rename `_pool`, tests/unit/test_feed_pinning.py fails: its fake network goes unused).
    No proxy: a proxy resolves the name itself, which would undo the pinning.
    """

    def __init__(
        self,
        backend: httpcore.AsyncNetworkBackend,
        *,
        verify: ssl.SSLContext | bool = True,  # an SSLContext: a test's own CA
        limits: httpx.Limits = LIMITS,
    ) -> None:
        ssl_context = httpx.create_ssl_context(verify=verify)
        super().__init__(verify=ssl_context, limits=limits)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=backend,
        )

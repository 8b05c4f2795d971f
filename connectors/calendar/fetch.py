"""Fetching an iCalendar feed, safely.

- Conditional GET (ETag / If-None-Match, Last-Modified / If-Modified-Since): an unchanged
  feed costs a 304 and nothing else.
- Bounded: a total time limit, a size cap (read in chunks, stopped at the cap), a redirect
  limit; `webcal://` is fetched as https.
- No reaching into the private network: a URL whose host resolves to a loopback,
  private, link-local, multicast or otherwise reserved address is refused (unless
  allowed, as the tests allow loopback), on every redirect hop. The address checked is
  the address connected: the host is resolved once per connection and the connection
  made to one of those addresses (`pinned`), so DNS changing its answer in between
  (rebinding) cannot redirect it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpcore
import httpx

from connectors.calendar.pinned import AddressesOf, PinnedBackend, PinnedTransport

USER_AGENT = "ucaas-sync-calendar/0.1"


class FeedError(Exception):
    """The feed cannot be used this time; `reason` says why in one line."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason[:500]


@dataclass(frozen=True)
class FetchLimits:
    timeout_s: float = 20.0
    max_bytes: int = 10 * 1024 * 1024
    max_redirects: int = 5
    allow_private: bool = False  # loopback and private ranges (tests, trusted intranets)


@dataclass(frozen=True)
class Fetched:
    status: int  # 200, or 304 for not modified
    body: bytes
    etag: str | None
    last_modified: str | None
    url: str  # after redirects

    @property
    def not_modified(self) -> bool:
        return self.status == 304


def normalise(url: str) -> str:
    try:  # urlsplit refuses a broken IPv6 host, .port a port out of range: ValueError
        parts = urlsplit(url.strip())
        _ = parts.port
    except ValueError as exc:
        raise FeedError(f"not a valid URL ({exc}): {url[:100]!r}") from None
    scheme = parts.scheme.lower()
    if scheme == "webcal":
        scheme = "https"
    if scheme not in ("http", "https") or not parts.hostname:
        raise FeedError(f"not an http(s) or webcal URL: {url[:100]!r}")
    return urlunsplit((scheme, parts.netloc, parts.path or "/", parts.query, ""))


# IPv6 prefixes a router translates to the IPv4 address in their last 32 bits: NAT64's
# well-known and local-use prefixes (RFC 6052, RFC 8215).
NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for: IPv4-mapped, 6to4 (2002::/16) or
    NAT64; a gateway on the way would connect to it."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if any(ip in prefix for prefix in NAT64):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def forbidden(address: str) -> bool:
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address
    ip = ipaddress.ip_address(address.split("%", maxsplit=1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        inner = embedded_ipv4(ip)
        if inner is not None and forbidden(str(inner)):
            return True
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
    # is_reserved too: Python counts some reserved ranges as global (::/8, where the
    # IPv4-compatible ::127.0.0.1 and NAT64's 64:ff9b::/96 lie).
    return not ip.is_global or ip.is_multicast or ip.is_reserved


# host, port -> its addresses; raises FeedError when it has none.
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]


async def system_resolver(host: str, port: int) -> list[str]:
    try:  # an address already (127.0.0.1, [::1]): no lookup, no trip to the executor
        ipaddress.ip_address(host)
        return [host]
    except ValueError:
        pass  # a name, or a form only the C resolver reads (2130706433, 127.1)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise FeedError(f"cannot resolve {host}: {exc.strerror}") from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))  # once each, in order


def reachable(limits: FetchLimits, resolver: Resolver = system_resolver) -> AddressesOf:
    """The addresses a connection to a host may go to: all of them, or FeedError when any
    is forbidden (one bad address is enough to distrust the name)."""

    async def addresses_of(host: str, port: int) -> Sequence[str]:
        addresses = await resolver(host, port)
        if not addresses:
            raise FeedError(f"cannot resolve {host}: no address")
        if not limits.allow_private:
            for address in addresses:
                if forbidden(address):
                    raise FeedError(f"{host} resolves to {address}, a private or reserved address")
        return addresses

    return addresses_of


def pinned_transport(
    limits: FetchLimits,
    *,
    resolver: Resolver = system_resolver,
    network: httpcore.AsyncNetworkBackend | None = None,
    verify: ssl.SSLContext | bool = True,
) -> PinnedTransport:
    """The fetcher's transport: every connection resolved and checked once, then made to
    a checked address (through `network`, the real one unless a test gives its own)."""
    return PinnedTransport(PinnedBackend(reachable(limits, resolver), network), verify=verify)


class FeedFetcher:
    def __init__(
        self, limits: FetchLimits | None = None, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.limits = limits or FetchLimits()
        self.http = httpx.AsyncClient(
            follow_redirects=False,
            timeout=httpx.Timeout(self.limits.timeout_s, connect=min(10.0, self.limits.timeout_s)),
            headers={"User-Agent": USER_AGENT, "Accept": "text/calendar, */*;q=0.5"},
            transport=transport or pinned_transport(self.limits),
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    async def fetch(
        self, url: str, *, etag: str | None = None, last_modified: str | None = None
    ) -> Fetched:
        try:
            async with asyncio.timeout(self.limits.timeout_s):
                return await self._fetch(normalise(url), etag, last_modified)
        except TimeoutError:
            raise FeedError(f"no complete answer within {self.limits.timeout_s:g} s") from None
        except httpx.HTTPError as exc:
            raise FeedError(f"{type(exc).__name__}: {exc}"[:300]) from None
        except httpx.InvalidURL as exc:  # stricter than urlsplit: 0177.0.0.1 (octal), 1.2.3.256
            raise FeedError(f"not a valid URL ({exc}): {url[:100]!r}") from None

    async def _fetch(self, url: str, etag: str | None, last_modified: str | None) -> Fetched:
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        for _ in range(self.limits.max_redirects + 1):
            host = urlsplit(url).hostname or ""
            # A new connection (the first hop, another host) is checked as it is made.
            async with self.http.stream("GET", url, headers=headers) as response:
                if response.status_code == 304:  # before redirects: httpx counts 3xx as one
                    return Fetched(304, b"", etag, last_modified, url)
                if response.is_redirect and "location" in response.headers:
                    url = normalise(urljoin(url, response.headers["location"]))
                    continue
                if response.status_code != 200:
                    raise FeedError(f"HTTP {response.status_code} from {host}")
                body = await self._read(response)
                return Fetched(
                    200,
                    body,
                    response.headers.get("etag"),
                    response.headers.get("last-modified"),
                    url,
                )
        raise FeedError(f"more than {self.limits.max_redirects} redirects")

    async def _read(self, response: httpx.Response) -> bytes:
        declared = response.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.limits.max_bytes:
            raise FeedError(f"feed is {int(declared)} bytes; at most {self.limits.max_bytes}")
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > self.limits.max_bytes:
                raise FeedError(f"feed is larger than {self.limits.max_bytes} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

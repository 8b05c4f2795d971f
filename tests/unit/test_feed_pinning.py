"""The address checked is the address connected (DNS rebinding).

A fake resolver answers per host, one answer after the other (the last one repeats), and a
fake network records where each connection went, the TLS server name it was started with
and the bytes sent; nothing leaves the process. The real-socket, real-TLS side is in
tests/integration/test_feed_tls_pinning.py.
"""

# The fakes keep httpcore's signatures, whose `timeout` parameters ASYNC109 would rename.
# ruff: noqa: ASYNC109

from __future__ import annotations

import ssl
from collections.abc import Iterable

import httpcore
import pytest

from connectors.calendar.fetch import (
    FeedError,
    FeedFetcher,
    Fetched,
    FetchLimits,
    pinned_transport,
)

BODY = b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n"
PUBLIC = "93.184.215.14"


def answer(status: int = 200, body: bytes = BODY, **headers: str) -> bytes:
    """One HTTP/1.1 response; the connection closes after it, so a next fetch reconnects."""
    lines = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}", "Connection: close"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class Resolver:
    def __init__(self, **answers: list[list[str]]) -> None:
        self.answers = {host.replace("_", "."): list(each) for host, each in answers.items()}
        self.asked: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append((host, port))
        left = self.answers[host]
        return left.pop(0) if len(left) > 1 else left[0]


class Stream(httpcore.AsyncMockStream):
    def __init__(self, network: Network, response: bytes) -> None:
        super().__init__([response])
        self.network = network

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.network.sent.append(buffer)

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.network.server_names.append(server_hostname)
        return self


class Network(httpcore.AsyncNetworkBackend):
    def __init__(self, *responses: bytes, unreachable: Iterable[str] = ()) -> None:
        self.responses = list(responses)
        self.unreachable = set(unreachable)
        self.connected: list[tuple[str, int]] = []
        self.server_names: list[str | None] = []
        self.sent: list[bytes] = []

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        if host in self.unreachable:
            raise httpcore.ConnectError(f"{host} unreachable")
        self.connected.append((host, port))
        return Stream(self, self.responses.pop(0))


async def fetch_all(
    limits: FetchLimits, resolver: Resolver, network: Network, *urls: str
) -> list[Fetched | FeedError]:
    """Each URL in turn through one fetcher (one connection pool); an error is returned."""
    fetcher = FeedFetcher(limits, pinned_transport(limits, resolver=resolver, network=network))
    got: list[Fetched | FeedError] = []
    try:
        for url in urls:
            try:
                got.append(await fetcher.fetch(url))
            except FeedError as exc:
                got.append(exc)
    finally:
        await fetcher.aclose()
    return got


async def test_the_connection_goes_to_the_address_checked_not_to_a_second_answer() -> None:
    resolver = Resolver(feeds_example=[[PUBLIC], ["127.0.0.1"]])
    network = Network(answer())
    [got] = await fetch_all(FetchLimits(), resolver, network, "https://feeds.example/a.ics")
    assert isinstance(got, Fetched) and got.body == BODY
    assert resolver.asked == [("feeds.example", 443)]  # resolved once, by the check
    assert network.connected == [(PUBLIC, 443)]
    # Only the TCP target is the address: TLS and HTTP still name the host.
    assert network.server_names == ["feeds.example"]
    assert b"\r\nHost: feeds.example\r\n" in network.sent[0]


async def test_a_name_rebound_to_loopback_is_refused_at_its_next_connection() -> None:
    resolver = Resolver(feeds_example=[[PUBLIC], ["127.0.0.1"]])
    network = Network(answer(), answer())
    first, second = await fetch_all(
        FetchLimits(), resolver, network, "http://feeds.example/a.ics", "http://feeds.example/a.ics"
    )
    assert isinstance(first, Fetched)
    assert isinstance(second, FeedError)
    assert second.reason == "feeds.example resolves to 127.0.0.1, a private or reserved address"
    assert network.connected == [(PUBLIC, 80)]  # never 127.0.0.1


@pytest.mark.parametrize(
    "addresses",
    [
        ["10.0.0.5"],
        [PUBLIC, "10.0.0.5"],  # one bad address is enough: the name is not to be trusted
        ["::ffff:192.168.1.1"],
        ["2606:4700:4700::1111", "169.254.169.254"],
    ],
)
async def test_a_name_with_a_private_address_is_refused_before_any_connection(
    addresses: list[str],
) -> None:
    bad = next(a for a in addresses if a not in (PUBLIC, "2606:4700:4700::1111"))
    network = Network(answer())
    [got] = await fetch_all(
        FetchLimits(), Resolver(feeds_example=[addresses]), network, "https://feeds.example/"
    )
    assert isinstance(got, FeedError)
    assert got.reason == f"feeds.example resolves to {bad}, a private or reserved address"
    assert network.connected == []


async def test_every_redirect_hop_is_resolved_checked_and_pinned() -> None:
    resolver = Resolver(
        feeds_example=[[PUBLIC]],
        cdn_example=[["93.184.215.99"]],
        internal_example=[["169.254.169.254"]],
    )
    network = Network(
        answer(302, b"", Location="https://cdn.example/a.ics"),
        answer(302, b"", Location="http://internal.example/latest/meta-data/"),
    )
    [got] = await fetch_all(FetchLimits(), resolver, network, "https://feeds.example/a.ics")
    assert isinstance(got, FeedError)
    assert got.reason == (
        "internal.example resolves to 169.254.169.254, a private or reserved address"
    )
    assert network.connected == [(PUBLIC, 443), ("93.184.215.99", 443)]
    assert network.server_names == ["feeds.example", "cdn.example"]


async def test_the_checked_addresses_are_tried_in_order() -> None:
    """An unreachable first address (an AAAA record without an IPv6 route) falls back to
    the next checked one, as a connect by name would."""
    resolver = Resolver(feeds_example=[["2606:4700:4700::1111", PUBLIC]])
    network = Network(answer(), unreachable={"2606:4700:4700::1111"})
    [got] = await fetch_all(FetchLimits(), resolver, network, "https://feeds.example/a.ics")
    assert isinstance(got, Fetched)
    assert network.connected == [(PUBLIC, 443)]


async def test_no_address_reachable_is_a_connect_error() -> None:
    network = Network(unreachable={PUBLIC})
    [got] = await fetch_all(
        FetchLimits(), Resolver(feeds_example=[[PUBLIC]]), network, "https://feeds.example/"
    )
    assert isinstance(got, FeedError)
    assert got.reason == f"ConnectError: {PUBLIC} unreachable"


async def test_a_name_without_addresses_is_refused() -> None:
    [got] = await fetch_all(
        FetchLimits(), Resolver(feeds_example=[[]]), Network(), "https://feeds.example/"
    )
    assert isinstance(got, FeedError)
    assert got.reason == "cannot resolve feeds.example: no address"


async def test_allowed_private_addresses_are_pinned_too() -> None:
    resolver = Resolver(feeds_test=[["127.0.0.1"], ["10.9.9.9"]])
    network = Network(answer())
    limits = FetchLimits(allow_private=True)
    [got] = await fetch_all(limits, resolver, network, "https://feeds.test:8443/a.ics")
    assert isinstance(got, Fetched)
    assert network.connected == [("127.0.0.1", 8443)]
    assert network.server_names == ["feeds.test"]
    assert b"\r\nHost: feeds.test:8443\r\n" in network.sent[0]

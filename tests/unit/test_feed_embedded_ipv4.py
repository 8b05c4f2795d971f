"""IPv6 addresses that carry an IPv4 address (6to4, NAT64, IPv4-mapped) are judged by the
IPv4 address a gateway would connect to: a private one is refused like the address itself."""

from __future__ import annotations

import pytest

from connectors.calendar.fetch import FeedError, FeedFetcher, FetchLimits, forbidden


@pytest.mark.parametrize(
    "address",
    [
        "2002:7f00:1::",  # 6to4 of 127.0.0.1
        "2002:7f00:1::1",
        "2002:a00:1::1",  # 10.0.0.1
        "2002:ac10:1::1",  # 172.16.0.1
        "2002:c0a8:101::1",  # 192.168.1.1
        "2002:a9fe:a9fe::1",  # 169.254.169.254, the metadata service
        "2002:6440:1::1",  # 100.64.0.1, carrier-grade NAT
        "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
        "64:ff9b::a00:1",
        "64:ff9b::c0a8:101",
        "64:ff9b::a9fe:a9fe",
        "64:ff9b:1::a00:1",  # the local-use NAT64 prefix
    ],
)
def test_ipv6_addresses_embedding_a_private_ipv4_address_are_forbidden(address: str) -> None:
    assert forbidden(address)


@pytest.mark.parametrize("address", ["2002:808:808::1", "2002:5db8:d70e::1"])
def test_6to4_of_a_public_ipv4_address_is_allowed(address: str) -> None:
    assert not forbidden(address)


@pytest.mark.parametrize("host", ["[2002:7f00:1::1]", "[64:ff9b::7f00:1]", "[2002:a9fe:a9fe::]"])
async def test_a_feed_url_at_such_an_address_is_refused_before_any_connection(host: str) -> None:
    fetcher = FeedFetcher(FetchLimits(timeout_s=2))
    try:
        with pytest.raises(FeedError) as caught:
            await fetcher.fetch(f"http://{host}/feed.ics")
    finally:
        await fetcher.aclose()
    assert "a private or reserved address" in caught.value.reason

"""A pinned feed fetch over real TLS: the connection goes to the address the resolver gave,
while TLS (SNI, the certificate's host name check) and HTTP (Host) keep the feed's host name.

A CA made here signs a certificate for `feeds.test` only (no IP address in it); the HTTPS
server listens on 127.0.0.1; the fetcher's resolver maps the names to 127.0.0.1, which the
system's DNS never would (.test is reserved), so an answer at all means the pinned address
was connected.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from connectors.calendar.fetch import FeedError, FeedFetcher, FetchLimits, pinned_transport
from tests.support.certificates import Authority

BODY = b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n"


@dataclass
class TLSServer:
    port: int = 0
    client_context: ssl.SSLContext = field(default_factory=ssl.create_default_context)
    server_names: list[str | None] = field(default_factory=list)  # SNI, per handshake
    hosts: list[str | None] = field(default_factory=list)  # Host header, per request


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TLSServer]:
    folder = tmp_path_factory.mktemp("tls")
    ca = Authority.make(folder, "ca", common_name="ucaas-sync test CA")
    issued = ca.issue(folder, "feeds", dns_names=["feeds.test"], chain=True)  # no IP address
    assert issued.chain is not None
    state = TLSServer(client_context=ssl.create_default_context(cafile=ca.cert_file))

    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(issued.chain, issued.key)

    def sni(_sock: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
        state.server_names.append(name)

    server_context.sni_callback = sni

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            state.hosts.append(self.headers.get("Host"))
            self.send_response(200)
            self.send_header("Content-Length", str(len(BODY)))
            self.send_header("Content-Type", "text/calendar")
            self.end_headers()
            self.wfile.write(BODY)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    # The handshake runs on accept; one the client refuses is dropped by the server loop.
    httpd.socket = server_context.wrap_socket(httpd.socket, server_side=True)
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def server(tls_server: TLSServer) -> TLSServer:
    tls_server.server_names.clear()
    tls_server.hosts.clear()
    return tls_server


class Resolver:
    """Every name to 127.0.0.1; records what it was asked."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append((host, port))
        return ["127.0.0.1"]


async def fetch_via(server: TLSServer, resolver: Resolver, url: str, *, allow: bool = True) -> Any:
    limits = FetchLimits(allow_private=allow, timeout_s=5.0)
    transport = pinned_transport(limits, resolver=resolver, verify=server.client_context)
    fetcher = FeedFetcher(limits, transport)
    try:
        return await fetcher.fetch(url)
    finally:
        await fetcher.aclose()


async def test_the_pinned_address_is_connected_with_the_host_name_for_tls_and_http(
    server: TLSServer,
) -> None:
    resolver = Resolver()
    got = await fetch_via(server, resolver, f"https://feeds.test:{server.port}/feed.ics")
    assert (got.status, got.body) == (200, BODY)
    assert resolver.asked == [("feeds.test", server.port)]
    assert server.server_names == ["feeds.test"]  # SNI: the name, not 127.0.0.1
    assert server.hosts == [f"feeds.test:{server.port}"]


@pytest.mark.parametrize("host", ["other.test", "127.0.0.1"])
async def test_the_certificate_is_still_checked_against_the_url_host(
    server: TLSServer, host: str
) -> None:
    """Same address, same certificate: valid for feeds.test only, so refused by any other
    name, and by the address itself (the check is by name, never by the pinned IP)."""
    with pytest.raises(FeedError) as caught:
        await fetch_via(server, Resolver(), f"https://{host}:{server.port}/feed.ics")
    assert caught.value.reason.startswith("ConnectError: ")
    # "Hostname mismatch" / "IP address mismatch": the CA is trusted, the name is not in it.
    assert "CERTIFICATE_VERIFY_FAILED" in caught.value.reason
    assert "mismatch" in caught.value.reason
    assert server.hosts == []  # no request was sent


async def test_private_addresses_not_allowed_are_refused_before_connecting(
    server: TLSServer,
) -> None:
    with pytest.raises(FeedError) as caught:
        await fetch_via(
            server, Resolver(), f"https://feeds.test:{server.port}/feed.ics", allow=False
        )
    assert caught.value.reason == (
        "feeds.test resolves to 127.0.0.1, a private or reserved address"
    )
    assert server.server_names == [] and server.hosts == []

"""FeedFetcher against a real HTTP server on 127.0.0.1 (a small threaded http.server):
no private addresses unless allowed, webcal as https, conditional GET, redirects, the size
cap, the total time limit, HTTP errors.
"""

from __future__ import annotations

import contextlib
import gzip
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from connectors.calendar import fetch
from connectors.calendar.fetch import FeedError, FeedFetcher, FetchLimits, forbidden, normalise

BODY = b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//tests//EN\r\nEND:VCALENDAR\r\n"
ETAG = '"feed-v1"'
LAST_MODIFIED = "Thu, 01 Oct 2026 08:00:00 GMT"


@dataclass
class Seen:
    path: str
    headers: dict[str, str]


@dataclass
class Server:
    """Routes by path; records every request it answers."""

    seen: list[Seen] = field(default_factory=list)
    body: bytes = BODY
    etag: str = ETAG
    port: int = 0

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def paths(self) -> list[str]:
        return [s.path for s in self.seen]


def _handler(server: Server) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            server.seen.append(Seen(self.path, {k.lower(): v for k, v in self.headers.items()}))
            path, _, query = self.path.partition("?")
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self._route(path, query)  # else the client gave up, as it should

        def _send(self, status: int, body: bytes = b"", **headers: str) -> None:
            self.send_response(status)
            named = {name.replace("_", "-"): value for name, value in headers.items()}
            named.setdefault("Content-Length", str(len(body)))
            for name, value in named.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def _route(self, path: str, query: str) -> None:
            if path == "/feed.ics":
                if self.headers.get("If-None-Match") == server.etag:
                    self._send(304, ETag=server.etag)
                    return
                self._send(
                    200,
                    server.body,
                    Content_Type="text/calendar; charset=utf-8",
                    ETag=server.etag,
                    Last_Modified=LAST_MODIFIED,
                )
            elif path.startswith("/hops/"):  # /hops/3 -> /hops/2 -> ... -> /feed.ics
                left = int(path.rsplit("/", 1)[1])
                target = f"{left - 1}" if left > 1 else "/feed.ics"  # relative, then absolute
                self._send(302, Location=target)
            elif path == "/to":
                self._send(301, Location=query)
            elif path.startswith("/status/"):
                self._send(int(path.rsplit("/", 1)[1]), b"<h1>Oops</h1>")
            elif path == "/declared-big":
                self._send(200, b"", Content_Length=str(50 * 1024 * 1024))
            elif path.startswith("/chunked/"):
                size = int(path.rsplit("/", 1)[1])
                self.send_response(200)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for start in range(0, size, 4096):
                    chunk = b"x" * min(4096, size - start)
                    self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                self.wfile.write(b"0\r\n\r\n")
            elif path == "/gzip-bomb":
                self._send(200, gzip.compress(b"\0" * (4 * 1024 * 1024)), Content_Encoding="gzip")
            elif path == "/trickle":  # a byte every 0.1 s, never done in time
                self.send_response(200)
                self.send_header("Content-Length", "1000")
                self.end_headers()
                for _ in range(100):
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.1)
            elif path == "/silent":  # never answers
                time.sleep(5)
            else:
                self._send(404)

    return Handler


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    state = Server()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def local(server: Server) -> Server:
    server.seen.clear()
    server.body, server.etag = BODY, ETAG
    return server


@pytest.fixture
async def fetcher() -> AsyncIterator[FeedFetcher]:
    """Allowed to reach loopback, as the tests need."""
    client = FeedFetcher(FetchLimits(allow_private=True, timeout_s=5.0))
    yield client
    await client.aclose()


async def fetch_with(limits: FetchLimits, url: str, **validators: str) -> fetch.Fetched:
    client = FeedFetcher(limits)
    try:
        return await client.fetch(url, **validators)
    finally:
        await client.aclose()


# --- private and reserved addresses ------------------------------------------------------


async def test_loopback_is_refused_by_default(local: Server) -> None:
    with pytest.raises(FeedError) as caught:
        await fetch_with(FetchLimits(), f"{local.root}/feed.ics")
    assert caught.value.reason == "127.0.0.1 resolves to 127.0.0.1, a private or reserved address"
    assert local.seen == []  # refused before any request


async def test_localhost_by_name_is_refused_by_default(local: Server) -> None:
    with pytest.raises(FeedError) as caught:
        await fetch_with(FetchLimits(), f"http://localhost:{local.port}/feed.ics")
    assert caught.value.reason.startswith("localhost resolves to ")
    assert caught.value.reason.endswith("a private or reserved address")
    assert local.seen == []


async def test_loopback_is_allowed_with_allow_private(local: Server, fetcher: FeedFetcher) -> None:
    got = await fetcher.fetch(f"{local.root}/feed.ics")
    assert (got.status, got.body, got.not_modified) == (200, BODY, False)
    assert (got.etag, got.last_modified) == (ETAG, LAST_MODIFIED)
    assert got.url == f"{local.root}/feed.ics"
    assert local.seen[0].headers["user-agent"] == fetch.USER_AGENT
    assert "text/calendar" in local.seen[0].headers["accept"]


@pytest.mark.parametrize(
    "address",
    [
        "10.0.0.1",
        "10.255.255.254",
        "172.16.0.1",
        "172.31.255.254",
        "192.168.0.1",
        "192.168.255.254",
        "169.254.169.254",  # cloud metadata
        "127.0.0.1",
        "127.1.2.3",
        "0.0.0.0",  # noqa: S104 - an address to refuse, not to bind
        "100.64.0.1",  # carrier-grade NAT
        "100.127.255.254",
        "192.0.2.10",  # documentation
        "198.18.0.1",  # benchmarking
        "240.0.0.1",  # reserved
        "255.255.255.255",
        "224.0.0.251",  # multicast
        "::1",
        "::",
        "fc00::1",
        "fd12:3456:789a::1",
        "fe80::1",
        "fe80::1%eth0",
        "ff02::1",
        "2001:db8::1",
        "::ffff:10.0.0.1",  # IPv4-mapped
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "::7f00:1",  # IPv4-compatible ::127.0.0.1 (reserved ::/8)
    ],
)
def test_private_and_reserved_addresses_are_forbidden(address: str) -> None:
    assert forbidden(address)


@pytest.mark.parametrize(
    "address",
    [
        "8.8.8.8",
        "1.1.1.1",
        "93.184.215.14",
        "172.32.0.1",  # just outside 172.16/12
        "100.128.0.1",  # just outside 100.64/10
        "::ffff:8.8.8.8",
        "2606:4700:4700::1111",
        "2a00:1450:4001:80b::200e",
    ],
)
def test_public_addresses_are_allowed(address: str) -> None:
    assert not forbidden(address)


@pytest.fixture
def loopback_is_public(monkeypatch: pytest.MonkeyPatch) -> None:
    """Treat 127.0.0.1 as a public address, so the checks run against the local server."""
    real = fetch.forbidden
    monkeypatch.setattr(
        fetch, "forbidden", lambda address: address != "127.0.0.1" and real(address)
    )


@pytest.mark.usefixtures("loopback_is_public")
@pytest.mark.parametrize(
    ("target", "reason"),
    [
        (
            "http://169.254.169.254/latest/meta-data/",
            "169.254.169.254 resolves to 169.254.169.254, a private or reserved address",
        ),
        ("http://10.1.2.3/feed.ics", "10.1.2.3 resolves to 10.1.2.3, a private or reserved"),
        ("http://[::1]:8080/feed.ics", "::1 resolves to ::1, a private or reserved address"),
        ("file:///etc/passwd", "not an http(s) or webcal URL: 'file:///etc/passwd'"),
        ("gopher://127.0.0.1:25/", "not an http(s) or webcal URL"),
    ],
)
async def test_a_redirect_to_a_forbidden_place_is_refused(
    local: Server, target: str, reason: str
) -> None:
    with pytest.raises(FeedError) as caught:
        await fetch_with(FetchLimits(), f"{local.root}/to?{target}")
    assert reason in caught.value.reason
    assert local.paths() == [f"/to?{target}"]  # the first hop was fetched, no other


@pytest.mark.usefixtures("loopback_is_public")
async def test_the_loopback_stand_in_is_fetched_when_public(local: Server) -> None:
    got = await fetch_with(FetchLimits(), f"{local.root}/hops/2")
    assert got.body == BODY


# DNS answering differently at the check and at the connect (rebinding) cannot happen:
# the connection goes to the address checked. tests/unit/test_feed_pinning.py shows it.


# --- URLs ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("webcal://calendar.example.com/team.ics", "https://calendar.example.com/team.ics"),
        ("WEBCAL://Calendar.Example.com/a.ics?k=1", "https://Calendar.Example.com/a.ics?k=1"),
        ("  https://calendar.example.com  ", "https://calendar.example.com/"),
        ("http://calendar.example.com/a.ics#frag", "http://calendar.example.com/a.ics"),
    ],
)
def test_urls_are_normalised(url: str, expected: str) -> None:
    assert normalise(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "ftp://calendar.example.com/a.ics",
        "file:///tmp/a.ics",
        "calendar.example.com/a.ics",
        "https://",
        "http://[::1/a.ics",
        "https://calendar.example.com:99999/a.ics",
        "",
    ],
)
def test_other_urls_are_refused(url: str) -> None:
    with pytest.raises(FeedError):
        normalise(url)


@pytest.mark.parametrize("allow_private", [False, True])
@pytest.mark.parametrize("host", ["0177.0.0.1", "1.2.3.256"])  # 127.0.0.1 in octal; no IPv4
async def test_a_host_httpx_cannot_parse_is_a_feed_error(host: str, allow_private: bool) -> None:
    """Such URLs pass registration (urlsplit takes them) but are never fetched: the resolver
    would read 0177.0.0.1 as 127.0.0.1, httpx refuses it as an invalid address."""
    assert normalise(f"http://{host}/feed.ics")
    with pytest.raises(FeedError) as caught:
        await fetch_with(FetchLimits(allow_private=allow_private), f"http://{host}/feed.ics")
    assert caught.value.reason == (
        f"not a valid URL (Invalid IPv4 address: '{host}'): 'http://{host}/feed.ics'"
    )


async def test_webcal_is_fetched_over_https() -> None:
    asked: list[httpx.URL] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(request.url)
        return httpx.Response(200, content=BODY)

    client = FeedFetcher(FetchLimits(allow_private=True), transport=httpx.MockTransport(answer))
    try:
        got = await client.fetch("webcal://calendar.example.com/team.ics")
    finally:
        await client.aclose()
    assert [str(u) for u in asked] == ["https://calendar.example.com/team.ics"]
    assert got.url == "https://calendar.example.com/team.ics"


# --- conditional GET -----------------------------------------------------------------------


async def test_conditional_get_returns_not_modified(local: Server, fetcher: FeedFetcher) -> None:
    first = await fetcher.fetch(f"{local.root}/feed.ics")
    again = await fetcher.fetch(
        f"{local.root}/feed.ics", etag=first.etag, last_modified=first.last_modified
    )
    assert again.not_modified and again.status == 304 and again.body == b""
    assert (again.etag, again.last_modified) == (ETAG, LAST_MODIFIED)
    assert "if-none-match" not in local.seen[0].headers
    assert local.seen[1].headers["if-none-match"] == ETAG
    assert local.seen[1].headers["if-modified-since"] == LAST_MODIFIED
    # Changed on the server: the whole body with the new validator.
    local.body, local.etag = BODY.replace(b"VERSION", b"X-V:2\r\nVERSION"), '"feed-v2"'
    changed = await fetcher.fetch(f"{local.root}/feed.ics", etag=ETAG)
    assert (changed.status, changed.etag, changed.body) == (200, '"feed-v2"', local.body)


async def test_validators_follow_redirects(local: Server, fetcher: FeedFetcher) -> None:
    got = await fetcher.fetch(f"{local.root}/hops/1", etag=ETAG)
    assert got.not_modified
    assert local.seen[-1].headers["if-none-match"] == ETAG


# --- redirects ----------------------------------------------------------------------------


async def test_redirects_are_followed_up_to_the_limit(local: Server) -> None:
    limits = FetchLimits(allow_private=True, max_redirects=3)
    got = await fetch_with(limits, f"{local.root}/hops/3")
    assert got.body == BODY and got.url == f"{local.root}/feed.ics"
    assert local.paths() == ["/hops/3", "/hops/2", "/hops/1", "/feed.ics"]


async def test_one_redirect_too_many_is_refused(local: Server) -> None:
    limits = FetchLimits(allow_private=True, max_redirects=2)
    with pytest.raises(FeedError) as caught:
        await fetch_with(limits, f"{local.root}/hops/3")
    assert caught.value.reason == "more than 2 redirects"
    assert len(local.seen) == 3


async def test_no_redirects_allowed(local: Server) -> None:
    with pytest.raises(FeedError, match="more than 0 redirects"):
        await fetch_with(FetchLimits(allow_private=True, max_redirects=0), f"{local.root}/hops/1")


# --- size ----------------------------------------------------------------------------------


async def test_a_declared_size_over_the_cap_is_refused_unread(local: Server) -> None:
    limits = FetchLimits(allow_private=True, max_bytes=1024 * 1024)
    with pytest.raises(FeedError) as caught:
        await fetch_with(limits, f"{local.root}/declared-big")
    assert caught.value.reason == f"feed is {50 * 1024 * 1024} bytes; at most {1024 * 1024}"


async def test_an_undeclared_size_over_the_cap_is_stopped(local: Server) -> None:
    limits = FetchLimits(allow_private=True, max_bytes=100_000)
    with pytest.raises(FeedError) as caught:
        await fetch_with(limits, f"{local.root}/chunked/300000")
    assert caught.value.reason == "feed is larger than 100000 bytes"
    exactly = await fetch_with(limits, f"{local.root}/chunked/100000")
    assert len(exactly.body) == 100_000


async def test_a_compressed_body_counts_as_decompressed(local: Server) -> None:
    limits = FetchLimits(allow_private=True, max_bytes=1024 * 1024)
    with pytest.raises(FeedError, match="larger than 1048576 bytes"):
        await fetch_with(limits, f"{local.root}/gzip-bomb")


# --- time ----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/trickle", "/silent"])
async def test_the_total_time_is_bounded(local: Server, path: str) -> None:
    """A byte at a time keeps every read within its timeout; the total limit ends it."""
    limits = FetchLimits(allow_private=True, timeout_s=0.8)
    started = time.monotonic()
    with pytest.raises(FeedError) as caught:
        await fetch_with(limits, f"{local.root}{path}")
    elapsed = time.monotonic() - started
    assert caught.value.reason in (
        "no complete answer within 0.8 s",
        "ReadTimeout: ",  # httpx's own read timeout may come first for a silent server
    )
    assert 0.7 < elapsed < 2.0


# --- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 503, 404, 403, 401])
async def test_an_http_error_names_the_status(
    local: Server, fetcher: FeedFetcher, status: int
) -> None:
    with pytest.raises(FeedError) as caught:
        await fetcher.fetch(f"{local.root}/status/{status}")
    assert caught.value.reason == f"HTTP {status} from 127.0.0.1"


async def test_nothing_listening_is_a_feed_error(fetcher: FeedFetcher) -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(FeedError) as caught:
        await fetcher.fetch(f"http://127.0.0.1:{port}/feed.ics")
    assert caught.value.reason.startswith("ConnectError")


async def test_an_unresolvable_host_is_a_feed_error() -> None:
    with pytest.raises(FeedError) as caught:
        await fetch_with(FetchLimits(), "https://no-such-host.invalid/feed.ics")
    assert caught.value.reason.startswith("cannot resolve no-such-host.invalid")

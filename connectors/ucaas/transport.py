"""An httpx transport that hands the wire to aiohttp's connection pool: what the benches'
plain concurrent clients (`bench/sandbox_capacity.py`, the capacity figures of
`bench/dispatch.py` and `bench/e2e.py`) measure the sandbox with. The service's client
drives aiohttp directly (`wire.py`).

httpx's own async pool loses throughput as concurrency grows (encode/httpx#3215): on this
project's 2-core machines, 64 concurrent calls to the sandbox ran at ~360 requests/s
through it and at ~2,600/s through this transport (`bench/sandbox_capacity.py`). The
client keeps httpx's API, models and test seam; only the transport differs.

Errors are mapped to httpx's classes by what they mean for the caller: a failure before
the request left (connect refused, connect timeout) becomes `ConnectError` /
`ConnectTimeout` (not sent), anything after (server disconnected, reset, read timeout,
truncated body) becomes `RemoteProtocolError` / `ReadTimeout` / `ReadError` (may have been
processed). `connectors.ucaas.core` relies on that split.
"""

from __future__ import annotations

import aiohttp
import httpx

from connectors.ucaas.wire import aiohttp_errors_as_httpx


class AiohttpTransport(httpx.AsyncBaseTransport):
    def __init__(self, limits: httpx.Limits | None = None) -> None:
        self._limits = limits or httpx.Limits(max_connections=100)
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        # Made on first use: an aiohttp session belongs to the running event loop.
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._limits.max_connections or 0,
                keepalive_timeout=self._limits.keepalive_expiry or 30.0,
                enable_cleanup_closed=True,
            )
            self._session = aiohttp.ClientSession(
                connector=connector, auto_decompress=False, skip_auto_headers=("User-Agent",)
            )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeout = request.extensions.get("timeout", {})
        body = await request.aread()
        with aiohttp_errors_as_httpx(request):
            async with self._client().request(
                request.method,
                str(request.url),
                headers=list(request.headers.multi_items()),
                data=body or None,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(
                    total=None,
                    connect=timeout.get("pool"),
                    sock_connect=timeout.get("connect"),
                    sock_read=timeout.get("read"),
                ),
            ) as response:
                content = await response.read()
                return httpx.Response(
                    status_code=response.status,
                    headers=list(response.raw_headers),
                    content=content,
                    request=request,
                    extensions={
                        "http_version": b"HTTP/1.1",
                        "reason_phrase": (response.reason or "").encode(),
                    },
                )
        raise AssertionError("unreachable")  # pragma: no cover - the errors are raised

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

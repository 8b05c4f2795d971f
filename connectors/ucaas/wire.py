"""The wire under the UCaaS client: one request out, its answer back, read whole.

`AiohttpWire` is what the service runs on: aiohttp's pool, driven directly. Going through
httpx's client on top of it (URL merging, cookies, auth and redirect flows, the event
hooks, a second Request and Response object per call) cost 260 µs of CPU per call on
this project's machines, more than the rest of a command's Python
(`bench/dispatch.py`; issue 17). `HttpxWire` runs the same calls through an httpx
client: tests pass a transport (`httpx.MockTransport`), which stays the test seam.

Both raise httpx's transport errors for what they mean to the caller: `ConnectError` /
`ConnectTimeout` when the request never left (safe to send again), `RemoteProtocolError`,
`ReadError`, `ReadTimeout` when it may have been processed. `connectors.ucaas.core`
relies on that split.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlencode

import aiohttp
import httpx
from yarl import URL


@dataclass(frozen=True)
class Answer:
    status: int
    reason: str
    headers: Mapping[str, str]  # case-insensitive
    content: bytes

    @property
    def is_success(self) -> bool:
        return 200 <= self.status < 300


class Wire(Protocol):
    async def send(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str],
        headers: Mapping[str, str],
        content: bytes | None = None,
    ) -> Answer:
        """`path` relative to the base URL, already quoted; `headers` name the content's
        type (`multipart` makes an upload's)."""
        ...

    async def aclose(self) -> None: ...


def multipart(form: Mapping[str, str], files: Mapping[str, tuple[str, bytes]]) -> tuple[bytes, str]:
    """The body and content type of a multipart upload, encoded by httpx (uploads are rare:
    the lobby's logo and background)."""
    request = httpx.Request("POST", "http://upload.invalid/", data=dict(form), files=files)
    return request.read(), request.headers["content-type"]


class AiohttpWire:
    def __init__(
        self,
        base_url: str,
        *,
        timeout: httpx.Timeout,
        max_connections: int,
        headers: Mapping[str, str],
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.max_connections = max_connections
        self.headers = dict(headers)
        self.timeout = aiohttp.ClientTimeout(
            total=None,
            connect=timeout.pool,
            sock_connect=timeout.connect,
            sock_read=timeout.read,
        )
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        # Made on first use: an aiohttp session belongs to the running event loop.
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self.max_connections, keepalive_timeout=30.0, enable_cleanup_closed=True
            )
            self._session = aiohttp.ClientSession(
                connector=connector, skip_auto_headers=("User-Agent",), timeout=self.timeout
            )
        return self._session

    async def send(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str],
        headers: Mapping[str, str],
        content: bytes | None = None,
    ) -> Answer:
        url = self.base_url + path + ("?" + urlencode(query) if query else "")
        sent = self.headers | dict(headers)
        with aiohttp_errors_as_httpx():
            # encoded=True: the path and query are quoted here already; yarl need not again
            async with self._client().request(
                method, URL(url, encoded=True), headers=sent, data=content, allow_redirects=False
            ) as response:
                body = await response.read()
                return Answer(response.status, response.reason or "", response.headers, body)
        raise AssertionError("unreachable")  # pragma: no cover - the block returns or raises

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


@contextmanager
def aiohttp_errors_as_httpx(request: httpx.Request | None = None) -> Iterator[None]:
    """aiohttp's failures as the httpx errors that say whether the request left."""
    try:
        yield
    except aiohttp.ConnectionTimeoutError as exc:
        raise httpx.ConnectTimeout(str(exc), request=request) from exc
    except aiohttp.ClientConnectorError as exc:
        raise httpx.ConnectError(str(exc), request=request) from exc
    except aiohttp.SocketTimeoutError as exc:
        raise httpx.ReadTimeout(str(exc), request=request) from exc
    except aiohttp.ClientPayloadError as exc:
        raise httpx.ReadError(str(exc), request=request) from exc
    except (aiohttp.ClientConnectionError, aiohttp.ClientResponseError) as exc:
        # Disconnected, reset or a broken answer after the request was written.
        raise httpx.RemoteProtocolError(str(exc), request=request) from exc
    except TimeoutError as exc:
        raise httpx.ReadTimeout(str(exc), request=request) from exc


class HttpxWire:
    """The calls through an httpx client (a test's transport, or any client given)."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def send(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str],
        headers: Mapping[str, str],
        content: bytes | None = None,
    ) -> Answer:
        response = await self.http.request(
            method, path, params=query, headers=headers, content=content
        )
        return Answer(
            response.status_code, response.reason_phrase, response.headers, response.content
        )

    async def aclose(self) -> None:
        await self.http.aclose()

"""The client's core with a fake transport: error mapping, auth, retries, secrets."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from connectors.ucaas import (
    AlreadyAssignedError,
    AlreadyExistsError,
    AuthenticationError,
    CallRecord,
    Credentials,
    ForbiddenError,
    MissingPrerequisiteError,
    NotAssignedError,
    NotFoundError,
    ProtocolError,
    RateLimitedError,
    RetryPolicy,
    ServerError,
    TransportError,
    UCaaSClient,
    ValidationError,
)
from connectors.ucaas.auth import TokenAuth
from connectors.ucaas.core import parse_retry_after

SECRET = "s3cr3t-Pa55"
Handler = Callable[[httpx.Request], httpx.Response]


def error(status: int, code: int, msg: str = "nope", **headers: str) -> httpx.Response:
    body = {
        "result": 0,
        "code": code,
        "msg": msg,
        "errors": [{"code": code, "field": "f", "msg": msg}],
    }
    return httpx.Response(status, json=body, headers=headers)


def client(handler: Handler, **kwargs: object) -> UCaaSClient:
    defaults: dict[str, object] = {
        "api_id": "app",
        "credentials": Credentials.of("a@b.test", SECRET),
        "transport": httpx.MockTransport(handler),
    }
    defaults.update(kwargs)
    return UCaaSClient("http://ucaas.test/ucaas/v1", **defaults)  # type: ignore[arg-type]


def with_login(handler: Handler) -> Handler:
    """Answer POST /login with a token counting up, everything else with `handler`."""
    issued = {"n": 0}

    def wrapped(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/login"):
            issued["n"] += 1
            return httpx.Response(
                200, json={"result": 1, "token": f"tok{issued['n']}", "user": {"user_id": "u"}}
            )
        return handler(request)

    return wrapped


@pytest.mark.parametrize(
    ("response", "expected", "code"),
    [
        (error(409, 1103), AlreadyExistsError, 1103),
        (error(409, 1261), AlreadyAssignedError, 1261),
        (error(409, 1260), NotAssignedError, 1260),
        (error(409, 1262), MissingPrerequisiteError, 1262),
        (error(400, 1615), MissingPrerequisiteError, 1615),
        (error(400, 1611), ValidationError, 1611),
        (error(403, 4030), ForbiddenError, 4030),
        (error(404, 4040), NotFoundError, 4040),
        (error(500, 5000), ServerError, 5000),
        (error(503, 5030), ServerError, 5030),
        (error(429, 4290, **{"Retry-After": "3"}), RateLimitedError, 4290),
        (httpx.Response(502, text="<html>bad gateway</html>"), ServerError, None),
        (httpx.Response(200, text="not json"), ProtocolError, None),
        (httpx.Response(200, json=[1, 2]), ProtocolError, None),
        (httpx.Response(200, json={"result": 0, "code": 1611, "msg": "x"}), ValidationError, 1611),
    ],
)
async def test_answers_map_to_error_classes(
    response: httpx.Response, expected: type[Exception], code: int | None
) -> None:
    async with client(lambda r: response, auth_mode="basic") as api:
        with pytest.raises(expected) as info:
            await api.core.request("POST", "/things")
    assert getattr(info.value, "code", None) == code
    assert SECRET not in str(info.value)


async def test_error_carries_every_code_and_retry_after() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        body = {
            "result": 0,
            "code": 1611,
            "msg": "Meeting Title is required.",
            "errors": [
                {"code": 1611, "field": "room_name", "msg": "a"},
                {"code": 1621, "field": "desc", "msg": "b"},
            ],
        }
        return httpx.Response(400, json=body, headers={"Retry-After": "7"})

    async with client(handler, auth_mode="basic") as api:
        with pytest.raises(ValidationError) as info:
            await api.core.request("POST", "/meetings")
    assert info.value.codes == {1611, 1621}
    assert info.value.retry_after == 7.0
    assert str(info.value) == "POST /meetings: HTTP 400 code 1611: Meeting Title is required."


def test_retry_after_forms() -> None:
    assert parse_retry_after("5") == 5.0
    assert parse_retry_after("0.5") == 0.5
    assert parse_retry_after(None) is None
    assert parse_retry_after("garbage") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past


async def test_transport_errors_say_whether_the_request_may_have_happened() -> None:
    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    def dropped(request: httpx.Request) -> httpx.Response:
        raise httpx.RemoteProtocolError("peer closed", request=request)

    async with client(refused, auth_mode="basic") as api:
        with pytest.raises(TransportError) as info:
            await api.core.request("POST", "/users")
    assert info.value.ambiguous is False
    async with client(dropped, auth_mode="basic") as api:
        with pytest.raises(TransportError) as info:
            await api.core.request("POST", "/users")
    assert info.value.ambiguous is True
    assert "may have been processed" in str(info.value)


async def test_token_is_cached_and_sent() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["Authorization"])
        assert request.headers["X-Api-Id"] == "app"
        return httpx.Response(200, json={"result": 1})

    async with client(with_login(handler)) as api:
        for _ in range(3):
            await api.core.request("GET", "/plans")
        assert isinstance(api.auth, TokenAuth)
        assert api.auth.logins == 1
    assert seen == ["Token tok1"] * 3


async def test_401_logs_in_again_once_then_gives_up() -> None:
    calls: list[str] = []

    def expired_once(request: httpx.Request) -> httpx.Response:
        calls.append(request.headers["Authorization"])
        if request.headers["Authorization"] == "Token tok1":
            return error(401, 4011)
        return httpx.Response(200, json={"result": 1})

    async with client(with_login(expired_once)) as api:
        assert (await api.core.request("GET", "/plans")) == {"result": 1}
    assert calls == ["Token tok1", "Token tok2"]

    async with client(with_login(lambda r: error(401, 4010))) as api:
        with pytest.raises(AuthenticationError):
            await api.core.request("GET", "/plans")
        assert isinstance(api.auth, TokenAuth)
        assert api.auth.logins == 2  # one login, one retry: no loop


async def test_token_refreshed_before_lifetime_ends() -> None:
    now = {"t": 1000.0}
    async with client(with_login(lambda r: httpx.Response(200, json={"result": 1}))) as api:
        assert isinstance(api.auth, TokenAuth)
        api.auth.clock = lambda: now["t"]
        api.auth.lifetime_s = 900
        api.auth.refresh_margin_s = 60
        await api.core.request("GET", "/plans")
        now["t"] += 800  # still 100 s left: more than the margin
        await api.core.request("GET", "/plans")
        assert api.auth.logins == 1
        now["t"] += 50  # 50 s left: inside the margin, refresh first
        await api.core.request("GET", "/plans")
        assert api.auth.logins == 2


async def test_basic_auth_header() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["Authorization"].startswith("Basic ")
        return httpx.Response(200, json={"result": 1})

    async with client(handler, auth_mode="basic") as api:
        await api.core.request("GET", "/plans")


async def test_reads_retry_and_honour_retry_after_writes_do_not() -> None:
    attempts = {"GET": 0, "POST": 0}

    def flaky(request: httpx.Request) -> httpx.Response:
        attempts[request.method] += 1
        if attempts[request.method] < 3:
            return error(503, 5030)
        return httpx.Response(200, json={"result": 1})

    policy = RetryPolicy(attempts=3, timeout_s=5, wait_initial_s=0.001, wait_max_s=0.002)
    async with client(flaky, auth_mode="basic", retry=policy) as api:
        assert (await api.core.request("GET", "/plans")) == {"result": 1}
        with pytest.raises(ServerError):
            await api.core.request("POST", "/users")  # may have been done: not repeated
    assert attempts == {"GET": 3, "POST": 1}


async def test_429_is_retried_after_the_servers_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr("asyncio.sleep", fake_sleep)
    answers = iter(
        [error(429, 4290, **{"Retry-After": "2"}), httpx.Response(200, json={"result": 1})]
    )
    policy = RetryPolicy(attempts=3, timeout_s=10, wait_initial_s=0.001, wait_max_s=0.002)
    async with client(lambda r: next(answers), auth_mode="basic", retry=policy) as api:
        assert (await api.core.request("POST", "/users")) == {"result": 1}
    assert slept == [2.0]


async def test_call_hook_sees_every_call_without_secrets() -> None:
    records: list[CallRecord] = []
    async with client(with_login(lambda r: error(404, 4040)), on_call=records.append) as api:
        with pytest.raises(NotFoundError):
            await api.core.request("GET", "/users/{user_id}", path={"user_id": "a/b"})
    assert [(r.method, r.route, r.status, r.code) for r in records] == [
        ("POST", "/login", 200, None),
        ("GET", "/users/{user_id}", 404, 4040),
    ]
    assert records[1].path == "/users/a%2Fb"  # ids are quoted into the path
    assert all(SECRET not in repr(r) for r in records)


def test_credentials_never_show_their_password() -> None:
    creds = Credentials.of("a@b.test", SECRET)
    assert SECRET not in repr(creds)
    assert SECRET not in str(creds)
    assert SECRET not in repr(TokenAuth(creds))


async def test_login_request_body_is_never_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    async with client(with_login(lambda r: httpx.Response(200, json={"result": 1}))) as api:
        await api.core.request("GET", "/plans")
    assert caplog.records, "the client logs its calls"
    assert all(SECRET not in r.getMessage() for r in caplog.records)


async def test_multipart_when_files_are_sent() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["content-type"].startswith("multipart/form-data")
        body = request.content
        assert b'name="data"' in body and b'"options"' in body
        assert b'name="img_file_0"' in body and b"PNGDATA" in body
        return httpx.Response(200, json={"result": 1})

    async with client(handler, auth_mode="basic") as api:
        await api.core.request(
            "POST",
            "/meetings/{meeting_id}/lobby",
            path={"meeting_id": "m1"},
            json={"options": {"image": True}},
            files={"img_file_0": ("a.png", b"PNGDATA")},
        )


async def test_iterate_walks_every_page() -> None:
    from connectors.ucaas.models.base import ApiModel, ListQuery

    class Row(ApiModel):
        n: int

    rows = [{"n": i} for i in range(7)]

    def handler(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params["page"])
        length = int(request.url.params["page_length"])
        chunk = rows[(page - 1) * length : page * length]
        return httpx.Response(200, json={"result": 1, "things": chunk, "search": {}})

    async with client(handler, auth_mode="basic") as api:
        got = [
            r.n async for r in api.core.iterate("/things", "things", Row, ListQuery(page_length=3))
        ]
    assert got == list(range(7))
    assert json.dumps(got)

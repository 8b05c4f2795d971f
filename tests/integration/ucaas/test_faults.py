"""Fault injection: each error class raised through the real HTTP stack, Retry-After honoured."""

from __future__ import annotations

import time

import pytest

from connectors.ucaas import (
    AuthenticationError,
    Credentials,
    ForbiddenError,
    RateLimitedError,
    RetryPolicy,
    ServerError,
    TransportError,
    UCaaSClient,
)
from connectors.ucaas.models.customers import CustomerQuery, NewCustomer
from sandbox.seed import DEFAULT_ADMIN_EMAIL, DEFAULT_ADMIN_PASSWORD, DEFAULT_API_ID
from tests.integration.ucaas.factories import customer_payload, new_customer, portal_auth
from tests.support.sandbox_server import SandboxAdmin


def basic_client(sandbox: SandboxAdmin, **kwargs: object) -> UCaaSClient:
    return UCaaSClient(
        sandbox.base_url,
        api_id=DEFAULT_API_ID,
        credentials=Credentials.of(DEFAULT_ADMIN_EMAIL, DEFAULT_ADMIN_PASSWORD),
        auth_mode="basic",
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_error_rate_raises_server_error(sandbox: SandboxAdmin, status: int) -> None:
    sandbox.faults(error_rate=1.0, error_status=status)
    async with basic_client(sandbox) as api:
        with pytest.raises(ServerError) as info:
            await api.customers.list()
    assert info.value.status == status
    assert info.value.code == (5030 if status == 503 else 5000)


async def test_rate_limit_answers_429_with_retry_after(sandbox: SandboxAdmin) -> None:
    sandbox.faults(rate_limit=2, retry_after_s=3)
    async with basic_client(sandbox) as api:
        await api.customers.list()
        await api.customers.list()
        with pytest.raises(RateLimitedError) as info:
            await api.customers.list()
    assert info.value.status == 429
    assert info.value.retry_after == 3.0
    assert sandbox.calls()["faulted"] == {"GET /customers": 1}


async def test_client_waits_retry_after_then_succeeds(sandbox: SandboxAdmin) -> None:
    # 1 request a second: the second call in the same second is refused with Retry-After 1;
    # the client waits that long (not its own tiny backoff) and then gets through.
    sandbox.faults(rate_limit=1, retry_after_s=1)
    policy = RetryPolicy(attempts=3, timeout_s=10, wait_initial_s=0.001, wait_max_s=0.002)
    async with basic_client(sandbox, retry=policy) as api:
        await api.customers.list()
        started = time.monotonic()
        await api.customers.list()
        waited = time.monotonic() - started
    assert waited >= 0.9
    assert sum(sandbox.calls()["faulted"].values()) >= 1


async def test_dropped_before_processing_changes_nothing(sandbox: SandboxAdmin) -> None:
    sandbox.faults(drop_rate=1.0, drop_phase="before", only=["POST /customers"])
    async with basic_client(sandbox) as api:
        with pytest.raises(TransportError) as info:
            await api.customers.add(
                NewCustomer.model_validate(customer_payload(customer_code="C-1"))
            )
        assert info.value.ambiguous  # the client cannot know which phase it was
        sandbox.faults(drop_rate=0)
        assert await api.customers.find_by_code("C-1") is None


async def test_dropped_after_processing_leaves_the_object(sandbox: SandboxAdmin) -> None:
    """The ambiguous case the sync must reconcile: the call worked, the answer was lost."""
    sandbox.faults(drop_rate=1.0, drop_phase="after", only=["POST /customers"])
    async with basic_client(sandbox) as api:
        with pytest.raises(TransportError) as info:
            await api.customers.add(
                NewCustomer.model_validate(customer_payload(customer_code="C-2"))
            )
        assert info.value.ambiguous
        found = await api.customers.find_by_code("C-2")  # GETs are not dropped (`only`)
    assert found is not None


async def test_latency_is_injected(sandbox: SandboxAdmin) -> None:
    sandbox.faults(latency_ms=120, jitter_ms=30)
    async with basic_client(sandbox) as api:
        started = time.monotonic()
        await api.customers.list()
        elapsed = time.monotonic() - started
    assert 0.12 <= elapsed < 1.0


async def test_faults_scope_and_unknown_settings(sandbox: SandboxAdmin) -> None:
    sandbox.faults(error_rate=1.0, only=["POST "])
    async with basic_client(sandbox) as api:
        await api.customers.list(CustomerQuery())  # GET untouched
    response = sandbox.api("POST", "/customers", customer_payload())
    assert response.status_code == 503
    import httpx

    bad = httpx.post(
        f"{sandbox.root}/_sandbox/faults",
        json={"error_rate": 2, "nonsense": 1},
        auth=(DEFAULT_ADMIN_EMAIL, DEFAULT_ADMIN_PASSWORD),
    )
    assert bad.status_code == 400
    assert "error_rate" in bad.json()["msg"] and "nonsense" in bad.json()["msg"]


async def test_expired_token_logs_in_again(sandbox: SandboxAdmin) -> None:
    sandbox.faults(token_lifetime_s=1)
    async with UCaaSClient(
        sandbox.base_url,
        api_id=DEFAULT_API_ID,
        credentials=Credentials.of(DEFAULT_ADMIN_EMAIL, DEFAULT_ADMIN_PASSWORD),
        token_lifetime_s=3600,  # the client believes it has an hour: only the 401 tells
    ) as api:
        await api.customers.list()
        time.sleep(1.1)
        await api.customers.list()
        assert getattr(api.auth, "logins", None) == 2


async def test_wrong_password_and_admin_routes_guarded(sandbox: SandboxAdmin) -> None:
    async with UCaaSClient(
        sandbox.base_url,
        api_id=DEFAULT_API_ID,
        credentials=Credentials.of(DEFAULT_ADMIN_EMAIL, "wrong"),
    ) as api:
        with pytest.raises(AuthenticationError) as info:
            await api.customers.list()
    assert info.value.code == 4010
    assert "wrong" not in str(info.value)
    import httpx

    assert httpx.get(f"{sandbox.root}/_sandbox/state").status_code == 401
    customer = new_customer(sandbox)
    not_admin = httpx.get(f"{sandbox.root}/_sandbox/state", auth=portal_auth(customer))
    assert not_admin.status_code == 403


async def test_customer_admin_cannot_use_admin_routes(sandbox: SandboxAdmin) -> None:
    customer = new_customer(sandbox)
    async with UCaaSClient(
        sandbox.base_url, api_id=DEFAULT_API_ID, credentials=Credentials.of(*portal_auth(customer))
    ) as portal:
        with pytest.raises(ForbiddenError):
            await portal.customers.list()


async def test_suspended_customer_cannot_log_in(sandbox: SandboxAdmin, api: UCaaSClient) -> None:
    customer = new_customer(sandbox)
    sandbox.api("PATCH", f"/customers/{customer['customer']['customer_id']}", {"status": "S"})
    async with api.as_account(Credentials.of(*portal_auth(customer))) as portal:
        with pytest.raises(ForbiddenError) as info:
            await portal.customers.list()
    assert info.value.code == 4014


async def test_read_timeout_is_ambiguous(sandbox: SandboxAdmin) -> None:
    sandbox.faults(latency_ms=600)
    async with basic_client(sandbox, timeout=0.2) as api:
        with pytest.raises(TransportError) as info:
            await api.customers.add(NewCustomer.model_validate(customer_payload()))
    assert info.value.ambiguous  # the call may still land: look it up before creating again
    assert info.value.reason == "ReadTimeout"


async def test_refused_connection_was_not_sent() -> None:
    from service.devtools.processes import free_port

    url = f"http://127.0.0.1:{free_port()}/ucaas/v1"  # nothing listens there
    async with UCaaSClient(
        url, api_id=DEFAULT_API_ID, credentials=Credentials.of("a@b.test", "pw"), auth_mode="basic"
    ) as api:
        with pytest.raises(TransportError) as info:
            await api.customers.list()
    assert info.value.ambiguous is False
    assert info.value.reason == "ConnectError"

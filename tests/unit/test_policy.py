"""From an attempt's error to its outcome: retry, wait or park, and the bounds on each."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from connectors.ucaas import (
    AlreadyAssignedError,
    AlreadyExistsError,
    ApiError,
    AuthenticationError,
    ForbiddenError,
    MissingPrerequisiteError,
    NotAssignedError,
    NotFoundError,
    ProtocolError,
    RateLimitedError,
    ServerError,
    TransportError,
    ValidationError,
)
from connectors.ucaas.errors import ApiErrorDetail
from service.outbox.claims import Claim
from service.outbox.failures import bounded, is_outage, outcome_of, wait_delay_s
from service.outbox.outcomes import Dead, Done, Retry, Wait, WaitForError
from service.settings import DispatcherSettings

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
SETTINGS = DispatcherSettings(
    max_attempts=4,
    max_age_s=3600.0,
    backoff_base_s=1.0,
    backoff_cap_s=60.0,
    wait_cap_s=30.0,
    max_wait_s=7200.0,
)


def claim(attempts: int = 1, age_s: float = 10.0, in_doubt: bool = False) -> Claim:
    return Claim(
        id=7,
        entity="user:CRM-1:E1",
        kind="create_user",
        tenant="CRM-1",
        payload={},
        attempts=attempts,
        in_doubt=in_doubt,
        created_at=NOW - timedelta(seconds=age_s),
        owner="test",
    )


def api_error(
    cls: type[ApiError],
    status: int,
    code: int | None = None,
    message: str = "nope",
    retry_after: float | None = None,
) -> ApiError:
    return cls(
        method="POST",
        route="/users",
        status=status,
        code=code,
        api_message=message,
        errors=(ApiErrorDetail(code, "email", message),) if code is not None else (),
        retry_after=retry_after,
    )


def decide(
    exc: BaseException,
    c: Claim | None = None,
    *,
    outage: bool = False,
    draw: float = 1.0,
) -> object:
    return outcome_of(exc, c or claim(), SETTINGS, now=NOW, outage=outage, rand=lambda: draw)


# -- 429 ------------------------------------------------------------------------------------
def test_rate_limited_retries_uncounted_no_sooner_than_retry_after() -> None:
    exc = api_error(RateLimitedError, 429, message="slow down", retry_after=12.0)
    for draw in (0.0, 0.5, 1.0):
        outcome = decide(exc, claim(attempts=1), draw=draw)
        assert isinstance(outcome, Retry)
        assert outcome.code == "429"
        assert outcome.message == "slow down"
        assert outcome.count is False
        assert outcome.ambiguous is False  # the API refused: nothing was done
        assert outcome.delay_s >= 12.0


def test_rate_limited_without_retry_after_backs_off() -> None:
    exc = api_error(RateLimitedError, 429)
    outcome = decide(exc, claim(attempts=3), draw=1.0)
    assert isinstance(outcome, Retry)
    assert outcome.delay_s == pytest.approx(4.0)  # base 1 s * 2**(3-1)
    assert outcome.count is False


def test_rate_limited_stays_uncounted_during_an_outage() -> None:
    outcome = decide(api_error(RateLimitedError, 429, retry_after=1.0), outage=True)
    assert isinstance(outcome, Retry)
    assert outcome.count is False


# -- no answer -------------------------------------------------------------------------------
@pytest.mark.parametrize("ambiguous", [True, False])
def test_transport_error_carries_the_ambiguous_flag(ambiguous: bool) -> None:
    exc = TransportError("POST", "/users", "read timeout", ambiguous=ambiguous)
    outcome = decide(exc, claim(attempts=2), draw=0.5)
    assert isinstance(outcome, Retry)
    assert outcome.code == "transport"
    assert outcome.ambiguous is ambiguous
    assert outcome.count is True
    assert outcome.delay_s == pytest.approx(1.0)  # half of base * 2**(2-1)
    assert "read timeout" in outcome.message


def test_transport_error_is_not_counted_while_the_api_is_down() -> None:
    exc = TransportError("GET", "/users", "connect refused", ambiguous=False)
    outcome = decide(exc, outage=True)
    assert isinstance(outcome, Retry)
    assert outcome.count is False
    assert outcome.ambiguous is False


# -- 5xx -------------------------------------------------------------------------------------
def test_server_error_is_counted_and_in_doubt() -> None:
    outcome = decide(api_error(ServerError, 503, message="unavailable"), draw=1.0)
    assert isinstance(outcome, Retry)
    assert outcome.code == "503"
    assert outcome.count is True
    assert outcome.ambiguous is True  # a 5xx may come after the write happened
    assert outcome.delay_s == pytest.approx(1.0)


def test_server_error_is_not_counted_during_an_outage() -> None:
    outcome = decide(api_error(ServerError, 500), outage=True)
    assert isinstance(outcome, Retry)
    assert outcome.count is False


def test_server_error_honours_retry_after() -> None:
    outcome = decide(api_error(ServerError, 503, retry_after=30.0), draw=0.0)
    assert isinstance(outcome, Retry)
    assert outcome.delay_s == 30.0


def test_outage_errors_are_5xx_and_no_answer_only() -> None:
    assert is_outage(api_error(ServerError, 502))
    assert is_outage(TransportError("GET", "/x", "reset", ambiguous=True))
    assert not is_outage(api_error(RateLimitedError, 429))
    assert not is_outage(api_error(ValidationError, 400))
    assert not is_outage(WaitForError("no customer"))
    assert not is_outage(RuntimeError("bug"))


# -- prerequisites ---------------------------------------------------------------------------
def test_wait_for_error_waits_with_its_reason() -> None:
    outcome = decide(WaitForError("tenant CRM-1 has no UCaaS customer yet"))
    assert isinstance(outcome, Wait)
    assert outcome.reason == "tenant CRM-1 has no UCaaS customer yet"
    assert outcome.delay_s > 0


@pytest.mark.parametrize("code", [1262, 1615, 1616, 1617, 1618])
def test_missing_prerequisite_from_the_api_waits(code: int) -> None:
    exc = api_error(MissingPrerequisiteError, 400, code, message="no active subscription")
    outcome = decide(exc, claim(attempts=9))  # however many attempts: waiting is not failing
    assert isinstance(outcome, Wait)
    assert outcome.reason == f"{code}: no active subscription"


def test_the_wait_grows_with_age_up_to_the_cap() -> None:
    young = wait_delay_s(0.0, SETTINGS, rand=lambda: 1.0)
    older = wait_delay_s(20.0, SETTINGS, rand=lambda: 1.0)
    old = wait_delay_s(10_000.0, SETTINGS, rand=lambda: 1.0)
    assert young == pytest.approx(1.0)  # never under the backoff base
    assert older == pytest.approx(10.0)  # half the age
    assert old == pytest.approx(30.0)  # the cap
    # Jitter keeps it within [half, all] of the grown delay.
    assert wait_delay_s(20.0, SETTINGS, rand=lambda: 0.0) == pytest.approx(5.0)


def test_a_waiting_claims_delay_uses_its_age() -> None:
    outcome = decide(WaitForError("no seat"), claim(age_s=40.0), draw=1.0)
    assert isinstance(outcome, Wait)
    assert outcome.delay_s == pytest.approx(20.0)


# -- park ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (api_error(ValidationError, 400, 1001, "email is invalid"), "1001"),
        (api_error(ValidationError, 422), "422"),
        (api_error(ForbiddenError, 403), "403"),
        (api_error(AuthenticationError, 401, message="bad credentials"), "401"),
        (api_error(ProtocolError, 200, message="not JSON"), "200"),
        (api_error(NotFoundError, 404), "404"),
        (api_error(AlreadyExistsError, 400, 1103, "e-mail taken"), "1103"),
        (api_error(AlreadyAssignedError, 400, 1261), "1261"),
        (api_error(NotAssignedError, 400, 1260), "1260"),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, Exception) else v,
)
def test_permanent_and_unreconciled_errors_park_with_the_api_code(exc: ApiError, code: str) -> None:
    outcome = decide(exc, claim(attempts=1))
    assert isinstance(outcome, Dead)
    assert outcome.code == code
    assert exc.api_message in outcome.message


def test_parking_does_not_depend_on_an_outage() -> None:
    assert isinstance(decide(api_error(ForbiddenError, 403), outage=True), Dead)


# -- anything else ---------------------------------------------------------------------------
def test_an_unknown_exception_retries_counted_and_in_doubt() -> None:
    outcome = decide(KeyError("customer_id"), claim(attempts=2), draw=1.0)
    assert isinstance(outcome, Retry)
    assert outcome.code == "error"
    assert outcome.message == "KeyError: 'customer_id'"
    assert outcome.count is True
    assert outcome.ambiguous is True
    assert outcome.delay_s == pytest.approx(2.0)


def test_an_unknown_exceptions_message_is_truncated() -> None:
    outcome = decide(RuntimeError("x" * 5000))
    assert isinstance(outcome, Retry)
    assert len(outcome.message) == 500


# -- bounds ----------------------------------------------------------------------------------
def retry(count: bool = True) -> Retry:
    return Retry("503", "unavailable", 1.0, ambiguous=True, count=count)


def test_retries_park_after_max_attempts_counted_failures() -> None:
    for attempts in range(1, SETTINGS.max_attempts):
        assert bounded(retry(), claim(attempts=attempts), SETTINGS, now=NOW) == retry()
    parked = bounded(retry(), claim(attempts=SETTINGS.max_attempts), SETTINGS, now=NOW)
    assert isinstance(parked, Dead)
    assert parked.code == "503"
    assert parked.message == "gave up after 4 attempts: unavailable"


def test_uncounted_retries_do_not_park_on_attempts() -> None:
    outcome = bounded(retry(count=False), claim(attempts=50), SETTINGS, now=NOW)
    assert outcome == retry(count=False)


@pytest.mark.parametrize("count", [True, False])
def test_retries_park_past_max_age(count: bool) -> None:
    young = claim(attempts=1, age_s=SETTINGS.max_age_s - 1)
    old = claim(attempts=1, age_s=SETTINGS.max_age_s + 1)
    assert isinstance(bounded(retry(count), young, SETTINGS, now=NOW), Retry)
    parked = bounded(retry(count), old, SETTINGS, now=NOW)
    assert isinstance(parked, Dead)
    assert parked.code == "503"
    assert parked.message == "gave up after 3601 s: unavailable"


def test_waits_park_only_past_max_wait() -> None:
    wait = Wait("no seat", 5.0)
    # Older than max_age_s does not park a waiting command: it has its own limit.
    assert bounded(wait, claim(age_s=SETTINGS.max_age_s + 10), SETTINGS, now=NOW) == wait
    assert bounded(wait, claim(attempts=99), SETTINGS, now=NOW) == wait
    parked = bounded(wait, claim(age_s=SETTINGS.max_wait_s + 1), SETTINGS, now=NOW)
    assert isinstance(parked, Dead)
    assert parked.code == "waited"
    assert "no seat" in parked.message


def test_done_and_dead_pass_through() -> None:
    old = claim(attempts=99, age_s=SETTINGS.max_wait_s * 2)
    assert bounded(Done(), old, SETTINGS, now=NOW) == Done()
    dead = Dead("403", "forbidden")
    assert bounded(dead, old, SETTINGS, now=NOW) is dead

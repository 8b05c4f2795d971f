"""From an attempt's error to what happens next: retry, wait, or park. Pure functions.

- No answer or 5xx: retry with backoff (counted, unless the API is down for everyone);
  the call may have acted, so the next attempt looks the object up first.
- 429: retry after Retry-After, not counted (the API asked us to slow down).
- A missing prerequisite (no customer, subscription, seat, licence or login yet): wait,
  re-checked with a delay that grows with the command's age, up to a cap.
- Validation, forbidden, auth, and anything the executor did not reconcile: park as dead
  with the API's code and message.
- Bounded: past `max_attempts` counted failures, or older than `max_age_s` (`max_wait_s`
  for a waiting command), the command is parked with the last error.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime

from connectors.ucaas import (
    ApiError,
    PermanentError,
    PrerequisiteError,
    RateLimitedError,
    ReconcileError,
    ServerError,
    TransportError,
)
from service.backoff import backoff_s
from service.outbox.claims import Claim
from service.outbox.outcomes import Dead, Outcome, Retry, Wait, WaitForError
from service.settings import DispatcherSettings


def is_outage(exc: BaseException) -> bool:
    """Failures that say the API is down (not that this command is wrong)."""
    return isinstance(exc, ServerError | TransportError)


def wait_delay_s(
    age_s: float, settings: DispatcherSettings, rand: Callable[[], float] = random.random
) -> float:
    grown = min(settings.wait_cap_s, max(settings.backoff_base_s, age_s / 2))
    return grown * (0.5 + rand() / 2)


def outcome_of(
    exc: BaseException,
    claim: Claim,
    settings: DispatcherSettings,
    *,
    now: datetime,
    outage: bool,
    rand: Callable[[], float] = random.random,
) -> Outcome:
    age_s = (now - claim.created_at).total_seconds()
    if isinstance(exc, WaitForError):
        return Wait(str(exc), wait_delay_s(age_s, settings, rand))
    if isinstance(exc, PrerequisiteError) and isinstance(exc, ApiError):
        return Wait(f"{exc.code}: {exc.api_message}", wait_delay_s(age_s, settings, rand))

    def delay(retry_after: float | None = None) -> float:
        return backoff_s(
            claim.attempts,
            base_s=settings.backoff_base_s,
            cap_s=settings.backoff_cap_s,
            retry_after_s=retry_after,
            rand=rand,
        )

    if isinstance(exc, RateLimitedError):
        return Retry("429", exc.api_message, delay(exc.retry_after), ambiguous=False, count=False)
    if isinstance(exc, TransportError):
        return Retry("transport", str(exc), delay(), ambiguous=exc.ambiguous, count=not outage)
    if isinstance(exc, ServerError):
        return Retry(
            str(exc.status), str(exc), delay(exc.retry_after), ambiguous=True, count=not outage
        )
    if isinstance(exc, ReconcileError | PermanentError) and isinstance(exc, ApiError):
        return Dead(str(exc.code or exc.status), str(exc))
    # A bug or a database hiccup: retry, bounded, and look before creating again.
    return Retry("error", f"{type(exc).__name__}: {exc}"[:500], delay(), ambiguous=True)


def bounded(
    outcome: Outcome, claim: Claim, settings: DispatcherSettings, *, now: datetime
) -> Outcome:
    """Park what has failed too often or waited too long."""
    age_s = (now - claim.created_at).total_seconds()
    if isinstance(outcome, Retry):
        too_many = outcome.count and claim.attempts >= settings.max_attempts
        if too_many or age_s > settings.max_age_s:
            why = f"{claim.attempts} attempts" if too_many else f"{age_s:.0f} s"
            return Dead(outcome.code, f"gave up after {why}: {outcome.message}")
    if isinstance(outcome, Wait) and age_s > settings.max_wait_s:
        return Dead("waited", f"waited {age_s:.0f} s: {outcome.reason}")
    return outcome

"""Errors of the UCaaS client, named by what the caller should do next.

    UCaaSError
    ├── RetryableError          try again later, with backoff
    │   ├── TransportError      no answer: connect/read timeout, dropped connection.
    │   │                       `.ambiguous` is True when the request may have been
    │   │                       processed (look the object up before creating again)
    │   ├── ServerError         5xx: the API failed
    │   └── RateLimitedError    429: wait `.retry_after` seconds (from Retry-After)
    ├── ReconcileError          the API's state is not what the caller assumed: look the
    │   │                       object up and adopt it, do not create it again
    │   ├── AlreadyExistsError  1103 user e-mail, 1311 customer code, 1333 contact
    │   │                       e-mail, 1721 contact, 1805/1810 group name
    │   ├── AlreadyAssignedError  1261 licence already assigned
    │   ├── NotAssignedError    1260 licence not assigned
    │   └── NotFoundError       404: the object is gone (or was never visible)
    ├── PrerequisiteError       something else must happen first: no active
    │                           subscription (1615/1616), no licence (1617/1618), no
    │                           free seat (1262). Wait for it; do not burn retries
    └── PermanentError          park: a person must fix data, configuration or rights
        ├── ValidationError     400 with the API's codes and messages in `.errors`
        ├── AuthenticationError 401 that a fresh login did not cure
        ├── ForbiddenError      403: the credentials' role may not do this
        └── ProtocolError       an answer that is not the documented JSON

Every `ApiError` (the ones that carry an HTTP answer) has `.status`, `.code` (the API's
numeric code, or None), `.api_message`, `.errors` (every code the API listed), `.method`,
`.route` and `.retry_after` (seconds from a Retry-After header, or None). Messages never
contain request bodies, headers or credentials.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ApiErrorDetail:
    code: int | None
    field: str | None
    message: str


class UCaaSError(Exception):
    """Base of every error the client raises."""


class RetryableError(UCaaSError):
    """Try again later. `retry_after` is the server's hint in seconds, if it gave one."""

    retry_after: float | None = None


class ReconcileError(UCaaSError):
    """The API's state differs from the caller's assumption: look up, adopt, carry on."""


class PrerequisiteError(UCaaSError):
    """Another object must exist or change first (subscription, licence, seat)."""


class PermanentError(UCaaSError):
    """Retrying the same call will fail the same way: park it for a person."""


class TransportError(RetryableError):
    def __init__(self, method: str, route: str, reason: str, *, ambiguous: bool) -> None:
        self.method = method
        self.route = route
        self.reason = reason
        self.ambiguous = ambiguous
        sent = "may have been processed" if ambiguous else "was not sent"
        super().__init__(f"{method} {route}: no answer ({reason}); the request {sent}")


class ApiError(UCaaSError):
    """An HTTP answer that says the call failed."""

    def __init__(
        self,
        *,
        method: str,
        route: str,
        status: int,
        code: int | None,
        api_message: str,
        errors: tuple[ApiErrorDetail, ...] = (),
        retry_after: float | None = None,
    ) -> None:
        self.method = method
        self.retry_after = retry_after
        self.route = route
        self.status = status
        self.code = code
        self.api_message = api_message
        self.errors = errors
        code_text = f" code {code}" if code is not None else ""
        super().__init__(f"{method} {route}: HTTP {status}{code_text}: {api_message}")

    @property
    def codes(self) -> frozenset[int]:
        return frozenset(e.code for e in self.errors if e.code is not None) | (
            {self.code} if self.code is not None else set()
        )


class ServerError(ApiError, RetryableError):
    pass


class RateLimitedError(ApiError, RetryableError):
    pass


class AlreadyExistsError(ApiError, ReconcileError):
    pass


class AlreadyAssignedError(ApiError, ReconcileError):
    pass


class NotAssignedError(ApiError, ReconcileError):
    pass


class NotFoundError(ApiError, ReconcileError):
    pass


class MissingPrerequisiteError(ApiError, PrerequisiteError):
    pass


class ValidationError(ApiError, PermanentError):
    pass


class AuthenticationError(ApiError, PermanentError):
    pass


class ForbiddenError(ApiError, PermanentError):
    pass


class ProtocolError(ApiError, PermanentError):
    pass


ALREADY_EXISTS_CODES = frozenset({1103, 1311, 1333, 1721, 1805, 1810, 2401})
ALREADY_ASSIGNED_CODES = frozenset({1261})
NOT_ASSIGNED_CODES = frozenset({1260})
PREREQUISITE_CODES = frozenset({1262, 1615, 1616, 1617, 1618})


def error_class(status: int, code: int | None) -> type[ApiError]:
    """Which error an answer maps to: the API's code decides first, then the status."""
    if code in ALREADY_EXISTS_CODES:
        return AlreadyExistsError
    if code in ALREADY_ASSIGNED_CODES:
        return AlreadyAssignedError
    if code in NOT_ASSIGNED_CODES:
        return NotAssignedError
    if code in PREREQUISITE_CODES:
        return MissingPrerequisiteError
    if status == 429:
        return RateLimitedError
    if status >= 500:
        return ServerError
    if status == 401:
        return AuthenticationError
    if status == 403:
        return ForbiddenError
    if status == 404:
        return NotFoundError
    if status == 409:
        return AlreadyExistsError
    return ValidationError

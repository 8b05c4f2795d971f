"""A typed async client for the UCaaS API. Errors: see `connectors.ucaas.errors`."""

from connectors.ucaas.auth import Credentials
from connectors.ucaas.client import UCaaSClient
from connectors.ucaas.core import CallRecord, RetryPolicy
from connectors.ucaas.errors import (
    AlreadyAssignedError,
    AlreadyExistsError,
    ApiError,
    AuthenticationError,
    ForbiddenError,
    MissingPrerequisiteError,
    NotAssignedError,
    NotFoundError,
    PermanentError,
    PrerequisiteError,
    ProtocolError,
    RateLimitedError,
    ReconcileError,
    RetryableError,
    ServerError,
    TransportError,
    UCaaSError,
    ValidationError,
)

__all__ = [
    "AlreadyAssignedError",
    "AlreadyExistsError",
    "ApiError",
    "AuthenticationError",
    "CallRecord",
    "Credentials",
    "ForbiddenError",
    "MissingPrerequisiteError",
    "NotAssignedError",
    "NotFoundError",
    "PermanentError",
    "PrerequisiteError",
    "ProtocolError",
    "RateLimitedError",
    "ReconcileError",
    "RetryPolicy",
    "RetryableError",
    "ServerError",
    "TransportError",
    "UCaaSClient",
    "UCaaSError",
    "ValidationError",
]

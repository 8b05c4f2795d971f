"""Field checks that collect every problem of a request, each with its API code.

A handler asks for each field once; the check returns the value, or None and records an
error. `done()` raises one ApiError carrying all of them, first error first.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

from sandbox.errors import ApiError, FieldError

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_MISSING = object()


def is_email(value: Any) -> bool:
    return isinstance(value, str) and len(value) <= 254 and bool(EMAIL_RE.match(value))


class Check:
    def __init__(self, body: dict[str, Any], prefix: str = "") -> None:
        self.body = body
        self.prefix = prefix
        self.errors: list[FieldError] = []

    def fail(self, code: int, name: str | None = None) -> None:
        self.errors.append(FieldError(code, f"{self.prefix}{name}" if name else None))

    def has(self, name: str) -> bool:
        return self.body.get(name) is not None

    def string(
        self,
        name: str,
        type_code: int,
        *,
        required: int | None = None,
        min_len: tuple[int, int] | None = None,
        max_len: tuple[int, int] | None = None,
        choices: tuple[tuple[str, ...], int] | None = None,
        strip: bool = True,
    ) -> str | None:
        """`min_len`, `max_len` and `choices` are (limit, code) pairs."""
        value = self.body.get(name)
        if value is None or (required and isinstance(value, str) and not value.strip()):
            if required:
                self.fail(required, name)
            return None
        if not isinstance(value, str):
            self.fail(type_code, name)
            return None
        if strip:
            value = value.strip()
        if min_len and len(value) < min_len[0]:
            self.fail(min_len[1], name)
            return None
        if max_len and len(value) > max_len[0]:
            self.fail(max_len[1], name)
            return None
        if choices and value not in choices[0]:
            self.fail(choices[1], name)
            return None
        return value

    def email(
        self, name: str, *, required: int | None, type_code: int, invalid: int, max_code: int
    ) -> str | None:
        value = self.string(name, type_code, required=required, max_len=(100, max_code))
        if value is not None and not is_email(value):
            self.fail(invalid, name)
            return None
        return value

    def boolean(self, name: str, code: int) -> bool | None:
        value = self.body.get(name)
        if value is None:
            return None
        if not isinstance(value, bool):
            self.fail(code, name)
            return None
        return value

    def integer(
        self,
        name: str,
        type_code: int,
        *,
        required: int | None = None,
        minimum: tuple[int, int] | None = None,
        maximum: tuple[int, int] | None = None,
    ) -> int | None:
        value = self.body.get(name)
        if value is None:
            if required:
                self.fail(required, name)
            return None
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value)  # the API is PHP-born: numeric strings are numbers
        if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
            self.fail(type_code, name)
            return None
        value = int(value)
        if minimum and value < minimum[0]:
            self.fail(minimum[1], name)
            return None
        if maximum and value > maximum[0]:
            self.fail(maximum[1], name)
            return None
        return value

    def number(self, name: str, type_code: int) -> float | None:
        value = self.body.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(type_code, name)
            return None
        return float(value)

    def obj(self, name: str, type_code: int, *, required: int | None = None) -> Check | None:
        value = self.body.get(name)
        if value is None:
            if required:
                self.fail(required, name)
            return None
        if not isinstance(value, dict):
            self.fail(type_code, name)
            return None
        sub = Check(value, prefix=f"{self.prefix}{name}.")
        sub.errors = self.errors  # one list for the whole request
        return sub

    def array(self, name: str, type_code: int, *, required: int | None = None) -> list[Any] | None:
        value = self.body.get(name)
        if value is None:
            if required:
                self.fail(required, name)
            return None
        if not isinstance(value, list):
            self.fail(type_code, name)
            return None
        return value

    def api_datetime(self, name: str, *, required: int | None, invalid: int) -> datetime | None:
        """`YYYY-MM-DD HH:MM:SS` in UTC (ISO 8601 with a zone is accepted too)."""
        value = self.body.get(name)
        if value is None:
            if required:
                self.fail(required, name)
            return None
        parsed = parse_api_datetime(value)
        if parsed is None:
            self.fail(invalid, name)
        return parsed

    def api_date(self, name: str, *, required: int | None, invalid: int) -> date | None:
        value = self.body.get(name)
        if value is None:
            if required:
                self.fail(required, name)
            return None
        if isinstance(value, str) and len(value) == 10:
            try:
                return date.fromisoformat(value)
            except ValueError:
                pass
        self.fail(invalid, name)
        return None

    def done(self) -> None:
        if self.errors:
            first, *more = self.errors
            raise ApiError(first.code, first.field, msg=first.msg, more=more)


def parse_api_datetime(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).replace(microsecond=0)

"""Shared model bases: tolerant responses, strict requests, list queries and pages."""

from __future__ import annotations

from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, PlainSerializer, SecretStr

# A secret that stays masked in repr/str and is revealed only when a request is serialised.
Secret = Annotated[SecretStr, PlainSerializer(lambda v: v.get_secret_value(), when_used="json")]
App = Literal["vc", "wb"]

# How a PATCH empties an optional text field: the reference documents no null, only strings,
# and an empty string is a valid string wherever it is read (docs/api-notes.md).
CLEARED = ""


def _cleared(value: str | None) -> str:
    return CLEARED if value is None else value


# An optional text field of a PATCH body that can be emptied: given as None, it is sent
# as CLEARED. Only fields that were given are sent at all (see ChangesModel).
Clearable = Annotated[str | None, PlainSerializer(_cleared, when_used="json")]


class ApiModel(BaseModel):
    """A response object: documented fields typed, unknown extra fields kept."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


class RequestModel(BaseModel):
    """A request body: unknown fields are a programming error."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    def payload(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True, by_alias=True)


class ChangesModel(RequestModel):
    """A PATCH body, where leaving a field out keeps it and only given fields are sent.

    "Not given" and "clear" differ by `model_fields_set`: `UserChanges(status="S")` sends
    only the status, `UserChanges(middle_name=None)` empties the middle name. A field the
    API cannot empty (not `Clearable`) given as None is left out.
    """

    def payload(self) -> dict[str, Any]:
        body = self.model_dump(mode="json", exclude_unset=True, by_alias=True)
        return {k: _without_none(v) for k, v in body.items() if v is not None}


def _without_none(value: Any) -> Any:
    # Nested objects (addresses, invitees) are sent whole: a None inside means "none".
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    return value


class ListQuery(RequestModel):
    """Paging, search and ordering, as every list route takes them."""

    page: int | None = None
    page_length: int | None = None
    search_by: str | None = None
    search_string: str | None = None
    order_by: str | None = None
    order_qualify: Literal["asc", "desc"] | None = None

    def params(self) -> dict[str, Any]:
        return self.payload()


M = TypeVar("M", bound=BaseModel)


class Page(BaseModel, Generic[M]):
    items: list[M]
    search: dict[str, Any]

    def pages(self, default: int) -> int:
        value = self.search.get("pages")
        return value if isinstance(value, int) else default


class Result(ApiModel):
    """The plain `{"result": 1, "msg": ...}` answer."""

    result: int = 1
    msg: str | None = None
    desc: str | None = None

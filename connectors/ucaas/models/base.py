"""Shared model bases: tolerant responses, strict requests, list queries and pages."""

from __future__ import annotations

from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, PlainSerializer, SecretStr

# A secret that stays masked in repr/str and is revealed only when a request is serialised.
Secret = Annotated[SecretStr, PlainSerializer(lambda v: v.get_secret_value(), when_used="json")]
App = Literal["vc", "wb"]


class ApiModel(BaseModel):
    """A response object: documented fields typed, unknown extra fields kept."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


class RequestModel(BaseModel):
    """A request body: unknown fields are a programming error."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    def payload(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True, by_alias=True)


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

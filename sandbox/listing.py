"""Pagination, search, date filters and ordering for every list route (codes 2501-2609)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

from sandbox.errors import ApiError, FieldError

MAX_PAGE_LENGTH = 100


@dataclass(frozen=True)
class Searchable:
    """How one `search_by` field matches: 'contains' (case-insensitive), 'exact' or 'bool'."""

    get: Callable[[Any], Any]
    how: str = "contains"


@dataclass(frozen=True)
class ListSpec:
    search: Mapping[str, Searchable]
    order: Mapping[str, Callable[[Any], Any]]
    # query parameter -> (getter of a datetime, "from" | "to")
    dates: Mapping[str, tuple[Callable[[Any], datetime | None], str]] = field(default_factory=dict)
    default_order: str | None = None


def _int_param(query: Mapping[str, str], name: str, default: int, code: int) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ApiError(code, name) from None


def _matches(value: Any, needle: str, how: str) -> bool:
    if value is None:
        return False
    if how == "bool":
        return bool(value) == (needle.lower() in ("1", "true", "yes"))
    if how == "exact":
        return str(value).lower() == needle.lower()
    return needle.lower() in str(value).lower()


def _parse_date_filter(raw: str, name: str, bound: str) -> datetime:
    try:
        if len(raw) == 10:
            day = date.fromisoformat(raw)
            return datetime.combine(day, time.max if bound == "to" else time.min, tzinfo=UTC)
        parsed = datetime.fromisoformat(raw)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except ValueError:
        raise ApiError(2609, name) from None


def paginate(
    items: Iterable[Any],
    query: Mapping[str, str],
    spec: ListSpec,
    render: Callable[[Any], dict[str, Any]],
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Filter, order and cut one page; returns (rendered page, the `search` echo)."""
    errors: list[FieldError] = []
    try:
        page = _int_param(query, "page", 1, 2608)
    except ApiError as exc:
        errors.append(exc.errors[0])
        page = 1
    # The reference names the page size `page_length` and, once, `page_num`.
    length_name = "page_length" if "page_length" in query else "page_num"
    try:
        page_length = _int_param(query, length_name, 10, 2501)
        if not 1 <= page_length <= MAX_PAGE_LENGTH:
            errors.append(FieldError(2502, length_name))
    except ApiError as exc:
        errors.append(exc.errors[0])
        page_length = 10
    if page < 1:
        errors.append(FieldError(2608, "page"))

    search_by = query.get("search_by") or None
    search_string = query.get("search_string")
    if search_by and search_by not in spec.search:
        errors.append(FieldError(2605, "search_by"))
    if search_by and not search_string:
        errors.append(FieldError(2606, "search_string"))
    if search_string and not search_by:
        errors.append(FieldError(2607, "search_by"))

    order_by = query.get("order_by") or spec.default_order
    order_fields = [f.strip() for f in order_by.split(",") if f.strip()] if order_by else []
    if any(f not in spec.order for f in order_fields):
        errors.append(FieldError(2603, "order_by"))
    order_qualify = (query.get("order_qualify") or "asc").lower()
    if order_qualify not in ("asc", "desc"):
        errors.append(FieldError(2604, "order_qualify"))

    bounds: list[tuple[Callable[[Any], datetime | None], str, datetime]] = []
    for name, (getter, bound) in spec.dates.items():
        if query.get(name):
            try:
                bounds.append((getter, bound, _parse_date_filter(query[name], name, bound)))
            except ApiError as exc:
                errors.append(exc.errors[0])
    if errors:
        first, *more = errors
        raise ApiError(first.code, first.field, more=more)

    selected = list(items)
    if search_by and search_string:
        rule = spec.search[search_by]
        selected = [o for o in selected if _matches(rule.get(o), search_string, rule.how)]
    for getter, bound, limit in bounds:
        selected = [
            o
            for o in selected
            if (value := getter(o)) is not None
            and (value >= limit if bound == "from" else value <= limit)
        ]
    if order_fields:
        getters = [spec.order[f] for f in order_fields]
        selected.sort(
            key=lambda o: tuple(_sort_key(g(o)) for g in getters),
            reverse=order_qualify == "desc",
        )
    total = len(selected)
    start = (page - 1) * page_length
    rendered = [render(o) for o in selected[start : start + page_length]]
    echo: dict[str, Any] = {
        "page": page,
        "page_length": page_length,
        "search_by": search_by,
        "search_string": search_string,
        "order_by": order_by,
        "order_qualify": order_qualify,
        "total": total,
        "pages": (total + page_length - 1) // page_length,
    }
    for name in spec.dates:
        echo[name] = query.get(name)
    return rendered, echo


def _sort_key(value: Any) -> tuple[int, Any]:
    # None sorts first and never compares with a value of another type.
    if value is None:
        return (0, "")
    if isinstance(value, str):
        return (1, value.lower())
    return (1, value)

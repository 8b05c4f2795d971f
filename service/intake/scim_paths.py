"""SCIM attribute paths (RFC 7644 section 3.10), read from a raw SCIM resource.

    title                                     a core attribute
    name.givenName                            a sub-attribute
    urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department
    urn:example:params:scim:schemas:extension:acme:2.0:User:manager.displayName
    emails[type eq "work"].value              a value filter on a multi-valued attribute
    addresses[type eq "work" and primary eq true].country

An attribute without a schema URI is a core one; attribute names are case-insensitive
(RFC 7643 section 2.1). The filter is RFC 7644's (service/intake/scim_filter.py). A path
may go deeper than SCIM's one sub-attribute (`urn:...:User:costCenter.id`), for HR
systems' own extensions. The enterprise extension is also found under the short key
`enterprise`, as connectors/hr/scim.py accepts it.

`compile_path(text)` raises PathError (a ValueError) saying what is wrong; `read(path,
resource)` gives the path's values in document order (a multi-valued attribute, several).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from connectors.hr.scim import CORE, ENTERPRISE
from service.intake.scim_filter import (
    MISSING,
    NAME,
    Filter,
    PathError,
    flat,
    get,
    holds,
    parse_filter,
)


@dataclass(frozen=True)
class ScimPath:
    text: str
    schema: str | None  # None: the core schema
    attr: str
    where: Filter | None
    subs: tuple[str, ...]


@cache
def compile_path(text: str) -> ScimPath:
    """The parsed path, or PathError."""
    try:
        return _parse(text)
    except PathError as exc:
        shown = f"'{text}'" if "'" not in text and text.isprintable() else json.dumps(text)
        raise PathError(f"{shown} is not a SCIM attribute path: {exc}") from None


def _parse(text: str) -> ScimPath:
    if not text or text != text.strip():
        raise PathError("empty or with spaces around it")
    head, where, tail = text, None, ""
    if "[" in text:
        start = text.index("[")
        end = _closing(text, start)
        head, tail = text[:start], text[end + 1 :]
        where = parse_filter(text[start + 1 : end])
        if tail and not tail.startswith("."):
            raise PathError(f"{tail!r} after the filter (expected .subAttribute)")
    schema = None
    if head.casefold().startswith("urn:"):
        schema, _, head = head.rpartition(":")
        if schema.count(":") < 2 or any(c.isspace() or c in '[]"' for c in schema):
            raise PathError(f"{schema!r} is not a schema URN")
    names = head.split(".")
    if where is not None and len(names) > 1:
        raise PathError("a value filter follows the attribute's own name (emails[...].value)")
    subs = [*names[1:], *(tail[1:].split(".") if tail else [])]
    for name in (names[0], *subs):
        if not NAME.fullmatch(name):
            raise PathError(f"{name!r} is not an attribute name")
    if schema is not None and schema.casefold() == CORE.casefold():
        schema = None
    return ScimPath(text, schema, names[0], where, tuple(subs))


def _closing(text: str, start: int) -> int:
    quoted = escaped = False
    for index in range(start + 1, len(text)):
        char = text[index]
        if escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == "]" and not quoted:
            return index
    raise PathError("'[' without its ']'")


# -- reading ------------------------------------------------------------------------------
def read(path: ScimPath, resource: Mapping[str, Any]) -> list[Any]:
    """The values at `path` in `resource`, in document order; [] when there are none."""
    base: Any = resource
    if path.schema is not None:
        base = get(resource, path.schema)
        if base is MISSING and path.schema.casefold() == ENTERPRISE.casefold():
            base = get(resource, "enterprise")
    nodes = list(flat([get(base, path.attr)]))
    if path.where is not None:
        where = path.where
        nodes = [node for node in nodes if isinstance(node, Mapping) and holds(where, node)]
    for sub in path.subs:
        nodes = list(flat(get(node, sub) for node in nodes))
    return [node for node in nodes if node is not None]

"""SCIM filters (RFC 7644 section 3.4.2.2) as a value path's filter: `emails[type eq
"work"]`, and how to look an attribute up in raw SCIM JSON.

`eq ne co sw ew gt ge lt le pr`, `and`, `or`, `not (...)`, parentheses; values are JSON
strings, numbers, `true`, `false`, `null`. Attribute names and operators are
case-insensitive, and so are string comparisons (most SCIM attributes are caseExact
false). A boolean compares as the SCIM model reads one ("True", "yes", 1 are true, as
pydantic's lax booleans). An element matches a comparison when any of its values does.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

Value = str | int | float | bool | None
NAME = re.compile(r"\$ref|[A-Za-z][A-Za-z0-9_-]*")
_TOKEN = re.compile(r'\s*(?:("(?:[^"\\]|\\.)*")|([()])|([^\s()"]+))')
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")
_OPS = frozenset({"eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"})
_TRUE = frozenset({"true", "1", "yes", "on", "t", "y"})
_FALSE = frozenset({"false", "0", "no", "off", "f", "n"})


class PathError(ValueError):
    """Not a SCIM attribute path; the message says why."""


@dataclass(frozen=True)
class Compare:
    attr: tuple[str, ...]
    op: str  # one of _OPS, or "pr"
    value: Value = None


@dataclass(frozen=True)
class Logical:
    op: Literal["and", "or"]
    left: Filter
    right: Filter


@dataclass(frozen=True)
class Not:
    inner: Filter


Filter = Compare | Logical | Not


def parse_filter(text: str) -> Filter:
    tokens = _tokens(text)
    if not tokens:
        raise PathError("an empty filter")
    found, at = _or(tokens, 0)
    if at != len(tokens):
        raise PathError(f"unexpected {tokens[at][1]!r} in the filter")
    return found


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    at = 0
    while at < len(text.rstrip()):
        match = _TOKEN.match(text, at)
        if match is None:
            raise PathError(f"cannot read the filter from {text[at:].strip()!r}")
        quoted, paren, word = match.groups()
        tokens.append(("str", quoted) if quoted else ("paren", paren) if paren else ("word", word))
        at = match.end()
    return tokens


def _or(tokens: list[tuple[str, str]], at: int) -> tuple[Filter, int]:
    left, at = _and(tokens, at)
    while at < len(tokens) and tokens[at][1].lower() == "or":
        right, at = _and(tokens, at + 1)
        left = Logical("or", left, right)
    return left, at


def _and(tokens: list[tuple[str, str]], at: int) -> tuple[Filter, int]:
    left, at = _term(tokens, at)
    while at < len(tokens) and tokens[at][1].lower() == "and":
        right, at = _term(tokens, at + 1)
        left = Logical("and", left, right)
    return left, at


def _term(tokens: list[tuple[str, str]], at: int) -> tuple[Filter, int]:
    word = tokens[at][1] if at < len(tokens) else None
    if word is not None and word.lower() == "not":
        if tokens[at + 1 : at + 2] != [("paren", "(")]:
            raise PathError("'not' takes a parenthesised filter: not (...)")
        inner, at = _group(tokens, at + 1)
        return Not(inner), at
    if word == "(":
        return _group(tokens, at)
    if word is None or tokens[at][0] != "word":
        raise PathError(f"expected an attribute name{f', not {word!r}' if word else ''}")
    attr = tuple(word.split("."))
    if not all(NAME.fullmatch(name) for name in attr):
        raise PathError(f"{word!r} is not an attribute name")
    op = tokens[at + 1][1].lower() if at + 1 < len(tokens) else ""
    if op == "pr":
        return Compare(attr, "pr"), at + 2
    if op not in _OPS:
        found = f", not {op!r}" if op else ""
        raise PathError(
            f"expected an operator after {word!r} (eq ne co sw ew gt ge lt le pr){found}"
        )
    if at + 2 >= len(tokens) or tokens[at + 2][0] == "paren":
        raise PathError(f"expected a value after {op!r}")
    return Compare(attr, op, _value(tokens[at + 2])), at + 3


def _group(tokens: list[tuple[str, str]], at: int) -> tuple[Filter, int]:
    inner, at = _or(tokens, at + 1)
    if tokens[at : at + 1] != [("paren", ")")]:
        raise PathError("'(' without its ')'")
    return inner, at + 1


def _value(token: tuple[str, str]) -> Value:
    kind, text = token
    if kind == "str":
        try:
            return str(json.loads(text))
        except ValueError:
            raise PathError(f"{text} is not a JSON string") from None
    literals: dict[str, Value] = {"true": True, "false": False, "null": None}
    if text.lower() in literals:
        return literals[text.lower()]
    if _NUMBER.fullmatch(text):
        return float(text) if any(c in text for c in ".eE") else int(text)
    raise PathError(f"{text!r} is not a value (a quoted string, a number, true, false, null)")


class _Missing:
    pass


MISSING = _Missing()


def get(node: Any, name: str) -> Any:
    if not isinstance(node, Mapping):
        return MISSING
    if name in node:
        return node[name]
    folded = name.casefold()
    for key, value in node.items():
        if isinstance(key, str) and key.casefold() == folded:
            return value
    return MISSING


def flat(values: Any) -> Iterator[Any]:
    for value in values:
        if isinstance(value, list):
            yield from (item for item in value if item is not MISSING)
        elif value is not MISSING:
            yield value


def holds(where: Filter, element: Mapping[str, Any]) -> bool:
    if isinstance(where, Logical):
        if where.op == "and":
            return holds(where.left, element) and holds(where.right, element)
        return holds(where.left, element) or holds(where.right, element)
    if isinstance(where, Not):
        return not holds(where.inner, element)
    nodes: list[Any] = [element]
    for name in where.attr:
        nodes = list(flat(get(node, name) for node in nodes))
    values = [node for node in nodes if node is not None]
    if where.op == "pr":
        return any(value not in ("", [], {}) for value in values)
    if where.op in ("eq", "ne"):
        equal = not values if where.value is None else any(_eq(v, where.value) for v in values)
        return equal if where.op == "eq" else not equal
    return any(_compare(where.op, value, where.value) for value in values)


def _eq(value: Any, wanted: Value) -> bool:
    if isinstance(wanted, bool):
        return _as_bool(value) is wanted
    if isinstance(wanted, int | float):
        return _as_number(value) == wanted
    return isinstance(value, str) and value.casefold() == str(wanted).casefold()


def _compare(op: str, value: Any, wanted: Value) -> bool:
    if isinstance(wanted, str):
        if not isinstance(value, str):
            return False
        have, want = value.casefold(), wanted.casefold()
        tests = {"co": want in have, "sw": have.startswith(want), "ew": have.endswith(want)}
        if op in tests:
            return tests[op]
        return _order(op, have, want)
    if isinstance(wanted, bool) or wanted is None or op in ("co", "sw", "ew"):
        return False
    number = _as_number(value)
    return number is not None and _order(op, number, wanted)


def _order(op: str, have: Any, want: Any) -> bool:
    if op == "gt":
        return bool(have > want)
    if op == "ge":
        return bool(have >= want)
    return bool(have < want) if op == "lt" else bool(have <= want)


def _as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        folded = value.lower()
        return True if folded in _TRUE else False if folded in _FALSE else None
    return None


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        return float(value)
    return None

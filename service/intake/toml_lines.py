"""Where a key of a TOML file is: tomllib gives no positions, so the text is scanned.

`lines_of(text)` maps each key path to the line (from 1) where it is set: a table header
(`[a.b]`, the n-th `[[a.b]]` as ("a", "b", n)), a `key = ...` line (dotted keys too), and
each item of an array as (..., "key", i) on the line where the item starts. A key inside
an inline table is not recorded: its nearest recorded parent stands for it.
`line_of(lines, loc)` is the line of `loc`, else of its longest recorded prefix.

The scan trusts the text to be valid TOML (tomllib read it first).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

Key = tuple[str | int, ...]
_BARE = re.compile(r"[A-Za-z0-9_-]+")


def line_of(lines: dict[Key, int], loc: Sequence[str | int]) -> int | None:
    for end in range(len(loc), 0, -1):
        found = lines.get(tuple(loc[:end]))
        if found is not None:
            return found
    return None


@dataclass
class _Frame:
    path: Key
    index: int = 0
    expecting: bool = True  # in an array: the next non-blank character starts an item
    table: bool = False  # an inline table: its keys are not recorded


@dataclass
class _Scan:
    lines: dict[Key, int] = field(default_factory=dict)
    arrays: dict[Key, int] = field(default_factory=dict)  # [[a.b]] counts
    table: Key = ()
    frames: list[_Frame] = field(default_factory=list)  # the open arrays and inline tables
    key: Key = ()  # the key whose value is being read
    string: str | None = None  # the delimiter of a multi-line string still open

    def resolve(self, path: Key) -> Key:
        """A header's path with the index of each array of tables on it."""
        done: Key = ()
        for part in path:
            done = (*done, part)
            if done in self.arrays:
                done = (*done, self.arrays[done] - 1)
        return done

    def record(self, path: Key, number: int) -> None:
        for end in range(1, len(path) + 1):
            self.lines.setdefault(path[:end], number)


def lines_of(text: str) -> dict[Key, int]:
    scan = _Scan()
    for number, line in enumerate(text.splitlines(), start=1):
        at = 0
        if scan.string is None and not scan.frames:
            stripped = line.lstrip()
            if not stripped or stripped.startswith("#"):
                continue
            if stripped.startswith("["):
                double = stripped.startswith("[[")
                path, _ = _key(stripped, 2 if double else 1)
                if double:
                    whole = scan.resolve(path[:-1]) + path[-1:]
                    scan.arrays[whole] = scan.arrays.get(whole, 0) + 1
                    scan.table = (*whole, scan.arrays[whole] - 1)
                else:
                    scan.table = scan.resolve(path)
                scan.record(scan.table, number)
                continue
            path, at = _key(line, len(line) - len(stripped))
            scan.key = (*scan.table, *path)
            scan.record(scan.key, number)
            at = line.index("=", at) + 1
        _value(scan, line, at, number)
    return scan.lines


def _value(scan: _Scan, line: str, at: int, number: int) -> None:
    """Scan a value's characters from `at`: strings, brackets, array items."""
    while at < len(line):
        if scan.string is not None:
            end = _string_end(line, at, scan.string)
            if end is None:
                return
            scan.string, at = None, end
            continue
        char = line[at]
        top = scan.frames[-1] if scan.frames else None
        if char == "#":
            return
        if top is not None and top.expecting and char not in " \t,]":
            scan.record((*top.path, top.index), number)
            top.expecting = False
        if char in "\"'":
            quote = char * 3 if line.startswith(char * 3, at) else char
            scan.string, at = quote, at + len(quote)
            continue
        if char in "[{":
            # the key's own value, an item of an array, or (approximately) an inline table's
            path = scan.key if top is None else top.path if top.table else (*top.path, top.index)
            scan.frames.append(_Frame(path, expecting=char == "[", table=char == "{"))
        elif char in "]}" and scan.frames:
            scan.frames.pop()
        elif char == "," and top is not None and not top.table:
            top.index += 1
            top.expecting = True
        at += 1


def _string_end(line: str, at: int, quote: str) -> int | None:
    """Just past the closing `quote` on this line, or None if the string goes on."""
    while at < len(line):
        if quote[0] == '"' and line[at] == "\\":
            at += 2
            continue
        if line.startswith(quote, at):
            return at + len(quote)
        at += 1
    return None


def _key(line: str, at: int) -> tuple[tuple[str, ...], int]:
    """A dotted key from `at`, and where it ends."""
    parts: list[str] = []
    while True:
        while line[at] in " \t":
            at += 1
        if line[at] in "\"'":
            end = _string_end(line, at + 1, line[at])
            end = len(line) if end is None else end
            raw = line[at:end]
            parts.append(_unquote(raw))
            at = end
        else:
            match = _BARE.match(line, at)
            if match is None:
                break
            parts.append(match.group())
            at = match.end()
        while at < len(line) and line[at] in " \t":
            at += 1
        if at >= len(line) or line[at] != ".":
            break
        at += 1
    return tuple(parts), at


def _unquote(raw: str) -> str:
    if raw.startswith("'"):
        return raw[1:-1]
    try:
        return str(json.loads(raw))
    except ValueError:
        return raw[1:-1]

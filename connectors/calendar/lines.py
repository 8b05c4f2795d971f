"""A calendar's text parsed by icalendar, each line's name and parameters read once.

icalendar splits every content line into name, parameters and value by walking it
character by character (`Contentline.raw_parts`), then parses the parameters: for the
VEVENTs of a 10,000-event feed that reach the window, a third of their parse. Yet a feed
has few distinct heads (the text before the value: "DTSTART;TZID=Europe/Paris:",
"SUMMARY:", "ORGANIZER:"). So, for a line without a double quote or a backslash (the
only characters that make the walk anything but "the name ends at the first ; or :, the
value starts after the first :"), the library's own `raw_parts` is run on the head alone,
once per distinct head, and the value is the rest of the line: the same name, the same
parameters (a copy each time: a property may own its parameters) and the same value as
the walk over the whole line gives. Any other line, and any line whose head the library
refuses (so that its error names the whole line), goes to the library's walk as before.
tests/unit/test_ics_lines.py compares both over every line of the test feeds.
"""

from __future__ import annotations

from collections import OrderedDict
from functools import lru_cache
from typing import Any

import icalendar
from icalendar.parser import Contentline, Contentlines, Parameters


class _Line(Contentline):
    """A content line whose head is read once per distinct head."""

    __slots__ = ()

    def raw_parts(self) -> tuple[str, Parameters, str]:
        colon = self.find(":")
        if colon > 0 and '"' not in self and "\\" not in self:
            try:
                name, params = _head(str(self[: colon + 1]), getattr(self, "strict", False))
            except ValueError:
                pass  # the library's walk over the whole line raises its own message
            else:
                return name, _copy(params), str(self[colon + 1 :])
        return super().raw_parts()


# icalendar's parser API is untyped (or typed for text only: it takes lines as well).
_CONTENTLINE: Any = Contentline
_LINE: Any = _Line
_SPLIT: Any = Contentlines.from_ical
_PARSE: Any = icalendar.Calendar.from_ical


@lru_cache(maxsize=4096)
def _head(head: str, strict: bool) -> tuple[str, Parameters]:
    """The name and parameters the library reads from a head ("NAME;PARAMS:")."""
    name, params, _ = _CONTENTLINE(head, strict=strict).raw_parts()
    return name, params


def _copy(params: Parameters) -> Parameters:
    """A copy of parameters the library read: its keys are upper case already, so the
    dictionary's own copy does (Parameters() itself, which normalises keyword
    arguments and keys, cost as much as the rest of this path)."""
    new = Parameters.__new__(Parameters)
    OrderedDict.__init__(new, params)
    return new


def lines_of(body: bytes | str) -> list[Any]:
    """The body's content lines as the library splits and unfolds them."""
    found: list[Any] = _SPLIT(body)
    return [_LINE(line, strict=line.strict) if line else line for line in found]


def parse_text(body: bytes | str) -> icalendar.Calendar:
    """icalendar.Calendar.from_ical(body), its lines read as above (the parser takes a
    list of content lines for data as it takes text: ComponentIcalParser). Should it
    fail, the body is parsed as text, for the library's own error, which quotes it."""
    try:
        calendar: icalendar.Calendar = _PARSE(lines_of(body))
        return calendar
    except Exception:  # icalendar raises ValueError and friends for broken text
        return icalendar.Calendar.from_ical(body)

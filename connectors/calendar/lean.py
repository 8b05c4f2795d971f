"""A VEVENT's text cut to what the service reads, before icalendar parses it.

icalendar reads each content line's parameters character by character: a feed's
ATTENDEE lines (names, roles, RSVP, for each person) were half of its parsing time. The
service reads of an attendee only the address and whether the person takes part (not a
room or a resource, not declined), and of the organiser only the address. So, in a
VEVENT the pre-scan has read whole (every line a plain content line):

- its ATTENDEE lines become one line, `INVITED`, of the addresses of those invited,
  computed as occurrences.py would from the parsed ATTENDEEs (lower case, without
  "mailto:"), when every ATTENDEE line is of the plain form read here; the name of that
  line carries a random part chosen per process, so no feed can write one;
- otherwise the ATTENDEE lines keep only CUTYPE and PARTSTAT, ORGANIZER no parameter
  (a line with a VALUE parameter, which changes how its value is read, stays whole);
- DTSTAMP, CREATED and LAST-MODIFIED lines of the plain UTC form are dropped (nobody
  reads them; a malformed one stays for icalendar to judge).
"""

from __future__ import annotations

import re
import secrets

# The line that stands for a VEVENT's attendees: the invited addresses, space-separated.
INVITED = "X-UCAAS-SYNC-INVITED-" + secrets.token_hex(6).upper()

_PARAMS = rb'(?:;[A-Za-z0-9-]+=(?:"[^"\r\n]*"|[^";:,\r\n]*)(?:,(?:"[^"\r\n]*"|[^";:,\r\n]*))*)'
_PEOPLE = re.compile(rb"^(ATTENDEE|ORGANIZER)(" + _PARAMS + rb"+):", re.M | re.I)
_ATTENDEE = re.compile(rb"^ATTENDEE(" + _PARAMS + rb'*):([^\s\\,;"]*)\r?\n', re.M)
_ANY_ATTENDEE = re.compile(rb"^ATTENDEE[;:]", re.M | re.I)
_ONE_PARAM = re.compile(
    rb';([A-Za-z0-9-]+)=((?:"[^"\r\n]*"|[^";:,\r\n]*)(?:,(?:"[^"\r\n]*"|[^";:,\r\n]*))*)'
)
_STAMPS = re.compile(rb"^(?:DTSTAMP|CREATED|LAST-MODIFIED):\d{8}T\d{6}Z\r?\n", re.M)


def lean(block: bytes) -> bytes:
    """The lines of one VEVENT (between its BEGIN and END lines), read whole by the
    pre-scan, cut to what the service reads."""
    block = _STAMPS.sub(b"", block)
    if b"\nBEGIN:" not in b"\n" + block.upper():  # attendees of an alarm are its own
        invited = _invited(block)
        if invited is not None:
            found = _ATTENDEE.search(block)
            at = found.start() if found is not None else 0
            rest = _ATTENDEE.sub(b"", block)
            line = INVITED.encode() + b":" + b" ".join(invited) + b"\r\n"
            block = rest[:at] + line + rest[at:]
    return _PEOPLE.sub(_cut, block)


def _invited(block: bytes) -> list[bytes] | None:
    """The addresses of the attendees taking part, as occurrences._invited and _mail
    read them; None when an ATTENDEE line is not of the plain form (then the lines stay)."""
    lines = _ATTENDEE.findall(block)
    if not lines or len(lines) != len(_ANY_ATTENDEE.findall(block)):
        return None
    found: list[bytes] = []
    for params, value in lines:
        read: dict[bytes, bytes] = {}
        for key, param in _ONE_PARAM.findall(params):
            key = key.upper()
            if key in read or key == b"VALUE":
                return None
            read[key] = param[1:-1] if param[:1] == b'"' and param[-1:] == b'"' else param
        kind = read.get(b"CUTYPE", b"INDIVIDUAL")
        taking = read.get(b"PARTSTAT", b"")
        if any(c in kind + taking for c in b'^,"'):  # escapes or lists: icalendar's to read
            return None
        mail = value.strip()
        if mail.lower().startswith(b"mailto:"):
            mail = mail[7:]
        if b"@" not in mail or kind.upper() in (b"ROOM", b"RESOURCE"):
            continue
        if taking.upper() != b"DECLINED":
            found.append(mail.lower())
    return found


def _cut(match: re.Match[bytes]) -> bytes:
    name = match.group(1)
    params = _ONE_PARAM.findall(match.group(2))
    if any(key.upper() == b"VALUE" for key, _ in params):
        return match.group(0)
    wanted = (b"CUTYPE", b"PARTSTAT") if name.upper() == b"ATTENDEE" else ()
    kept = b"".join(b";" + key + b"=" + value for key, value in params if key.upper() in wanted)
    return name + kept + b":"

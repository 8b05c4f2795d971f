"""E-mail addresses checked as the API will check them, cheaply for the usual shape.

pydantic's EmailStr (email-validator) costs ~140 µs an address: more than the rest of an
HR event's intake. Nearly every address HR sends is plain ASCII
(`jane.doe@acme.example`), for which the verdict is a few rules: this module answers
those with one regular expression and sends anything else (non-ASCII, quoted local parts,
"Name <address>", odd lengths) to email-validator. `tests/unit/test_emails.py` holds the
two to the same verdict on generated addresses.
"""

from __future__ import annotations

import re
from functools import lru_cache

from pydantic import EmailStr, TypeAdapter
from pydantic import ValidationError as DataError

_EMAIL = TypeAdapter(EmailStr)

# A dot-atom local part (no leading, trailing or doubled dot) at a domain of LDH labels
# (letters, digits, hyphens inside) ending in a letters-only top-level label.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_PLAIN = re.compile(rf"({_ATOM}(?:\.{_ATOM})*)@((?:{_LABEL}\.)+[A-Za-z]{{2,63}})", re.ASCII)
# What email-validator refuses as not globally deliverable (RFC 6761 and others).
_SPECIAL = frozenset({"arpa", "invalid", "local", "localhost", "onion", "test"})


def normalised_email(text: str) -> str | None:
    """The address in lower case, or None when the API would refuse it."""
    plain = _PLAIN.fullmatch(text)
    if plain is not None and len(plain[1]) <= 64 and len(text) <= 254:
        domain = plain[2].lower()
        if domain.rsplit(".", 1)[1] not in _SPECIAL:
            return text.lower()
        return None
    return _checked(text)


@lru_cache(maxsize=4096)
def _checked(text: str) -> str | None:
    try:
        return _EMAIL.validate_python(text).lower()
    except DataError:
        return None

"""The e-mail fast path gives pydantic's (email-validator's) verdict, faster."""

from __future__ import annotations

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import EmailStr, TypeAdapter, ValidationError

from service.intake.emails import _PLAIN, normalised_email

_PYDANTIC = TypeAdapter(EmailStr)


def reference(text: str) -> str | None:
    try:
        return _PYDANTIC.validate_python(text).lower()
    except ValidationError:
        return None


EDGES = [
    "jane.doe@acme.example",
    "Jane.Doe+tag@Acme-Corp.Example.COM",
    "o'neil@acme.example",
    "a..b@acme.example",
    ".a@acme.example",
    "a.@acme.example",
    "a@acme.test",
    "a@sandbox.test",
    "a@host.local",
    "a@x.localhost",
    "a@x.onion",
    "a@x.arpa",
    "a@x.invalid",
    "a@-x.example",
    "a@x-.example",
    "a@x.c0m",
    "a@x.c",
    "a@x",
    "a@1.2.3.4",
    "a@[127.0.0.1]",
    "a@x.example.",
    "x" * 64 + "@acme.example",
    "x" * 65 + "@acme.example",
    "a@" + "b" * 63 + ".example",
    "a@" + "b" * 64 + ".example",
    "a@" + ".".join(["c" * 60] * 4) + ".example",
    "Jane Doe <jane@acme.example>",
    " jane@acme.example ",
    "jürgen@acme.example",
    "jane@bücher.example",
    '"quoted"@acme.example',
    "jane@acme..example",
    "jane@@acme.example",
    "",
    "@acme.example",
    # RFC 3696, section 3: addresses as people really have them
    "user+mailbox/department=shipping@example.com",
    "!def!xyz%abc@example.com",
    "_somename@example.com",
    "$A12345@example.com",
    "customer/department=shipping@example.com",
    "Fred\\ Bloggs@example.com",
    "Abc\\@def@example.com",
    # as HR exports send them: upper case, a subdomain, a hyphenated surname, a plus tag
    "Mary.O-Brien@Mail.Contoso.co.uk",
    "j.smith+hr@workday-tenant.example.org",
]


@pytest.mark.parametrize("text", EDGES)
def test_edge_cases_get_the_same_verdict(text: str) -> None:
    assert normalised_email(text) == reference(text)


@settings(max_examples=400, deadline=None)
@given(st.from_regex(_PLAIN, fullmatch=True))
def test_addresses_of_the_plain_shape_get_the_same_verdict(text: str) -> None:
    assert normalised_email(text) == reference(text)


ALPHABET = string.ascii_letters + string.digits + ".-_+@'!#ü "


@settings(max_examples=400, deadline=None)
@given(st.text(ALPHABET, min_size=1, max_size=40))
def test_any_text_gets_the_same_verdict(text: str) -> None:
    assert normalised_email(text) == reference(text)

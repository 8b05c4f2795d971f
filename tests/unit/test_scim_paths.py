"""SCIM attribute paths and value filters (RFC 7644 sections 3.10 and 3.4.2.2) read from
raw SCIM JSON: the RFC 7643 section 8.3 enterprise user, and Entra-ID- and Workday-style
users (tests/fixtures/scim/)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.intake.scim_filter import PathError
from service.intake.scim_paths import compile_path, read

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "scim"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return data


RFC = load("rfc7643-8.3-enterprise-user.json")
ENTRA = load("entra-id-user.json")
WORKDAY = load("workday-user.json")
GROUPS = [
    "e9e30dba-f08f-4109-8486-d5c6a331660a",
    "fc348aa8-3835-40eb-a20b-c726e15c55b5",
    "71ddacd2-a8e7-49b8-a5db-ae50d0a5bfd7",
]


def values(path: str, resource: dict[str, Any] = RFC) -> list[Any]:
    return read(compile_path(path), resource)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        # core attributes, sub-attributes, multi-valued ones in document order
        ("userName", ["bjensen@example.com"]),
        ("title", ["Tour Guide"]),
        ("userType", ["Employee"]),
        ("active", [True]),
        ("name.givenName", ["Barbara"]),
        ("name.middleName", ["Jane"]),
        ("name.familyName", ["Jensen"]),
        ("displayName", ["Babs Jensen"]),
        ("emails.value", ["bjensen@example.com", "babs@jensen.org"]),
        ("emails.type", ["work", "home"]),
        ("groups.display", ["Tour Guides", "Employees", "US Employees"]),
        ("urn:ietf:params:scim:schemas:core:2.0:User:name.familyName", ["Jensen"]),
        # value filters
        ('emails[type eq "work"].value', ["bjensen@example.com"]),
        ("emails[primary eq true].value", ["bjensen@example.com"]),
        ("emails[primary ne true].value", ["babs@jensen.org"]),
        ("emails[primary eq false].value", []),  # absent is not false
        ("emails[primary eq null].value", ["babs@jensen.org"]),
        ('emails[value ew ".org"].type', ["home"]),
        ('emails[value sw "BJENSEN"].type', ["work"]),
        ('emails[value co "@example."].value', ["bjensen@example.com"]),
        ('addresses[type eq "work"].country', ["USA"]),
        ('addresses[type eq "work" and primary eq true].locality', ["Hollywood"]),
        ('addresses[type eq "home" and primary eq true].locality', []),
        (
            'phoneNumbers[type eq "mobile" or type eq "work"].value',
            ["555-555-5555", "555-555-4444"],
        ),
        ('phoneNumbers[not (type eq "work")].value', ["555-555-4444"]),
        ('groups[(display sw "tour" or display sw "us") and value pr].value', GROUPS[::2]),
        ('groups[display gt "F"].display', ["Tour Guides", "US Employees"]),
        ('photos[type eq "thumbnail"].value', [RFC["photos"][1]["value"]]),
        ("groups.$ref", [group["$ref"] for group in RFC["groups"]]),
        ('emails[type eq "work"]', [RFC["emails"][0]]),  # no sub-attribute: the element
        # the enterprise extension
        (f"{ENTERPRISE}:employeeNumber", ["701984"]),
        (f"{ENTERPRISE}:costCenter", ["4130"]),
        (f"{ENTERPRISE}:organization", ["Universal Studios"]),
        (f"{ENTERPRISE}:division", ["Theme Park"]),
        (f"{ENTERPRISE}:department", ["Tour Operations"]),
        (f"{ENTERPRISE}:manager.displayName", ["John Smith"]),
        (f"{ENTERPRISE}:manager.$ref", ["../Users/26118915-6090-4610-87e4-49d8ca9f808d"]),
        (f"{ENTERPRISE}:manager.value", ["26118915-6090-4610-87e4-49d8ca9f808d"]),
        (
            f'{ENTERPRISE}:manager[displayName eq "john smith"].value',
            [RFC[ENTERPRISE]["manager"]["value"]],
        ),
        # numbers: a numeric string compares as its number
        (f"{ENTERPRISE}:manager[value pr].displayName", ["John Smith"]),
        # nothing there
        ("nickname.value", []),
        ("costCenter", []),  # an enterprise attribute without its URN is a core one: none
        ("urn:example:params:scim:schemas:extension:acme:2.0:User:costCenter", []),
        ('emails[type eq "other"].value', []),
        ("name.givenName.more", []),
    ],
)
def test_rfc7643_enterprise_user(path: str, expected: list[Any]) -> None:
    assert values(path) == expected


@pytest.mark.parametrize(
    "path",
    [
        "USERNAME",
        "NAME.GIVENNAME",
        'EMAILS[TYPE EQ "WORK"].VALUE',
        'emails[type Eq "Work"].Value',
        "URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER:EMPLOYEENUMBER",
        "urn:ietf:params:scim:schemas:core:2.0:user:username",
    ],
)
def test_names_operators_and_strings_are_case_insensitive(path: str) -> None:
    assert len(values(path)) == 1


def test_an_exact_key_wins_over_one_that_differs_in_case() -> None:
    assert values("title", {"Title": "b", "title": "a"}) == ["a"]
    assert values("TITLE", {"Title": "b", "title": "a"}) == ["b"]


def test_numbers_compare_as_numbers() -> None:
    assert values(f"{ENTERPRISE}:costCenter", RFC) == ["4130"]
    user = {"x": [{"n": 4130, "v": "a"}, {"n": "17", "v": "b"}, {"n": True, "v": "c"}]}
    assert values("x[n gt 4000].v", user) == ["a"]
    assert values("x[n le 17].v", user) == ["b"]
    assert values("x[n eq 17.0].v", user) == ["b"]
    assert values("x[n eq 1].v", user) == []  # true is not a number
    assert values('x[n co "1"].v', user) == ["b"]  # co is for strings


@pytest.mark.parametrize("primary", [True, "True", "true", "yes", "on", 1, "1", "t", "Y"])
def test_booleans_are_read_as_the_scim_model_reads_them(primary: Any) -> None:
    user = {"emails": [{"value": "a@x.example"}, {"value": "b@x.example", "primary": primary}]}
    assert values("emails[primary eq true].value", user) == ["b@x.example"]
    assert values("emails[primary eq false].value", user) == []


@pytest.mark.parametrize("primary", ["maybe", 2, " true", None, {}])
def test_what_is_not_a_boolean_is_neither_true_nor_false(primary: Any) -> None:
    user = {"emails": [{"value": "b@x.example", "primary": primary}]}
    assert values("emails[primary eq true].value", user) == []
    assert values("emails[primary eq false].value", user) == []


def test_the_enterprise_extension_under_its_short_name() -> None:
    user = {"userName": "a", "enterprise": {"department": "Sales"}}
    assert values(f"{ENTERPRISE}:department", user) == ["Sales"]
    both = {ENTERPRISE: {"department": "Ops"}, "enterprise": {"department": "Sales"}}
    assert values(f"{ENTERPRISE}:department", both) == ["Ops"]
    assert values(f"{ENTERPRISE}:department", {ENTERPRISE: None, **user}) == []


def test_entra_id_user_with_a_custom_extension() -> None:
    custom = "urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User"
    assert values(f"{custom}:costCenterCode", ENTRA) == ["FR-4130"]
    assert values(f"{custom}:CostCenterCode", ENTRA) == ["FR-4130"]
    assert values('addresses[type eq "work"].country', ENTRA) == ["FR"]
    assert values("emails[primary eq true].value", ENTRA) == ["AdeleV@contoso.example"]
    assert values('phoneNumbers[type eq "mobile"].value', ENTRA) == ["+33 6 12 34 56 78"]
    assert values(f"{ENTERPRISE}:manager.value", ENTRA) == ["5ac2f3b0-7c49-4b0b-9d31-5a0b1d1f8e2c"]
    assert values(f"{ENTERPRISE}:manager.displayName", ENTRA) == []


def test_workday_style_user_with_nested_custom_attributes() -> None:
    workday = "urn:example:params:scim:schemas:extension:workday:2.0:User"
    assert values(f"{workday}:preferredName.firstName", WORKDAY) == ["Kathi"]
    assert values(f"{workday}:supervisoryOrganization.name", WORKDAY) == ["Field Services"]
    assert values(f"{workday}:manager.displayName", WORKDAY) == ["Jonas Becker"]
    assert values('emails[type eq "work"].value', WORKDAY) == ["katharina.wagner@acme.example"]
    assert values("emails[primary eq true].value", WORKDAY) == []
    assert values("addresses[primary eq true].country", WORKDAY) == ["Germany"]  # "true"


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("", "empty"),
        (" title", "spaces"),
        ("na me", "'na me' is not an attribute name"),
        ("1abc", "'1abc' is not an attribute name"),
        ("name.", "'' is not an attribute name"),
        ("urn:x", "is not a schema URN"),
        ('emails[type eq "work"', "'[' without its ']'"),
        ('emails[type eq "work"]value', "after the filter"),
        ('name.x[type eq "work"]', "a value filter follows the attribute's own name"),
        ("emails[type eq work].value", "'work' is not a value"),
        ("emails[type].value", "expected an operator after 'type'"),
        ("emails[type is 1].value", "not 'is'"),
        ("emails[type eq].value", "expected a value after 'eq'"),
        ("emails[].value", "an empty filter"),
        ('emails[(type eq "a"].value', "'(' without its ')'"),
        ('emails[not type eq "a"].value', "'not' takes a parenthesised filter"),
        ('emails[type eq "a" or].value', "expected an attribute name"),
        ('emails[type eq "a" "b"].value', "unexpected"),
        ('emails[type eq "\\q"].value', "is not a JSON string"),
    ],
)
def test_bad_paths_say_why(path: str, reason: str) -> None:
    with pytest.raises(PathError) as caught:
        compile_path(path)
    message = str(caught.value)
    assert "is not a SCIM attribute path" in message
    assert reason in message
    assert "\n" not in message


def test_a_path_with_a_single_quote_is_shown_as_json() -> None:
    with pytest.raises(PathError, match=r'^"it\'s" is not'):
        compile_path("it's")
    with pytest.raises(PathError, match=r"^'a b' is not"):
        compile_path("a b")


# -- properties ---------------------------------------------------------------------------
WORDS = st.text(alphabet="abcWORK kéß@.\t", max_size=6)
ELEMENT = st.fixed_dictionaries(
    {"value": WORDS}, optional={"type": st.one_of(WORDS, st.none()), "primary": st.booleans()}
)


@settings(max_examples=200, deadline=None)
@given(st.lists(ELEMENT, max_size=5), WORDS)
def test_a_filter_keeps_the_elements_it_names_and_not_the_others(
    emails: list[dict[str, Any]], kind: str
) -> None:
    def named(element: dict[str, Any]) -> bool:
        found = element.get("type")
        return isinstance(found, str) and found.casefold() == kind.casefold()

    user = {"emails": emails}
    wanted = json.dumps(kind)
    assert values(f"emails[type eq {wanted}].value", user) == [
        e["value"] for e in emails if named(e)
    ]
    assert values(f"emails[not (type eq {wanted})].value", user) == [
        e["value"] for e in emails if not named(e)
    ]
    assert values(f"emails[type eq {wanted} and primary eq true].value", user) == [
        e["value"] for e in emails if named(e) and e.get("primary") is True
    ]


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet='abc.[]()" :\\eqorandtrue1$-_', max_size=30))
def test_any_text_is_a_path_or_a_path_error(text: str) -> None:
    problem = ""
    try:
        path = compile_path(text)
    except PathError as exc:
        problem = str(exc)
    else:
        assert isinstance(read(path, RFC), list)
    assert "\n" not in problem

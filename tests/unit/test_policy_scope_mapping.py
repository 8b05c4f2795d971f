"""The policy file's scope, attribute mapping and rehire key: each rule, today's mapping
as the default, and load errors that name the line and the key."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.hr.scim import ENTERPRISE, HrUserData
from service.intake.attributes import DEFAULT
from service.intake.licences import LicencePolicy, PolicyError
from service.intake.toml_lines import line_of, lines_of

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "scim"


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return data


RFC = load("rfc7643-8.3-enterprise-user.json")
ENTRA = load("entra-id-user.json")
WORKDAY = load("workday-user.json")
WORKDAY_EXT = "urn:example:params:scim:schemas:extension:workday:2.0:User"


def policy(text: str) -> LicencePolicy:
    return LicencePolicy.from_text(text, "/x/policy.toml")


def user(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(RFC)
    for key, value in changes.items():
        if value is ...:
            data.pop(key, None)
        else:
            data[key] = value
    return data


# -- attributes: today's mapping is the default ---------------------------------------------
def test_default_mapping_of_the_rfc_user() -> None:
    assert LicencePolicy().attributes_for("CRM-1").values(RFC) == {
        "email": "bjensen@example.com",
        "first_name": "Barbara",
        "middle_name": "Jane",
        "last_name": "Jensen",
        "department": "Tour Operations",
        "designation": "Tour Guide",
    }


def test_default_mapping_of_entra_and_workday_users() -> None:
    mapping = LicencePolicy.load(None).attributes_for("CRM-1")
    assert mapping.values(ENTRA) == {
        "email": "AdeleV@contoso.example",
        "first_name": "Adele",
        "middle_name": None,
        "last_name": "Vance",
        "department": "Retail",
        "designation": "Retail Manager",
    }
    # no primary e-mail: the first one, even a home address (today's rule)
    assert mapping.values(WORKDAY)["email"] == "k.wagner@mail.example"
    assert mapping.values(WORKDAY)["department"] is None


@pytest.mark.parametrize(
    ("changes", "field", "expected"),
    [
        ({"emails": [{"value": "a@x.example"}, {"value": "b@x.example"}]}, "email", "a@x.example"),
        ({"emails": [{"value": "a@x.example"}, {"value": "b@x", "primary": True}]}, "email", "b@x"),
        ({"emails": [], "userName": " ann@x.example "}, "email", "ann@x.example"),
        ({"emails": ..., "userName": "ann"}, "email", None),
        ({"name": {"familyName": "Lee"}}, "first_name", "Babs"),
        ({"name": {"givenName": "  "}, "displayName": "Ann Lee"}, "first_name", "Ann"),
        ({"name": ..., "displayName": "  Ann   Marie Lee "}, "first_name", "Ann"),
        ({"name": ..., "displayName": ...}, "first_name", None),
        ({"name": {"givenName": "Ann", "middleName": " "}}, "middle_name", None),
        ({"title": "  "}, "designation", None),
        ({"title": 42}, "designation", "42"),
        ({ENTERPRISE: ..., "enterprise": {"department": "Sales"}}, "department", "Sales"),
        ({ENTERPRISE: {"department": ""}}, "department", None),
    ],
)
def test_default_mapping_fallbacks(changes: dict[str, Any], field: str, expected: Any) -> None:
    assert DEFAULT.values(user(**changes))[field] == expected


def test_describe_says_where_a_field_comes_from() -> None:
    assert DEFAULT.describe("first_name") == "name.givenName, else displayName (word 1)"
    assert DEFAULT.describe("email") == (
        "emails[primary eq true].value, else emails.value, else userName (like *@*)"
    )


TEXT = st.text(alphabet="ab @\t\u00a0\u3000\x1c", max_size=6)
MAYBE = st.one_of(st.none(), TEXT)
PRIMARY = st.sampled_from([True, False, "True", "false", 1, 0, "yes", "off"])
EMAIL = st.fixed_dictionaries({"value": TEXT}, optional={"type": MAYBE, "primary": PRIMARY})
NAME = st.fixed_dictionaries(
    {}, optional={"givenName": MAYBE, "middleName": MAYBE, "familyName": MAYBE}
)
SCIM = st.fixed_dictionaries(
    {"userName": TEXT, "tenant": st.just("CRM-1")},
    optional={
        "name": st.one_of(st.none(), NAME),
        "displayName": MAYBE,
        "emails": st.lists(EMAIL, max_size=3),
        "title": MAYBE,
        ENTERPRISE: st.one_of(st.none(), st.fixed_dictionaries({}, optional={"department": MAYBE})),
        "enterprise": st.fixed_dictionaries({"department": MAYBE}),
    },
)


@settings(max_examples=500, deadline=None)
@given(SCIM)
def test_the_default_reads_what_the_scim_model_reads(data: dict[str, Any]) -> None:
    """What profile_of (service/intake/hr.py) takes from the SCIM model, field by field;
    the one difference: a blank e-mail address the model took (and the event was refused
    for) is skipped for the next source."""
    if not data["userName"].strip(" \t\u00a0\u3000"):
        return  # the model refuses an empty userName
    model = HrUserData.model_validate(data)
    name = model.name
    first = (name.given_name if name else None) or (model.display_name or "").split(" ")[0]
    today = {
        "email": model.primary_email,
        "first_name": first or None,
        "middle_name": (name.middle_name if name else None) or None,
        "last_name": (name.family_name if name else None) or None,
        "department": (model.enterprise.department if model.enterprise else None) or None,
        "designation": model.title or None,
    }
    mapped = DEFAULT.values(data)
    if today["email"] == "":
        today["email"] = mapped["email"]
    assert mapped == today


# -- attributes from the file ---------------------------------------------------------------
MAPPING = f"""
[attributes]
email = 'emails[type eq "work"].value'
first_name = ["{WORKDAY_EXT}:preferredName.firstName", "name.givenName"]
last_name = {{ path = "displayName", word = -1 }}
designation = ["{WORKDAY_EXT}:businessTitle", "title"]

[tenants."CRM-2".attributes]
department = "{ENTERPRISE}:costCenter"
email = [{{ path = "emails.value", like = "*@acme.example" }}, "userName"]
"""


def test_mapping_from_the_file_and_the_default_for_the_rest() -> None:
    mapping = policy(MAPPING).attributes_for("CRM-1")
    assert mapping.values(WORKDAY) == {
        "email": "katharina.wagner@acme.example",
        "first_name": "Kathi",
        "middle_name": None,
        "last_name": "Wagner",
        "department": None,
        "designation": "Senior Field Consultant",
    }
    assert mapping.values(RFC) == {
        "email": "bjensen@example.com",
        "first_name": "Barbara",  # no preferred name: the next source
        "middle_name": "Jane",
        "last_name": "Jensen",
        "department": "Tour Operations",
        "designation": "Tour Guide",
    }


def test_a_tenant_mapping_replaces_the_fields_it_sets_only() -> None:
    mapping = policy(MAPPING).attributes_for("CRM-2")
    assert mapping.values(WORKDAY)["department"] == "CC-4130 Field Services"
    assert mapping.values(WORKDAY)["email"] == "katharina.wagner@acme.example"
    assert mapping.values(RFC)["email"] == "bjensen@example.com"  # the like fails: userName
    assert mapping.values(WORKDAY)["first_name"] == "Kathi"  # the global one
    assert policy(MAPPING).attributes_for("CRM-3") == policy(MAPPING).attributes_for("CRM-1")


def test_word_and_like() -> None:
    mapping = policy(
        '[attributes]\nfirst_name = { path = "displayName", word = 2 }\n'
        'last_name = [{ path = "emails.value", like = "*.ORG" }, "name.familyName"]\n'
    ).attributes_for("CRM-1")
    assert mapping.value("first_name", RFC) == "Jensen"
    assert mapping.value("first_name", user(displayName="Babs")) is None
    assert mapping.value("last_name", RFC) == "babs@jensen.org"
    assert mapping.value("last_name", user(emails=[])) == "Jensen"


# -- scope ----------------------------------------------------------------------------------
def test_no_scope_everyone_is_in() -> None:
    for data in (RFC, ENTRA, WORKDAY, {}):
        assert LicencePolicy().out_of_scope("CRM-1", data) is None


def test_user_types() -> None:
    scoped = policy('[scope]\nuser_types = ["employee", "Memb?r"]\n')
    assert scoped.out_of_scope("CRM-1", RFC) is None
    assert scoped.out_of_scope("CRM-1", ENTRA) is None
    assert scoped.out_of_scope("CRM-1", WORKDAY) == (
        "userType Contractor is not in scope (employee, Memb?r)"
    )
    assert scoped.out_of_scope("CRM-1", user(userType=...)) == (
        "no userType: not in scope (employee, Memb?r)"
    )
    assert scoped.out_of_scope("CRM-1", user(userType="  ")) == (
        "no userType: not in scope (employee, Memb?r)"
    )
    assert policy('[scope]\nuser_types = ["*"]\n').out_of_scope("CRM-1", user(userType=...)) is None


@pytest.mark.parametrize(
    ("addresses", "reason"),
    [
        ([{"type": "work", "country": "FR"}], None),
        ([{"type": "work", "country": "fra"}], None),
        ([{"type": "work", "country": "France"}], None),
        ([{"type": "home", "country": "US"}, {"type": "work", "country": "DE"}], None),
        ([{"type": "work", "country": "US"}], "work address country US is not in scope (FR, DE)"),
        ([{"type": "work", "country": "USA"}], "work address country USA (US) is not in scope"),
        ([{"type": "home", "country": "FR"}], "no work address country: not in scope (FR, DE)"),
        ([{"type": "home", "country": "FR", "primary": True}], None),
        (
            [{"type": "work", "country": "US"}, {"type": "work", "country": "FR", "primary": True}],
            None,
        ),
        ([{"type": "work", "country": ""}, {"type": "work", "country": "DE"}], None),
        ([{"type": "work", "country": "Narnia"}], "country Narnia is not an ISO 3166 country"),
        ([], "no work address country"),
    ],
)
def test_countries(addresses: list[dict[str, Any]], reason: str | None) -> None:
    scoped = policy('[scope]\ncountries = ["FR", "DEU"]\n')
    found = scoped.out_of_scope("CRM-1", user(addresses=addresses))
    assert found == reason if reason is None else found is not None and found.startswith(reason)


def test_countries_of_the_fixtures() -> None:
    assert policy('[scope]\ncountries = ["US"]\n').out_of_scope("CRM-1", RFC) is None  # "USA"
    assert policy('[scope]\ncountries = ["FR"]\n').out_of_scope("CRM-1", ENTRA) is None
    assert policy('[scope]\ncountries = ["DE"]\n').out_of_scope("CRM-1", WORKDAY) is None


def test_departments_and_exclusions_read_the_mapped_department() -> None:
    scoped = policy(
        '[scope]\ndepartments = ["Tour*", "Retail"]\nexclude_departments = ["*operations"]\n'
    )
    assert scoped.out_of_scope("CRM-1", ENTRA) is None
    assert scoped.out_of_scope("CRM-1", RFC) == (
        "department Tour Operations is out of scope (excluded: *operations)"
    )
    assert scoped.out_of_scope("CRM-1", WORKDAY) == "no department: not in scope (Tour*, Retail)"
    assert scoped.out_of_scope("CRM-1", user(**{ENTERPRISE: {"department": "Finance"}})) == (
        "department Finance is not in scope (Tour*, Retail)"
    )
    mapped = policy(
        f'[scope]\nexclude_departments = ["CC-4130*"]\n'
        f'[tenants."CRM-2".attributes]\ndepartment = "{ENTERPRISE}:costCenter"\n'
    )
    assert mapped.out_of_scope("CRM-1", WORKDAY) is None
    assert mapped.out_of_scope("CRM-2", WORKDAY) == (
        "department CC-4130 Field Services is out of scope (excluded: CC-4130*)"
    )


def test_an_exclusion_of_everything_leaves_out_those_without_a_department() -> None:
    scoped = policy('[scope]\nexclude_departments = ["*"]\n')
    assert (
        scoped.out_of_scope("CRM-1", WORKDAY) == "department (none) is out of scope (excluded: *)"
    )


def test_filters_apply_in_order_and_the_first_failing_one_is_the_reason() -> None:
    scoped = policy('[scope]\nuser_types = ["Employee"]\ncountries = ["FR"]\n')
    assert scoped.out_of_scope("CRM-1", RFC) == "work address country USA (US) is not in scope (FR)"
    assert (scoped.out_of_scope("CRM-1", WORKDAY) or "").startswith("userType Contractor")


SCOPES = """
[scope]
user_types = ["Employee"]
countries = ["US"]
exclude_departments = ["Tour*"]

[tenants."CRM-2".scope]
user_types = ["Employee", "Contractor"]
countries = []

[tenants."CRM-3".scope]
exclude_departments = []
"""


def test_a_tenant_scope_replaces_the_filters_it_sets_and_keeps_the_others() -> None:
    scoped = policy(SCOPES)
    assert (scoped.out_of_scope("CRM-1", WORKDAY) or "").startswith("userType Contractor")
    assert scoped.out_of_scope("CRM-2", WORKDAY) is None  # widened, no country filter
    assert scoped.out_of_scope("CRM-2", RFC) == (
        "department Tour Operations is out of scope (excluded: Tour*)"  # kept from the global
    )
    assert scoped.out_of_scope("CRM-3", RFC) is None  # its [] lifts the exclusion
    assert scoped.out_of_scope("CRM-3", ENTRA) == "userType Member is not in scope (Employee)"
    assert scoped.scope_for("CRM-2").countries == ()
    assert scoped.scope_for("CRM-9").countries == ("US",)


def test_a_reason_is_one_line() -> None:
    scoped = policy('[scope]\nuser_types = ["Employee"]\n')
    reason = scoped.out_of_scope("CRM-1", user(userType="Contractor\nsecond line"))
    assert reason == 'userType "Contractor\\nsecond line" is not in scope (Employee)'


# -- rehire_match ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ("email",)),
        ('rehire_match = ["employee_number"]\n', ("employee_number",)),
        ('rehire_match = ["email", "employee_number"]\n', ("email", "employee_number")),
    ],
)
def test_rehire_match(text: str, expected: tuple[str, ...]) -> None:
    assert policy(text).rehire_match == expected


# -- errors name the file, the line and the key ---------------------------------------------
@pytest.mark.parametrize(
    ("text", "said"),
    [
        (
            '[scope]\ncountries = ["FR", "Frnce"]\n',
            'line 2: scope.countries[1]: "Frnce" is not an ISO 3166 country code',
        ),
        ('[scope]\ncountries = [\n  "FR",\n  "Frnce",\n]\n', "line 4: scope.countries[1]: "),
        (
            '[scope]\nuser_types = "Employee"\n',
            "line 2: scope.user_types: must be an array ([...])",
        ),
        ('[scope]\nuser_types = [""]\n', "line 2: scope.user_types[0]: must not be empty"),
        ("[scope]\nteams = []\n", "line 2: scope.teams: unknown key"),
        (
            "# a comment\n\n[attributes]\nphone = 'phoneNumbers.value'\n",
            "line 4: attributes.phone: unknown key",
        ),
        (
            "[attributes]\nemail = 'emails[type eq work].value'\n",
            "line 2: attributes.email: 'emails[type eq work].value' is not a SCIM attribute path: "
            "'work' is not a value",
        ),
        (
            '[attributes]\nemail = [\n  "userName",\n  "emails[",\n]\n',
            "line 4: attributes.email[1]: 'emails[' is not a SCIM attribute path",
        ),
        (
            '[attributes]\nfirst_name = ["a", { path = "displayName", word = 0 }]\n',
            "line 2: attributes.first_name[1].word: words count from 1",
        ),
        (
            '[attributes]\nfirst_name = { path = "displayName", wrd = 1 }\n',
            "line 2: attributes.first_name.wrd: unknown key",
        ),
        (
            '[attributes.first_name]\npath = "displayName"\nlike = ""\n',
            "line 3: attributes.first_name.like: must not be empty",
        ),
        ("[attributes]\nemail = []\n", "line 2: attributes.email: must not be empty"),
        ('rehire_match = ["email", "email"]\n', "line 1: rehire_match: a key is listed twice"),
        (
            'rehire_match = ["mail"]\n',
            "line 1: rehire_match[0]: Input should be 'email' or 'employee_number', not \"mail\"",
        ),
        ("rehire_match = []\n", "line 1: rehire_match: must not be empty"),
        (
            'default_apps = ["vc"]\n\n[tenants."CRM 1".scope]\ncountries = ["XX"]\n',
            'line 4: tenants."CRM 1".scope.countries[0]: "XX" is not',
        ),
        ("[tenants.CRM-1]\nscope = 1\n", "line 2: tenants.CRM-1.scope: must be a table"),
        (
            '[[rules]]\napps = []\n[[rules]]\ndepartment = "Sales"\n',
            "line 3: rules[1].apps: missing",
        ),
        (
            '[[tenants.A.rules]]\napps = []\n[[tenants.A.rules]]\napps = ["zoom"]\n',
            "line 4: tenants.A.rules[1].apps[0]: Input should be 'vc' or 'wb', not \"zoom\"",
        ),
        ('x = """\n[scope]\n"""\n[scope]\ncountries = ["?"]\n', "line 1: x: unknown key"),
        ('[scope]\ncountries = ["FR"] # "DE"\nuser_types = [1]\n', "line 3: scope.user_types[0]: "),
        ("a = 1\nb = \n", "line 2: not TOML: Invalid value (column 5)"),
    ],
)
def test_errors_name_the_line_and_the_key(tmp_path: Path, text: str, said: str) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PolicyError) as caught:
        LicencePolicy.load(path)
    message = str(caught.value)
    assert message.startswith(f"licence policy {path} {said}")
    assert "\n" not in message


def test_lines_of_a_toml_text() -> None:
    text = (ROOT / "docs" / "examples" / "licence-policy.toml").read_text(encoding="utf-8")
    lines = lines_of(text)
    numbered = text.splitlines()

    def at(*loc: str | int) -> str:
        line = line_of(lines, loc)
        assert line is not None
        return numbered[line - 1]

    assert at("rehire_match").startswith("rehire_match = ")
    assert at("rules", 1) == "[[rules]]"
    assert at("rules", 1, "title") == 'title = "*Director*"'
    assert at("scope", "countries", 2).startswith("countries = ")
    assert at("attributes", "first_name", 2) == '    { path = "displayName", word = 1 },'
    assert at("attributes", "first_name", 2, "word") == '    { path = "displayName", word = 1 },'
    assert at("tenants", "CRM-1002", "rules", 0, "apps") == 'apps = ["wb"]'
    assert at("tenants", "CRM-1002", "scope", "nothing") == '[tenants."CRM-1002".scope]'
    assert line_of(lines, ("absent",)) is None


def test_the_example_policy_file_loads() -> None:
    example = LicencePolicy.load(ROOT / "docs" / "examples" / "licence-policy.toml")
    assert example.rehire_match == ("email", "employee_number")
    assert (
        example.out_of_scope("CRM-1", WORKDAY) == "userType Contractor is not in scope (Employee)"
    )
    assert example.out_of_scope("CRM-1002", WORKDAY) is None
    assert example.attributes_for("CRM-1002").values(WORKDAY)["department"] == (
        "CC-4130 Field Services"
    )


def test_the_policy_file_examples_in_the_docs() -> None:
    text = (ROOT / "docs" / "events.md").read_text(encoding="utf-8")
    section = text[text.index("### Policy file") : text.index("## CRM")]
    example, default = re.findall(r"```toml\n(.*?)```", section, re.DOTALL)
    documented = policy(example)
    assert documented.out_of_scope("CRM-1", RFC) == (
        "work address country USA (US) is not in scope (FR, DE)"
    )
    assert documented.out_of_scope("CRM-1002", WORKDAY) is None
    assert documented.attributes_for("CRM-1").values(WORKDAY)["email"] == (
        "katharina.wagner@acme.example"
    )
    assert policy(default).attributes_for("CRM-1") == DEFAULT

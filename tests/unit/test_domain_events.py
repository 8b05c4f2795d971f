"""CloudEvents to domain events: the HR (SCIM) and CRM mappings, within the API's limits."""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest

from connectors.events.cloudevents import Envelope, Record
from connectors.hr.scim import ENTERPRISE
from service.domain.events import CompanyEvent, HrEvent, PurchaseEvent
from service.intake.events import to_domain
from service.intake.mapping import InvalidEventError

SCIM: dict[str, Any] = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
    "id": "2819c223-7f76-453a-919d-413861904646",
    "externalId": "E1001",
    "userName": "ann.lee@acme.example",
    "name": {"givenName": "Ann", "middleName": "Marie", "familyName": "Lee"},
    "displayName": "Ann Lee",
    "emails": [
        {"value": "ann@home.example", "type": "home"},
        {"value": "Ann.Lee@Acme.example", "type": "work", "primary": True},
    ],
    "phoneNumbers": [{"value": "+33 1 23 45 67 89"}],
    "active": True,
    "title": "Sales Director",
    ENTERPRISE: {
        "employeeNumber": "E1001",
        "department": "Sales",
        "organization": "Acme Robotics",
        "manager": {"value": "E0001"},
    },
    "tenant": "CRM-1001",
}
COMPANY: dict[str, Any] = {
    "company_id": "CRM-1001",
    "name": "Acme Robotics",
    "legal_name": "Acme Robotics SAS",
    "contact": {"name": "Paul Martin", "email": "billing@acme.example"},
    "office_address": {
        "line1": "12 rue de la Paix",
        "city": "Paris",
        "postal_code": "75002",
        "country": "FR",
    },
}
PURCHASE: dict[str, Any] = {
    "purchase_id": "P-1",
    "plan": "vc-basic",
    "app": "vc",
    "seats": 25,
    "start": "2026-12-01",
}


def envelope(type_: str, data: Any, subject: str | None = "E1001") -> Envelope:
    record = Record("t", 0, 0, None, orjson.dumps(data))
    return Envelope("ev-1", "/src", type_, subject, None, data, record)


def hr(kind: str = "joined", subject: str | None = "E1001", **changes: Any) -> Envelope:
    data = copy.deepcopy(SCIM)
    for path, value in changes.items():
        target = data
        *parents, last = path.split("__")
        for part in parents:
            target = target[ENTERPRISE if part == "enterprise" else part]
        if value is ...:
            target.pop(ENTERPRISE if last == "enterprise" else last, None)
        else:
            target[last] = value
    return envelope(f"hr.user.{kind}", data, subject)


def invalid(env: Envelope) -> InvalidEventError:
    with pytest.raises(InvalidEventError) as caught:
        to_domain(env)
    assert caught.value.error == "invalid_data"
    return caught.value


# -- HR -----------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["joined", "updated", "leave_started", "leave_ended", "left"])
def test_each_hr_type(kind: str) -> None:
    event = to_domain(hr(kind))
    assert isinstance(event, HrEvent)
    assert event.kind == kind
    assert event.tenant == "CRM-1001"
    assert event.employee_id == "E1001"
    assert event.effective_at is None
    assert event.active is True


def test_scim_user_to_profile() -> None:
    event = to_domain(hr())
    assert isinstance(event, HrEvent)
    profile = event.profile
    assert profile.email == "ann.lee@acme.example"  # the primary one, lower-cased
    assert (profile.first_name, profile.middle_name, profile.last_name) == ("Ann", "Marie", "Lee")
    assert profile.department == "Sales"
    assert profile.designation == "Sales Director"


def test_enterprise_extension_under_its_short_name() -> None:
    data = copy.deepcopy(SCIM)
    data["enterprise"] = data.pop(ENTERPRISE)
    event = to_domain(envelope("hr.user.joined", data))
    assert isinstance(event, HrEvent)
    assert event.profile.department == "Sales"


def test_without_a_primary_the_first_email_and_without_emails_the_user_name() -> None:
    first = to_domain(hr(emails=[{"value": "one@acme.example"}, {"value": "two@acme.example"}]))
    assert isinstance(first, HrEvent)
    assert first.profile.email == "one@acme.example"
    by_name = to_domain(hr(emails=[]))
    assert isinstance(by_name, HrEvent)
    assert by_name.profile.email == "ann.lee@acme.example"


def test_no_email_at_all() -> None:
    assert "e-mail" in invalid(hr(emails=[], userName="annlee")).reason


@pytest.mark.parametrize("address", ["not-an-email", "ann@", "@acme.example", "a b@acme.example"])
def test_invalid_primary_email(address: str) -> None:
    error = invalid(hr(emails=[{"value": address, "primary": True}]))
    assert "not a valid e-mail" in error.reason


def test_only_the_primary_email_is_checked() -> None:
    emails = [{"value": "junk"}, {"value": "ann@acme.example", "primary": True}]
    event = to_domain(hr(emails=emails))
    assert isinstance(event, HrEvent)
    assert event.profile.email == "ann@acme.example"


def test_employee_id_from_employee_number_then_external_id_then_subject() -> None:
    by_number = to_domain(hr(externalId="X-9"))  # employeeNumber wins over externalId
    assert isinstance(by_number, HrEvent)
    assert by_number.employee_id == "E1001"
    by_external = to_domain(hr(subject=None, enterprise__employeeNumber=..., externalId="X-9"))
    assert isinstance(by_external, HrEvent)
    assert by_external.employee_id == "X-9"
    by_subject = to_domain(hr(subject="E77", enterprise=..., externalId=...))
    assert isinstance(by_subject, HrEvent)
    assert by_subject.employee_id == "E77"
    assert by_subject.profile.department is None


def test_subject_and_employee_id_must_agree() -> None:
    error = invalid(hr(subject="E2"))
    assert "'E2'" in error.reason
    assert "'E1001'" in error.reason


def test_no_employee_id_anywhere() -> None:
    assert "no entity id" in invalid(hr(subject=None, enterprise=..., externalId=...)).reason


def test_employee_id_longer_than_the_outbox_takes() -> None:
    long_id = "E" * 101
    assert (
        "longer than 100" in invalid(hr(subject=long_id, enterprise__employeeNumber=long_id)).reason
    )


def test_missing_given_name() -> None:
    error = invalid(hr(name={"familyName": "Lee"}, displayName=...))
    assert "name.givenName" in error.reason
    assert "name.givenName" in invalid(hr(name={"givenName": "   "}, displayName=...)).reason
    assert "name.givenName" in invalid(hr(name=..., displayName=...)).reason


def test_missing_given_name_falls_back_to_the_display_name() -> None:
    event = to_domain(hr(name={"familyName": "Lee"}, displayName="Ann Lee"))
    assert isinstance(event, HrEvent)
    assert event.profile.first_name == "Ann"


def test_names_are_stripped_and_blank_ones_dropped() -> None:
    event = to_domain(hr(name={"givenName": "  Ann ", "middleName": " ", "familyName": "Lee "}))
    assert isinstance(event, HrEvent)
    assert (event.profile.first_name, event.profile.middle_name) == ("Ann", None)
    assert event.profile.last_name == "Lee"


@pytest.mark.parametrize(
    ("changes", "field", "limit"),
    [
        ({"name__givenName": "A" * 51}, "name.givenName", 50),
        ({"name__middleName": "M" * 51}, "name.middleName", 50),
        ({"name__familyName": "L" * 51}, "name.familyName", 50),
        ({"enterprise__department": "D" * 101}, "department", 100),
        ({"title": "T" * 101}, "title", 100),
        ({"emails": [{"value": "a" * 60 + "@" + "b" * 40 + ".example"}]}, "email", 100),
    ],
)
def test_every_field_over_its_limit(changes: dict[str, Any], field: str, limit: int) -> None:
    error = invalid(hr(**changes))
    assert error.reason.startswith(f"{field} is longer than the {limit} characters")


def test_fields_at_their_limits_are_taken() -> None:
    event = to_domain(
        hr(
            name__givenName="A" * 50,
            name__middleName="M" * 50,
            name__familyName="L" * 50,
            enterprise__department="D" * 100,
            title="T" * 100,
            emails=[{"value": "a" * 50 + "@" + "b" * 41 + ".example"}],
        )
    )
    assert isinstance(event, HrEvent)
    assert len(event.profile.email) == 100
    assert event.profile.first_name == "A" * 50


def test_effective_at_needs_a_zone() -> None:
    assert "time zone" in invalid(hr(effective_at="2030-01-01T09:00:00")).reason
    event = to_domain(hr(effective_at="2030-01-01T09:00:00+02:00"))
    assert isinstance(event, HrEvent)
    assert event.effective_at == datetime(2030, 1, 1, 9, tzinfo=timezone(timedelta(hours=2)))
    assert event.effective_at == datetime(2030, 1, 1, 7, tzinfo=UTC)


def test_inactive_flag_is_carried() -> None:
    event = to_domain(hr("updated", active=False))
    assert isinstance(event, HrEvent)
    assert event.active is False


@pytest.mark.parametrize(
    ("changes", "said"),
    [
        ({"tenant": ...}, "tenant"),
        ({"tenant": ""}, "tenant"),
        ({"userName": ...}, "userName"),
        ({"emails": "ann@acme.example"}, "emails"),
        ({"active": "perhaps"}, "active"),
    ],
)
def test_scim_shape_errors_name_the_field(changes: dict[str, Any], said: str) -> None:
    assert invalid(hr(**changes)).reason.startswith(said)


@pytest.mark.parametrize("data", [None, [SCIM], "text", 3])
def test_data_must_be_an_object(data: Any) -> None:
    assert "JSON object" in invalid(envelope("hr.user.joined", data)).reason


def test_unknown_type() -> None:
    with pytest.raises(InvalidEventError) as caught:
        to_domain(envelope("hr.user.promoted", SCIM))
    assert caught.value.error == "unknown_type"
    assert "hr.user.promoted" in caught.value.reason


# -- CRM ----------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["created", "updated", "closed"])
def test_each_company_type(kind: str) -> None:
    event = to_domain(envelope(f"crm.company.{kind}", COMPANY, "CRM-1001"))
    assert isinstance(event, CompanyEvent)
    assert (event.kind, event.crm_id) == (kind, "CRM-1001")
    assert event.fields["customer_name"] == "Acme Robotics"
    assert event.fields["office_address"]["country"] == "FR"


def test_company_id_defaults_to_the_subject_and_must_agree_with_it() -> None:
    data = {k: v for k, v in COMPANY.items() if k != "company_id"}
    event = to_domain(envelope("crm.company.created", data, "CRM-7"))
    assert isinstance(event, CompanyEvent)
    assert event.crm_id == "CRM-7"
    assert "differ" in invalid(envelope("crm.company.created", COMPANY, "CRM-7")).reason


def test_crm_id_longer_than_a_customer_code() -> None:
    long_id = "C" * 51
    data = {**COMPANY, "company_id": long_id}
    assert "longer than 50" in invalid(envelope("crm.company.created", data, long_id)).reason


@pytest.mark.parametrize(
    "missing", [("name",), ("legal_name",), ("contact",), ("office_address",), ("name", "contact")]
)
def test_created_company_needs_every_required_field(missing: tuple[str, ...]) -> None:
    data = {k: v for k, v in COMPANY.items() if k not in missing}
    error = invalid(envelope("crm.company.created", data, "CRM-1001"))
    assert error.reason == f"a new company needs {', '.join(missing)}"


def test_updated_and_closed_companies_may_be_partial() -> None:
    updated = to_domain(envelope("crm.company.updated", {"name": "Acme"}, "CRM-1001"))
    assert isinstance(updated, CompanyEvent)
    assert dict(updated.fields) == {"customer_name": "Acme"}  # only what the event carries
    closed = to_domain(envelope("crm.company.closed", {}, "CRM-1001"))
    assert isinstance(closed, CompanyEvent)
    assert closed.kind == "closed"


@pytest.mark.parametrize(
    ("given", "stored"), [("FR", "FR"), ("fr", "FR"), ("FRA", "FR"), (" deu ", "DE"), ("gb", "GB")]
)
def test_country_codes_are_normalised_to_alpha_2(given: str, stored: str) -> None:
    data = copy.deepcopy(COMPANY)
    data["office_address"]["country"] = given
    event = to_domain(envelope("crm.company.created", data, "CRM-1001"))
    assert isinstance(event, CompanyEvent)
    assert event.fields["office_address"]["country"] == stored


@pytest.mark.parametrize("given", ["XX", "XXX", "UK", "250", "France", ""])
def test_unknown_country_codes(given: str) -> None:
    data = copy.deepcopy(COMPANY)
    data["office_address"]["country"] = given
    error = invalid(envelope("crm.company.created", data, "CRM-1001"))
    assert error.reason.startswith("office_address.country")


def test_company_field_errors() -> None:
    bad_contact = {**COMPANY, "contact": {"name": "Paul", "email": "nope"}}
    assert invalid(envelope("crm.company.created", bad_contact, "CRM-1001")).reason.startswith(
        "contact.email"
    )
    long_name = {**COMPANY, "name": "N" * 101}
    assert invalid(envelope("crm.company.updated", long_name, "CRM-1001")).reason.startswith("name")


def test_purchase() -> None:
    event = to_domain(envelope("crm.subscription.purchased", PURCHASE, "CRM-1001"))
    assert isinstance(event, PurchaseEvent)
    assert event.crm_id == "CRM-1001"
    purchase = event.purchase
    assert (purchase.purchase_id, purchase.plan, purchase.app) == ("P-1", "vc-basic", "vc")
    assert (purchase.seats, purchase.start) == (25, date(2026, 12, 1))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("seats", 0),
        ("seats", -3),
        ("seats", "many"),
        ("app", "xx"),
        ("app", "VC"),
        ("plan", ""),
        ("start", "next week"),
        ("purchase_id", ...),
    ],
)
def test_purchase_validation(field: str, value: Any) -> None:
    data = {**PURCHASE, field: value}
    if value is ...:
        del data[field]
    error = invalid(envelope("crm.subscription.purchased", data, "CRM-1001"))
    assert error.reason.startswith(field)


def test_purchase_with_one_seat_and_a_whiteboard() -> None:
    event = to_domain(
        envelope("crm.subscription.purchased", {**PURCHASE, "seats": 1, "app": "wb"}, "CRM-1")
    )
    assert isinstance(event, PurchaseEvent)
    assert (event.purchase.seats, event.purchase.app) == (1, "wb")


def test_purchase_company_must_agree_with_the_subject() -> None:
    data = {**PURCHASE, "company_id": "CRM-2"}
    assert "differ" in invalid(envelope("crm.subscription.purchased", data, "CRM-1")).reason


def test_error_reasons_are_bounded() -> None:
    assert len(InvalidEventError("invalid_data", "x" * 900).reason) == 500


@pytest.mark.parametrize("where", ["subject", "tenant", "givenName"])
def test_control_characters_are_invalid_data(where: str) -> None:
    """A NUL is valid JSON, but PostgreSQL refuses it: it must not reach the database."""
    from connectors.events.cloudevents import Record, parse
    from service.intake.events import to_domain
    from service.intake.mapping import InvalidEventError

    data = {
        "userName": "a@b.example",
        "name": {"givenName": "Ann\u0000" if where == "givenName" else "Ann"},
        "emails": [{"value": "a@b.example", "primary": True}],
        "tenant": "T\u0000" if where == "tenant" else "T",
    }
    subject = "E\u00001" if where == "subject" else "E1"
    value = orjson.dumps(
        {
            "specversion": "1.0",
            "id": "1",
            "source": "s",
            "type": "hr.user.joined",
            "subject": subject,
            "data": data,
        }
    )
    record = Record("hr.events", 0, 0, None, value)
    with pytest.raises((InvalidEventError, Exception)) as info:
        to_domain(parse(record))
    assert "control characters" in str(info.value)

"""PATCH bodies: a field not given is left out, an optional field given as None is emptied
(found by the chaos suite: a removed middle name was never cleared)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from connectors.ucaas.models.base import CLEARED
from connectors.ucaas.models.customers import AddressIn, CustomerChanges
from connectors.ucaas.models.meetings import Invitees, MeetingChanges
from connectors.ucaas.models.users import UserChanges
from service.domain.commands import UserProfile
from service.intake.lifecycle import EDITABLE


def test_a_removed_middle_name_is_sent_as_the_apis_empty_value() -> None:
    # what update_user builds from the translation's `{"middle_name": None}`
    assert UserChanges.model_validate({"middle_name": None}).payload() == {"middle_name": ""}
    assert CLEARED == ""


@pytest.mark.parametrize("field", ["middle_name", "last_name", "department", "designation"])
def test_every_optional_user_field_can_be_emptied(field: str) -> None:
    changes = UserChanges.model_validate({field: None, "first_name": "Ann"})
    assert changes.payload() == {field: CLEARED, "first_name": "Ann"}


def test_every_field_hr_can_remove_is_one_the_api_can_empty() -> None:
    optional = {n for n, f in UserProfile.model_fields.items() if not f.is_required()}
    removable = optional & set(EDITABLE)
    assert removable == {"middle_name", "last_name", "department", "designation"}
    sent = UserChanges.model_validate(dict.fromkeys(removable)).payload()
    assert sent == dict.fromkeys(removable, CLEARED)


def test_fields_not_given_are_left_out() -> None:
    assert UserChanges(status="S").payload() == {"status": "S"}
    assert UserChanges().payload() == {}
    assert UserChanges(middle_name="Q").payload() == {"middle_name": "Q"}


def test_a_required_field_given_as_none_is_left_out_not_emptied() -> None:
    assert UserChanges.model_validate({"first_name": None, "status": None}).payload() == {}


def test_customer_changes_send_only_what_is_given_and_addresses_whole() -> None:
    office = AddressIn.model_validate({"address_1": "1 Main St", "city": "Lyon", "country": "FR"})
    changes = CustomerChanges(customer_name="Acme", office_address=office)
    # the address has no address_2 now: sent whole, the API replaces the old one with it
    assert changes.payload() == {
        "customer_name": "Acme",
        "office_address": {"address_1": "1 Main St", "city": "Lyon", "country": "FR"},
    }
    assert CustomerChanges.model_validate({"individual": None}).payload() == {}


def test_meeting_changes_can_drop_every_invitee() -> None:
    start = datetime(2030, 1, 2, 9, 0, tzinfo=UTC)
    changes = MeetingChanges(start_time=start, invitees=Invitees(emails=[]))
    assert changes.payload() == {
        "start_time": "2030-01-02 09:00:00",
        "invitees": {"emails": []},
    }
    assert MeetingChanges(desc=None).payload() == {}  # a description cannot be emptied

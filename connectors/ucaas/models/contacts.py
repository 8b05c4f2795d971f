"""Contacts and contact groups (both belong to the account that made them)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from connectors.ucaas.models.base import ApiModel, ListQuery, RequestModel

# -- contacts -------------------------------------------------------------------


class Contact(ApiModel):
    contact_id: str
    name: str | None = None
    email: str | None = None
    company: str | None = None
    designation: str | None = None
    shared: bool | None = None
    created_at: str | None = None
    updated_at: str | None = None


class NewContact(RequestModel):
    name: str = Field(description="3 to 50 characters")
    email: str = Field(description="unique in the account's contacts")
    company: str | None = Field(None, description="5 to 100 characters")
    designation: str | None = Field(None, description="5 to 100 characters")
    shared: bool | None = None
    group_ids: list[str] | None = Field(None, description="groups to link the contact into")


class ContactChanges(RequestModel):
    name: str | None = None
    email: str | None = None
    company: str | None = None
    designation: str | None = None
    shared: bool | None = None


class ContactRef(ApiModel):
    contact_id: str
    name: str | None = None


class ContactResult(ApiModel):
    """The answer of add, edit and delete."""

    msg: str | None = None
    contact: ContactRef


class ContactQuery(ListQuery):
    search_by: Literal["name", "email", "company", "designation"] | None = None
    order_by: str | None = Field(
        None, description="name, email, company, designation, created_at, updated_at"
    )


# -- groups ---------------------------------------------------------------------


class GroupMember(ApiModel):
    contact_id: str
    name: str | None = None
    added_at: str | None = None


class Group(ApiModel):
    group_id: str
    group_name: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    contacts: list[GroupMember] = Field(
        default_factory=list, description="members; only GET and member changes list them"
    )


class NewGroup(RequestModel):
    group_name: str = Field(description="3 to 100 characters, unique in the account")


class GroupChanges(RequestModel):
    group_name: str


class ContactIds(RequestModel):
    contact_ids: list[str]


class GroupResult(ApiModel):
    """The answer of add, edit, delete and member changes."""

    msg: str | None = None
    group: Group

    @model_validator(mode="before")
    @classmethod
    def _group_under_contact(cls, data: Any) -> Any:
        # The reference's edit example answers under `contact`; take either key.
        if isinstance(data, dict) and "group" not in data and "contact" in data:
            return {**data, "group": data["contact"]}
        return data


class GroupQuery(ListQuery):
    search_by: Literal["group_name"] | None = None
    order_by: str | None = Field(None, description="group_name, created_at, updated_at")

"""Customers (accounts of the tenant or of a reseller)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from connectors.ucaas.models.base import ApiModel, ChangesModel, ListQuery, RequestModel, Secret

CustomerStatus = Literal["A", "S", "C", "U"]


class Address(ApiModel):
    address_1: str | None = None
    address_2: str | None = None
    address_3: str | None = None
    city: str | None = None
    state: str | None = None
    country: str | None = None
    zipcode: str | None = None
    country_id: str | None = None


class AddressIn(RequestModel):
    address_1: str
    address_2: str | None = None
    address_3: str | None = None
    city: str
    state: str | None = None
    zipcode: str | None = None
    country_id: str | None = Field(None, description="from GET /countries")
    country: str | None = Field(None, description="ISO 3166 alpha-2/3 code, if no country_id")


class CustomerTrack(ApiModel):
    added: str | None = None
    modified: str | None = None
    activated: str | None = None
    suspended: str | None = None
    closed: str | None = None


class Customer(ApiModel):
    customer_id: str
    customer_name: str | None = None
    customer_legal_name: str | None = None
    customer_code: str | None = None
    customer_type: str | None = None
    customer_type_ex: str | None = None
    individual: bool | None = None
    contact_name: str | None = None
    contact_email: str | None = None
    status: str | None = None
    status_ex: str | None = None
    office_address: Address | None = None
    billing_address: Address | None = None
    track: CustomerTrack | None = None


class NewCustomer(RequestModel):
    customer_name: str
    customer_legal_name: str
    contact_name: str
    contact_email: str
    office_address: AddressIn
    customer_code: str | None = None
    individual: bool | None = None
    billing_address: AddressIn | None = None
    customer_type: Literal["P", "R"] | None = None


class CustomerChanges(ChangesModel):
    """Fields left out are kept. None of these can be emptied: name, legal name, contact and
    office address are required by the API, `customer_code` is our natural key, and an
    address is replaced whole (a line left out of it is gone)."""

    customer_name: str | None = None
    customer_legal_name: str | None = None
    customer_code: str | None = None
    individual: bool | None = None
    contact_name: str | None = None
    contact_email: str | None = None
    office_address: AddressIn | None = None
    billing_address: AddressIn | None = None
    timezone_id: str | None = None
    status: CustomerStatus | None = None


class CustomerRef(ApiModel):
    customer_id: str
    customer_name: str | None = None


class PortalAccess(ApiModel):
    url: str | None = None
    username: str
    password: Secret


class CustomerCreated(ApiModel):
    msg: str | None = None
    customer: CustomerRef
    portal_access: PortalAccess | None = None


class CustomerUpdated(ApiModel):
    msg: str | None = None
    customer: CustomerRef


class CustomerQuery(ListQuery):
    """search_by: customer_name, customer_legal_name, customer_code, individual, status."""

    from_join_dt: str | None = None
    to_join_dt: str | None = None

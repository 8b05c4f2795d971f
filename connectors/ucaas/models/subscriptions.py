"""Subscriptions: a customer's purchase of user licences (seats) of one plan."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import Field

from connectors.ucaas.models.base import ApiModel, ListQuery, RequestModel
from connectors.ucaas.models.datapool import PlanSettings, Prices, UnitPrice

SubscriptionStatus = Literal["A", "X", "S"]  # active, expired, suspended


class SubscriptionTerms(ApiModel):
    base: str | None = None
    base_ex: str | None = None
    trial: bool | None = None
    allow_meeting_overlap: bool | None = None
    prepaid: bool | None = None
    postpaid: bool | None = None
    subsxn_date: str | None = None
    expiry_date: str | None = None
    currency: str | None = None
    status: str | None = None
    status_ex: str | None = None


class Features(ApiModel):
    screenshare: bool | None = None
    whiteboard: bool | None = None
    livestreaming: bool | None = None


class UserLicences(ApiModel):
    qty: int | None = Field(None, description="seats purchased")
    used: int | None = Field(None, description="seats assigned (sandbox extension)")
    unit_price: Prices | None = None
    total_price: Prices | None = None


class Subscription(ApiModel):
    subscription_id: str
    customer_id: str | None = None
    plan_id: str | None = None
    app_const: str | None = None
    plan_name: str | None = None
    room_type: str | None = None
    title: str | None = None
    settings: PlanSettings | None = None
    subscription: SubscriptionTerms | None = None
    features: Features | None = None
    user_license: UserLicences | None = None
    connect: UnitPrice | None = None
    records: UnitPrice | None = None
    download: UnitPrice | None = None
    storage: UnitPrice | None = None
    created_at: str | None = None


class NewSubscriptionTerms(RequestModel):
    subsxn_date: date = Field(description="first day, today or later")
    no_of_license: int = Field(description="seats purchased, at least 1")
    unit_price: float | None = None
    allow_meeting_overlap: bool | None = None
    payment_cycle: str | None = None
    payment_mode: Literal["F", "O"] | None = Field(None, description="F offline, O online")
    po: str | None = Field(None, description="purchase order")
    prepaid: bool | None = None


class NewSubscription(RequestModel):
    customer_id: str
    plan_id: str
    room_type: str
    subscription: NewSubscriptionTerms
    title: str | None = None


class SubscriptionTermChanges(RequestModel):
    status: SubscriptionStatus | None = None
    no_of_license: int | None = Field(None, description="sandbox extension")


class SubscriptionChanges(RequestModel):
    subscription: SubscriptionTermChanges


class SubscriptionRef(ApiModel):
    subscription_id: str
    customer_id: str | None = None
    customer_name: str | None = None
    plan_id: str | None = None
    plan_name: str | None = None
    qty: int | None = None


class SubscriptionSaved(ApiModel):
    """The answer to add and update."""

    msg: str | None = None
    subscription: SubscriptionRef


class SubscriptionQuery(ListQuery):
    """search_by: customer_id, app, plan_id, status, base. Dates are `YYYY-MM-DD`."""

    from_subxn_dt: date | None = None
    to_subxn_dt: date | None = None
    from_expiry_dt: date | None = None
    to_expiry_dt: date | None = None

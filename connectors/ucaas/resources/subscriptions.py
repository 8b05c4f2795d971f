"""Subscription Management API: get, list, add, update (writes: tenant admin only)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from connectors.ucaas.core import ApiCore
from connectors.ucaas.models.base import Page
from connectors.ucaas.models.subscriptions import (
    NewSubscription,
    Subscription,
    SubscriptionChanges,
    SubscriptionQuery,
    SubscriptionSaved,
)


class SubscriptionsAPI:
    def __init__(self, core: ApiCore) -> None:
        self._core = core

    async def get(self, subscription_id: str) -> Subscription:
        return await self._core.call(
            Subscription,
            "GET",
            "/subscriptions/{subscription_id}",
            key="subscription",
            path={"subscription_id": subscription_id},
        )

    async def list(self, query: SubscriptionQuery | None = None) -> Page[Subscription]:
        return await self._core.page("/subscriptions", "subscriptions", Subscription, query)

    def iterate(self, query: SubscriptionQuery | None = None) -> AsyncIterator[Subscription]:
        return self._core.iterate("/subscriptions", "subscriptions", Subscription, query)

    async def add(self, subscription: NewSubscription) -> SubscriptionSaved:
        """Not idempotent: the API accepts a second subscription of the same plan, so look
        up by customer and plan before adding."""
        return await self._core.call(
            SubscriptionSaved, "POST", "/subscriptions", json=subscription.payload()
        )

    async def update(self, subscription_id: str, changes: SubscriptionChanges) -> SubscriptionSaved:
        return await self._core.call(
            SubscriptionSaved,
            "PATCH",
            "/subscriptions/{subscription_id}",
            path={"subscription_id": subscription_id},
            json=changes.payload(),
        )

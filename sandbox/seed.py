"""A fresh sandbox: the tenant and its admin, nothing else."""

from __future__ import annotations

from sandbox.state import Customer, Store, User, hash_password, new_id

DEFAULT_API_ID = "sandbox-app"
DEFAULT_ADMIN_EMAIL = "admin@sandbox.test"
DEFAULT_ADMIN_PASSWORD = "sandbox-admin"


def fresh_store(
    api_id: str = DEFAULT_API_ID,
    admin_email: str = DEFAULT_ADMIN_EMAIL,
    admin_password: str | None = DEFAULT_ADMIN_PASSWORD,
    *,
    password_hash: str | None = None,
) -> Store:
    store = Store(api_id=api_id, tenant_id=new_id())
    now = store.now()
    address = {"address_1": "1 Sandbox Way", "city": "Sandbox", "country_id": "840"}
    store.add_customer(
        Customer(
            customer_id=store.tenant_id,
            parent_id=None,
            customer_type="T",
            customer_name="Sandbox Tenant",
            customer_legal_name="Sandbox Tenant Ltd",
            contact_name="Sandbox Admin",
            contact_email=admin_email,
            office_address=address,
            billing_address=dict(address),
            added=now,
            modified=now,
            activated=now,
        )
    )
    store.add_user(
        User(
            user_id=new_id(),
            customer_id=store.tenant_id,
            user_type="TA",
            first_name="Sandbox",
            last_name="Admin",
            email=admin_email,
            password_hash=password_hash or hash_password(admin_password or ""),
            created_at=now,
            updated_at=now,
            activated_at=now,
        )
    )
    store.dirty = False
    return store

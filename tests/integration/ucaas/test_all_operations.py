"""Every one of the reference's 51 operations, called once through the client, in one story.

The sandbox counts calls per route template and variant; the story must have touched all
51 canonical operations, which shows the client and the sandbox each cover all of them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from connectors.ucaas import Credentials, NotFoundError, UCaaSClient
from connectors.ucaas.models.contacts import ContactChanges, GroupChanges, NewContact, NewGroup
from connectors.ucaas.models.customers import CustomerChanges, NewCustomer
from connectors.ucaas.models.lobby import (
    BrandingIn,
    LobbyIn,
    LobbyMessageIn,
    LobbyOptionsIn,
    LoginBrandingIn,
    SessionBrandingIn,
)
from connectors.ucaas.models.meetings import MeetingChanges, NewMeeting, RoomChanges
from connectors.ucaas.models.reports import CdrQuery
from connectors.ucaas.models.subscriptions import (
    NewSubscription,
    NewSubscriptionTerms,
    SubscriptionChanges,
    SubscriptionTermChanges,
)
from connectors.ucaas.models.users import NewUser, UserChanges
from tests.integration.ucaas.factories import customer_payload
from tests.support.sandbox_server import SandboxAdmin

# The 51 operations of the reference, as the sandbox labels them (method, canonical route,
# and the header or body variant where two operations share a route).
OPERATIONS = {
    # provisioning and session access (7)
    "POST /login",
    "POST /password",
    "POST /password/{reset_key} [validate]",
    "PATCH /password/{reset_key} [reset]",
    "POST /sessions/join",
    "POST /sessions/invite",
    "GET /branding",
    # customers (4)
    "GET /customers/{customer_id}",
    "GET /customers",
    "POST /customers",
    "PATCH /customers/{customer_id}",
    # subscriptions (4)
    "GET /subscriptions/{subscription_id}",
    "GET /subscriptions",
    "POST /subscriptions",
    "PATCH /subscriptions/{subscription_id}",
    # users (6)
    "POST /users",
    "PATCH /users/{user_id}",
    "GET /users/{user_id}",
    "GET /users",
    "PATCH /users/{user_id} [X-License: assign]",
    "PATCH /users/{user_id} [X-License: revoke]",
    # meetings (13)
    "GET /meetings/permanent",
    "PATCH /meetings/permanent/{room_id}",
    "PATCH /meetings/permanent/{room_id} [X-Action: reset-pins]",
    "POST /meetings",
    "PATCH /meetings/{meeting_id}",
    "GET /meetings/{meeting_id}",
    "GET /meetings",
    "DELETE /meetings/{meeting_id}",
    "GET /meetings/{meeting_id}/lobby",
    "POST /meetings/{meeting_id}/lobby",
    "PATCH /meetings/{meeting_id}/lobby",
    "DELETE /meetings/{meeting_id}/lobby",
    "POST /meetings/{meeting_id}/branding",
    # contacts (5)
    "POST /contacts",
    "PATCH /contacts/{contact_id}",
    "GET /contacts/{contact_id}",
    "GET /contacts",
    "DELETE /contacts/{contact_id}",
    # contact groups (7)
    "POST /contact-groups",
    "PATCH /contact-groups/{group_id}",
    "GET /contact-groups/{group_id}",
    "GET /contact-groups",
    "DELETE /contact-groups/{group_id}",
    "PATCH /contact-groups/{group_id} [X-License: add-contact]",
    "PATCH /contact-groups/{group_id} [X-License: delete-contact]",
    # datapool (3)
    "GET /timezones",
    "GET /countries",
    "GET /plans",
    # reports (2)
    "GET /sessions",
    "GET /cdr",
}


def test_the_list_has_51_operations() -> None:
    assert len(OPERATIONS) == 51


async def test_every_operation_through_the_client(api: UCaaSClient, sandbox: SandboxAdmin) -> None:
    # -- tenant admin: master data, a customer and its subscription -------------------
    plans = await api.datapool.plans()
    zones = await api.datapool.timezones()
    countries = await api.datapool.countries()
    paris = next(z.timezone_id for z in zones if z.zone_name == "Europe/Paris")
    assert any(c.iso2_code == "FR" for c in countries)
    plan = next(p for p in plans if p.app == "vc")

    created = await api.customers.add(NewCustomer.model_validate(customer_payload()))
    customer_id = created.customer.customer_id
    await api.customers.edit(customer_id, CustomerChanges(customer_name="Acme Group"))
    assert (await api.customers.get(customer_id)).customer_name == "Acme Group"
    assert [c.customer_id for c in (await api.customers.list()).items] == [customer_id]

    saved = await api.subscriptions.add(
        NewSubscription(
            customer_id=customer_id,
            plan_id=plan.plan_id,
            room_type="standard",
            subscription=NewSubscriptionTerms(
                subsxn_date=datetime.fromisoformat(sandbox.state()["now"]).date(),
                no_of_license=5,
            ),
        )
    )
    subscription_id = saved.subscription.subscription_id
    await api.subscriptions.update(
        subscription_id, SubscriptionChanges(subscription=SubscriptionTermChanges(no_of_license=6))
    )
    assert (await api.subscriptions.get(subscription_id)).user_license.qty == 6  # type: ignore[union-attr]
    assert len((await api.subscriptions.list()).items) == 1

    # -- the customer's admin: a user with a licence ------------------------------------
    assert created.portal_access is not None
    portal = api.as_account(
        Credentials(created.portal_access.username, created.portal_access.password)
    )
    user_email, password = "ann@acme.test", "first-password"
    user = await portal.users.add(
        NewUser(
            user_type="AP", first_name="Ann", last_name="Lee", email=user_email, password=password
        )
    )
    user_id = user.user.user_id
    await portal.users.edit(user_id, UserChanges(designation="Engineer"))
    assert (await portal.users.get(user_id)).designation == "Engineer"
    assert [u.email for u in (await portal.users.list()).items] == [user_email]
    access = await portal.users.assign_licence(user_id, app="vc", subscription_id=subscription_id)

    # -- forgotten password, with the key the sandbox "mailed" ---------------------------
    await api.access.forgot_password(user_email)
    key = next(
        m["data"]["reset_key"] for m in sandbox.state()["mails"] if m["kind"] == "password_reset"
    )
    assert (await api.access.validate_reset_key(key)).email == user_email
    password = "second-password"
    await api.access.reset_password(key, user_email, password, password)

    # -- the user: own room, a meeting with lobby and branding, contacts and groups ------
    me = api.as_account(Credentials.of(user_email, password))
    assert (await me.access.login(user_email, password)).user.user_id == user_id
    room = await me.meetings.get_permanent_room("vc")
    assert room.room_id == access.user.access.room_id  # type: ignore[union-attr]
    await me.meetings.update_permanent_room(room.room_id, RoomChanges(desc="Daily stand-up"), "vc")
    room = await me.meetings.reset_pins(room.room_id, mpin=True, ppin=False, app="vc")

    start = datetime.fromisoformat(sandbox.state()["now"]).astimezone(UTC) + timedelta(days=1)
    meeting = await me.meetings.schedule(
        NewMeeting(
            room_name="Quarterly review",
            desc="Numbers",
            start_time=start,
            timezone_id=paris,
            duration=60,
            moderators=1,
            participants=5,
        ),
        "vc",
    )
    await me.meetings.edit(meeting.meeting_id, MeetingChanges(duration=90), "vc")
    assert (await me.meetings.get(meeting.meeting_id, "vc")).duration == 90
    assert len((await me.meetings.list(None, "vc")).items) == 1
    lobby = LobbyIn(
        options=LobbyOptionsIn(message=True), message=[LobbyMessageIn(text="Welcome, all")]
    )
    await me.meetings.add_lobby(meeting.meeting_id, lobby, "vc")
    await me.meetings.update_lobby(meeting.meeting_id, lobby, "vc")
    assert await me.meetings.get_lobby(meeting.meeting_id, "vc") is not None
    await me.meetings.delete_lobby(meeting.meeting_id, "vc")
    await me.meetings.set_branding(
        meeting.meeting_id,
        BrandingIn(
            login=LoginBrandingIn(headline="Welcome"),
            session=SessionBrandingIn(banner_small="https://cdn.acme.test/small.png"),
        ),
        "vc",
    )
    branding = await api.access.get_branding(meeting_id=meeting.meeting_id)
    assert branding.vc is not None

    contact = await me.contacts.add(NewContact(name="Bob Stone", email="bob@partner.test"))
    contact_id = contact.contact.contact_id
    await me.contacts.edit(contact_id, ContactChanges(company="Partner Inc"))
    assert (await me.contacts.get(contact_id)).company == "Partner Inc"
    assert len((await me.contacts.list()).items) == 1
    group = await me.contact_groups.add(NewGroup(group_name="Partners"))
    group_id = group.group.group_id  # type: ignore[union-attr]
    await me.contact_groups.edit(group_id, GroupChanges(group_name="Key partners"))
    await me.contact_groups.add_contacts(group_id, [contact_id])
    assert len((await me.contact_groups.get(group_id)).contacts or []) == 1
    await me.contact_groups.delete_contacts(group_id, [contact_id])
    assert len((await me.contact_groups.list()).items) == 1
    await me.contact_groups.delete(group_id)
    await me.contacts.delete(contact_id)

    # -- a session in the permanent room, an invitation, the reports ----------------------
    joined = await api.access.join_session(room.mpin, "Ann Lee", "ann")
    assert joined.user.role == "moderator"  # type: ignore[union-attr]
    await api.access.invite(["carol@partner.test"], pin=room.ppin)
    sessions = await portal.reports.sessions()
    assert len(sessions.items) == 1
    cdr = await portal.reports.cdr(CdrQuery(room_id=room.room_id))
    assert len(cdr.items) == 1

    # -- tear down: cancel, revoke ----------------------------------------------------------
    await me.meetings.cancel(meeting.meeting_id, "vc")
    try:
        await me.meetings.get(meeting.meeting_id, "vc")
        raise AssertionError("a cancelled meeting is gone")
    except NotFoundError:
        pass
    await portal.users.revoke_licence(user_id, "vc")

    calls = set(sandbox.calls()["calls"])
    assert OPERATIONS - calls == set(), "operations never called"

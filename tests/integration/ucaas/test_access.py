"""Provisioning and Video Session Access: the client against the sandbox over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from connectors.ucaas import (
    AuthenticationError,
    Credentials,
    NotFoundError,
    UCaaSClient,
    ValidationError,
)
from sandbox.seed import DEFAULT_ADMIN_EMAIL, DEFAULT_ADMIN_PASSWORD, DEFAULT_API_ID
from tests.integration.ucaas.factories import (
    join,
    licensed_user,
    new_customer,
    new_user,
    portal_auth,
    schedule_meeting,
)
from tests.support.sandbox_server import SandboxAdmin


@pytest.fixture
async def public(sandbox: SandboxAdmin) -> AsyncIterator[UCaaSClient]:
    """A client without credentials: enough for every route of this group."""
    async with UCaaSClient(sandbox.base_url, api_id=DEFAULT_API_ID) as client:
        yield client


def mails(sandbox: SandboxAdmin, kind: str) -> list[dict[str, Any]]:
    return [m for m in sandbox.state()["mails"] if m["kind"] == kind]


def a_user(sandbox: SandboxAdmin) -> dict[str, Any]:
    return new_user(sandbox, portal_auth(new_customer(sandbox)))


def reset_key_for(sandbox: SandboxAdmin, email: str) -> str:
    response = sandbox.api("POST", "/password", {"email": email})
    assert response.status_code == 200, response.text
    return str(mails(sandbox, "password_reset")[-1]["data"]["reset_key"])


# -- login ------------------------------------------------------------------------------
async def test_login_answers_token_and_user(public: UCaaSClient) -> None:
    result = await public.access.login(DEFAULT_ADMIN_EMAIL, DEFAULT_ADMIN_PASSWORD)
    token = result.token.get_secret_value()
    assert token
    assert token not in repr(result)
    assert result.user.email == DEFAULT_ADMIN_EMAIL
    assert result.user.user_type == "TA"
    assert result.user.company is not None
    assert result.user.company.company_id
    assert result.user.apps is not None
    assert set(result.user.apps) == {"vc", "wb"}
    assert result.user.last_login_time is not None


async def test_login_with_a_wrong_password_is_4010(public: UCaaSClient) -> None:
    with pytest.raises(AuthenticationError) as info:
        await public.access.login(DEFAULT_ADMIN_EMAIL, "not-the-password")
    assert info.value.status == 401
    assert info.value.code == 4010
    assert "not-the-password" not in str(info.value)


async def test_expired_token_is_renewed_by_one_login(sandbox: SandboxAdmin) -> None:
    sandbox.faults(token_lifetime_s=1)
    async with UCaaSClient(
        sandbox.base_url,
        api_id=DEFAULT_API_ID,
        credentials=Credentials.of(DEFAULT_ADMIN_EMAIL, DEFAULT_ADMIN_PASSWORD),
    ) as api:
        first = await api.access.login(DEFAULT_ADMIN_EMAIL, DEFAULT_ADMIN_PASSWORD)
        assert first.model_extra is not None
        assert first.model_extra["expires_in"] == 1
        await api.reports.sessions()
        # Sandbox time moves past the one-second lifetime; no sleep needed.
        sandbox.clock(5)
        await api.reports.sessions()
        assert getattr(api.auth, "logins", None) == 2
    sandbox.faults(token_lifetime_s=900)
    calls = sandbox.calls()["calls"]
    assert calls["POST /login"] == 3  # access.login, then two by the client's auth
    assert calls["GET /sessions"] == 3  # 200, 401 (expired), 200 after the new login


# -- X-Api-Id ---------------------------------------------------------------------------
PUBLIC_ROUTES = [
    ("POST", "/login", {"email": DEFAULT_ADMIN_EMAIL, "password": DEFAULT_ADMIN_PASSWORD}),
    ("POST", "/password", {"email": DEFAULT_ADMIN_EMAIL}),
    ("POST", "/password/some-key", None),
    ("PATCH", "/password/some-key", {"email": DEFAULT_ADMIN_EMAIL, "password": "abcdefgh"}),
    ("POST", "/sessions/join", {"pin": "12345678", "name": "A", "user_ref": "a"}),
    ("POST", "/sessions/invite", {"pin": "12345678", "invitees": ["a@b.test"]}),
    ("GET", "/branding?domain=example.test", None),
]


@pytest.mark.parametrize(("method", "path", "body"), PUBLIC_ROUTES)
def test_public_routes_require_the_api_id(
    sandbox: SandboxAdmin, method: str, path: str, body: dict[str, Any] | None
) -> None:
    wrong = sandbox.api(method, path, body, headers={"X-Api-Id": "wrong"})
    assert wrong.status_code == 401
    assert wrong.json()["code"] == 4012
    missing = httpx.request(method, sandbox.base_url + path, json=body, timeout=10)
    assert missing.status_code == 401
    assert missing.json()["code"] == 4012
    assert sandbox.state()["mails"] == []
    assert sandbox.state()["sessions"] == []


async def test_client_with_a_wrong_api_id(sandbox: SandboxAdmin) -> None:
    room = licensed_user(sandbox)["access"]
    async with UCaaSClient(sandbox.base_url, api_id="wrong") as client:
        for call in (
            client.access.join_session(room["ppin"], "A", "a"),
            client.access.forgot_password(DEFAULT_ADMIN_EMAIL),
            client.access.get_branding(domain="example.test"),
        ):
            with pytest.raises(AuthenticationError) as info:
                await call
            assert info.value.code == 4012
    assert sandbox.state()["sessions"] == []


# -- passwords --------------------------------------------------------------------------
async def test_forgot_validate_reset_and_log_in(public: UCaaSClient, sandbox: SandboxAdmin) -> None:
    user = a_user(sandbox)
    old_token = sandbox.api(
        "POST", "/login", {"email": user["email"], "password": user["password"]}
    ).json()["token"]

    notice = await public.access.forgot_password(user["email"])
    assert notice.email == user["email"]
    (mail,) = mails(sandbox, "password_reset")
    assert mail["to"] == user["email"]
    key = mail["data"]["reset_key"]
    assert mail["data"]["user_id"] == user["user_id"]

    owner = await public.access.validate_reset_key(key)
    assert owner.user_id == user["user_id"]
    assert owner.email == user["email"]
    assert owner.first_name is not None
    assert owner.first_name.startswith("First")

    done = await public.access.reset_password(key, user["email"], "brand-new-pw", "brand-new-pw")
    assert done.msg == "Your account password has been reset."

    logged_in = await public.access.login(user["email"], "brand-new-pw")
    assert logged_in.user.user_id == user["user_id"]
    with pytest.raises(AuthenticationError) as info:
        await public.access.login(user["email"], user["password"])
    assert info.value.code == 4010
    # The key is spent, and the token from before the reset no longer works.
    with pytest.raises(ValidationError) as spent:
        await public.access.validate_reset_key(key)
    assert spent.value.code == 4201
    stale = sandbox.api("GET", "/sessions", headers={"Authorization": f"Token {old_token}"})
    assert stale.status_code == 401


async def test_reset_key_lives_one_hour(public: UCaaSClient, sandbox: SandboxAdmin) -> None:
    user = a_user(sandbox)
    key = reset_key_for(sandbox, user["email"])
    sandbox.clock(59 * 60)
    assert (await public.access.validate_reset_key(key)).user_id == user["user_id"]
    sandbox.clock(61 * 60)
    with pytest.raises(ValidationError) as info:
        await public.access.validate_reset_key(key)
    assert info.value.status == 400
    assert info.value.code == 4201


def test_either_method_validates_or_resets(sandbox: SandboxAdmin) -> None:
    user = a_user(sandbox)
    key = reset_key_for(sandbox, user["email"])
    validated = sandbox.api("PATCH", f"/password/{key}")
    assert validated.status_code == 200
    assert validated.json()["data"]["user_id"] == user["user_id"]
    body = {"email": user["email"], "password": "via-post-1", "password_retyped": "via-post-1"}
    reset = sandbox.api("POST", f"/password/{key}", body)
    assert reset.status_code == 200, reset.text
    relogin = sandbox.api("POST", "/login", {"email": user["email"], "password": "via-post-1"})
    assert relogin.status_code == 200
    calls = sandbox.calls()["calls"]
    assert calls["PATCH /password/{reset_key} [validate]"] == 1
    assert calls["POST /password/{reset_key} [reset]"] == 1


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({}, 1101),
        ({"email": "not-an-email"}, 1105),
        ({"email": "nobody@nowhere.test"}, 1106),
    ],
)
async def test_forgot_password_codes(
    public: UCaaSClient, sandbox: SandboxAdmin, body: dict[str, Any], code: int
) -> None:
    response = sandbox.api("POST", "/password", body)
    assert response.status_code == 400
    assert response.json()["code"] == code
    if "email" in body:
        with pytest.raises(ValidationError) as info:
            await public.access.forgot_password(body["email"])
        assert info.value.code == code
    assert sandbox.state()["mails"] == []


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"password": None}, 1123),
        ({"password_retyped": None}, 1123),
        ({"password": "short", "password_retyped": "short"}, 1122),
        ({"password_retyped": "something-else"}, 3001),
        ({"password": "OLD", "password_retyped": "OLD"}, 3011),
        ({"email": "someone-else@example.test"}, 4202),
        ({"email": None}, 1101),
        ({"key": "no-such-key"}, 4201),
    ],
)
def test_reset_password_codes(sandbox: SandboxAdmin, change: dict[str, Any], code: int) -> None:
    user = a_user(sandbox)
    key = reset_key_for(sandbox, user["email"])
    body: dict[str, Any] = {
        "email": user["email"],
        "password": "a-new-password",
        "password_retyped": "a-new-password",
    }
    for name, value in change.items():
        if value == "OLD":
            value = user["password"]
        if name == "key":
            key = value
        elif value is None:
            body.pop(name)
        else:
            body[name] = value
    response = sandbox.api("PATCH", f"/password/{key}", body)
    assert response.status_code == 400
    assert response.json()["code"] == code
    # Nothing changed: the old password still logs in.
    login = sandbox.api("POST", "/login", {"email": user["email"], "password": user["password"]})
    assert login.status_code == 200


# -- sessions ---------------------------------------------------------------------------
async def test_join_by_moderator_and_participant_pin(
    public: UCaaSClient, sandbox: SandboxAdmin
) -> None:
    owner = licensed_user(sandbox)
    room = owner["access"]
    host = await public.access.join_session(room["mpin"], "Host", "host-1")
    guest = await public.access.join_session(room["ppin"], "Guest", "guest-1")
    assert host.user.role == "moderator"
    assert guest.user.role == "participant"
    for joined in (host, guest):
        assert joined.user.room_id == room["room_id"]
        assert joined.user.meeting_id is None
        assert joined.user.user_id == owner["user"]["user_id"]
        assert joined.user.customer_id == owner["customer"]["customer_id"]
        assert joined.user.email == owner["user"]["email"]
        assert joined.token.get_secret_value() not in repr(joined)
    assert host.token.get_secret_value() != guest.token.get_secret_value()

    state = sandbox.state()
    (session,) = state["sessions"]  # one open session per room
    assert session["room_id"] == room["room_id"]
    assert session["user_id"] == owner["user"]["user_id"]
    assert session["disconnect_dt"] is None
    assert [(c["name"], c["user_ref"], c["role"]) for c in state["cdrs"]] == [
        ("Host", "host-1", "moderator"),
        ("Guest", "guest-1", "participant"),
    ]
    assert {c["session_id"] for c in state["cdrs"]} == {session["session_id"]}

    # The session token opens the video session, not the provisioning API.
    session_token = f"Token {host.token.get_secret_value()}"
    response = sandbox.api("GET", "/sessions", headers={"Authorization": session_token})
    assert response.status_code == 401


def test_session_join_alias(sandbox: SandboxAdmin) -> None:
    room = licensed_user(sandbox)["access"]
    body = {"pin": room["ppin"], "name": "Alias", "user_ref": "alias"}
    response = sandbox.api("POST", "/session/join", body)
    assert response.status_code == 200, response.text
    assert response.json()["user"]["role"] == "participant"
    assert sandbox.calls()["calls"]["POST /sessions/join"] == 1
    assert len(sandbox.state()["cdrs"]) == 1


async def test_join_a_scheduled_meeting(public: UCaaSClient, sandbox: SandboxAdmin) -> None:
    owner = licensed_user(sandbox)
    meeting = schedule_meeting(sandbox, owner["auth"], user_id=owner["user"]["user_id"])
    joined = await public.access.join_session(meeting["mpin"], "Chair", "chair")
    assert joined.user.meeting_id == meeting["meeting_id"]
    assert joined.user.room_id == meeting["room_id"]
    assert joined.user.role == "moderator"
    (session,) = sandbox.state()["sessions"]
    assert session["meeting_id"] == meeting["meeting_id"]
    # A cancelled meeting's PIN opens nothing.
    cancelled = sandbox.api("DELETE", f"/meetings/{meeting['meeting_id']}", auth=owner["auth"])
    assert cancelled.status_code == 200, cancelled.text
    with pytest.raises(ValidationError) as info:
        await public.access.join_session(meeting["ppin"], "Late", "late")
    assert info.value.code == 2108


async def test_revoked_licence_closes_the_room(public: UCaaSClient, sandbox: SandboxAdmin) -> None:
    owner = licensed_user(sandbox)
    room = owner["access"]
    await public.access.join_session(room["ppin"], "Before", "before")
    revoked = sandbox.api(
        "PATCH",
        f"/users/{owner['user']['user_id']}",
        {"app": "vc"},
        auth=owner["auth"],
        headers={"X-License": "revoke"},
    )
    assert revoked.status_code == 200, revoked.text
    for pin in (room["ppin"], room["mpin"]):
        with pytest.raises(ValidationError) as info:
            await public.access.join_session(pin, "After", "after")
        assert info.value.code == 2108
    assert len(sandbox.state()["cdrs"]) == 1


def test_a_session_ends_at_the_room_duration(sandbox: SandboxAdmin) -> None:
    room = licensed_user(sandbox)["access"]
    first = join(sandbox, room["mpin"])["user"]["session_id"]
    sandbox.clock(30 * 60)
    assert join(sandbox, room["ppin"])["user"]["session_id"] == first
    sandbox.clock(61 * 60)  # the room's sessions last 60 minutes at most
    second = join(sandbox, room["ppin"])["user"]["session_id"]
    assert second != first
    sessions = {s["session_id"]: s for s in sandbox.state()["sessions"]}
    assert sessions[first]["disconnect_dt"] is not None
    assert sessions[second]["disconnect_dt"] is None


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"name": "A", "user_ref": "a"}, 2101),
        ({"pin": "12345", "name": "A", "user_ref": "a"}, 2107),
        ({"pin": "12345678901", "name": "A", "user_ref": "a"}, 2107),
        ({"pin": 12345678, "name": "A", "user_ref": "a"}, 2107),
        ({"pin": "1234567", "name": "A", "user_ref": "a"}, 2108),
        ({"pin": "ROOM", "user_ref": "a"}, 2111),
        ({"pin": "ROOM", "name": "A"}, 2112),
        ({"pin": "ROOM", "name": " ", "user_ref": "a"}, 2111),
    ],
)
def test_join_codes(sandbox: SandboxAdmin, body: dict[str, Any], code: int) -> None:
    room = licensed_user(sandbox)["access"]
    if body.get("pin") == "ROOM":
        body = {**body, "pin": room["ppin"]}
    response = sandbox.api("POST", "/sessions/join", body)
    assert response.status_code == 400
    assert response.json()["code"] == code
    assert sandbox.state()["sessions"] == []


def test_join_lists_every_problem(sandbox: SandboxAdmin) -> None:
    response = sandbox.api("POST", "/sessions/join", {})
    codes = [e["code"] for e in response.json()["errors"]]
    assert codes == [2101, 2111, 2112]


async def test_invite_by_pin_or_room(public: UCaaSClient, sandbox: SandboxAdmin) -> None:
    room = licensed_user(sandbox)["access"]
    result = await public.access.invite(["a@x.test", "B@x.test", "a@x.test"], pin=room["mpin"])
    assert result.desc == "Invitation email has been sent."
    invitations = mails(sandbox, "invitation")
    assert [m["to"] for m in invitations] == ["a@x.test", "b@x.test"]
    for mail in invitations:
        # Even a moderator's invitation hands out the participant PIN.
        assert mail["data"]["ppin"] == room["ppin"]
        assert mail["data"]["room_id"] == room["room_id"]
        assert mail["data"]["url"].endswith(f"/join/room/{room['room_id']}")
    await public.access.invite(["c@x.test"], room_id=room["room_id"])
    assert [m["to"] for m in mails(sandbox, "invitation")][-1] == "c@x.test"


async def test_invite_to_a_meeting(public: UCaaSClient, sandbox: SandboxAdmin) -> None:
    owner = licensed_user(sandbox)
    meeting = schedule_meeting(sandbox, owner["auth"], user_id=owner["user"]["user_id"])
    await public.access.invite(["m@x.test"], meeting_id=meeting["meeting_id"])
    (mail,) = mails(sandbox, "invitation")
    assert mail["data"]["meeting_id"] == meeting["meeting_id"]
    assert mail["data"]["ppin"] == meeting["ppin"]
    with pytest.raises(NotFoundError):
        await public.access.invite(["m@x.test"], meeting_id="0" * 24)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"invitees": ["a@x.test"]}, 2101),
        ({"pin": "123", "invitees": ["a@x.test"]}, 2107),
        ({"pin": "1234567", "invitees": ["a@x.test"]}, 2108),
        ({"pin": "ROOM"}, 2207),
        ({"pin": "ROOM", "invitees": "a@x.test"}, 2208),
        ({"pin": "ROOM", "invitees": []}, 2209),
        ({"pin": "ROOM", "invitees": ["a@x.test", "nope"]}, 2210),
        ({"room_id": "REVOKED", "invitees": ["a@x.test"]}, 1000),
    ],
)
def test_invite_codes(sandbox: SandboxAdmin, body: dict[str, Any], code: int) -> None:
    owner = licensed_user(sandbox)
    room = owner["access"]
    if body.get("pin") == "ROOM":
        body = {**body, "pin": room["ppin"]}
    if body.get("room_id") == "REVOKED":
        sandbox.api(
            "PATCH",
            f"/users/{owner['user']['user_id']}",
            {"app": "vc"},
            auth=owner["auth"],
            headers={"X-License": "revoke"},
        )
        body = {**body, "room_id": room["room_id"]}
    response = sandbox.api("POST", "/sessions/invite", body)
    assert response.status_code == 400
    assert response.json()["code"] == code
    assert mails(sandbox, "invitation") == []


# -- branding ---------------------------------------------------------------------------
BRANDING_KEYS = {
    "enabled", "name", "url", "logo", "logo_inner", "logo_icon", "favicon", "desc",
    "exit_url", "copyright", "login_page", "fields", "email", "tos", "credits", "options", "api",
}  # fmt: skip


async def test_branding_by_domain(public: UCaaSClient, sandbox: SandboxAdmin) -> None:
    branding = await public.access.get_branding(domain="video.example.test")
    assert branding.vc is not None
    assert branding.wb is not None
    assert branding.vc.url == "https://video.example.test"
    assert branding.vc.login_page is not None
    assert branding.vc.login_page.heading
    assert branding.vc.fields
    assert branding.vc.fields[0].label == "Name"
    raw = sandbox.api("GET", "/branding", params={"domain": "video.example.test"}).json()
    assert set(raw) == {"result", "vc", "wb"}
    assert set(raw["vc"]) == BRANDING_KEYS
    assert set(raw["vc"]["api"]) == {"referrer_check", "referrer_domain", "user_ref_check"}
    assert set(raw["vc"]["email"]) == {"from_email", "from_name", "replyto_email", "template"}


async def test_branding_needs_a_filter_and_known_ids(
    public: UCaaSClient, sandbox: SandboxAdmin
) -> None:
    with pytest.raises(ValidationError) as info:
        await public.access.get_branding()
    assert info.value.code == 2001
    with pytest.raises(NotFoundError):
        await public.access.get_branding(customer_id="0" * 24)
    with pytest.raises(NotFoundError):
        await public.access.get_branding(meeting_id="0" * 24)
    customer_id = new_customer(sandbox)["customer"]["customer_id"]
    branding = await public.access.get_branding(customer_id=customer_id)
    assert branding.vc is not None
    assert branding.vc.enabled is True


async def test_meeting_branding_overrides(public: UCaaSClient, sandbox: SandboxAdmin) -> None:
    owner = licensed_user(sandbox)
    meeting = schedule_meeting(sandbox, owner["auth"], user_id=owner["user"]["user_id"])
    plain = await public.access.get_branding(meeting_id=meeting["meeting_id"])
    assert plain.vc is not None
    assert plain.vc.session is None
    branding = {
        "login": {
            "headline": "Quarterly review",
            "desc": "All hands",
            "banner": "https://x.test/b.png",
        },
        "session": {"banner_small": "https://x.test/s.png"},
    }
    set_response = sandbox.api(
        "POST",
        f"/meetings/{meeting['meeting_id']}/branding",
        branding,
        auth=owner["auth"],
        headers={"X-App-Type": "vc"},
    )
    assert set_response.status_code == 200, set_response.text
    result = await public.access.get_branding(
        domain="video.example.test", meeting_id=meeting["meeting_id"]
    )
    assert result.vc is not None
    assert result.vc.login_page is not None
    assert result.vc.login_page.heading == "Quarterly review"
    assert result.vc.login_page.content == "All hands"
    assert result.vc.login is not None
    assert result.vc.login.banner == "https://x.test/b.png"
    assert result.vc.session is not None
    assert result.vc.session.banner_small == "https://x.test/s.png"
    assert result.vc.url == "https://video.example.test"
    # The webinar object is not the meeting's: it keeps the defaults.
    assert result.wb is not None
    assert result.wb.login is None

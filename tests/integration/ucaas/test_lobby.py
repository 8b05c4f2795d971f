"""Lobby and branding of a meeting: the client against the sandbox over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from connectors.ucaas import (
    AlreadyExistsError,
    Credentials,
    NotFoundError,
    UCaaSClient,
    ValidationError,
)
from connectors.ucaas.models.lobby import (
    BrandingIn,
    LobbyAudioIn,
    LobbyImageIn,
    LobbyIn,
    LobbyMessageIn,
    LobbyOptionsIn,
    LobbyVideoIn,
    LoginBrandingIn,
    SessionBrandingIn,
)
from tests.integration.ucaas.factories import licensed_user, schedule_meeting, user_auth
from tests.support.sandbox_server import SandboxAdmin

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


@pytest.fixture
def owner(sandbox: SandboxAdmin) -> dict[str, Any]:
    return licensed_user(sandbox)


@pytest.fixture
def meeting(sandbox: SandboxAdmin, owner: dict[str, Any]) -> dict[str, Any]:
    return schedule_meeting(sandbox, user_auth(owner))


@pytest.fixture
async def user_api(api: UCaaSClient, owner: dict[str, Any]) -> AsyncIterator[UCaaSClient]:
    async with api.as_account(Credentials.of(*user_auth(owner))) as client:
        yield client


def stored(sandbox: SandboxAdmin, meeting_id: str, what: str) -> Any:
    return next(m for m in sandbox.state()["meetings"] if m["meeting_id"] == meeting_id)[what]


def messages_lobby() -> LobbyIn:
    return LobbyIn(
        options=LobbyOptionsIn(message=True, audio=True),
        message=[
            LobbyMessageIn(text="Welcome, we start soon"),
            LobbyMessageIn(text="Mute, please"),
        ],
        audio=[LobbyAudioIn(url="https://cdn.example.test/wait.mp3")],
    )


async def test_add_get_update_delete(
    user_api: UCaaSClient, sandbox: SandboxAdmin, meeting: dict[str, Any]
) -> None:
    meeting_id = meeting["meeting_id"]
    assert await user_api.meetings.get_lobby(meeting_id, "vc") is None

    lobby = await user_api.meetings.add_lobby(meeting_id, messages_lobby(), "vc")
    assert lobby.options.messages is True
    assert lobby.options.audio is True
    assert lobby.options.images is False
    assert [m.text for m in lobby.message] == ["Welcome, we start soon", "Mute, please"]
    assert lobby.audio[0].url == "https://cdn.example.test/wait.mp3"
    assert lobby.audio[0].embed is not None
    assert await user_api.meetings.get_lobby(meeting_id, "vc") == lobby
    assert stored(sandbox, meeting_id, "lobby")["message"][1] == {"text": "Mute, please"}

    with pytest.raises(AlreadyExistsError) as info:
        await user_api.meetings.add_lobby(meeting_id, messages_lobby(), "vc")
    assert (info.value.status, info.value.code) == (409, 2401)

    video = LobbyIn(
        options=LobbyOptionsIn(video=True),
        video=[LobbyVideoIn(url="https://cdn.example.test/intro.mov")],
    )
    replaced = await user_api.meetings.update_lobby(meeting_id, video, "vc")
    assert replaced.options.video is True
    assert replaced.options.messages is False
    assert replaced.message == []  # the whole lobby is replaced
    assert [v.url for v in replaced.video] == ["https://cdn.example.test/intro.mov"]
    assert stored(sandbox, meeting_id, "lobby")["options"]["video"] is True

    ref = await user_api.meetings.delete_lobby(meeting_id, "vc")
    assert ref.meeting_id == meeting_id
    assert stored(sandbox, meeting_id, "lobby") is None
    assert await user_api.meetings.get_lobby(meeting_id, "vc") is None
    with pytest.raises(NotFoundError):
        await user_api.meetings.delete_lobby(meeting_id, "vc")
    with pytest.raises(NotFoundError):  # nothing to update: add it first
        await user_api.meetings.update_lobby(meeting_id, video, "vc")


async def test_uploads_become_sandbox_urls(
    user_api: UCaaSClient, sandbox: SandboxAdmin, meeting: dict[str, Any]
) -> None:
    meeting_id = meeting["meeting_id"]
    lobby = await user_api.meetings.add_lobby(
        meeting_id,
        LobbyIn(
            options=LobbyOptionsIn(image=True, audio=True),
            image=[
                LobbyImageIn(img_file="img_file_0", caption="Our office"),
                LobbyImageIn(url="https://cdn.example.test/team.png", caption="The team"),
            ],
            audio=[LobbyAudioIn(audio_file="audio_file_0")],
        ),
        "vc",
        files={"img_file_0": ("office.png", PNG), "audio_file_0": ("wait.mp3", b"ID3" + PNG)},
    )
    assert lobby.options.images is True
    uploaded, linked = lobby.image
    assert uploaded.url.startswith(f"{sandbox.root}/_sandbox/files/")
    assert uploaded.caption == "Our office"
    assert linked.url == "https://cdn.example.test/team.png"
    assert lobby.audio[0].url.startswith(f"{sandbox.root}/_sandbox/files/")
    row = stored(sandbox, meeting_id, "lobby")
    assert row["image"][0]["file_name"] == "office.png"
    assert row["image"][0]["size"] == len(PNG)
    assert sandbox.calls()["calls"]["POST /meetings/{meeting_id}/lobby"] == 1


def test_the_answers_spelling_is_accepted(sandbox: SandboxAdmin, meeting: dict[str, Any]) -> None:
    body = {"options": {"messages": True}, "messages": [{"text": "Hello there"}]}
    response = sandbox.api("POST", f"/meetings/{meeting['meeting_id']}/lobby", body)
    assert response.status_code == 200, response.text
    assert response.json()["lobby"]["message"] == [{"text": "Hello there"}]


MESSAGE = [{"text": "Hello there"}]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"message": MESSAGE}, 2423),
        ({"options": {"message": False}}, 2423),
        ({"options": {"message": True, "image": True}, "message": MESSAGE}, 2423),
        ({"options": {"video": True, "audio": True}}, 2423),
        ({"options": {"message": "yes"}}, 2423),
        ({"options": {"message": True}}, 2402),
        ({"options": {"image": True}}, 2403),
        ({"options": {"image": True}, "image": [{"caption": "no source"}]}, 2403),
        ({"options": {"audio": True}}, 2404),
        ({"options": {"video": True}}, 2405),
        ({"options": {"image": True}, "image": "a.png"}, 2412),
        ({"options": {"video": True}, "video": "b.mov"}, 2421),
        ({"options": {"message": True}, "message": [{}]}, 2422),
        ({"options": {"message": True}, "message": [{"text": "hey"}]}, 2432),
        ({"options": {"message": True}, "message": [{"text": "x" * 101}]}, 2433),
        (
            {"options": {"image": True}, "image": [{"url": "https://x.test/a.png", "caption": 5}]},
            2435,
        ),
        ({"options": {"video": True}, "video": [{"url": 5}]}, 2438),
        ({"options": {"video": True}, "video": [{"url": "not a url"}]}, 2453),
        ({"options": {"audio": True}, "audio": [{"url": "ftp://x.test/a.mp3"}]}, 2453),
    ],
)
def test_lobby_rules(
    sandbox: SandboxAdmin, meeting: dict[str, Any], body: dict[str, Any], code: int
) -> None:
    response = sandbox.api("POST", f"/meetings/{meeting['meeting_id']}/lobby", body)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == code
    assert stored(sandbox, meeting["meeting_id"], "lobby") is None


def branding() -> BrandingIn:
    return BrandingIn(
        login=LoginBrandingIn(
            headline="Welcome to Acme",
            desc="Quarterly results",
            banner="https://cdn.example.test/banner.png",
            target_url="https://acme.example.test",
        ),
        session=SessionBrandingIn(banner_small="https://cdn.example.test/small.png"),
    )


async def test_set_branding(
    user_api: UCaaSClient, sandbox: SandboxAdmin, meeting: dict[str, Any]
) -> None:
    meeting_id = meeting["meeting_id"]
    result = await user_api.meetings.set_branding(meeting_id, branding(), "vc")
    assert result.login.headline == "Welcome to Acme"
    assert result.login.banner == "https://cdn.example.test/banner.png"
    assert result.session.banner_small == "https://cdn.example.test/small.png"
    assert stored(sandbox, meeting_id, "branding") == {
        "login": branding().login.payload(),
        "session": branding().session.payload(),
    }

    # A second call overwrites everything; an upload fills the field named by its part.
    video = BrandingIn(
        login=LoginBrandingIn(headline="Live", video_embed="<iframe src='x'></iframe>"),
        session=SessionBrandingIn(),
    )
    result = await user_api.meetings.set_branding(
        meeting_id, video, "vc", files={"session.banner_small": ("small.png", PNG)}
    )
    assert result.login.banner is None
    assert result.session.banner_small is not None
    assert result.session.banner_small.startswith(f"{sandbox.root}/_sandbox/files/")
    row = stored(sandbox, meeting_id, "branding")
    assert row["login"] == {"headline": "Live", "video_embed": "<iframe src='x'></iframe>"}
    assert row["session"]["banner_small"] == result.session.banner_small


LOGIN = {"headline": "Hello"}
SESSION = {"banner_small": "https://cdn.example.test/s.png"}


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"session": SESSION}, 2301),
        ({"login": {}, "session": SESSION}, 2302),
        ({"login": {"headline": "x" * 101}, "session": SESSION}, 2303),
        ({"login": {**LOGIN, "desc": "d" * 257}, "session": SESSION}, 2304),
        (
            {
                "login": {**LOGIN, "banner": "https://x.test/b.png", "video_embed": "<iframe>"},
                "session": SESSION,
            },
            2305,
        ),
        ({"login": LOGIN}, 2306),
        ({"login": LOGIN, "session": {"banner_big": "https://x.test/b.png"}}, 2307),
        ({"login": {**LOGIN, "banner": "http://x.test/b.png"}, "session": SESSION}, 2453),
        ({"login": LOGIN, "session": {"banner_small": "small.png"}}, 2453),
        ({"login": {**LOGIN, "target_url": "acme"}, "session": SESSION}, 2453),
    ],
)
def test_branding_rules(
    sandbox: SandboxAdmin, meeting: dict[str, Any], body: dict[str, Any], code: int
) -> None:
    response = sandbox.api("POST", f"/meetings/{meeting['meeting_id']}/branding", body)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == code
    assert stored(sandbox, meeting["meeting_id"], "branding") is None


async def test_other_customers_and_cancelled_meetings_are_not_found(
    api: UCaaSClient, user_api: UCaaSClient, sandbox: SandboxAdmin, meeting: dict[str, Any]
) -> None:
    stranger = licensed_user(sandbox)
    async with api.as_account(Credentials.of(*user_auth(stranger))) as other:
        with pytest.raises(NotFoundError):
            await other.meetings.get_lobby(meeting["meeting_id"], "vc")
        with pytest.raises(NotFoundError):
            await other.meetings.add_lobby(meeting["meeting_id"], messages_lobby(), "vc")
        with pytest.raises(NotFoundError):
            await other.meetings.set_branding(meeting["meeting_id"], branding(), "vc")
    assert stored(sandbox, meeting["meeting_id"], "lobby") is None

    await user_api.meetings.cancel(meeting["meeting_id"], "vc")
    with pytest.raises(NotFoundError):
        await user_api.meetings.add_lobby(meeting["meeting_id"], messages_lobby(), "vc")


async def test_lobby_alias_and_validation_through_the_client(
    user_api: UCaaSClient, sandbox: SandboxAdmin, meeting: dict[str, Any]
) -> None:
    meeting_id = meeting["meeting_id"]
    with pytest.raises(ValidationError) as info:
        await user_api.meetings.add_lobby(
            meeting_id,
            LobbyIn(options=LobbyOptionsIn(message=True), message=[LobbyMessageIn(text="hi")]),
            "vc",
        )
    assert info.value.code == 2432
    await user_api.meetings.add_lobby(meeting_id, messages_lobby(), "vc")
    got = sandbox.api("GET", f"/meeting/{meeting_id}/lobby")
    assert got.status_code == 200
    assert got.json()["lobby"]["options"]["messages"] is True
    assert got.json()["meeting"]["meeting_id"] == meeting_id

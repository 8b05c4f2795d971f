"""A meeting's lobby and branding.

Requests spell the lobby options `message`, `image`, `audio`, `video`; answers spell them
`messages`, `images`, `audio`, `video` (the reference does both). Uploads go as multipart
parts: a lobby item names its part in `img_file` / `audio_file`; a branding part is named
after the field it fills (`login.banner`, `session.banner_small`, ...).
"""

from __future__ import annotations

from pydantic import Field, model_validator

from connectors.ucaas.models.base import ApiModel, RequestModel
from connectors.ucaas.models.meetings import MeetingRef


# -- lobby: requests --------------------------------------------------------------------
class LobbyOptionsIn(RequestModel):
    """Messages or images (either may have background audio), audio alone, or video alone."""

    message: bool | None = None
    image: bool | None = None
    audio: bool | None = None
    video: bool | None = None


class LobbyMessageIn(RequestModel):
    text: str


class LobbyImageIn(RequestModel):
    url: str | None = None
    caption: str | None = None
    img_file: str | None = None  # the multipart part holding the image

    @model_validator(mode="after")
    def _source(self) -> LobbyImageIn:
        if (self.url is None) == (self.img_file is None):
            raise ValueError("give exactly one of url and img_file")
        return self


class LobbyAudioIn(RequestModel):
    url: str | None = None
    audio_file: str | None = None  # the multipart part holding the .mp3

    @model_validator(mode="after")
    def _source(self) -> LobbyAudioIn:
        if (self.url is None) == (self.audio_file is None):
            raise ValueError("give exactly one of url and audio_file")
        return self


class LobbyVideoIn(RequestModel):
    url: str


class LobbyIn(RequestModel):
    options: LobbyOptionsIn
    message: list[LobbyMessageIn] | None = None
    image: list[LobbyImageIn] | None = None
    audio: list[LobbyAudioIn] | None = None
    video: list[LobbyVideoIn] | None = None


# -- lobby: answers ---------------------------------------------------------------------
class LobbyOptions(ApiModel):
    messages: bool = False
    images: bool = False
    audio: bool = False
    video: bool = False


class LobbyMessage(ApiModel):
    text: str


class LobbyImage(ApiModel):
    url: str
    caption: str | None = None


class LobbyMedia(ApiModel):
    url: str
    embed: str | None = None


class Lobby(ApiModel):
    options: LobbyOptions
    message: list[LobbyMessage] = Field(default_factory=list)
    image: list[LobbyImage] = Field(default_factory=list)
    video: list[LobbyMedia] = Field(default_factory=list)
    audio: list[LobbyMedia] = Field(default_factory=list)


class LobbyAnswer(ApiModel):
    msg: str | None = None
    desc: str | None = None
    meeting: MeetingRef | None = None
    lobby: Lobby | None = None


# -- branding ---------------------------------------------------------------------------
class LoginBrandingIn(RequestModel):
    """At most one of banner, video_file (https URLs) and video_embed."""

    headline: str
    banner: str | None = None
    video_file: str | None = None
    video_embed: str | None = None
    desc: str | None = None
    target_url: str | None = None


class SessionBrandingIn(RequestModel):
    banner_small: str | None = None  # required, unless uploaded as part `session.banner_small`
    banner_big: str | None = None
    target_url: str | None = None


class BrandingIn(RequestModel):
    login: LoginBrandingIn
    session: SessionBrandingIn


class LoginBranding(ApiModel):
    headline: str | None = None
    banner: str | None = None
    video_file: str | None = None
    video_embed: str | None = None
    desc: str | None = None
    target_url: str | None = None


class SessionBranding(ApiModel):
    banner_small: str | None = None
    banner_big: str | None = None
    target_url: str | None = None


class Branding(ApiModel):
    login: LoginBranding
    session: SessionBranding

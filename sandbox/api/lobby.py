"""A meeting's lobby (get, add, update, delete) and its branding (set).

Both take JSON, or multipart/form-data with the JSON document in the `data` part and the
uploads in their own parts. An upload is answered with a sandbox URL (the bytes are not
kept). Lobby uploads: an item names its part (`"img_file": "img_file_0"`); an item with
neither `url` nor a named part takes the part `img_file_{index}` / `audio_file_{index}`.
Branding uploads: a part named like the field it fills (`login.banner`,
`session.banner_small`, ...).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from sandbox.api.meetings import meeting_ref, visible_meeting
from sandbox.errors import ApiError, not_found
from sandbox.http import Ctx, Op
from sandbox.state import new_id
from sandbox.validation import Check

# request option key -> (its spellings, the answer's key)
OPTIONS = {
    "message": (("message", "messages"), "messages"),
    "image": (("image", "images"), "images"),
    "audio": (("audio",), "audio"),
    "video": (("video",), "video"),
}
BRANDING_URLS = {
    "login": ("banner", "video_file"),
    "session": ("banner_small", "banner_big"),
}


def is_url(value: Any, *, https_only: bool = False) -> bool:
    if not isinstance(value, str) or not value or any(c.isspace() for c in value):
        return False
    parts = urlsplit(value)
    schemes = ("https",) if https_only else ("http", "https")
    return parts.scheme in schemes and bool(parts.netloc)


def _upload(ctx: Ctx, part: str) -> dict[str, Any]:
    name, content = ctx.files[part]
    return {
        "url": f"{ctx.public_url}/_sandbox/files/{new_id()}",
        "file_name": name,
        "size": len(content),
    }


def _items(
    check: Check, name: str, type_code: int, required_code: int, *, needed: bool
) -> list[Check]:
    """The array `name` (or its plural spelling) as one Check per object item."""
    spelling = next((s for s in OPTIONS[name][0] if check.has(s)), name)
    items = check.array(spelling, type_code, required=required_code if needed else None)
    if items is None:
        return []
    if needed and not items:
        check.fail(required_code, spelling)
    subs: list[Check] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            check.fail(type_code, f"{spelling}[{index}]")
            continue
        sub = Check(item, prefix=f"{check.prefix}{spelling}[{index}].")
        sub.errors = check.errors
        subs.append(sub)
    return subs


def _media(ctx: Ctx, sub: Check, index: int, file_key: str, missing: int) -> dict[str, Any] | None:
    """An item's URL, or the upload it names (or that sits at its index); None if neither."""
    ref = sub.body.get(file_key)
    if ref is not None:
        if isinstance(ref, str) and ref in ctx.files:
            return _upload(ctx, ref)
        sub.fail(missing, file_key)
        return None
    url = sub.body.get("url")
    if url is None:
        if f"{file_key}_{index}" in ctx.files:
            return _upload(ctx, f"{file_key}_{index}")
        sub.fail(missing, "url")
        return None
    if not is_url(url):
        sub.fail(2453, "url")
        return None
    return {"url": url}


def _lobby(ctx: Ctx) -> dict[str, Any]:
    check = Check(ctx.body)
    chosen = dict.fromkeys(OPTIONS, False)
    options = check.obj("options", 2423, required=2423)
    if options is not None:
        for key, (spellings, _) in OPTIONS.items():
            value = next((options.body[s] for s in spellings if options.has(s)), None)
            if value is not None and not isinstance(value, bool):
                options.fail(2423, key)
            chosen[key] = value is True
        # Messages or images may have background audio; a video plays alone.
        if (
            not any(chosen.values())
            or (chosen["message"] and chosen["image"])
            or (chosen["video"] and sum(chosen.values()) > 1)
        ):
            check.fail(2423, "options")

    messages = []
    for sub in _items(check, "message", 2402, 2402, needed=chosen["message"]):
        text = sub.string("text", 2422, required=2422, min_len=(5, 2432), max_len=(100, 2433))
        if text is not None:
            messages.append({"text": text})
    images = []
    for index, sub in enumerate(_items(check, "image", 2412, 2403, needed=chosen["image"])):
        caption = sub.string("caption", 2435, strip=False)
        media = _media(ctx, sub, index, "img_file", 2403)
        if media is not None:
            images.append({**media, "caption": caption})
    audio = []
    for index, sub in enumerate(_items(check, "audio", 2404, 2404, needed=chosen["audio"])):
        media = _media(ctx, sub, index, "audio_file", 2404)
        if media is not None:
            audio.append({**media, "embed": f'<audio src="{media["url"]}" controls></audio>'})
    videos = []
    for sub in _items(check, "video", 2421, 2405, needed=chosen["video"]):
        url = sub.string("url", 2438, required=2405, strip=False)
        if url is not None and not is_url(url):
            sub.fail(2453, "url")
        elif url is not None:
            videos.append({"url": url, "embed": f'<video src="{url}" controls></video>'})
    check.done()
    return {
        "options": {answer: chosen[key] for key, (_, answer) in OPTIONS.items()},
        "message": messages,
        "image": images,
        "video": videos,
        "audio": audio,
    }


def _lobby_answer(ctx: Ctx, meeting_id: str, msg: str | None) -> dict[str, Any]:
    meeting = ctx.store.meetings[meeting_id]
    out: dict[str, Any] = {"result": 1}
    if msg:
        out["msg"] = msg
    out["meeting"] = meeting_ref(meeting)
    out["lobby"] = meeting.lobby
    return out


def get_lobby(ctx: Ctx) -> dict[str, Any]:
    # A meeting without a lobby answers `"lobby": null`: a 404 would read as "no meeting".
    return _lobby_answer(ctx, visible_meeting(ctx).meeting_id, None)


def add_lobby(ctx: Ctx) -> dict[str, Any]:
    meeting = visible_meeting(ctx)
    if meeting.lobby is not None:
        raise ApiError(2401, "meeting_id")
    meeting.lobby = _lobby(ctx)
    meeting.updated_at = ctx.store.now()
    return _lobby_answer(ctx, meeting.meeting_id, "Lobby information has been added.")


def update_lobby(ctx: Ctx) -> dict[str, Any]:
    """Replaces the whole lobby: the reference's PATCH requires `options` like POST does."""
    meeting = visible_meeting(ctx)
    if meeting.lobby is None:
        raise not_found("lobby")
    meeting.lobby = _lobby(ctx)
    meeting.updated_at = ctx.store.now()
    return _lobby_answer(ctx, meeting.meeting_id, "Lobby information has been updated.")


def delete_lobby(ctx: Ctx) -> dict[str, Any]:
    meeting = visible_meeting(ctx)
    if meeting.lobby is None:
        raise not_found("lobby")
    meeting.lobby = None
    meeting.updated_at = ctx.store.now()
    return {"result": 1, "desc": "Lobby is deleted.", "meeting": meeting_ref(meeting)}


def _branding_part(ctx: Ctx, check: Check, name: str) -> Check | None:
    """The `login` or `session` object as sent, uploads replaced by their URLs."""
    code = 2301 if name == "login" else 2306
    part = check.obj(name, code, required=code)
    if part is None:
        return None
    part.body = dict(part.body)
    for key in BRANDING_URLS[name]:
        if f"{name}.{key}" in ctx.files:
            # The sandbox's own URL for an upload; only URLs the caller sends must be https.
            part.body[key] = _upload(ctx, f"{name}.{key}")["url"]
        elif part.has(key) and not is_url(part.body[key], https_only=True):
            part.fail(2453, key)
    if part.has("target_url") and not is_url(part.body["target_url"]):
        part.fail(2453, "target_url")
    return part


def set_branding(ctx: Ctx) -> dict[str, Any]:
    """Overwrites the meeting's branding. The objects are stored as sent, because
    GET /branding answers them."""
    meeting = visible_meeting(ctx)
    check = Check(ctx.body)
    login = _branding_part(ctx, check, "login")
    if login is not None:
        login.string("headline", 2302, required=2302, max_len=(100, 2303))
        login.string("desc", 2304, max_len=(256, 2304))
        if sum(login.has(k) for k in ("banner", "video_file", "video_embed")) > 1:
            login.fail(2305, "banner")
    session = _branding_part(ctx, check, "session")
    if session is not None and not session.has("banner_small"):
        session.fail(2307, "banner_small")
    check.done()
    assert login is not None and session is not None
    meeting.branding = {"login": login.body, "session": session.body}
    meeting.updated_at = ctx.store.now()
    return {
        "result": 1,
        "msg": "Branding has been set.",
        "meeting": meeting_ref(meeting),
        "branding": meeting.branding,
    }


ROUTES: list[Op] = [
    Op("GET", "/meetings/{meeting_id}/lobby", get_lobby),
    Op("POST", "/meetings/{meeting_id}/lobby", add_lobby),
    Op("PATCH", "/meetings/{meeting_id}/lobby", update_lobby),
    Op("DELETE", "/meetings/{meeting_id}/lobby", delete_lobby),
    Op("POST", "/meetings/{meeting_id}/branding", set_branding),
]

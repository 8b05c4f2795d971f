"""schedule_meeting, update_meeting, cancel_meeting.

A meeting is keyed by the calendar's key (feed, UID, occurrence); its natural key is the
organiser + room name + start time, which `meetings.find` looks up after a lost answer.
A meeting that has started is left alone (the API refuses with 1604); a cancel that finds
nothing (404) is already done.
"""

from __future__ import annotations

from connectors.ucaas import NotFoundError, ValidationError
from connectors.ucaas.models.meetings import Invitees, Meeting, MeetingChanges, NewMeeting
from service.domain.commands import (
    CancelMeeting,
    MeetingPayload,
    MeetingSpec,
    ScheduleMeeting,
    UpdateMeeting,
)
from service.executors.base import Exec, TenantAccess
from service.executors.registry import executes
from service.outbox.outcomes import Done, MappingKey, MappingWrite, Outcome, WaitForError

STARTED = 1604


def _key(p: MeetingPayload) -> MappingKey:
    return MappingKey("meeting", p.tenant, p.meeting_key)


async def _organiser(x: Exec, access: TenantAccess, email: str) -> str:
    mapping = await x.mapping_by_natural("user", access.tenant, email.lower())
    if mapping is not None:
        return mapping.ucaas_id
    found = await access.api.users.find_by_email(email)
    if found is None:
        raise WaitForError(f"organiser {email} has no UCaaS user yet")
    return found.user_id


def _state(spec: MeetingSpec) -> dict[str, object]:
    return spec.model_dump(mode="json")


def _learned(meeting: Meeting) -> dict[str, object]:
    """The answer's join link and PINs, for the result event (which drops the PINs unless
    the operator publishes them)."""
    found = {"join_url": meeting.direct_url, "mpin": meeting.mpin, "ppin": meeting.ppin}
    return {k: v for k, v in found.items() if v}


async def _fields(x: Exec, spec: MeetingSpec) -> dict[str, object]:
    return {
        "room_name": spec.room_name,
        "desc": spec.desc,
        "start_time": spec.start_time,
        "timezone_id": await x.zones.id_of(spec.zone),
        "duration": spec.duration,
        "moderators": spec.moderators,
        "participants": spec.participants,
        "invitees": Invitees(emails=list(spec.invitees)) if spec.invitees else None,
    }


async def _schedule(x: Exec, access: TenantAccess, p: MeetingPayload, spec: MeetingSpec) -> Outcome:
    organiser = await _organiser(x, access, p.organizer_email)
    if x.lookup_first:
        found = await access.api.meetings.find(organiser, spec.room_name, spec.start_time, p.app)
        if found is not None:
            mapping = MappingWrite(_key(p), found.meeting_id, organiser, _state(spec))
            return Done(
                mappings=(mapping,), note="adopted the existing meeting", learned=_learned(found)
            )
    meeting = await access.api.meetings.schedule(
        NewMeeting(user_id=organiser, **await _fields(x, spec)),
        p.app,
    )
    mapping = MappingWrite(_key(p), meeting.meeting_id, organiser, _state(spec))
    return Done(mappings=(mapping,), learned=_learned(meeting))


@executes(ScheduleMeeting)
async def schedule_meeting(x: Exec, p: ScheduleMeeting) -> Outcome:
    if await x.store.mapping(_key(p)):
        return Done(note="already mapped")
    access = await x.tenant(p.tenant)
    return await _schedule(x, access, p, p.meeting)


@executes(UpdateMeeting)
async def update_meeting(x: Exec, p: UpdateMeeting) -> Outcome:
    access = await x.tenant(p.tenant)
    mapping = await x.store.mapping(_key(p))
    if mapping is None:
        return await _schedule(x, access, p, p.meeting)
    try:
        fields = await _fields(x, p.meeting)
        # An edit replaces the invitees it names: empty lists drop those the calendar
        # dropped (None would leave them all invited).
        fields["invitees"] = Invitees(emails=list(p.meeting.invitees))
        edited = await access.api.meetings.edit(mapping.ucaas_id, MeetingChanges(**fields), p.app)
    except NotFoundError:
        # Cancelled behind our back: the calendar still wants it, so it is made again.
        return await _schedule(x, access, p, p.meeting)
    except ValidationError as exc:
        if exc.code == STARTED:
            return Done(note="already started: left as it is")
        raise
    state = _state(p.meeting)
    written = MappingWrite(_key(p), mapping.ucaas_id, mapping.natural_key, state)
    return Done(mappings=(written,), learned=_learned(edited))


@executes(CancelMeeting)
async def cancel_meeting(x: Exec, p: CancelMeeting) -> Outcome:
    mapping = await x.store.mapping(_key(p))
    if mapping is None:
        return Done(note="never scheduled: nothing to cancel")
    access = await x.tenant(p.tenant)
    note = None
    try:
        await access.api.meetings.cancel(mapping.ucaas_id, p.app)
    except NotFoundError:
        note = "already cancelled"
    except ValidationError as exc:
        if exc.code != STARTED:
            raise
        note = "already started or over: left as it is"
    return Done(forget=(_key(p),), note=note)

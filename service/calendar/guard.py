"""The mass-cancel guard: a feed version that would cancel many of its meetings at once
waits for a person instead of being obeyed. Pure.

A feed that comes back empty (an outage page answered with 200, an emptied export, the
wrong account) would cancel every meeting to come. So a version whose cancels reach
`CancelGuard.share` of the feed's upcoming meetings and number at least `least`, or that
has nothing in its window while meetings are upcoming (`empty`), is *held*: its
cancel_meeting commands are queued held for approval, with the reason "approval: feed F
would cancel N of M upcoming meetings" (`ucaas-sync approve|deny`, the admin API and the
status page show and decide them, as they do the deprovisioning guard's); its other
commands run. An everyday change (a meeting moved, one cancelled) passes.

While held, the feed's state keeps the held meetings among its meetings (UCaaS still has
them) and names them in `FeedState.hold`. Every later version is judged again against
those meetings, once the operator's decisions are folded in (`settle`):

    the operator approved a held cancel     the meeting is cancelled: forgotten
    the operator denied (or dropped) it     the meeting is kept: not cancelled while the
                                            versions that lack it are held; a version
                                            that lacks it and passes cancels it
    the same version again                  nothing new: no second batch of cancels
    the feed has the meeting again          its held cancel is moot: dropped
    a version that still lacks it passes    its held cancel is released: it runs
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from service.calendar.translate import FeedHold, FeedState
from service.domain.commands import APPROVAL, CancelMeeting, Command
from service.domain.feeds import Feed
from service.domain.translation import Translation
from service.settings import CalendarSettings

# What became of a held cancel: still held, approved (it runs or has run), or dropped
# (denied, or dropped by an operator).
Fate = Literal["held", "approved", "dropped"]
FEED_ID_SHOWN = 120  # a reason fits the outbox's 255 characters


@dataclass(frozen=True)
class CancelGuard:
    share: float = 0.5  # of the upcoming meetings
    least: int = 3
    empty: bool = True  # a version with nothing in its window is held, however few it cancels

    @classmethod
    def of(cls, settings: CalendarSettings) -> CancelGuard:
        return cls(
            settings.cancel_guard_share, settings.cancel_guard_min, settings.cancel_guard_empty
        )

    def holds(self, cancels: int, upcoming: int, *, empty: bool) -> bool:
        if cancels <= 0:
            return False
        if empty and self.empty:
            return True
        return cancels >= self.least and cancels >= self.share * upcoming


def hold_reason(feed_id: str, cancels: int, upcoming: int) -> str:
    shown = feed_id if len(feed_id) <= FEED_ID_SHOWN else feed_id[: FEED_ID_SHOWN - 1] + "…"
    noun = "meeting" if upcoming == 1 else "meetings"
    return f"{APPROVAL}feed {shown} would cancel {cancels} of {upcoming} upcoming {noun}"


def settle(state: FeedState | None, fates: Mapping[str, Fate]) -> FeedState | None:
    """The state with the operator's decisions on its held cancels folded in: an approved
    cancel's meeting is gone, a denied or dropped one's kept. A held cancel whose row is
    not found counts as dropped: its meeting may still be there."""
    if state is None or state.hold is None:
        return state
    hold = state.hold
    fate = {key: fates.get(key, "dropped") for key in hold.held}
    approved = {key for key, f in fate.items() if f == "approved"}
    settled = replace_hold(
        hold,
        held=tuple(k for k in hold.held if fate[k] == "held"),
        kept=(*hold.kept, *(k for k in hold.held if fate[k] == "dropped")),
    )
    meetings = {k: spec for k, spec in state.meetings.items() if k not in approved}
    return state.model_copy(update={"meetings": meetings, "hold": settled})


def replace_hold(
    hold: FeedHold, *, held: tuple[str, ...], kept: tuple[str, ...]
) -> FeedHold | None:
    if not held and not kept:
        return None
    return hold.model_copy(update={"held": tuple(sorted(held)), "kept": tuple(sorted(kept))})


@dataclass(frozen=True)
class Guarded:
    """A version's diff once judged: its commands (new cancels held when it is), the new
    state, and what to do with the cancels held before."""

    translation: Translation
    reason: str | None = None  # the version is held, and why
    newly_held: int = 0  # cancels queued held by this version
    release: tuple[str, ...] = ()  # held cancels to run now (meeting keys)
    moot: tuple[str, ...] = ()  # held cancels to drop: the feed has them again, or started


def _cancelled(command: Command) -> str | None:
    payload = command.payload
    return payload.meeting_key if isinstance(payload, CancelMeeting) else None


def judge(
    feed: Feed,
    diffed: Translation,
    state: FeedState | None,
    now: datetime,
    guard: CancelGuard,
    *,
    empty: bool,
) -> Guarded:
    """Judge `diffed` (diff_feed against the settled `state`); `empty`: the version has
    nothing in its window."""
    before = state or FeedState()
    hold = before.hold
    held = set(hold.held) if hold else set()
    kept = set(hold.kept) if hold else set()
    cancels = {key for c in diffed.commands if (key := _cancelled(c)) is not None}
    upcoming = sum(1 for spec in before.meetings.values() if spec.start_time > now)
    base = diffed.state if isinstance(diffed.state, FeedState) else before  # None: unchanged
    wanted = base.meetings  # what the version asks for
    moot = tuple(sorted(held - cancels))
    if not guard.holds(len(cancels), upcoming, empty=empty):
        commands = [c for c in diffed.commands if _cancelled(c) not in held]
        new_state = base.model_copy(update={"meetings": wanted, "hold": None})
        release = tuple(sorted(held & cancels))
        return Guarded(Translation(commands, new_state, diffed.note), None, 0, release, moot)
    why = hold_reason(feed.feed_id, len(cancels), upcoming)
    commands = []
    for command in diffed.commands:
        key = _cancelled(command)
        if key is None:
            commands.append(command)
        elif key not in held and key not in kept:
            commands.append(replace(command, held=why))
    fresh = cancels - held - kept
    meetings = wanted | {k: before.meetings[k] for k in sorted(cancels)}
    new_hold = replace_hold(
        FeedHold(reason=why), held=tuple((held & cancels) | fresh), kept=tuple(kept & cancels)
    )
    new_state = base.model_copy(update={"meetings": meetings, "hold": new_hold})
    return Guarded(Translation(commands, new_state, diffed.note), why, len(fresh), (), moot)

"""Whose events a feed schedules, without a database: the owner's, an alias's, those with
no ORGANIZER; all of them for a feed that schedules what its owner attends."""

from __future__ import annotations

from service.calendar.owners import UID_MAX, event_of, owned
from service.domain.feeds import Feed
from tests.unit.test_calendar_translate import occurrence

LENA = "lena.fischer@team.example"


def feed(**options: object) -> Feed:
    return Feed(feed_id="lena", url="https://cal.example/l.ics", organizer_email=LENA,
                tenant="acme", **options)  # fmt: skip


def test_the_owner_owns_their_events_their_aliases_and_those_without_organizer() -> None:
    mine = feed(aliases=("l.fischer@team.example",))
    assert mine.owns(LENA)
    assert mine.owns("Lena.Fischer@Team.Example")  # e-mail case does not matter
    assert mine.owns("l.fischer@team.example")
    assert mine.owns(None)
    assert not mine.owns("sales@vendor.example")


def test_owned_keeps_the_owners_and_counts_the_attended() -> None:
    events = [
        occurrence("a", organizer=LENA),
        occurrence("b", organizer=None),
        occurrence("c", organizer="sales@vendor.example"),
        occurrence("d", organizer="boss@team.example"),
    ]
    kept, attended = owned(feed(), events)
    assert [o.uid for o in kept] == ["a", "b"]
    assert attended == 2
    every, none_left = owned(feed(schedule_attended=True), events)
    assert (len(every), none_left) == (4, 0)


def test_an_event_is_its_organiser_and_uid_the_owners_when_none() -> None:
    assert event_of(feed(), occurrence("x", organizer="Boss@Team.Example")) == (
        "boss@team.example",
        "x",
    )
    assert event_of(feed(), occurrence("y", organizer=None)) == (LENA, "y")
    long_uid = "u" * 300
    _, uid = event_of(feed(), occurrence(long_uid))
    assert len(uid) <= UID_MAX
    assert uid == event_of(feed(), occurrence(long_uid))[1]  # stable

"""Generated bad Kafka records, each with the dead-letter errors it may end with, and the
valid events to mix them with (with the UCaaS state those imply).

Seeded: the same seed gives the same records. Bad records are built by hand (bytes), not
through the service's code, so a gap in the service's checks shows as a record that takes
effect instead of reaching the dead-letter topic.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from connectors.events.cloudevents import MAX_RECORD_BYTES
from connectors.hr.scim import CORE, ENTERPRISE

Headers = list[tuple[str, bytes]]
STRUCTURED: Headers = [("content-type", b"application/cloudevents+json")]
SOURCE = "/tests/chaos/bad-input"
NOT_JSON = frozenset({"not_json"})
NOT_CE = frozenset({"not_cloudevent"})
NOT_JSON_OR_CE = NOT_JSON | NOT_CE
INVALID = frozenset({"invalid_data"})
UNKNOWN = frozenset({"unknown_type"})
TOO_LARGE = frozenset({"too_large"})
# PostgreSQL may refuse what SQLite takes (a NUL, a value past a column's length).
REFUSABLE = frozenset({"refused_by_database"})


@dataclass(frozen=True)
class Bad:
    category: str
    topic: str  # "hr", "crm" or "calendar"
    value: bytes | None
    expect: frozenset[str]
    key: bytes | None = None
    headers: Headers = field(default_factory=lambda: list(STRUCTURED))


# -- valid events --------------------------------------------------------------------------
def event(type_: str, subject: str, data: Any, event_id: str | None = None) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": event_id or f"{type_}:{subject}:{random.getrandbits(64):x}",
        "source": SOURCE,
        "type": type_,
        "subject": subject,
        "time": datetime.now(UTC).isoformat(),
        "datacontenttype": "application/json",
        "data": data,
    }


def email_of(employee: str, tenant: str) -> str:
    return f"{employee.lower()}@{tenant.lower()}.example"


def scim(employee: str, tenant: str, title: str = "Engineer") -> dict[str, Any]:
    email = email_of(employee, tenant)
    return {
        "schemas": [CORE, ENTERPRISE],
        "externalId": employee,
        "userName": email,
        "name": {"givenName": "Ann", "familyName": f"Lee {employee}"},
        "emails": [{"value": email, "type": "work", "primary": True}],
        "active": True,
        "title": title,
        ENTERPRISE: {"employeeNumber": employee, "department": "Engineering"},
        "tenant": tenant,
    }


def company(crm_id: str, name: str) -> dict[str, Any]:
    return {
        "company_id": crm_id,
        "name": name,
        "legal_name": f"{name} SAS",
        "contact": {"name": "Paul Martin", "email": f"billing@{crm_id.lower()}.example"},
        "office_address": {"line1": "1 rue de la Paix", "city": "Paris", "country": "FR"},
    }


def purchase(crm_id: str, seats: int) -> dict[str, Any]:
    return {
        "company_id": crm_id,
        "purchase_id": "P-vc",
        "plan": "vc-basic",
        "app": "vc",
        "seats": seats,
        "start": datetime.now(UTC).date().isoformat(),
    }


def feed(feed_id: str, url: str, organizer: str, tenant: str) -> dict[str, Any]:
    return {"feed_id": feed_id, "url": url, "organizer_email": organizer, "tenant": tenant}


@dataclass
class Expected:
    """What the valid events ask of UCaaS."""

    customers: dict[str, str] = field(default_factory=dict)  # CRM id -> customer name
    users: dict[str, tuple[str, str]] = field(default_factory=dict)  # email -> (status, title)
    feeds: dict[str, str] = field(default_factory=dict)  # feed id -> organiser e-mail


@dataclass
class Valid:
    topic: str
    event: dict[str, Any]
    mode: str = "structured"


def valid_events(
    rng: random.Random, tenants: int, employees: int, feed_url: str, feeds: int
) -> tuple[list[Valid], Expected]:
    """Per tenant: a company, a purchase, hires, some updates and leavers, and a company
    rename; calendar feeds organised by tenant 0's first employees (who never leave)."""
    out: list[Valid] = []
    expected = Expected()
    for t in range(tenants):
        crm_id = f"CRM-BAD-{t}"
        out.append(Valid("crm", event("crm.company.created", crm_id, company(crm_id, f"Co {t}"))))
        out.append(Valid("crm", event("crm.subscription.purchased", crm_id, purchase(crm_id, 500))))
        for n in range(employees):
            employee = f"T{t}E{n:03d}"
            email = email_of(employee, crm_id)
            mode = "binary" if n % 5 == 0 else "structured"
            out.append(Valid("hr", event("hr.user.joined", employee, scim(employee, crm_id)), mode))
            title = "Engineer"
            if rng.random() < 0.4:
                title = rng.choice(["Lead", "Manager", "Architect"])
                data = scim(employee, crm_id, title)
                out.append(Valid("hr", event("hr.user.updated", employee, data)))
            status = "A"
            if n >= feeds and rng.random() < 0.25:
                out.append(Valid("hr", event("hr.user.left", employee, scim(employee, crm_id))))
                status = "S"
            expected.users[email] = (status, title)
        renamed = f"Co {t} renamed"
        out.append(Valid("crm", event("crm.company.updated", crm_id, company(crm_id, renamed))))
        expected.customers[crm_id] = renamed
    for f in range(feeds):
        organizer = email_of(f"T0E{f:03d}", "CRM-BAD-0")
        data = feed(f"feed-bad-{f}", feed_url, organizer, "CRM-BAD-0")
        out.append(Valid("calendar", event("calendar.feed.registered", f"feed-bad-{f}", data)))
        expected.feeds[f"feed-bad-{f}"] = organizer
    return out, expected


# -- bad records ---------------------------------------------------------------------------
def _dumps(document: Any) -> bytes:
    return orjson.dumps(document)


def _text(rng: random.Random, size: int) -> str:
    return "".join(rng.choices(string.ascii_letters + string.digits, k=size))


def _template(rng: random.Random, topic: str, key: str) -> dict[str, Any]:
    """A valid event of the topic, to break."""
    if topic == "hr":
        return event(rng.choice(["hr.user.joined", "hr.user.updated"]), key, scim(key, "CRM-X"))
    if topic == "crm":
        if rng.random() < 0.5:
            return event("crm.company.created", key, company(key, "Broken Co"))
        return event("crm.subscription.purchased", key, purchase(key, 5))
    return event(
        "calendar.feed.registered",
        key,
        feed(key, "https://calendar.example.com/x.ics", "ann@acme.example", "CRM-X"),
    )


def _binary(document: dict[str, Any]) -> tuple[bytes, Headers]:
    headers = [
        (f"ce_{k}", str(v).encode())
        for k, v in document.items()
        if k not in ("data", "datacontenttype")
    ]
    headers.append(("content-type", b"application/json"))
    return _dumps(document["data"]), headers


def _nested(levels: int, leaf: bytes = b"1") -> bytes:
    return b'{"a":' * levels + leaf + b"}" * levels


def _with_raw(document: dict[str, Any], name: str, raw: bytes) -> bytes:
    """The document with `name` set to raw JSON text (what orjson would not write)."""
    rest = {k: v for k, v in document.items() if k != name}
    return _dumps(rest)[:-1] + b',"' + name.encode() + b'":' + raw + b"}"


def _in_data(document: dict[str, Any], name: str, raw: bytes) -> bytes:
    data = _with_raw(document["data"], name, raw)
    return _with_raw({k: v for k, v in document.items() if k != "data"}, "data", data)


WRONG = (5, 1.5, True, [1, 2], {"x": 1})
ATTRIBUTES = ("specversion", "id", "source", "type", "subject", "time", "datacontenttype")
# Per topic, data fields and values of a type the field never takes.
DATA_WRONG: dict[str, dict[str, tuple[Any, ...]]] = {
    "hr": {
        "userName": (5, [1], {"x": 1}),
        "name": ("Ann", 5, [1]),
        "emails": ("ann@x.example", 5, {"x": 1}),
        "active": ([1], {"x": 1}, "maybe"),
        "tenant": (5, [1], {"x": 1}, None, ""),
        "externalId": ([1], {"x": 1}),
        "title": (5, [1], {"x": 1}),
        ENTERPRISE: ("x", 5, [1]),
    },
    "crm": {
        "company_id": (5, [1], {"x": 1}),
        "name": (5, [1], {"x": 1}),
        "contact": ("x", 5, [1]),
        "office_address": ("x", 5, [1]),
        "seats": ("many", -1, 1.5, [1], {"x": 1}),
        "app": (5, "nope", [1]),
        "start": ("yesterday", 5, [1]),
        "plan": (5, [1], {"x": 1}),
    },
    "calendar": {
        "url": (5, "ftp://x.example/a.ics", "not a url", [1]),
        "organizer_email": (5, "nobody", [1]),
        "tenant": (5, "", "T" * 51),
        # 1e12: centuries between fetches, past any date (the poller once failed on it)
        "interval_s": ("often", 1, -5, 1e12, [1]),
    },
}


class BadRecords:
    """Bad records of every category, keyed like the valid events (so they share their
    partitions and batches) or with no key at all."""

    def __init__(self, seed: int, keys: dict[str, list[str]]) -> None:
        self.rng = random.Random(seed)
        self.keys = keys
        self.kinds = [
            (self.random_bytes, 8),
            (self.truncated_json, 10),
            (self.deep_nesting, 6),
            (self.wrong_attribute_type, 12),
            (self.wrong_data_type, 14),
            (self.huge_string, 6),
            (self.unknown_type, 6),
            (self.invalid_data, 10),
            (self.broken_binary, 10),
            (self.nul_character, 6),
            (self.invalid_utf8, 6),
            (self.empty_value, 6),
        ]

    def make(self, count: int, oversized: int) -> list[Bad]:
        """`count` bad records, `oversized` of them over the size limit (costly: few)."""
        out = [self.too_large() for _ in range(oversized)]
        makers = [m for m, _ in self.kinds]
        weights = [w for _, w in self.kinds]
        while len(out) < count:
            out.append(self.rng.choices(makers, weights)[0]())
        self.rng.shuffle(out)
        return out

    # -- helpers ---------------------------------------------------------------------------
    def _topic(self) -> str:
        return self.rng.choice(["hr", "hr", "crm", "calendar"])

    def _key(self, topic: str) -> tuple[str, bytes | None]:
        key = self.rng.choice(self.keys[topic])
        return key, None if self.rng.random() < 0.25 else key.encode()

    def _bad(self, category: str, topic: str, key: bytes | None, value: bytes | None,
             expect: frozenset[str], headers: Headers | None = None) -> Bad:  # fmt: skip
        if value is None and key is None:  # Kafka takes a null value (a tombstone) with a key
            key = b"tombstone"
        return Bad(category, topic, value, expect, key, STRUCTURED if headers is None else headers)

    # -- categories ------------------------------------------------------------------------
    def random_bytes(self) -> Bad:
        topic = self._topic()
        _, key = self._key(topic)
        value = self.rng.randbytes(self.rng.randint(1, 3000))
        if value[:1].isdigit() or value[:1] in b'-"[{tfn ':  # keep clear of valid JSON
            value = b"\x00" + value
        return self._bad("random_bytes", topic, key, value, NOT_JSON_OR_CE)

    def truncated_json(self) -> Bad:
        topic = self._topic()
        name, key = self._key(topic)
        whole = _dumps(_template(self.rng, topic, name))
        value = whole[: self.rng.randint(1, len(whole) - 1)]
        return self._bad("truncated_json", topic, key, value, NOT_JSON)

    def deep_nesting(self) -> Bad:
        topic = self._topic()
        name, key = self._key(topic)
        document = _template(self.rng, topic, name)
        levels = self.rng.choice([65, 255, 300, 1000, 100_000])
        shape = self.rng.choice(["whole", "data", "extension", "binary"])
        if shape == "whole":
            value = b"[" * levels + b"]" * levels
        elif shape == "data":
            value = _in_data(document, "extra", _nested(levels))
        elif shape == "extension":
            value = _with_raw(document, "deep", b"[" * levels + b"]" * levels)
        else:
            _, headers = _binary(document)
            return self._bad("deep_nesting", topic, key, _nested(levels), NOT_JSON, headers)
        return self._bad("deep_nesting", topic, key, value, NOT_JSON)

    def wrong_attribute_type(self) -> Bad:
        topic = self._topic()
        name, key = self._key(topic)
        document = _template(self.rng, topic, name)
        attribute = self.rng.choice(ATTRIBUTES)
        wrong: Any = self.rng.choice(WRONG)
        if attribute in ("specversion", "id", "source", "type") and self.rng.random() < 0.2:
            wrong = None
        document[attribute] = wrong
        return self._bad("wrong_types", topic, key, _dumps(document), NOT_CE)

    def wrong_data_type(self) -> Bad:
        topic = self._topic()
        name, key = self._key(topic)
        document = _template(self.rng, topic, name)
        if self.rng.random() < 0.15:  # the data itself is not an object
            document["data"] = self.rng.choice([5, "x", [1], None, True])
            return self._bad("wrong_types", topic, key, _dumps(document), INVALID)
        fields = DATA_WRONG[topic]
        if topic == "crm":  # only the fields of the event's own type
            kind = document["type"]
            allowed = ("seats", "app", "start", "plan") if "purchased" in kind else (
                "company_id", "name", "contact", "office_address")  # fmt: skip
            fields = {k: v for k, v in fields.items() if k in allowed}
        field_name = self.rng.choice(sorted(fields))
        document["data"][field_name] = self.rng.choice(fields[field_name])
        return self._bad("wrong_types", topic, key, _dumps(document), INVALID)

    def huge_string(self) -> Bad:
        """Near the size limit (under: the content is refused) and attributes past theirs."""
        topic = self._topic()
        name, key = self._key(topic)
        document = _template(self.rng, topic, name)
        where = self.rng.choice(["id", "subject", "source", "data", "near_limit"])
        if where in ("id", "subject", "source"):
            document[where] = _text(self.rng, self.rng.choice([256, 5000, 100_000]))
            return self._bad("huge_strings", topic, key, _dumps(document), NOT_CE)
        size = self.rng.choice([101, 5000]) if where == "data" else MAX_RECORD_BYTES - 4096
        target = {"hr": "title", "crm": "company_id", "calendar": "tenant"}[topic]
        if topic == "crm" and "purchased" in document["type"]:
            target = "plan" if where == "near_limit" else "company_id"
        document["data"][target] = _text(self.rng, size)
        value = _dumps(document)
        assert len(value) <= MAX_RECORD_BYTES
        return self._bad("huge_strings", topic, key, value, INVALID | REFUSABLE)

    def too_large(self) -> Bad:
        topic = self._topic()
        name, key = self._key(topic)
        document = _template(self.rng, topic, name)
        document["data"]["note"] = "x" * (MAX_RECORD_BYTES + self.rng.randint(1, 2048))
        return self._bad("huge_strings", topic, key, _dumps(document), TOO_LARGE)

    def unknown_type(self) -> Bad:
        topic = self._topic()
        name, key = self._key(topic)
        document = _template(self.rng, topic, name)
        document["type"] = self.rng.choice(
            ["hr.user.promoted", "crm.company.merged", "calendar.feed.paused", "x",
             _text(self.rng, 40), "hr.user.joined.v2", "HR.USER.JOINED", "hr.user.joined\x00"]
        )  # fmt: skip
        return self._bad("unknown_types", topic, key, _dumps(document), UNKNOWN)

    def invalid_data(self) -> Bad:
        """Valid envelopes, data that breaks SCIM / CRM / feed rules (not types)."""
        topic = self._topic()
        name, key = self._key(topic)
        document = _template(self.rng, topic, name)
        data = document["data"]
        if topic == "hr":
            breaks = {
                "no e-mail": lambda: (data.pop("emails"), data.update(userName="ann")),
                "bad e-mail": lambda: data["emails"][0].update(value="not-an-address"),
                "no givenName": lambda: (data.pop("name"), data.update(displayName="")),
                "givenName 51": lambda: data["name"].update(givenName="A" * 51),
                "subject and id differ": lambda: document.update(subject=name + "-other"),
                "tenant 101": lambda: data.update(tenant="T" * 101),
                "no tenant": lambda: data.pop("tenant"),
            }
        elif topic == "crm" and "created" in document["type"]:
            breaks = {
                "no contact": lambda: data.pop("contact"),
                "no address": lambda: data.pop("office_address"),
                "code 51": lambda: (
                    data.update(company_id="C" * 51),
                    document.update(subject="C" * 51),
                ),
                "bad contact e-mail": lambda: data["contact"].update(email="nope"),
            }
        elif topic == "crm":
            breaks = {
                "no seats": lambda: data.pop("seats"),
                "zero seats": lambda: data.update(seats=0),
                "no app": lambda: data.pop("app"),
                "no purchase id": lambda: data.pop("purchase_id"),
            }
        else:
            breaks = {
                "no url": lambda: data.pop("url"),
                "no organizer": lambda: data.pop("organizer_email"),
                "file url": lambda: data.update(url="file:///etc/passwd"),
                "interval 10 s": lambda: data.update(interval_s=10),
                "interval of centuries": lambda: data.update(interval_s=1e12),
            }
        breaks[self.rng.choice(sorted(breaks))]()
        return self._bad("invalid_data", topic, key, _dumps(document), INVALID)

    def broken_binary(self) -> Bad:
        topic = self._topic()
        name, key = self._key(topic)
        data, headers = _binary(_template(self.rng, topic, name))
        named = dict(headers)
        change = self.rng.choice(
            ["no specversion", "specversion 0.3", "no id", "empty id", "id not utf-8",
             "no source", "no type", "bad time", "time not utf-8", "xml content",
             "bad extension name", "id with NUL", "type not utf-8", "body not json"]
        )  # fmt: skip
        expect = NOT_CE
        if change == "no specversion":
            named.pop("ce_specversion")
        elif change == "specversion 0.3":
            named["ce_specversion"] = b"0.3"
        elif change == "no id":
            named.pop("ce_id")
        elif change == "empty id":
            named["ce_id"] = b""
        elif change == "id not utf-8":
            named["ce_id"] = b"\xff\xfe\xfd"
        elif change == "no source":
            named.pop("ce_source")
        elif change == "no type":
            named.pop("ce_type")
        elif change == "bad time":
            named["ce_time"] = b"last tuesday"
        elif change == "time not utf-8":
            named["ce_time"] = b"\xc3"
        elif change == "xml content":
            named["content-type"] = b"application/xml"
            expect = NOT_JSON
        elif change == "bad extension name":
            named["ce_bad-name!"] = b"x"
        elif change == "id with NUL":
            named["ce_id"] = b"id\x00"
        elif change == "type not utf-8":
            named["ce_type"] = b"hr.user.\xff"
        else:
            data = data[: len(data) // 2]
            expect = NOT_JSON
        return self._bad("broken_binary", topic, key, data, expect, list(named.items()))

    def nul_character(self) -> Bad:
        topic = self._topic()
        name, key = self._key(topic)
        document = _template(self.rng, topic, name)
        where = self.rng.choice(["id", "subject", "source", "data"])
        if where != "data":
            document[where] = document[where] + "\x00"
            return self._bad("nul_characters", topic, key, _dumps(document), NOT_CE)
        target = {"hr": "tenant", "crm": "company_id", "calendar": "tenant"}[topic]
        if topic == "hr" and self.rng.random() < 0.5:
            document["data"]["name"]["givenName"] = "An\x00n"
        else:  # a CRM id is the subject too: refused as an attribute or as data
            document["data"][target] = "x\x00y"
            document["subject"] = "x\x00y" if target == "company_id" else document["subject"]
        return self._bad("nul_characters", topic, key, _dumps(document), INVALID | NOT_CE)

    def invalid_utf8(self) -> Bad:
        topic = self._topic()
        name, key = self._key(topic)
        value = _dumps(_template(self.rng, topic, name))
        at = value.index(b'"source"')
        bad = self.rng.choice([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80"])
        value = value[: at + 10] + bad + value[at + 10 :]  # inside the source string
        return self._bad("invalid_utf8", topic, key, value, NOT_JSON)

    def empty_value(self) -> Bad:
        topic = self._topic()
        name, key = self._key(topic)
        choice = self.rng.choice(["empty", "null", "spaces", "{}", "[]", '""', "null json",
                                  "empty data", "empty id"])  # fmt: skip
        if choice in ("empty", "null", "spaces"):
            value = {"empty": b"", "null": None, "spaces": b"   "}[choice]
            return self._bad("empty_values", topic, key, value, NOT_JSON)
        if choice in ("{}", "[]", '""', "null json"):
            value = {"{}": b"{}", "[]": b"[]", '""': b'""', "null json": b"null"}[choice]
            return self._bad("empty_values", topic, key, value, NOT_CE)
        document = _template(self.rng, topic, name)
        if choice == "empty data":
            document["data"] = {}
            return self._bad("empty_values", topic, key, _dumps(document), INVALID)
        document["id"] = ""
        return self._bad("empty_values", topic, key, _dumps(document), NOT_CE)


def keys_for(tenants: int, employees: int, feeds: int) -> dict[str, list[str]]:
    """Entity keys of the valid events, per topic."""
    return {
        "hr": [f"T{t}E{n:03d}" for t in range(tenants) for n in range(employees)],
        "crm": [f"CRM-BAD-{t}" for t in range(tenants)],
        "calendar": [f"feed-bad-{f}" for f in range(max(1, feeds))],
    }

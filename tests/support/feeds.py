"""Local iCalendar feeds for integration and end-to-end tests, and iCalendar text to serve.

`FeedServer` serves feeds over real HTTP on a loopback port, one body per path (the
`path` it is made with is the default one), with the validators a calendar host sends (a
strong ETag and a Last-Modified), answers conditional requests (If-None-Match, else
If-Modified-Since) with 304, and records what it saw: each request's path, validators and
answer. A feed can be published without validators (a host that sends none), made to fail
(any status, an HTML page, a truncated file), and requests held until released (a fetch
caught in flight). A path nothing was published at answers 404.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CALENDAR = "text/calendar; charset=utf-8"


@dataclass(frozen=True)
class Seen:
    """One request as the server saw it, and its answer."""

    path: str
    if_none_match: str | None
    if_modified_since: str | None
    status: int

    @property
    def conditional(self) -> bool:
        return bool(self.if_none_match or self.if_modified_since)


@dataclass(frozen=True)
class _Answer:
    status: int
    body: bytes
    content_type: str
    validators: bool  # ETag and Last-Modified, and 304s


NOT_FOUND = _Answer(404, b"", "text/plain", False)


@dataclass
class _Feed:
    """What one path answers now, and its last published version with its validators."""

    answer: _Answer = NOT_FOUND
    published: _Answer | None = None
    etag: str | None = None
    last_modified: datetime | None = None


@dataclass
class FeedServer:
    """Feeds at `url` (the default `path`) and `url_of(path)`, served from a thread."""

    path: str = "/calendar.ics"
    seen: list[Seen] = field(default_factory=list)
    _feeds: dict[str, _Feed] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _open: threading.Event = field(default_factory=threading.Event)
    _held: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(0))

    def __post_init__(self) -> None:
        self._open.set()
        self.http = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.http.daemon_threads = True
        self.thread = threading.Thread(target=self.http.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return self.url_of(self.path)

    def url_of(self, path: str) -> str:
        return f"http://127.0.0.1:{self.http.server_port}{path}"

    @property
    def _etag(self) -> str | None:
        """The default feed's current ETag (the chaos harness compares it with the DB's)."""
        with self._lock:
            return self._feed(self.path).etag

    def close(self) -> None:
        self._open.set()
        self.http.shutdown()
        self.http.server_close()
        self.thread.join(timeout=5)

    # -- what it serves --------------------------------------------------------------------
    def publish(self, body: bytes, *, path: str | None = None, validators: bool = True) -> str:
        """A new version of the feed at `path` (default: the server's): a new ETag and a
        later Last-Modified, sent only with `validators`. Returns the feed's URL."""
        path = path or self.path
        with self._lock:
            feed = self._feed(path)
            stamp = datetime.now(UTC).replace(microsecond=0)
            if feed.last_modified is not None and stamp <= feed.last_modified:
                stamp = feed.last_modified + timedelta(seconds=1)
            feed.last_modified = stamp
            feed.etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
            feed.published = _Answer(200, body, CALENDAR, validators)
            feed.answer = feed.published
        return self.url_of(path)

    def fail(
        self,
        status: int = 200,
        body: bytes = b"",
        content_type: str = CALENDAR,
        *,
        path: str | None = None,
    ) -> None:
        """Answer this at `path` instead (no validators, never 304) until `restore` or
        `publish`."""
        with self._lock:
            self._feed(path or self.path).answer = _Answer(status, body, content_type, False)

    def restore(self, path: str | None = None) -> None:
        """Serve the last published version again."""
        with self._lock:
            feed = self._feed(path or self.path)
            assert feed.published is not None
            feed.answer = feed.published

    def hold(self) -> None:
        """Requests from now on wait (each is counted in `held`) until `release`."""
        self._open.clear()

    def release(self) -> None:
        self._open.set()

    def wait_held(self, timeout_s: float = 10.0) -> None:
        """Until a request is waiting on `hold`."""
        assert self._held.acquire(timeout=timeout_s), "no request came while held"

    # -- what it saw -----------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        with self._lock:
            statuses = Counter(s.status for s in self.seen)
            return {
                "requests": len(self.seen),
                "conditional": sum(s.conditional for s in self.seen),
                "not_modified": statuses[304],
                **{f"status_{k}": v for k, v in sorted(statuses.items())},
            }

    def requests(self) -> int:
        with self._lock:
            return len(self.seen)

    def wait_requests(self, at_least: int, timeout_s: float = 15.0) -> None:
        deadline = time.monotonic() + timeout_s
        while self.requests() < at_least:
            assert time.monotonic() < deadline, f"{self.requests()} requests, {at_least} awaited"
            time.sleep(0.02)

    def _feed(self, path: str) -> _Feed:
        return self._feeds.setdefault(path, _Feed())

    def _answer_for(self, path: str, headers: Any) -> tuple[_Answer, dict[str, str], int]:
        with self._lock:
            feed = self._feeds.get(path, _Feed())
            answer = feed.answer
            extra: dict[str, str] = {}
            status = answer.status
            if answer.validators and feed.etag and feed.last_modified:
                extra = {
                    "ETag": feed.etag,
                    "Last-Modified": format_datetime(feed.last_modified, usegmt=True),
                }
                if _not_modified(headers, feed.etag, feed.last_modified):
                    status = 304
            self.seen.append(
                Seen(
                    path,
                    headers.get("If-None-Match"),
                    headers.get("If-Modified-Since"),
                    status,
                )
            )
            return answer, extra, status


def _not_modified(headers: Any, etag: str, last_modified: datetime) -> bool:
    """RFC 9110 13.2.2: If-None-Match decides when present; else If-Modified-Since."""
    match = headers.get("If-None-Match")
    if match is not None:
        tags = {t.strip().removeprefix("W/") for t in match.split(",")}
        return etag in tags or "*" in tags
    since = headers.get("If-Modified-Since")
    if since is None:
        return False
    try:
        return last_modified <= parsedate_to_datetime(since)
    except (TypeError, ValueError):
        return False


def _handler(server: FeedServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            if not server._open.is_set():
                server._held.release()
                server._open.wait(timeout=30)
            answer, extra, status = server._answer_for(self.path, self.headers)
            body = b"" if status == 304 else answer.body
            self.send_response(status)
            for name, value in extra.items():
                self.send_header(name, value)
            if status != 304:
                self.send_header("Content-Type", answer.content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


# -- iCalendar text ----------------------------------------------------------------------------
def _stamp(value: datetime) -> str:
    """A DATE-TIME: UTC with Z for an aware UTC value, else local (its TZID given apart)."""
    if value.tzinfo is not None and value.utcoffset() == timedelta(0):
        return value.strftime("%Y%m%dT%H%M%SZ")
    return value.strftime("%Y%m%dT%H%M%S")


def _when(name: str, value: datetime, tzid: str | None) -> str:
    if tzid:
        return f"{name};TZID={tzid}:{value.replace(tzinfo=None).strftime('%Y%m%dT%H%M%S')}"
    return f"{name}:{_stamp(value)}"


def vevent(
    uid: str,
    start: datetime,
    summary: str,
    *,
    minutes: int = 30,
    tzid: str | None = None,
    rrule: str | None = None,
    exdates: Iterable[datetime] = (),
    recurrence_id: datetime | None = None,
    status: str | None = None,
    organizer: str | None = None,
    attendees: Iterable[str] = (),
    description: str | None = None,
    sequence: int = 0,
) -> str:
    """One VEVENT. With `tzid`, the times are local times of that zone (naive or not)."""
    lines = [
        "BEGIN:VEVENT",
        f"UID:{uid}",
        "DTSTAMP:20260101T000000Z",
        f"SEQUENCE:{sequence}",
        _when("DTSTART", start, tzid),
        f"DURATION:PT{minutes}M",
        f"SUMMARY:{summary}",
    ]
    if recurrence_id is not None:
        lines.append(_when("RECURRENCE-ID", recurrence_id, tzid))
    if rrule:
        lines.append(f"RRULE:{rrule}")
    lines += [_when("EXDATE", d, tzid) for d in exdates]
    if status:
        lines.append(f"STATUS:{status}")
    if description:
        lines.append(f"DESCRIPTION:{description}")
    if organizer:
        lines.append(f"ORGANIZER;CN=Organiser:mailto:{organizer}")
    lines += [f"ATTENDEE;ROLE=REQ-PARTICIPANT;PARTSTAT=ACCEPTED:mailto:{a}" for a in attendees]
    lines.append("END:VEVENT")
    return "\r\n".join(lines) + "\r\n"


def vcalendar(*events: str, name: str = "Test calendar") -> bytes:
    head = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//ucaas-sync tests//EN\r\n"
        f"CALSCALE:GREGORIAN\r\nX-WR-CALNAME:{name}\r\n"
    )
    return (head + "".join(events) + "END:VCALENDAR\r\n").encode()

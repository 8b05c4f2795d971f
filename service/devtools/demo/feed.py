"""The organiser's calendar as an iCalendar feed served on loopback, as a calendar host
would: a strong ETag and Last-Modified, and 304 to a conditional GET of the same version.

The server runs in a thread of its own (stdlib `http.server`) so the service's poller
fetches it over real HTTP; `publish` swaps the body, as a user editing their calendar.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from service.devtools.demo.scenario import Series

CALENDAR = "text/calendar; charset=utf-8"


def _local(value: datetime) -> str:
    return value.replace(tzinfo=None).strftime("%Y%m%dT%H%M%S")


def vevent(series: Series, organiser: str) -> list[str]:
    lines = [
        "BEGIN:VEVENT",
        f"UID:{series.uid}",
        "DTSTAMP:20260101T000000Z",
        f"SEQUENCE:{series.sequence}",
        f"DTSTART;TZID={series.tzid}:{_local(series.first)}",
        f"DURATION:PT{series.minutes}M",
        f"SUMMARY:{series.summary}",
    ]
    if series.freq is not None:
        lines.append(f"RRULE:FREQ={series.freq};COUNT={series.count}")
    starts = series.starts()
    lines += [f"EXDATE;TZID={series.tzid}:{_local(starts[i])}" for i in series.skipped]
    if series.cancelled:
        lines.append("STATUS:CANCELLED")
    if series.description:
        lines.append(f"DESCRIPTION:{series.description}")
    lines.append(f"ORGANIZER:mailto:{organiser}")
    lines += [f"ATTENDEE;PARTSTAT=ACCEPTED:mailto:{email}" for email in series.attendees]
    lines.append("END:VEVENT")
    return lines


def vcalendar(events: Iterable[Series], organiser: str, name: str) -> bytes:
    """An iCalendar file (zones by TZID: the service maps them to zoneinfo)."""
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//ucaas-sync demo//EN",
        "CALSCALE:GREGORIAN",
        f"X-WR-CALNAME:{name}",
    ]
    for series in events:
        lines += vevent(series, organiser)
    lines.append("END:VCALENDAR")
    return ("\r\n".join(lines) + "\r\n").encode()


class FeedServer:
    """One feed at `url`, from a daemon thread; `close` stops it."""

    path = "/calendar.ics"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._body = b""
        self._etag = ""
        self._modified: datetime | None = None
        self.version = 0
        self.served_at: dict[int, datetime] = {}  # version -> its first full answer (200)
        self.http = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.http.daemon_threads = True
        self.thread = threading.Thread(target=self.http.serve_forever, name="demo-feed")
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http.server_port}{self.path}"

    def publish(self, body: bytes) -> int:
        """Serve `body` from now on as a new version (new ETag, later Last-Modified)."""
        with self._lock:
            stamp = datetime.now(UTC).replace(microsecond=0)
            if self._modified is not None and stamp <= self._modified:
                stamp = self._modified + timedelta(seconds=1)
            self._modified = stamp
            self._body = body
            self._etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
            self.version += 1
            return self.version

    def first_served(self, version: int) -> datetime | None:
        with self._lock:
            return self.served_at.get(version)

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()
        self.thread.join(timeout=5)

    def answer(self, path: str, if_none_match: str | None) -> tuple[int, bytes, dict[str, str]]:
        with self._lock:
            if path != self.path or self._modified is None:
                return 404, b"", {"Content-Type": "text/plain"}
            headers = {
                "ETag": self._etag,
                "Last-Modified": format_datetime(self._modified, usegmt=True),
            }
            if if_none_match is not None and self._etag in {
                tag.strip() for tag in if_none_match.split(",")
            }:
                return 304, b"", headers
            self.served_at.setdefault(self.version, datetime.now(UTC))
            return 200, self._body, {**headers, "Content-Type": CALENDAR}


def _handler(server: FeedServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            status, body, headers = server.answer(self.path, self.headers.get("If-None-Match"))
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the demo's screen is for the progress and the summary

    return Handler

"""What the pre-scan read of each VEVENT's text, kept for the next version of the feed.

The pre-scan (prescan.py) reads every VEVENT of a feed at each parse: its UID, the span
its occurrences may take, and its text cut to what the service reads (lean.py). Once the
VEVENTs of a version are parsed (reuse.py), that reading was most of what a next version
with a few changed events cost (0.35 s of 0.8 s for 10,000 VEVENTs). None of it depends
on the window: the window is applied to the span afterwards, so a VEVENT's text read once
serves every later parse, whatever its window. Entries are keyed by the SHA-256 of the
text (a hash, not the text: the entries of a 10,000-event feed are a few megabytes, not
the feed again), the least recently used dropped beyond the bound.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any


@dataclass
class Verdict:
    """One VEVENT's reading: its UID (None: the parse keys it its own way), its span (a
    prescan._Span; None: the parser must judge it), and its lean text once computed."""

    uid: str | None
    span: Any
    lean: bytes | None = None


class Verdicts:
    """Readings by the hash of the VEVENT's text (between its BEGIN and END lines)."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._found: OrderedDict[bytes, Verdict] = OrderedDict()
        self._lock = threading.Lock()  # parses run in worker threads, several at once

    def __len__(self) -> int:
        return len(self._found)

    def clear(self) -> None:
        with self._lock:
            self._found.clear()

    @staticmethod
    def key(block: bytes) -> bytes:
        return hashlib.sha256(block).digest()

    def get(self, key: bytes) -> Verdict | None:
        with self._lock:
            found = self._found.get(key)
            if found is not None:
                self._found.move_to_end(key)
            return found

    def put(self, key: bytes, verdict: Verdict) -> None:
        if self.max_entries < 1:
            return
        with self._lock:
            self._found[key] = verdict
            self._found.move_to_end(key)
            while len(self._found) > self.max_entries:
                self._found.popitem(last=False)

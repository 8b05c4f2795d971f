"""Log lines on stderr: JSON for machines, or a console layout for people.

structlog renders both the `logging.getLogger(...)` calls all over the code and
`structlog.get_logger()` calls, through one `ProcessorFormatter` on the root handler. Each
line carries a timestamp, the level, the logger, the event (the message), and whatever the
running task bound with `log_context` (log_context.py: event_id, command_id, entity, kind,
feed_id): a task's context is its own, so concurrent commands do not mix.

Secrets are masked last, whatever their form: values under keys named like a secret,
`SecretStr` values, the password of a URL, and Bearer/Basic/Token credentials or
`password=...` pairs inside message strings. Tracebacks are rendered as plain text
without local variables (rich's and structlog's defaults show locals, which hold secrets),
then masked like any other string.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping
from typing import Any, Literal, TextIO

import structlog
from pydantic import SecretBytes, SecretStr
from structlog.typing import EventDict, Processor, WrappedLogger

from service.observability.log_context import merge_log_context

MASK = "***"
# Loggers that say one line per request or per heartbeat at INFO.
QUIET = {"httpx": logging.WARNING, "aiokafka": logging.WARNING}

_SECRET_WORDS = r"password|passwd|secret|token|authorization|api[_-]?key|cookie"  # noqa: S105 - key names, not a password
_SECRET_KEY = re.compile(rf"(?i)(?:{_SECRET_WORDS})")
_URL_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s/:@]*:)([^\s/@]+)(@)")
# A credential after its scheme: 8+ characters with a digit or base64 padding, or 20+ of any
# kind, so that prose ("token expired", "basic settings") stays readable.
_SCHEME_CREDENTIAL = re.compile(
    r"(?i)\b(bearer|basic|token)(\s+)"
    r"(?:(?=[\w.~+/=-]*[0-9+/=])[\w.~+/=-]{8,}|[\w.~+/=-]{20,})"
)
# `password=x`, `"api_key": "x"`, `'token': 'x'`, `secret: x` inside a string.
_PAIR = re.compile(
    rf"""(?ix)
    (["']?[\w-]*(?:{_SECRET_WORDS})[\w-]*["']?\s*[:=]\s*)   # the key and its separator
    (?!(?:bearer|basic|token)\s+\*\*\*)                      # a credential masked already
    (?:"[^"]*"|'[^']*'|[^\s,;&}}\]]+)                       # the value, quoted or bare
    """
)
_HANDLER_NAME = "ucaas-sync"


def mask_text(text: str) -> str:
    """The string with credentials it carries replaced by MASK."""
    text = _URL_PASSWORD.sub(rf"\g<1>{MASK}\g<3>", text)
    # The scheme first: `Authorization: Bearer x` must lose x, not only the word Bearer.
    text = _SCHEME_CREDENTIAL.sub(rf"\g<1>\g<2>{MASK}", text)
    return _PAIR.sub(rf"\g<1>{MASK}", text)


def masked(value: Any, key: str | None = None) -> Any:
    """A value safe to print: dictionaries and sequences are masked inside."""
    if isinstance(value, SecretStr | SecretBytes):
        return MASK
    if key is not None and value is not None and _SECRET_KEY.search(key):
        return MASK
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, Mapping):
        return {k: masked(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [masked(v) for v in value]
    if isinstance(value, int | float | bool) or value is None:
        return value
    # Anything else would be printed by its str(): mask that text now, since the renderer
    # would otherwise print it unmasked.
    return mask_text(str(value))


def mask_secrets(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    for key, value in list(event_dict.items()):
        event_dict[key] = masked(value, key)
    return event_dict


def _shared(*, foreign: bool) -> list[Processor]:
    chain: list[Processor] = [
        merge_log_context,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if foreign:
        chain.append(structlog.stdlib.ExtraAdder())  # `extra={...}` of logging calls
    return chain


FIRST = ("timestamp", "level", "logger", "event")


def _first_keys_first(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    # A person reading raw JSON lines finds the when, how bad, where and what at the start.
    return {**{k: event_dict[k] for k in FIRST if k in event_dict}, **event_dict}


def _renderer(format_: Literal["json", "console"], colors: bool) -> Processor:
    if format_ == "console":
        return structlog.dev.ConsoleRenderer(
            colors=colors, exception_formatter=structlog.dev.plain_traceback
        )
    return structlog.processors.JSONRenderer(default=str, sort_keys=False)


def formatter(
    format_: Literal["json", "console"] = "json", *, colors: bool = False
) -> logging.Formatter:
    """The formatter of the root handler (also for handlers others set up, e.g. uvicorn)."""
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_shared(foreign=True),
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,  # plain text, no locals
            structlog.processors.StackInfoRenderer(),
            _drop_color_message,
            mask_secrets,
            _first_keys_first,
            _renderer(format_, colors),
        ],
    )


def _drop_color_message(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    event_dict.pop("color_message", None)  # uvicorn's copy of the message, with ANSI codes
    return event_dict


def configure(
    format: Literal["json", "console"] = "json",
    level: str = "INFO",
    *,
    stream: TextIO | None = None,
) -> None:
    """Route all logging to one handler on the root logger, writing to `stream` (stderr).

    Calling it again replaces the handler it installed (and only that one: a test's
    capture handler stays)."""
    stream = stream or sys.stderr
    handler = logging.StreamHandler(stream)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(formatter(format, colors=stream.isatty()))
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name, quiet in QUIET.items():
        logging.getLogger(name).setLevel(quiet)
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_shared(foreign=False),
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )

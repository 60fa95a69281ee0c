"""How bus389 logs: plain lines by default, JSON lines on request, event ids carried, secrets never written.

Pass an event's context with ``extra=``, e.g. ``log.info("routed", extra={"event_id": eid,
"event_type": et, "agency": sender})``: the JSON line carries those fields, so a spike on a dashboard
can be traced to the events behind it (metrics never carry event ids; logs do). Every record passes
through a filter that masks password-like values and the configured Kafka password.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from bus389.settings import Settings

__all__ = [
    "CONTEXT_FIELDS",
    "JsonFormatter",
    "PlainFormatter",
    "SecretFilter",
    "configure_logging",
    "mask_secrets",
]

CONTEXT_FIELDS: tuple[str, ...] = (
    "event_id",
    "event_type",
    "agency",
    "service",
    "topic",
    "partition",
    "offset",
    "reason",
    "group",
)
"""The ``extra=`` keys a log line carries (JSON fields; ``key=value`` suffix in plain text)."""

MASK = "***"

_SENSITIVE_KEYS = r"(?:password|passwd|pwd|secret|token|api[_-]?key|credentials?|sasl_plain_password)"
_SECRET_PATTERN = re.compile(
    # key=value, key: value, "key": "value", 'key': 'value' — the key may carry a prefix (kafka_password).
    rf"""(?P<key>[\w.\-]*{_SENSITIVE_KEYS}[\w.\-]*["']?\s*[=:]\s*)(?P<quote>["']?)(?P<value>[^\s"',;}}]+)""",
    re.IGNORECASE,
)
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.\-]*://[^\s:/@]+:)(?P<value>[^\s@/]+)(?=@)", re.I)

_HANDLER_MARK = "_bus389_handler"


def mask_secrets(text: str, known: tuple[str, ...] = ()) -> str:
    """``text`` with password-like values, URL passwords and the ``known`` secrets replaced by ``***``."""
    for secret in known:
        if secret:
            text = text.replace(secret, MASK)
    text = _SECRET_PATTERN.sub(lambda m: f"{m['key']}{m['quote']}{MASK}", text)
    return _URL_CREDENTIALS.sub(lambda m: f"{m['scheme']}{MASK}", text)


class SecretFilter(logging.Filter):
    """Masks secrets in a record's message (formatted with its args) before any handler writes it."""

    def __init__(self, known: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.known = tuple(k for k in known if k)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            message = str(record.msg)
        masked = mask_secrets(message, self.known)
        if masked != message or record.args:
            record.msg = masked
            record.args = None
        return True


def _context(record: logging.LogRecord) -> dict[str, Any]:
    return {name: getattr(record, name) for name in CONTEXT_FIELDS if getattr(record, name, None) is not None}


class PlainFormatter(logging.Formatter):
    """``2026-01-01T00:00:00.000Z INFO bus389.router: message event_id=... event_type=...``."""

    def __init__(self, known: tuple[str, ...] = ()) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.known = known

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        return _timestamp(record)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = _context(record)
        if context:
            head, sep, tail = line.partition("\n")
            suffix = " ".join(f"{k}={v}" for k, v in context.items())
            line = f"{head} {suffix}{sep}{tail}"
        return mask_secrets(line, self.known)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts``, ``level``, ``logger``, ``msg``, the context fields, ``exc``."""

    def __init__(self, known: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.known = known

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "msg": mask_secrets(record.getMessage(), self.known),
        }
        entry.update(_context(record))
        if record.exc_info:
            entry["exc"] = mask_secrets(self.formatException(record.exc_info), self.known)
        elif record.exc_text:
            entry["exc"] = mask_secrets(record.exc_text, self.known)
        return json.dumps(entry, ensure_ascii=False, default=str)


def _timestamp(record: logging.LogRecord) -> str:
    return (
        datetime.fromtimestamp(record.created, tz=UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def configure_logging(settings: Settings, *, stream: TextIO | None = None) -> logging.Handler:
    """Configure the root logger once from ``settings.metrics`` (level, JSON or plain); return the handler.

    Calling it again replaces the handler it installed before (never duplicates lines). Logs go to
    ``stream`` (stderr by default), so that a command's stdout stays its result.
    """
    known: tuple[str, ...] = ()
    password = settings.kafka.password
    if password is not None and password.get_secret_value():
        known = (password.get_secret_value(),)
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter(known) if settings.metrics.json_logs else PlainFormatter(known))
    handler.addFilter(SecretFilter(known))
    setattr(handler, _HANDLER_MARK, True)

    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, _HANDLER_MARK, False):
            root.removeHandler(old)
    root.addHandler(handler)
    level = logging.getLevelName(settings.metrics.log_level.upper())
    root.setLevel(level if isinstance(level, int) else logging.INFO)
    # kafka-python is chatty at INFO (every connection); keep its warnings.
    logging.getLogger("kafka").setLevel(logging.DEBUG if root.level <= logging.DEBUG else logging.WARNING)
    return handler

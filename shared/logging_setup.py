"""Process-wide logging set-up, called once from each process's entry point.

``LOG_FORMAT=json`` (the default) writes one JSON object per line: ``time``, ``level``,
``service``, ``replica`` (e.g. ``email-2``), ``logger``, ``message``, plus ``event_id``,
``booking_id`` and ``correlation_id`` on every line written while a message is in hand
(the consumer runtime and the outbox relay set them with :func:`message_context`),
``trace_id`` when a span is active, and ``exc_info`` for tracebacks. ``LOG_FORMAT=text``
is the readable one-liner the local runner uses in a terminal.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal

from opentelemetry import trace

LogFormat = Literal["json", "text"]
# Set around each delivery and each relayed row, so every line about a message carries them.
MESSAGE_FIELDS = ("event_id", "booking_id", "correlation_id")
_message: ContextVar[dict[str, str]] = ContextVar("log_message_context", default={})  # noqa: B039


@contextmanager
def message_context(**fields: object) -> Iterator[None]:
    """Tag the log lines written inside the block (in this task) with these fields."""
    values = {k: str(v) for k, v in fields.items() if v is not None and k in MESSAGE_FIELDS}
    token = _message.set({**_message.get(), **values})
    try:
        yield
    finally:
        _message.reset(token)


class ContextFilter(logging.Filter):
    """Copies the message context and the active trace id onto each record."""

    def __init__(self, service: str, replica: str) -> None:
        super().__init__()
        self.service, self.replica = service, replica

    def filter(self, record: logging.LogRecord) -> bool:
        record.service, record.replica = self.service, self.replica
        context = _message.get()
        for name in MESSAGE_FIELDS:
            setattr(record, name, context.get(name))
        span = trace.get_current_span().get_span_context()
        record.trace_id = format(span.trace_id, "032x") if span.is_valid else None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "service": getattr(record, "service", None),
            "replica": getattr(record, "replica", None),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in (*MESSAGE_FIELDS, "trace_id"):
            if (value := getattr(record, name, None)) is not None:
                line[name] = value
        if record.exc_info:
            line["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        tags = [f"{n}={v}" for n in MESSAGE_FIELDS[:2] if (v := getattr(record, n, None))]
        return f"{text} [{' '.join(tags)}]" if tags else text


def configure_logging(service: str, level: str = "INFO", fmt: LogFormat = "json") -> None:
    replica = os.environ.get("REPLICA_NAME", service)
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(ContextFilter(service, replica))
    text = f"%(asctime)s %(levelname)-7s {replica} %(name)s: %(message)s"
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter(text))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    # aio-pika and aiormq log every reconnect attempt at length; our runtime says it briefly.
    logging.getLogger("aiormq").setLevel(logging.ERROR)
    logging.getLogger("aio_pika").setLevel(logging.ERROR)

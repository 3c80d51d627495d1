"""OpenTelemetry: one booking is one trace, from the HTTP request to every consumer.

How the context travels::

    POST /bookings  (server span: FastAPI's own OpenTelemetry instrumentation)
      └─ OutboxRow.of stores the W3C traceparent with the row (shared/outbox/rows.py)
           └─ relay: "<exchange> publish" (producer span) ── traceparent AMQP header ──┐
                consumer runtime: "<queue> process" (consumer span) ◄──────────────────┘
                  └─ an outbox row in the handler's transaction (progress report) ...
                       └─ ... relayed and consumed by the booking service, same trace

Propagation works whatever the exporter: with ``OTEL_TRACES_EXPORTER=none`` no spans are
recorded, but an incoming ``traceparent`` is still carried through.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from aio_pika.abc import AbstractIncomingMessage
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
)
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from shared.errors import ConfigurationError
from shared.logging_setup import message_context

TRACER = "hotel-booking"
_propagator = TraceContextTextMapPropagator()


def _one_line(span: ReadableSpan) -> str:
    return str(span.to_json(indent=None)) + "\n"


def make_exporter(name: str) -> SpanExporter | None:
    if name == "none":
        return None
    if name == "console":
        return ConsoleSpanExporter(out=sys.stderr, formatter=_one_line)
    if name == "otlp":
        try:
            from opentelemetry.exporter.otlp.proto.http import trace_exporter
        except ImportError as exc:
            raise ConfigurationError(
                "OTEL_TRACES_EXPORTER=otlp needs the OTLP exporter: "
                "pip install 'hotel-booking[otlp]' (opentelemetry-exporter-otlp-proto-http)"
            ) from exc
        exporter: SpanExporter = trace_exporter.OTLPSpanExporter()
        return exporter  # it reads OTEL_EXPORTER_OTLP_ENDPOINT and friends
    raise ConfigurationError(f"unknown OTEL_TRACES_EXPORTER {name!r}: none, console or otlp")


def configure_tracing(service: str, exporter: str) -> None:
    """Called once from a process's entry point. Nothing is installed for ``none``."""
    span_exporter = make_exporter(exporter)
    if span_exporter is None:
        return
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(span_exporter))
    trace.set_tracer_provider(provider)  # flushed by the SDK's own atexit hook


def tracer() -> trace.Tracer:
    return trace.get_tracer(TRACER)


def current_traceparent() -> str | None:
    """The W3C traceparent of the active span (None outside any trace)."""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier.get("traceparent")


def _text(value: Any) -> str | None:
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("ascii", errors="replace")
    return value if isinstance(value, str) else None


def context_from(headers: Mapping[str, Any] | None) -> otel_context.Context:
    """The trace context carried by AMQP or HTTP headers (an empty one when none)."""
    texts = {key.lower(): _text(value) for key, value in (headers or {}).items()}
    carrier = {key: value for key, value in texts.items() if value is not None}
    return _propagator.extract(carrier)


def headers_for(span: Span) -> dict[str, str]:
    """The traceparent header that makes ``span`` the parent on the other side."""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier, context=trace.set_span_in_context(span))
    return carrier


def passed_on(traceparent: str | None) -> dict[str, str]:
    """The headers that carry ``traceparent`` on as it is, what a span that records nothing
    would pass on (the outbox relay's messages when no spans are recorded): the value is
    read and written again by the propagator, so one that is not a valid W3C traceparent is
    dropped, never forwarded."""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier, context=context_from({"traceparent": traceparent}))
    return carrier


def fail(span: Span, error: BaseException | str) -> None:
    if isinstance(error, BaseException):
        span.record_exception(error)
    span.set_status(Status(StatusCode.ERROR, str(error)[:200]))


@contextmanager
def consumer_span(
    queue: str, headers: Mapping[str, Any] | None, attributes: Mapping[str, Any]
) -> Iterator[Span]:
    """The span of one delivery, child of the publisher's span when the headers carry one."""
    with tracer().start_as_current_span(
        f"{queue} process",
        context=context_from(headers),
        kind=SpanKind.CONSUMER,
        attributes={
            "messaging.system": "rabbitmq",
            "messaging.operation.type": "process",
            "messaging.destination.name": queue,
            **{k: v for k, v in attributes.items() if v is not None},
        },
    ) as span:
        yield span


def recording() -> bool:
    """True once :func:`configure_tracing` installed an SDK provider (an exporter is set)."""
    return isinstance(trace.get_tracer_provider(), TracerProvider)


@contextmanager
def carried_context(headers: Mapping[str, Any] | None) -> Iterator[Span]:
    """The incoming trace context made current without a span of our own: what a no-op
    tracer would do, for a fraction of the cost (it runs for every delivery)."""
    token = otel_context.attach(context_from(headers))
    try:
        yield trace.get_current_span()
    finally:
        otel_context.detach(token)


@contextmanager
def delivery_scope(service: str, queue: str, message: AbstractIncomingMessage) -> Iterator[Span]:
    """Around one delivery: its consumer span, and its ids on every log line."""
    with message_context(
        event_id=message.message_id,
        booking_id=message.correlation_id,
        correlation_id=message.correlation_id,
    ):
        if not recording():
            with carried_context(message.headers) as span:
                yield span
            return
        attributes = {
            "messaging.message.id": message.message_id,
            "messaging.message.conversation_id": message.correlation_id,
            "messaging.rabbitmq.message.type": message.type,
            "messaging.consumer.group.name": service,
        }
        with consumer_span(queue, message.headers, attributes) as span:
            yield span

"""One booking is one trace: the HTTP request, the outbox relay, the three consumers (through
the real broker) and the booking service's consumption of their progress reports. Spans go
to the OpenTelemetry SDK's own in-memory exporter."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from tests.support.infra import TestEnv
from tests.support.smtp import smtp_server
from tests.support.stack import all_consumers, booking_api, booking_body, wait_until

CONSUMERS = ("email", "voucher", "notification")


@pytest.fixture(scope="module")
def exporter() -> Iterator[InMemorySpanExporter]:
    # The global provider can be set once per interpreter; the processes under test look it
    # up at each span, as they do in production after configure_tracing().
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    yield memory
    memory.shutdown()  # later tests' spans are dropped, not collected


def _ancestors(span: ReadableSpan, spans: list[ReadableSpan]) -> list[int]:
    by_id = {s.context.span_id: s for s in spans}
    found: list[int] = []
    while span.parent is not None and span.parent.span_id in by_id:
        found.append(span.parent.span_id)
        span = by_id[span.parent.span_id]
    return found


def _in_trace(exporter: InMemorySpanExporter, trace_id: int) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.context.trace_id == trace_id]


async def test_one_booking_is_one_trace_across_booking_and_all_three_consumers(
    env: TestEnv, exporter: InMemorySpanExporter
) -> None:
    exporter.clear()
    async with smtp_server() as smtp, all_consumers(env, smtp), booking_api(env) as (client, _):
        response = await client.post("/bookings", json=booking_body())
        assert response.status_code == 201
        [server] = [s for s in exporter.get_finished_spans() if s.name == "POST /bookings"]
        trace_id = server.context.trace_id

        def reports_consumed() -> bool:
            names = Counter(s.name for s in _in_trace(exporter, trace_id))
            # Two "done" reports and a VoucherIssued (the voucher's done report), consumed by
            # the booking service.
            return names["booking.fulfilment-events process"] >= 3

        await wait_until(reports_consumed, timeout=30, what="the reports' spans")
    spans = _in_trace(exporter, trace_id)
    by_name = {s.name: s for s in spans}

    assert server.kind == SpanKind.SERVER
    assert server.parent is None
    assert server.attributes is not None
    assert server.attributes["http.route"] == "/bookings"
    publish = by_name["booking.events publish"]
    assert publish.kind == SpanKind.PRODUCER
    # Written inside the request (FastAPI's endpoint span), published by the relay.
    assert server.context.span_id in _ancestors(publish, spans)
    for service in CONSUMERS:
        process = by_name[f"{service}.booking-events process"]
        assert process.kind == SpanKind.CONSUMER
        assert process.parent is not None
        assert process.parent.span_id == publish.context.span_id
    report_publishers = {
        s.parent.span_id for s in spans if s.name == "fulfilment.events publish" and s.parent
    }
    consumer_spans = {by_name[f"{c}.booking-events process"].context.span_id for c in CONSUMERS}
    assert report_publishers == consumer_spans  # each consumer's reports continue its span
    assert {s.context.trace_id for s in spans} == {trace_id}
    assert len(smtp.messages) == 1

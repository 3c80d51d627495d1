"""The AsyncAPI document, generated from the event models: valid AsyncAPI 3.0, one message
per event type on the exchange it is published to, and payload schemas that accept real
event bodies and reject broken ones."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import uuid4

import jsonschema
import pytest

from shared.events import (
    EVENT_TYPES,
    BookingConfirmed,
    Event,
    FulfilmentProgressed,
    VoucherIssued,
)
from shared.messaging import asyncapi
from shared.messaging.topology import EVENTS_EXCHANGE, FULFILMENT_EXCHANGE
from tests.support import events

SPEC = Path(__file__).resolve().parents[1] / "data" / "asyncapi-3.0.0.json"
URL = "amqp://booking:secret@rabbitmq:5672/hotel"


def confirmed() -> BookingConfirmed:
    return events.confirmed(
        check_in=date(2027, 3, 1),
        check_out=date(2027, 3, 4),
        nights=3,
        total_price=Decimal("360.00"),
    )


def validator(document: dict[str, Any], event_type: str) -> jsonschema.Draft202012Validator:
    schema = {**document["components"]["schemas"][event_type], "components": document["components"]}
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


def test_the_document_is_valid_asyncapi_3() -> None:
    spec = json.loads(SPEC.read_text())
    document = asyncapi.build(URL)
    assert list(jsonschema.Draft7Validator(spec).iter_errors(document)) == []
    broken = {**document, "operations": {"x": {"action": "publish", "channel": {}}}}
    assert not jsonschema.Draft7Validator(spec).is_valid(broken)


def test_every_event_type_is_a_message_on_the_exchange_it_is_published_to() -> None:
    document = asyncapi.build(URL)
    assert set(document["components"]["messages"]) == {t for t, _ in EVENT_TYPES}
    channels = {c["address"]: c for c in document["channels"].values()}
    assert set(channels) == {EVENTS_EXCHANGE, FULFILMENT_EXCHANGE}
    booking_events = {ref.rsplit("/", 1)[1] for ref in _refs(channels[EVENTS_EXCHANGE])}
    assert booking_events == {"BookingConfirmed", "BookingCancelled"}
    for channel in channels.values():
        exchange = channel["bindings"]["amqp"]["exchange"]
        assert exchange["type"] == "fanout"
        assert exchange["vhost"] == "hotel"
    assert document["servers"]["rabbitmq"]["host"] == "rabbitmq:5672"
    assert "secret" not in json.dumps(document)


def _refs(channel: dict[str, Any]) -> list[str]:
    return [message["$ref"] for message in channel["messages"].values()]


@pytest.mark.parametrize(
    "event",
    [
        confirmed(),
        FulfilmentProgressed(
            booking_id=uuid4(),
            step="email",
            status="done",
            attempts=1,
            source_event_id=uuid4(),
            source_event_type="BookingConfirmed",
        ),
        VoucherIssued(booking_id=uuid4(), code="V-3F2A-9C1B-77D0", pdf_base64="JVBERi0="),
    ],
    ids=lambda e: e.event_type,
)
def test_a_real_event_body_matches_its_payload_schema(event: Event) -> None:
    document = asyncapi.build(URL)
    body = json.loads(event.to_json())
    assert list(validator(document, event.event_type).iter_errors(body)) == []


def test_a_broken_body_does_not_match() -> None:
    check = validator(asyncapi.build(URL), "BookingConfirmed")
    body = json.loads(confirmed().to_json())
    assert not check.is_valid({k: v for k, v in body.items() if k != "booking_id"})
    assert not check.is_valid({**body, "event_type": "BookingCancelled"})
    assert not check.is_valid({**body, "event_id": "not-a-uuid"})


def test_every_message_declares_the_trace_context_headers_it_may_carry() -> None:
    document = asyncapi.build(URL)
    sent = {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
    for name, message in document["components"]["messages"].items():
        headers = jsonschema.Draft202012Validator(message["headers"])
        assert set(message["headers"]["properties"]) == {"traceparent", "tracestate"}, name
        assert headers.is_valid(sent)
        assert headers.is_valid({})
        assert not headers.is_valid({"traceparent": "not-a-trace"})

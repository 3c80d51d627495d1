"""The AsyncAPI 3.0 document of the events, generated from the pydantic event models and the
topology, so a team that binds a new queue to a fanout knows what arrives on it.

Names come from :mod:`shared.messaging.topology`, payload schemas from
``model_json_schema()`` of each model in ``EVENT_TYPES``; nothing is written by hand twice.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

from shared.events import EVENT_TYPES, BookingCancelled, BookingConfirmed, Event
from shared.messaging import addresses
from shared.messaging.topology import (
    CONSUMERS,
    EVENTS_EXCHANGE,
    FULFILMENT_EXCHANGE,
    consumer_topology,
)

AMQP_BINDING_VERSION = "0.3.0"
SCHEMA_REF = "#/components/schemas/{model}"
# What the AMQP message carries besides its body (shared/messaging/envelope.py).
MESSAGE_PROPERTIES = {
    "message_id": "the event's event_id (consumers deduplicate on it)",
    "correlation_id": "the booking's id (booking_id)",
    "type": "the event type, e.g. BookingConfirmed",
    "content_type": "application/json",
    "delivery_mode": "2 (persistent)",
    "timestamp": "occurred_at",
    "user_id": "the publishing service's broker user (RabbitMQ refuses any other)",
}
# The AMQP headers a published event carries (shared/outbox/publish.py): the W3C trace
# context of what caused it, when there was one, whether or not the publisher records spans.
TRACEPARENT_PATTERN = r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$"
MESSAGE_HEADERS: dict[str, Any] = {
    "type": "object",
    "description": "AMQP headers. Unknown headers must be ignored.",
    "properties": {
        "traceparent": {
            "type": "string",
            "pattern": TRACEPARENT_PATTERN,
            "description": "W3C Trace Context of the request or delivery that caused the "
            "event; absent when there was none. Continue the trace from it.",
            "examples": ["00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"],
        },
        "tracestate": {
            "type": "string",
            "description": "W3C Trace Context vendor state, sent along with traceparent when "
            "the caller sent one",
        },
    },
}
CHANNELS = {
    EVENTS_EXCHANGE: (
        "bookingEvents",
        "Every event of a booking, published by the booking service through its outbox.",
    ),
    FULFILMENT_EXCHANGE: (
        "fulfilmentEvents",
        "Progress reports and vouchers from the consumers, consumed by the booking service.",
    ),
}
BOOKING_EVENT_TYPES = {BookingConfirmed.event_type, BookingCancelled.event_type}


def _channel_of(event_type: str) -> str:
    return EVENTS_EXCHANGE if event_type in BOOKING_EVENT_TYPES else FULFILMENT_EXCHANGE


def payload_schema(model: type[Event]) -> dict[str, Any]:
    """The JSON schema of a message body: every field is always present in a body."""
    schema = model.model_json_schema(mode="serialization", ref_template=SCHEMA_REF)
    properties = {"event_type": {"const": model.event_type, "type": "string"}}
    schema["properties"] = {**properties, **schema["properties"]}
    schema["required"] = list(schema["properties"])
    schema["description"] = (model.__doc__ or model.event_type).strip().replace("\n", " ")
    return schema


def _schemas() -> dict[str, Any]:
    """Every event's payload schema, and the schemas they share (StayDetails), side by side
    in components/schemas: a reference in the document is from its root."""
    schemas: dict[str, Any] = {}
    for model in EVENT_TYPES.values():
        schema = payload_schema(model)
        schemas |= schema.pop("$defs", {})
        schemas[model.event_type] = schema
    return schemas


def _message(model: type[Event], version: int) -> dict[str, Any]:
    properties = "; ".join(f"{key}: {value}" for key, value in MESSAGE_PROPERTIES.items())
    return {
        "name": model.event_type,
        "title": f"{model.event_type} v{version}",
        "summary": f"Published to the {_channel_of(model.event_type)} fanout exchange.",
        "description": f"AMQP properties: {properties}. Unknown fields must be ignored.",
        "contentType": "application/json",
        "headers": MESSAGE_HEADERS,
        "correlationId": {
            "description": "AMQP correlation_id, equal to the booking id",
            "location": "$message.payload#/booking_id",
        },
        "payload": {"$ref": f"#/components/schemas/{model.event_type}"},
        "bindings": {
            "amqp": {"messageType": model.event_type, "bindingVersion": AMQP_BINDING_VERSION}
        },
    }


def _exchange_channel(exchange: str, vhost: str) -> dict[str, Any]:
    description = CHANNELS[exchange][1]
    messages = {
        event_type: {"$ref": f"#/components/messages/{event_type}"}
        for event_type, _ in EVENT_TYPES
        if _channel_of(event_type) == exchange
    }
    binding = {
        "is": "routingKey",
        "exchange": {
            "name": exchange,
            "type": "fanout",
            "durable": True,
            "autoDelete": False,
            "vhost": vhost,
        },
        "bindingVersion": AMQP_BINDING_VERSION,
    }
    return {
        "address": exchange,
        "title": exchange,
        "description": f"{description} To receive these events, declare a queue of your "
        "own and bind it to this fanout exchange; never consume another service's queue.",
        "messages": messages,
        "bindings": {"amqp": binding},
    }


def _operations() -> dict[str, Any]:
    operations: dict[str, Any] = {}
    for exchange, (key, _) in CHANNELS.items():
        operations[f"publish_{key}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{key}"},
            "summary": f"Publish to {exchange} (persistent, mandatory, publisher confirms).",
            "bindings": {
                "amqp": {
                    "deliveryMode": 2,
                    "mandatory": True,
                    "bindingVersion": AMQP_BINDING_VERSION,
                }
            },
        }
    for service in CONSUMERS:
        names = consumer_topology(service)
        key = CHANNELS[names.source_exchange][0]
        operations[f"{service}_receives"] = {
            "action": "receive",
            "channel": {"$ref": f"#/channels/{key}"},
            "summary": f"{service} consumes {names.source_exchange} on its queue {names.queue}.",
            "bindings": {"amqp": {"ack": True, "bindingVersion": AMQP_BINDING_VERSION}},
        }
    return operations


def _server(url: str, vhost: str) -> dict[str, str]:
    parts = urlsplit(url)
    return {
        "host": f"{parts.hostname or 'localhost'}:{parts.port or 5672}",
        "pathname": f"/{vhost}" if vhost != "/" else "/",
        "protocol": "amqp",
        "protocolVersion": "0.9.1",
        "description": f"RabbitMQ, virtual host {vhost!r}",
    }


def build(amqp_url: str, document_version: str = "1.0.0") -> dict[str, Any]:
    """The document; the servers (one per broker of ``amqp_url``: a cluster's nodes are
    rabbitmq, rabbitmq-2, ...) come from it, without its credentials."""
    urls = addresses.split(amqp_url)
    vhost = unquote(urlsplit(urls[0]).path[1:]) or "/"
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Hotel booking events",
            "version": document_version,
            "description": "Events between the booking service and its consumers, over "
            "RabbitMQ fanout exchanges. Bodies are JSON; every event carries event_id, "
            "event_type, version, occurred_at and booking_id.",
        },
        "defaultContentType": "application/json",
        "servers": {
            "rabbitmq" + (f"-{n}" if n > 1 else ""): _server(url, vhost)
            for n, url in enumerate(urls, 1)
        },
        "channels": {key: _exchange_channel(ex, vhost) for ex, (key, _) in CHANNELS.items()},
        "operations": _operations(),
        "components": {
            "messages": {
                model.event_type: _message(model, version)
                for (_, version), model in EVENT_TYPES.items()
            },
            "schemas": _schemas(),
        },
    }

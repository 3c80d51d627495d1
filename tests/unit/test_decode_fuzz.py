"""Property-based: whatever bytes arrive on a consumer's queue (body, properties, header
tables, built byte by byte as they come off the wire), the runtime's decode path ends in an
event or in a dead letter it can publish. Nothing else: no other exception, which would
leave the message unsettled and hold a prefetch slot."""

from __future__ import annotations

import json
import struct
import uuid
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.errors import InvalidMessage, UnhandledEventType
from shared.events import Event
from shared.messaging import amqp_codec
from shared.messaging.envelope import decode_message
from tests.support.events import confirmed
from tests.support.hostile import RawProperties, delivered, long_string, nested_arrays, short, table
from tests.unit.test_amqp_codec import HANDLED, encodes, failure_headers_of

amqp_codec.install()
MAX_BYTES = 64 * 1024
EVENT_ID = str(uuid.UUID(int=7))

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=12,
)


@st.composite
def mutated_events(draw: st.DrawFn) -> bytes:
    """A real BookingConfirmed with one field replaced by anything, or removed."""
    event: dict[str, Any] = json.loads(confirmed(event_id=uuid.UUID(EVENT_ID)).to_json())
    field = draw(st.sampled_from(sorted(event)))
    if draw(st.booleans()):
        del event[field]
    else:
        event[field] = draw(json_values)
    return json.dumps(event, default=str).encode()


def _deep(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


bodies = st.one_of(
    st.binary(max_size=300),
    json_values.map(lambda v: json.dumps(v).encode()),
    mutated_events(),
    st.just(confirmed(event_id=uuid.UUID(EVENT_ID)).to_json()),
    st.integers(1, 200_000).map(_deep),
    # Integers of more digits than Python converts (4,300), where an id or a price belongs.
    st.integers(4000, 6000).map(lambda n: b'{"event_id": ' + b"9" * n + b"}"),
    mutated_events().map(
        lambda b: b.replace(b'"nights":', b'"nights": 1' + b"0" * 5000 + b', "x":')
    ),
    st.integers(MAX_BYTES - 10, MAX_BYTES + 10).map(lambda n: b" " * n),
)

raw_values = st.one_of(
    st.binary(max_size=20).map(long_string),
    st.integers(0, 2**64 - 1).map(lambda n: b"T" + struct.pack(">Q", n)),
    st.integers(1, 300).map(nested_arrays),
    st.floats().map(lambda x: b"d" + struct.pack(">d", x)),
    st.integers(-(2**63), 2**63 - 1).map(lambda n: b"l" + struct.pack(">q", n)),
    st.integers(-(2**31), 2**31 - 1).map(lambda n: b"I" + struct.pack(">i", n)),
    st.binary(min_size=1, max_size=8),  # a type octet nobody knows, or a truncated value
)
raw_names = st.one_of(
    st.sampled_from(["x-attempts", "x-replay-attempts-base", "x-replay-count", "traceparent"]),
    st.binary(max_size=12),
)


@st.composite
def properties(draw: st.DrawFn) -> RawProperties:
    values: dict[str, bytes] = {"delivery_mode": b"\x02"}
    values["message_id"] = draw(st.just(short(EVENT_ID)) | st.binary(max_size=40).map(short))
    if draw(st.booleans()):
        values["headers"] = table(*draw(st.lists(st.tuples(raw_names, raw_values), max_size=5)))
    if draw(st.booleans()):
        values["timestamp"] = struct.pack(">Q", draw(st.integers(0, 2**64 - 1)))
    if draw(st.booleans()):
        values["type"] = draw(st.binary(max_size=30).map(short))
    return RawProperties(values)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=bodies, raw=properties())
def test_every_delivery_is_an_event_or_a_dead_letter_that_can_be_published(
    body: bytes, raw: RawProperties
) -> None:
    message = delivered(body, raw)
    try:
        event = decode(message)
    except UnhandledEventType:
        return  # well-formed, of a type this consumer does not handle: acked
    except InvalidMessage as refused:
        reason = str(refused)  # what the dead letter's headers will say
    else:
        assert isinstance(event, Event)
        reason = "a handler's failure"
    assert reason
    # Dead-lettered (or retried after a handler failure): the copy must encode.
    assert encodes(message, failure_headers_of(message))


def decode(message: Any) -> Event:
    return decode_message(message, HANDLED, MAX_BYTES)

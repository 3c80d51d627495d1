"""Messages a careless or hostile publisher sends straight to the fanout, against the real
consumers, broker and database: each is dead-lettered with its reason by every consumer,
none is held, no connection is lost, and good bookings keep flowing."""

from __future__ import annotations

import uuid

import httpx
import pytest

from shared.consumer_service import ConsumerProcess
from shared.messaging.topology import EVENTS_EXCHANGE
from tests.support.amqp import take
from tests.support.hostile import publish_raw
from tests.support.infra import TestEnv
from tests.support.poison import POISON, poison_message
from tests.support.stack import (
    all_consumers,
    booking_api,
    booking_body,
    effects,
    equals,
    wait_until,
)

MARKER = "x-test-poison"
COPIES = 3  # of each kind: more than the prefetch in all, so held messages would stop it
PREFETCH = 8
REASONS = {"body-over-the-size-limit": "message-too-large"}


async def _metric(client: httpx.AsyncClient, name: str) -> float:
    """The one sample of ``name``; 0 for a counter never incremented (no sample yet)."""
    text = (await client.get("/metrics")).text
    lines = [row for row in text.splitlines() if row.startswith(name + "{")]
    assert len(lines) <= 1, lines
    return float(lines[0].rsplit(" ", 1)[1]) if lines else 0.0


async def _held_and_lost(process: ConsumerProcess) -> tuple[float, float]:
    async with httpx.AsyncClient(base_url=process.ops_url) as client:
        held = await _metric(client, "hotel_deliveries_in_hand")
        lost = await _metric(client, "hotel_consumer_subscriptions_lost_total")
    return held, lost


async def test_every_hostile_message_is_dead_lettered_with_its_reason_and_none_is_held(
    env: TestEnv,
) -> None:
    labels = [f"{kind}#{copy}" for kind in POISON for copy in range(COPIES)]
    messages = [
        poison_message(label.split("#")[0], str(uuid.uuid4()), MARKER, label) for label in labels
    ]
    async with booking_api(env) as (client, _), all_consumers(env, prefetch=PREFETCH) as running:
        await publish_raw(env.amqp_url(), EVENTS_EXCHANGE, messages)
        booked = (await client.post("/bookings", json=booking_body())).json()["id"]
        for service in running:
            await wait_until(
                lambda s=service: equals(effects(env, s, booked), 1),
                what=f"{service} handled the booking published after the poison",
            )
        for service, process in running.items():
            dead = await take(env.amqp_url(), f"{service}.dlq", len(labels))
            by_label = {str((m.headers or {}).get(MARKER)): m for m in dead}
            assert sorted(by_label) == sorted(labels), f"{service}: {len(dead)} dead letters"
            for label, message in by_label.items():
                reason = REASONS.get(label.split("#")[0], "invalid-message")
                assert (message.headers or {})["x-reason"] == reason, (service, label)
                assert (message.headers or {})["x-service"] == service
            assert await _held_and_lost(process) == (0.0, 0.0), service
            assert process.consumer.stats["dead_lettered"] == len(labels)


@pytest.mark.parametrize("kind", ["header-name-not-utf8", "timestamp-past-any-calendar"])
async def test_a_message_its_client_cannot_read_does_not_cost_the_connection(
    env: TestEnv, kind: str
) -> None:
    """Before amqp_codec, each of these closed the consumer's connection at every delivery
    (InvalidFrameError), and with it every message in hand."""
    async with all_consumers(env) as running:
        message = poison_message(kind, str(uuid.uuid4()), MARKER, kind)
        await publish_raw(env.amqp_url(), EVENTS_EXCHANGE, [message])
        [dead] = await take(env.amqp_url(), "voucher.dlq", 1)
        assert "cannot be read faithfully" in str((dead.headers or {})["x-exception-message"])
        assert await _held_and_lost(running["voucher"]) == (0.0, 0.0)

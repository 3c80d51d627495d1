"""Prometheus metrics and health endpoints of the booking service and a consumer, read the
way Prometheus reads them (text format over HTTP), after real traffic."""

from __future__ import annotations

import asyncio

import aio_pika
import httpx
from prometheus_client.parser import text_string_to_metric_families

from shared.messaging.topology import EVENTS_EXCHANGE
from tests.support.amqp import publish_raw
from tests.support.infra import TestEnv
from tests.support.stack import (
    booking_api,
    booking_body,
    effects,
    equals,
    running_consumer,
    wait_until,
)

VOUCHER_QUEUE = "voucher.booking-events"


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """{(sample name, labels): value} of a Prometheus text exposition."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(
    found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return found[(name, frozenset(labels.items()))]


async def test_metrics_count_each_outcome_per_queue_and_show_the_outbox_draining(
    env: TestEnv,
) -> None:
    async with (
        running_consumer("voucher", env) as voucher,
        booking_api(env) as (client, _),
        httpx.AsyncClient(base_url=voucher.ops_url, timeout=5) as ops,
    ):
        booking = (await client.post("/bookings", json=booking_body())).json()
        replayed = await client.post(
            "/bookings", json=booking_body(), headers={"Idempotency-Key": "k1"}
        )
        again = await client.post(
            "/bookings", json=booking_body(), headers={"Idempotency-Key": "k1"}
        )
        assert (replayed.status_code, again.headers.get("Idempotent-Replayed")) == (201, "true")
        poison = aio_pika.Message(b"not json", message_id="poison-1")
        await publish_raw(env.amqp_url(), EVENTS_EXCHANGE, poison)
        await wait_until(lambda: equals(effects(env, "voucher"), 2), what="two vouchers")
        await wait_until(lambda: voucher.consumer.stats["dead_lettered"] == 1, what="poison")

        async def drained() -> bool:
            text = (await ops.get("/metrics")).text
            return value(samples(text), "hotel_outbox_backlog", outbox="voucher") == 0

        await wait_until(drained, what="voucher outbox drained")
        consumer = samples((await ops.get("/metrics")).text)
        await wait_until(lambda: _reports_handled(client, 2), what="reports handled")
        booking_side = samples((await client.get("/metrics")).text)
        live, ready = await asyncio.gather(client.get("/health/live"), client.get("/health/ready"))
        schema = (await client.get("/openapi.json")).json()

    queue = {"queue": VOUCHER_QUEUE}
    assert value(consumer, "hotel_messages_consumed_total", **queue) == 3
    assert value(consumer, "hotel_messages_acked_total", **queue) == 2
    assert value(consumer, "hotel_messages_retried_total", **queue) == 0
    assert (
        value(consumer, "hotel_messages_dead_lettered_total", **queue, reason="invalid-message")
        == 1
    )
    assert (
        value(
            consumer, "hotel_handler_duration_seconds_count", **queue, event_type="BookingConfirmed"
        )
        == 2
    )
    assert value(consumer, "hotel_consumer_consuming", **queue) == 1
    assert value(consumer, "hotel_outbox_oldest_unsent_age_seconds", outbox="voucher") == 0
    # Two vouchers: a VoucherIssued each, which is also its progress report.
    assert value(consumer, "hotel_events_published_total", outbox="voucher") == 2

    assert value(booking_side, "hotel_bookings_created_total") == 2  # the replay is not new
    assert value(booking_side, "hotel_events_published_total", outbox="booking") == 2
    assert value(booking_side, "hotel_outbox_backlog", outbox="booking") == 0
    reports = {"queue": "booking.fulfilment-events"}
    assert value(booking_side, "hotel_messages_acked_total", **reports) == 2
    assert (live.status_code, ready.status_code) == (200, 200)
    assert ready.json() == {"status": "ready", "checks": {"database": "ok"}}
    assert not {"/health/live", "/health/ready", "/metrics"} & set(schema["paths"])
    assert booking["status"] == "confirmed"


async def _reports_handled(client: httpx.AsyncClient, expected: int) -> bool:
    found = samples((await client.get("/metrics")).text)
    acked = value(found, "hotel_messages_acked_total", queue="booking.fulfilment-events")
    return acked == expected and value(found, "hotel_outbox_backlog", outbox="booking") == 0


async def test_the_outbox_gauges_show_the_backlog_and_its_age_while_nothing_relays(
    env: TestEnv,
) -> None:
    async with booking_api(env, relay_enabled=False) as (client, _):
        for _ in range(3):
            assert (await client.post("/bookings", json=booking_body())).status_code == 201
        await asyncio.sleep(0.3)
        found = samples((await client.get("/metrics")).text)
    assert value(found, "hotel_outbox_backlog", outbox="booking") == 3
    assert value(found, "hotel_outbox_oldest_unsent_age_seconds", outbox="booking") >= 0.3
    assert value(found, "hotel_events_published_total", outbox="booking") == 0

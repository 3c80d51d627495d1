"""Prometheus metrics of one process, on a registry of its own.

The registry is built in each process's wiring (bootstrap or lifespan), never at import, so
a test can run several services in one interpreter and read each one's figures apart.
Gauges that live in the database (the outbox backlog) are refreshed on scrape, with a bounded
query, by :class:`shared.outbox.backlog.OutboxProbe`; the rest are counted as things happen.

Names (all prefixed ``hotel_``)::

    bookings_created_total                            booking API, new bookings (not replays)
    events_published_total{outbox}                    outbox relays, confirmed by the broker
    outbox_backlog{outbox}                            rows not yet published
    outbox_oldest_unsent_age_seconds{outbox}          0 when the backlog is empty
    messages_consumed_total{queue}                    deliveries taken from the queue
    messages_acked_total{queue}                       handled and acked
    messages_retried_total{queue}                     parked in a retry queue
    messages_dead_lettered_total{queue,reason}        parked in the dead-letter queue
    messages_duplicate_total{queue}                   already processed: acked, no effect
    messages_ignored_total{queue}                     event types this service does not handle
    handler_duration_seconds{queue,event_type}        histogram: claim + handler + commit
    consumer_consuming{queue}                         1 while the subscription is live
    consumer_subscriptions_lost_total{queue}          connection, channel or consumer lost
    deliveries_in_hand{queue}                         taken from the broker, not settled yet
    oldest_delivery_in_hand_seconds{queue}            how long the oldest of them has been held
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from shared.messaging.held import HeldDeliveries

Refresh = Callable[["Metrics"], Awaitable[None]]
NAMESPACE = "hotel"
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class Metrics:
    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry()
        self._refreshers: list[Refresh] = []

        def counter(name: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
            return Counter(name, doc, labels, namespace=NAMESPACE, registry=registry)

        def gauge(name: str, doc: str, labels: tuple[str, ...]) -> Gauge:
            return Gauge(name, doc, labels, namespace=NAMESPACE, registry=registry)

        self.bookings_created = counter("bookings_created", "Bookings created (not replays)")
        self.events_published = counter(
            "events_published", "Outbox events confirmed by the broker", ("outbox",)
        )
        self.outbox_backlog = gauge("outbox_backlog", "Outbox rows not yet published", ("outbox",))
        self.outbox_oldest_age = gauge(
            "outbox_oldest_unsent_age_seconds",
            "Age of the oldest unpublished outbox row (0 when none)",
            ("outbox",),
        )
        q = ("queue",)
        self.consumed = counter("messages_consumed", "Deliveries taken from the queue", q)
        self.acked = counter("messages_acked", "Messages handled and acked", q)
        self.retried = counter("messages_retried", "Messages parked in a retry queue", q)
        self.dead_lettered = counter(
            "messages_dead_lettered",
            "Messages parked in the dead-letter queue",
            ("queue", "reason"),
        )
        self.duplicates = counter("messages_duplicate", "Already-processed messages acked", q)
        self.ignored = counter("messages_ignored", "Messages of event types not handled", q)
        self.handler_duration = Histogram(
            "handler_duration_seconds",
            "Time to claim, handle and commit one event",
            ("queue", "event_type"),
            namespace=NAMESPACE,
            registry=registry,
            buckets=DURATION_BUCKETS,
        )
        self.consuming = gauge("consumer_consuming", "1 while the subscription is live", q)
        self.subscriptions_lost = counter(
            "consumer_subscriptions_lost", "Subscriptions lost (connection, channel, cancel)", q
        )
        self.in_hand = gauge("deliveries_in_hand", "Deliveries taken, not settled yet", q)
        self.oldest_in_hand = gauge(
            "oldest_delivery_in_hand_seconds", "How long the oldest delivery in hand is held", q
        )

    def for_queue(self, queue: str) -> QueueMetrics:
        return QueueMetrics(self, queue)

    def on_scrape(self, refresh: Refresh) -> None:
        """Run ``refresh`` (bounded by the caller's timeout) before each scrape."""
        self._refreshers.append(refresh)

    async def render(self, timeout: float = 2.0) -> bytes:
        """The Prometheus text exposition, after refreshing the database gauges."""
        if self._refreshers:
            tasks = [asyncio.ensure_future(refresh(self)) for refresh in self._refreshers]
            _, late = await asyncio.wait(tasks, timeout=timeout)
            for task in late:
                task.cancel()
        return generate_latest(self.registry)


class QueueMetrics:
    """The consumer runtime's view: the metrics of one queue, labels bound."""

    OUTCOMES = ("consumed", "acked", "retried", "duplicates", "ignored")

    def __init__(self, metrics: Metrics, queue: str) -> None:
        self._metrics, self._queue = metrics, queue
        self._counters = {
            "consumed": metrics.consumed.labels(queue=queue),
            "acked": metrics.acked.labels(queue=queue),
            "retried": metrics.retried.labels(queue=queue),
            "duplicates": metrics.duplicates.labels(queue=queue),
            "ignored": metrics.ignored.labels(queue=queue),
        }
        self._consuming = metrics.consuming.labels(queue=queue)
        self._consuming.set(0)
        # One child per event type, looked up once: a labels() call per delivery (a lock
        # and a dict) was a visible part of a no-op delivery's cost.
        self._durations: dict[str, Histogram] = {}

    def count(self, outcome: str) -> None:
        self._counters[outcome].inc()

    def dead_lettered(self, reason: str) -> None:
        self._metrics.dead_lettered.labels(queue=self._queue, reason=reason).inc()

    def handled_in(self, event_type: str, seconds: float) -> None:
        child = self._durations.get(event_type)
        if child is None:
            child = self._metrics.handler_duration.labels(queue=self._queue, event_type=event_type)
            self._durations[event_type] = child
        child.observe(seconds)

    def consuming(self, value: bool) -> None:
        self._consuming.set(int(value))

    def subscription_lost(self) -> None:
        self._metrics.subscriptions_lost.labels(queue=self._queue).inc()

    def watch(self, held: HeldDeliveries) -> None:
        """Read the deliveries in hand and the oldest one's age at each scrape."""
        self._metrics.in_hand.labels(queue=self._queue).set_function(held.count)
        self._metrics.oldest_in_hand.labels(queue=self._queue).set_function(held.oldest_age)

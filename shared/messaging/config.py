"""What the consumer runtime (shared/messaging/consumer.py) is told about one consuming
service: built from its settings in shared/consumer_service.py, read by the consumer and
its subscription."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from aio_pika.abc import AbstractIncomingMessage

from shared.events import Event
from shared.messaging import retry

# Why a decoded event must not be applied, given the delivery that brought it (who published
# it: the AMQP user_id, which the broker checks; which exchange routed it), or None.
SenderCheck = Callable[[Event, AbstractIncomingMessage], str | None]


@dataclass(frozen=True)
class ConsumerConfig:
    service: str
    amqp_url: str
    prefetch: int = 50
    retry_policy: retry.RetryPolicy = field(default_factory=retry.RetryPolicy)
    connect_timeout: float = 5.0
    shutdown_grace: float = 10.0
    reconnect_max_delay: float = 5.0
    db_acquire_timeout: float = 5.0
    # Pause before requeueing a message we could not park anywhere (broker trouble), so a
    # failing publisher does not turn into a hot redelivery loop.
    requeue_pause: float = 1.0
    # Send FulfilmentProgressed reports for booking events (off for the booking service's
    # own consumer of those reports).
    report_progress: bool = True
    # Seconds of simulated work per delivery (benchmarks, the seed latency profile). Spent
    # before the transaction opens, like a step's own slow work (rendering, remote calls),
    # so a slow step holds a message, not one of PostgreSQL's connections.
    simulated_work: float = 0.0
    # Deliveries recorded per transaction (shared/messaging/batching.py). Above 1 only for
    # handlers that write nothing but their own database: in a failed batch they run twice.
    batch_size: int = 1
    # Seconds a batch not yet full waits for more deliveries (BATCH_LINGER_MS).
    batch_linger: float = 0.0
    # A body over this is dead-lettered as message-too-large, never decoded. Below the
    # broker's max_message_size, so the dead-lettered copy always fits.
    max_message_bytes: int = 1024 * 1024
    # A delivery in hand for longer than this means the consumer has stopped moving: it
    # turns the process unready (shared/messaging/subscription.py, HeldDeliveries).
    stall_timeout: float = 300.0
    # Checked after decoding, before any handler: a reason dead-letters the message as
    # wrong-sender. The policy belongs to the service (services/booking/senders.py).
    check_sender: SenderCheck | None = None

"""The consumers of booking events: the one list every other part of the system derives from.

Adding a consumer is its folder under ``services/`` and one line in ``CONSUMERS`` (README,
"Adding a consumer"). From this list come: the AMQP topology and the broker's definitions
(shared/messaging/topology.py, definitions.py), the fulfilment steps a booking shows and their
type in ``FulfilmentProgressed`` (shared/events.py, services/booking/schemas.py), the
database schemas and roles (shared/db/schemas.py), which consumers may never batch
(shared/consumer_service.py), the local runner's processes and ports, the compose services,
their env example and the Kubernetes workloads (deploy/generate.py writes those), the AsyncAPI
document, the benchmarks and the tests.

Nothing here imports the rest of the system: it is read by everything, so it reads nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

CONFIRMED, CANCELLED = "BookingConfirmed", "BookingCancelled"


@dataclass(frozen=True)
class ConsumerService:
    name: str  # the service (services/<name>), its queue's prefix, schema, users and step
    handles: tuple[str, ...]  # the event types it has handlers for
    http_port: int  # its ops server under `make run` (+100 per replica after the first)
    # Its handlers reach outside its database (SMTP, webhooks): a rolled-back batch would
    # repeat that, so BATCH_SIZE above 1 is refused.
    outside_effects: bool = False
    # How long this step took in the seed's synchronous design (bench scenario 4).
    seed_latency_ms: int = 0
    # deploy/.env variables its container receives, beyond its own passwords.
    secrets: tuple[str, ...] = ()
    # Compose services it waits for, beyond PostgreSQL, RabbitMQ and the migration step.
    needs: tuple[str, ...] = ()


CONSUMERS: tuple[ConsumerService, ...] = (
    ConsumerService(
        "notification",
        (CONFIRMED, CANCELLED),
        8002,
        outside_effects=True,
        seed_latency_ms=1000,
        secrets=("NOTIFICATION_WEBHOOK_SECRET",),
    ),
    ConsumerService(
        "email",
        (CONFIRMED, CANCELLED),
        8003,
        outside_effects=True,
        seed_latency_ms=500,
        needs=("mailpit",),
    ),
    ConsumerService("voucher", (CONFIRMED, CANCELLED), 8004, seed_latency_ms=1000),
)
NAMES: tuple[str, ...] = tuple(service.name for service in CONSUMERS)


def consumer_service(name: str) -> ConsumerService:
    for service in CONSUMERS:
        if service.name == name:
            return service
    raise ValueError(f"unknown consumer service {name!r}; known: {', '.join(NAMES)}")

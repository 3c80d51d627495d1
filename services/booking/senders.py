"""Who may report on a booking's fulfilment: each step only for itself.

Any service allowed to publish to ``fulfilment.events`` could otherwise report another's
step (an email service saying the voucher is done) or hand the booking service a voucher
PDF of its own. Each consumer publishes its reports with the AMQP ``user_id`` property set
to its broker user, which RabbitMQ checks against the connection's user (a publisher
cannot claim to be another); this policy, run by the consumer runtime after decoding
(ConsumerConfig.check_sender), accepts a report only from its step's user:

* FulfilmentProgressed: the user of ``event.step``;
* VoucherIssued, VoucherVoided: the voucher step's user.

A refused report is dead-lettered as ``wrong-sender``, never applied.

Copies of a report come back through the booking service's own retry exchange, published
by this service (a retry) or by the operator (a dead-letter replay), the only two users
allowed to publish there; they carry no ``user_id`` of the original. Their original was
checked when it first arrived, so they are taken, except a replay of a report refused for
its sender (its dead-letter headers say so), which is refused again.

On a developer's broker every service shares one user (guest), so the check cannot tell
them apart: with DEV_MODE, reports from this service's own broker user, the shared one,
are taken too. In production the booking service's user never publishes a report.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aio_pika.abc import AbstractIncomingMessage

from shared import registry
from shared.errors import WrongSender
from shared.events import Event, FulfilmentProgressed
from shared.messaging.retry import H_EXCEPTION_TYPE
from shared.messaging.topology import consumer_topology

STEPS: tuple[str, ...] = registry.NAMES
# The booking service's own retry exchange: where its retried and replayed copies arrive.
COPIES_EXCHANGE = consumer_topology("booking").retry_exchange


def parse_senders(text: str) -> dict[str, str]:
    """``"email=mailer,..."`` -> {step: broker user} for every step of the registry: each
    named at most once, the others reporting as the user named after them."""
    senders: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        step, sep, user = (value.strip() for value in item.partition("="))
        if not sep or step not in STEPS or not user or step in senders:
            raise ValueError(f"{item!r}: expected step=user, each of {', '.join(STEPS)} once")
        senders[step] = user
    return {step: senders.get(step, step) for step in STEPS}


def step_of(event: Event) -> str | None:
    """The step ``event`` speaks for; None for an event that is no report."""
    if isinstance(event, FulfilmentProgressed):
        return event.step
    return event.reports_done_for  # VoucherIssued, VoucherVoided: the voucher step


@dataclass(frozen=True)
class SenderPolicy:
    senders: Mapping[str, str]
    # DEV_MODE only: the broker user every service shares, accepted for every step.
    shared_user: str | None = None

    def __call__(self, event: Event, message: AbstractIncomingMessage) -> str | None:
        """The consumer runtime's check (ConsumerConfig.check_sender)."""
        return self.problem(event, message.user_id, message.exchange, message.headers or {})

    def problem(
        self, event: Event, user: str | None, exchange: str | None, headers: Mapping[str, Any]
    ) -> str | None:
        """Why ``event``, published by broker user ``user`` and routed by ``exchange``, must
        not be applied; None when it may."""
        step = step_of(event)
        if step is None:
            return None
        if exchange == COPIES_EXCHANGE:
            refused = headers.get(H_EXCEPTION_TYPE) == WrongSender.__name__
            return "a replay of a report refused for its sender" if refused else None
        expected = self.senders[step]
        if user == expected or (self.shared_user is not None and user == self.shared_user):
            return None
        return (
            f"{event.event_type} for step {step} must be published by broker user "
            f"{expected!r} (AMQP user_id), not {user!r}"
        )

"""What a consuming service supplies to the consumer runtime: its handlers, one per event
type, as a ``{event type: handler}`` dict built with :func:`route`.

A handler runs inside the delivery's transaction (shared/messaging/consumer.py) and returns
the events its effect caused (or None); they are published through the service's outbox,
committed with the effect.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from shared.db.pool import Connection
from shared.errors import InvalidMessage
from shared.events import Event

Emitted = Sequence[Event] | None
Handler = Callable[[Event, Connection], Awaitable[Emitted]]
E = TypeVar("E", bound=Event)


def route(
    event_class: type[E], handler: Callable[[E, Connection], Awaitable[Emitted]]
) -> tuple[str, Handler]:
    """One entry of a service's ``{event type: handler}`` dict, keeping handlers typed."""

    async def handle(event: Event, tx: Connection) -> Emitted:
        if not isinstance(event, event_class):
            raise InvalidMessage(f"expected {event_class.__name__}, got {type(event).__name__}")
        return await handler(event, tx)

    return event_class.event_type, handle

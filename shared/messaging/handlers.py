"""What a consuming service supplies to the consumer runtime: its handlers, one per event
type, as a ``{event type: handler}`` dict built with :func:`route` or :func:`route_prepared`.

A handler is a plain async function. It runs inside the delivery's transaction
(shared/messaging/consumer.py) and returns the events its effect caused (or None); they are
published through the service's outbox, committed with the effect.

Some work must not happen while a database connection is held: rendering an email, waiting
for a free SMTP connection. A handler routed with :func:`route_prepared` gets a *prepare*
step for that: an async context manager entered before the transaction opens and left after
it ends, whose value the handler receives.

A handler that only writes its own tables and emits nothing may also come with a *batch*
form (``route(..., batch=...)``): in a batched consumer (shared/messaging/batching.py) the
events of its type in one batch are given to it at once, in delivery order, so it can write
them in one statement instead of one each.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from shared.db.pool import Connection
from shared.errors import InvalidMessage
from shared.events import Event

Emitted = Sequence[Event] | None
E = TypeVar("E", bound=Event)
P = TypeVar("P")


@asynccontextmanager
async def nothing_to_prepare(event: Event) -> AsyncIterator[None]:
    yield None


@dataclass(frozen=True)
class Handler:
    """The runtime's view of a handler: what to prepare, then what to do in the transaction."""

    handle: Callable[[Event, Connection, Any], Awaitable[Emitted]]
    prepare: Callable[[Event], AbstractAsyncContextManager[Any]] = nothing_to_prepare
    # The same effect for several events at once (emitting nothing), or None.
    handle_batch: Callable[[Sequence[Event], Connection], Awaitable[None]] | None = None

    @property
    def prepares(self) -> bool:
        return self.prepare is not nothing_to_prepare


def _typed(event_class: type[E], event: Event) -> E:
    if not isinstance(event, event_class):
        raise InvalidMessage(f"expected {event_class.__name__}, got {type(event).__name__}")
    return event


def route(
    event_class: type[E],
    handler: Callable[[E, Connection], Awaitable[Emitted]],
    *,
    batch: Callable[[Sequence[E], Connection], Awaitable[None]] | None = None,
) -> tuple[str, Handler]:
    """One entry of a service's ``{event type: handler}`` dict, keeping handlers typed;
    ``batch``, when given, does what ``handler`` does (and emits nothing) for many events."""

    async def handle(event: Event, tx: Connection, _: Any) -> Emitted:
        return await handler(_typed(event_class, event), tx)

    async def handle_batch(events: Sequence[Event], tx: Connection) -> None:
        assert batch is not None
        await batch([_typed(event_class, event) for event in events], tx)

    return event_class.event_type, Handler(handle, handle_batch=handle_batch if batch else None)


def route_prepared(
    event_class: type[E],
    prepare: Callable[[E], AbstractAsyncContextManager[P]],
    handler: Callable[[E, Connection, P], Awaitable[Emitted]],
) -> tuple[str, Handler]:
    """As :func:`route`, with a step run before the transaction (see the module's doc)."""

    def prepared(event: Event) -> AbstractAsyncContextManager[P]:
        return prepare(_typed(event_class, event))

    async def handle(event: Event, tx: Connection, ready: P) -> Emitted:
        return await handler(_typed(event_class, event), tx, ready)

    return event_class.event_type, Handler(handle, prepared)

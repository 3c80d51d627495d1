"""Opening AMQP connections, with AMQP and socket errors translated to BrokerUnavailable.

A URL may list several brokers (the nodes of a cluster: shared/messaging/addresses.py); a
connection goes to the first of them, in the process's rotation, that accepts it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import aio_pika
import aiormq
from aio_pika.abc import AbstractChannel, AbstractConnection, ConsumerTag
from aio_pika.connection import make_url

from shared.errors import BrokerUnavailable
from shared.messaging import addresses, amqp_codec

log = logging.getLogger(__name__)

# Errors that mean "the broker or the link to it is gone", and only those: a message-level
# failure (a body that will not decode, a header that will not encode, a bug) must be that
# message's failure, never taken for a lost link (that left such messages unacked forever,
# each holding a prefetch slot). RuntimeError is not here: RecursionError is one.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,  # ConnectionError, TimeoutError (= asyncio's) and socket errors
    aiormq.exceptions.AMQPConnectionError,  # the connection closed, or never opened
    aiormq.exceptions.AMQPChannelError,  # the channel closed (by the broker, or with it)
    aiormq.exceptions.ChannelInvalidStateError,  # a channel used after it closed
    aiormq.exceptions.ProtocolSyntaxError,  # a frame the client could not read: it hangs up
)


def redact(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at:
        return url
    user = credentials.split(":", 1)[0]
    return f"{scheme}{sep}{user}:***@{host}"


def broker_user(url: str) -> str:
    """The broker user ``url`` logs in as (aio-pika's default, guest, when it names none):
    what a message published on its connection may carry as its AMQP user_id, which the
    broker checks against that user."""
    user = make_url(addresses.first(url)).user
    return user or "guest"


async def connect(url: str, *, name: str, timeout: float) -> AbstractConnection:
    """One plain (non-robust) connection, to the first broker of ``url`` that accepts it,
    trying them in the process's rotation; ``timeout`` applies to each. Reconnecting is the
    caller's loop: we own that logic rather than trust robust connections to restore
    consumers after a drop."""
    amqp_codec.install()  # a hostile message must not close the connection: see amqp_codec
    rotation = addresses.rotation(url)
    failures: list[str] = []
    for address in rotation.attempt():
        try:
            connection = await _connect_one(address, name=name, timeout=timeout)
        except BrokerUnavailable as exc:
            failures.append(str(exc))
            continue
        rotation.connected(address)
        if len(rotation.addresses) > 1:
            log.info("%s connected to %s", name, redact(address))
        return connection
    raise BrokerUnavailable("; ".join(failures))


async def _connect_one(url: str, *, name: str, timeout: float) -> AbstractConnection:
    # Built here rather than by aio_pika.connect, which abandons a connection that failed to
    # open: its __del__ then schedules close() wherever GC runs ("coroutine
    # 'Connection.close' was never awaited" off the loop). Same arguments as aio_pika.connect.
    connection = aio_pika.Connection(
        make_url(url),
        loop=asyncio.get_running_loop(),
        client_properties={"connection_name": name},
    )
    try:
        await asyncio.wait_for(connection.connect(timeout=timeout), timeout)
    except BaseException as exc:
        # Shielded: a second cancel cannot stop it halfway. Quiet: the error raised is ours.
        await asyncio.shield(close_quietly(connection))
        if isinstance(exc, Exception):  # whatever failed, there is no connection to use
            raise BrokerUnavailable(f"cannot connect to {redact(url)}: {exc!r}") from exc
        raise
    return connection


async def close_quietly(connection: AbstractConnection | None, timeout: float = 2.0) -> None:
    if connection is None or connection.is_closed:
        return
    try:
        await asyncio.wait_for(connection.close(), timeout)
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is None or task.cancelling():
            raise  # aimed at our caller, not a close that aio-pika cancelled itself
        log.debug("closing connection was cancelled")
    except CONNECTION_ERRORS as exc:
        log.debug("closing connection failed: %r", exc)


async def on_consumer_cancelled(
    channel: AbstractChannel, tag: ConsumerTag, callback: Callable[[], None]
) -> None:
    """Call ``callback`` when the broker cancels consumer ``tag`` (basic.cancel: its queue
    was deleted, or a quorum queue's leader moved). The connection and channel stay open
    then, so without this a consumer would sit idle forever (aio-pika#334, aiormq#116)."""
    underlay = await channel.get_underlay_channel()

    def cancelled(frame: aiormq.spec.Basic.Cancel) -> None:
        if frame.consumer_tag == tag:
            log.warning("the broker cancelled consumer %s", tag)
            callback()

    underlay.on_consumer_cancel_callbacks.add(cancelled)

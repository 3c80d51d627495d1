"""A publisher that sends what no well-behaved AMQP client would: properties and header
tables built byte by byte (header names that are not UTF-8, timestamps past any calendar,
field types nobody knows, tables nested ten thousand deep).

pamqp (under aio-pika) refuses to encode any of these, so this speaks AMQP 0-9-1 itself over
a socket: the handshake and methods through pamqp's frames, the content header by hand. It
waits for the broker's publisher confirm, so what it returns has reached the queues.
"""

from __future__ import annotations

import asyncio
import struct
from dataclasses import dataclass, field
from typing import TypeVar
from urllib.parse import unquote, urlsplit

from aio_pika import IncomingMessage
from aiormq.abc import DeliveredMessage
from pamqp import base, commands, frame, heartbeat
from pamqp.body import ContentBody
from pamqp.header import ContentHeader

_FRAME_END = b"\xce"
F = TypeVar("F", bound=base.Frame)
# Basic.Properties flags, in the order their values follow each other in a content header.
FLAGS = {
    "content_type": 1 << 15,
    "content_encoding": 1 << 14,
    "headers": 1 << 13,
    "delivery_mode": 1 << 12,
    "priority": 1 << 11,
    "correlation_id": 1 << 10,
    "reply_to": 1 << 9,
    "expiration": 1 << 8,
    "message_id": 1 << 7,
    "timestamp": 1 << 6,
    "type": 1 << 5,
    "user_id": 1 << 4,
    "app_id": 1 << 3,
}


def short(raw: bytes | str) -> bytes:
    data = raw.encode() if isinstance(raw, str) else raw
    return bytes([len(data)]) + data


def long_string(raw: bytes | str) -> bytes:
    """A typed table value: a long string of any bytes."""
    data = raw.encode() if isinstance(raw, str) else raw
    return b"S" + struct.pack(">I", len(data)) + data


def timestamp(seconds: int) -> bytes:
    return b"T" + struct.pack(">Q", seconds)


def table(*entries: tuple[bytes | str, bytes]) -> bytes:
    """A field table of (raw name, typed raw value) pairs, without its type octet."""
    body = b"".join(short(name) + value for name, value in entries)
    return struct.pack(">I", len(body)) + body


def nested_arrays(depth: int) -> bytes:
    """A typed value: an array in an array ... ``depth`` deep (built without recursing)."""
    value = b"A" + struct.pack(">I", 0)
    for _ in range(depth - 1):
        value = b"A" + struct.pack(">I", len(value)) + value
    return value


@dataclass
class RawProperties:
    """Property name -> its encoded value (short strings with :func:`short`, the headers
    with :func:`table`, delivery mode as one octet, timestamp as 8 bytes)."""

    values: dict[str, bytes] = field(default_factory=dict)

    def encode(self) -> tuple[int, bytes]:
        flags, data = 0, b""
        for name, flag in FLAGS.items():
            if name in self.values:
                flags |= flag
                data += self.values[name]
        return flags, data


def persistent(
    message_id: bytes | str, headers: bytes | None = None, **raw: bytes
) -> RawProperties:
    """Properties like the system's own messages have, with these raw ones on top."""
    values = {"delivery_mode": b"\x02", "message_id": short(message_id), **raw}
    if headers is not None:
        values["headers"] = headers
    return RawProperties(values)


def content_header(body_size: int, properties: RawProperties, channel: int = 1) -> bytes:
    """The content header frame of a message, byte by byte."""
    flags, encoded = properties.encode()
    payload = struct.pack(">HHQH", 60, 0, body_size, flags) + encoded
    return struct.pack(">BHI", 2, channel, len(payload)) + payload + _FRAME_END


def delivered(body: bytes, properties: RawProperties) -> IncomingMessage:
    """The message a consumer gets for this body and these properties: the header frame
    decoded by pamqp, as aiormq's reader does (with whatever decoders are installed)."""
    _, _, decoded = frame.unmarshal(content_header(len(body), properties))
    assert isinstance(decoded, ContentHeader)
    message = DeliveredMessage(
        delivery=commands.Basic.Deliver(consumer_tag="t", delivery_tag=1, routing_key=""),
        header=decoded,
        body=body,
        channel=None,  # type: ignore[arg-type]
    )
    return IncomingMessage(message, no_ack=True)


class RawPublisher:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader, self._writer = reader, writer
        self._buffer = b""
        self._frame_max = 131072
        self._delivery_tag = 0

    @classmethod
    async def connect(cls, amqp_url: str) -> RawPublisher:
        url = urlsplit(amqp_url)
        reader, writer = await asyncio.open_connection(url.hostname, url.port or 5672)
        publisher = cls(reader, writer)
        await publisher._handshake(
            unquote(url.username or "guest"),
            unquote(url.password or "guest"),
            unquote(url.path[1:]) or "/",
        )
        return publisher

    async def _handshake(self, user: str, password: str, vhost: str) -> None:
        self._writer.write(b"AMQP\x00\x00\x09\x01")
        await self._expect(commands.Connection.Start)
        response = f"\0{user}\0{password}"
        self._send(0, commands.Connection.StartOk(client_properties={}, response=response))
        tune = await self._expect(commands.Connection.Tune)
        self._frame_max = tune.frame_max or self._frame_max
        self._send(0, commands.Connection.TuneOk(tune.channel_max, self._frame_max, 0))
        self._send(0, commands.Connection.Open(virtual_host=vhost))
        await self._expect(commands.Connection.OpenOk)
        self._send(1, commands.Channel.Open())
        await self._expect(commands.Channel.OpenOk)
        self._send(1, commands.Confirm.Select())
        await self._expect(commands.Confirm.SelectOk)

    async def publish(
        self, exchange: str, routing_key: str, body: bytes, properties: RawProperties
    ) -> None:
        """Publish and wait for the broker's confirm (raises if it nacks or hangs up)."""
        self._send(1, commands.Basic.Publish(exchange=exchange, routing_key=routing_key))
        self._writer.write(content_header(len(body), properties))
        step = self._frame_max - 8
        for start in range(0, len(body), step):
            self._writer.write(frame.marshal(ContentBody(body[start : start + step]), 1))
        self._delivery_tag += 1
        ack = await self._expect(commands.Basic.Ack)
        assert ack.delivery_tag == self._delivery_tag

    async def close(self) -> None:
        try:
            self._send(
                0,
                commands.Connection.Close(
                    reply_code=200, reply_text="bye", class_id=0, method_id=0
                ),
            )
            await asyncio.wait_for(self._expect(commands.Connection.CloseOk), 5)
        except (ConnectionError, TimeoutError, EOFError):
            pass
        finally:
            self._writer.close()

    def _send(self, channel: int, method: base.Frame) -> None:
        self._writer.write(frame.marshal(method, channel))

    async def _expect(self, kind: type[F]) -> F:
        while True:
            received = await self._next_frame()
            if isinstance(received, heartbeat.Heartbeat):
                continue
            if isinstance(received, commands.Connection.Close | commands.Channel.Close):
                raise ConnectionError(f"the broker closed: {received.reply_text}")
            if not isinstance(received, kind):
                raise ConnectionError(f"expected {kind.__name__}, got {received!r}")
            return received

    async def _next_frame(self) -> frame.FrameTypes:
        while True:
            if len(self._buffer) >= 7:
                (size,) = struct.unpack(">I", self._buffer[3:7])
                if len(self._buffer) >= size + 8:
                    consumed, _, received = frame.unmarshal(self._buffer[: size + 8])
                    self._buffer = self._buffer[consumed:]
                    return received
            chunk = await self._reader.read(65536)
            if not chunk:
                raise EOFError("the broker hung up")
            self._buffer += chunk


async def publish_raw(
    amqp_url: str, exchange: str, messages: list[tuple[bytes, RawProperties]]
) -> None:
    publisher = await RawPublisher.connect(amqp_url)
    try:
        for body, properties in messages:
            await publisher.publish(exchange, "", body, properties)
    finally:
        await publisher.close()

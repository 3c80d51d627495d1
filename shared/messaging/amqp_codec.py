"""AMQP properties and header tables from a careless or hostile publisher, decoded without
losing the connection, and made safe to publish again.

aiormq decodes every frame with pamqp inside the connection's reader. A content header that
pamqp cannot decode closes the whole connection (``InvalidFrameError``), and every message in
hand goes back to the queue with it; the broker hands the same message out again, so one
such message stalls its consumer until the queue's delivery limit. The broker passes these
through untouched (measured on RabbitMQ 3.10):

* a header name that is not UTF-8 (pamqp decodes names strictly; gmr/pamqp#32),
* a short-string property (``message_id``, ``type``, ...) that is not UTF-8,
* a timestamp beyond Python's calendar (property or header),
* a field of a type pamqp does not know, or a table nested deeper than Python recurses.

:func:`install` replaces pamqp's decoders of tables, arrays, timestamps and short strings with
ones that never raise on such input: what cannot be decoded becomes an :class:`Undecodable`
(a ``str``, so a copy can be published as it is) or an :class:`UndecodableTime` (1970-01-01),
and :func:`damage` tells the consumer runtime, which dead-letters the message as invalid.

The other way round, a decoded table does not always encode again: a long string that is not
UTF-8 decodes to ``bytes`` (which pamqp cannot encode), a double to a ``float`` (which pamqp
encodes as a single, overflowing). :func:`encodable_headers` fixes those for the copies the
runtime publishes (retries, dead letters, replays).
"""

from __future__ import annotations

import datetime
import struct
from collections.abc import Callable, Mapping
from typing import Any

from pamqp import common, decode, encode

# Our own headers are flat and the broker's x-death is three levels deep; anything deeper is
# not read, only reported (it is also what keeps decoding from recursing without bound).
MAX_DEPTH = 16
MAX_SHORT_STRING = 255  # bytes, AMQP's limit for property values and header names
_SINGLE_MAX = 3.4028234663852886e38  # pamqp encodes a float as a single

Decoder = Callable[[bytes], tuple[int, Any]]
_original: dict[bytes, Decoder] = {}


class Undecodable(str):
    """Stands in for a value (or a header name) the decoder could not read: a readable
    rendering of it, and why."""

    reason: str

    @classmethod
    def of(cls, text: str, reason: str) -> Undecodable:
        value = cls(text)
        value.reason = reason
        return value


class UndecodableTime(datetime.datetime):
    """Stands in for a timestamp outside Python's calendar: 1970-01-01, and why."""

    reason: str


def _bad_time(raw: int) -> UndecodableTime:
    value = UndecodableTime.fromtimestamp(0, tz=datetime.UTC)
    value.reason = f"timestamp {raw} is out of range"
    return value


def _timestamp(value: bytes) -> tuple[int, datetime.datetime]:
    (raw,) = common.Struct.timestamp.unpack(value[0:8])
    try:
        return decode.timestamp(value)
    except (ValueError, OverflowError, OSError):
        return 8, _bad_time(raw)


def _short_str(value: bytes) -> tuple[int, str]:
    length = value[0]
    raw = value[1 : length + 1]
    if len(raw) < length:
        raise ValueError("Could not unpack short string value")
    try:
        return length + 1, raw.decode("utf-8")
    except UnicodeDecodeError:
        return length + 1, Undecodable.of(raw.decode("utf-8", "replace"), "is not UTF-8")


def _value(data: bytes, depth: int) -> tuple[int, Any]:
    """One typed value of a table or array (type octet first); raises ValueError when its
    length cannot be known, which ends the enclosing table."""
    kind, rest = data[0:1], data[1:]
    if kind == b"F":
        consumed, table = _table(rest, depth + 1)
        return consumed + 1, table
    if kind == b"A":
        consumed, array = _array(rest, depth + 1)
        return consumed + 1, array
    if kind == b"T":
        consumed, when = _timestamp(rest)
        return consumed + 1, when
    decoder = _original.get(kind)
    if decoder is None:
        raise ValueError(f"unknown field type {kind!r}")
    consumed, result = decoder(rest)
    return consumed + 1, result


def _container(data: bytes, depth: int) -> tuple[int, bytes | None]:
    (length,) = common.Struct.integer.unpack(data[0:4])
    if 4 + length > len(data):
        raise ValueError("field table or array longer than its frame")
    if depth > MAX_DEPTH:
        return 4 + length, None
    return 4 + length, data[4 : 4 + length]


def _table(data: bytes, depth: int = 0) -> tuple[int, dict[str, Any]]:
    end, body = _container(data, depth)
    if body is None:
        return end, {Undecodable.of("?", f"nested deeper than {MAX_DEPTH}"): None}
    table: dict[str, Any] = {}
    offset = 0
    while offset < len(body):
        key: str = Undecodable.of("?", "a header name runs past its table")
        try:
            consumed, key = _short_str(body[offset:])
            offset += consumed
            if isinstance(key, Undecodable):
                key = Undecodable.of(key, f"header name {key!r} is not UTF-8")
            consumed, table[key] = _value(body[offset:], depth)
        except (ValueError, struct.error, IndexError) as exc:
            table[key] = Undecodable.of("?", f"header {key!r}: {exc}")
            break  # a length is unknown: the rest of the table cannot be read
        offset += consumed
    return end, table


def _array(data: bytes, depth: int) -> tuple[int, list[Any]]:
    end, body = _container(data, depth)
    if body is None:
        return end, [Undecodable.of("?", f"nested deeper than {MAX_DEPTH}")]
    items: list[Any] = []
    offset = 0
    while offset < len(body):
        try:
            consumed, item = _value(body[offset:], depth)
        except (ValueError, struct.error, IndexError) as exc:
            items.append(Undecodable.of("?", f"array item: {exc}"))
            break
        items.append(item)
        offset += consumed
    return end, items


def install() -> None:
    """Put the tolerant decoders in pamqp's place (idempotent; every connection we open
    calls it). They decode well-formed input exactly as pamqp does."""
    if _original:
        return
    _original.update(decode.TABLE_MAPPING)
    decode.TABLE_MAPPING[b"F"] = lambda data: _table(data, 1)
    decode.TABLE_MAPPING[b"A"] = lambda data: _array(data, 1)
    decode.TABLE_MAPPING[b"T"] = _timestamp
    decode.METHODS["table"] = _table
    decode.METHODS["timestamp"] = _timestamp
    decode.METHODS["shortstr"] = _short_str


PROPERTIES: tuple[str, ...] = (
    *("message_id", "correlation_id", "type", "content_type", "content_encoding"),
    *("reply_to", "user_id", "app_id", "timestamp"),
)


def damage(headers: Mapping[str, Any] | None, properties: Mapping[str, Any]) -> str | None:
    """Why a delivery's properties or headers could not be read faithfully, or None."""
    for name in PROPERTIES:
        value = properties.get(name)
        if isinstance(value, Undecodable | UndecodableTime):
            return f"property {name}: {value.reason}"
    return _damage_in(headers or {}, "header")


def _damage_in(value: Any, where: str) -> str | None:
    if isinstance(value, Undecodable | UndecodableTime):
        return f"{where}: {value.reason}"
    items: list[tuple[str, Any]] = []
    if isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(key, Undecodable):
                return key.reason
            items.append((f"{where} {key!r}", item))
    elif isinstance(value, list):
        items = [(where, item) for item in value]
    for place, item in items:
        found = _damage_in(item, place)
        if found is not None:
            return found
    return None


def encodable_headers(headers: Mapping[str, Any]) -> dict[str, Any]:
    """``headers`` as pamqp can encode them: bytes as byte arrays, floats pamqp would
    overflow and integers beyond 64 bits as text, names cut to AMQP's 255 bytes. Whatever
    still does not encode is replaced by its text, so a copy can always be published."""
    result = {short_string(str(key)): _encodable(value) for key, value in headers.items()}
    try:
        encode.field_table(result)
    except (TypeError, ValueError, OverflowError, struct.error) as exc:
        return {"x-original-headers": repr(headers)[:4000], "x-headers-error": repr(exc)[:200]}
    return result


def _encodable(value: Any) -> Any:
    if isinstance(value, bytes):
        return bytearray(value)
    if isinstance(value, float) and abs(value) > _SINGLE_MAX and value == value:
        return repr(value)
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 2**63:
        return str(value)
    if isinstance(value, Mapping):
        return {short_string(str(k)): _encodable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_encodable(item) for item in value]
    return value


def short_string(value: str) -> str:
    """``value`` cut to AMQP's short-string limit of 255 bytes, on a character boundary."""
    raw = value.encode("utf-8", "replace")
    if len(raw) <= MAX_SHORT_STRING:
        return value
    return raw[:MAX_SHORT_STRING].decode("utf-8", "ignore")

"""What the dead-letter index answers: failure groups and pages of their messages, and the
queries behind them. Pages are keyset-paginated on (last failure, id), so page 5,000 of a
group costs what page 1 does (the index ``dead_letters_group`` serves both)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from pydantic import BaseModel, ConfigDict, Field

from shared.deadletters.audit import SCHEMA
from shared.deadletters.errors import InvalidRequest

MAX_PAGE = 200
FINGERPRINT_PATTERN = r"^[0-9a-f]{16}$"
# Microseconds since 1970 (16 digits: until the year 2286) ~ a row id or a fingerprint.
CURSOR_PATTERN = r"^[0-9]{1,16}~[0-9]{1,18}$"
GROUP_CURSOR_PATTERN = r"^[0-9]{1,16}~[0-9a-f]{16}$"


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


def iso_datetime(value: Any) -> Any:
    """Refuse a bare number where a date and time is wanted: pydantic would read "0.5" as
    seconds since 1970, which the OpenAPI document (format date-time) does not allow."""
    if isinstance(value, str) and not re.search(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
        raise ValueError("a date and time in ISO 8601 (2026-12-05T18:00:00Z), not a number")
    return value


def encode_cursor(at: datetime, key: int | str) -> str:
    """``<microseconds since 1970>~<id or fingerprint>``: exact, and safe in a URL as it is."""
    return f"{(at - EPOCH) // MICROSECOND}~{key}"


def _decode(cursor: str) -> tuple[datetime, str]:
    micros, _, key = cursor.partition("~")
    try:
        return EPOCH + int(micros) * MICROSECOND, key
    except (ValueError, OverflowError):
        raise InvalidRequest(f"not a page cursor: {cursor[:80]!r}") from None


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    at, key = _decode(cursor)
    if not key.isdigit():
        raise InvalidRequest(f"not a page cursor: {cursor[:80]!r}")
    return at, int(key)


class Group(BaseModel):
    """A failure group: the dead letters sharing a fingerprint."""

    fingerprint: str
    consumer: str
    event_type: str | None
    event_version: int | None
    exception_type: str | None
    frame: str | None
    reason: str | None
    reason_pattern: str
    queues: list[str]
    count: int
    replayed_before: int = Field(description="Messages that failed again after a replay")
    first_seen: datetime | None
    last_seen: datetime
    state: str | None = Field(description="muted or archived; null when active")
    until: datetime | None
    trend: list[int] = Field(description="Failures per hour over the last 24 hours")

    @classmethod
    def of(cls, row: asyncpg.Record, trend: list[int]) -> Group:
        return cls.model_validate({**dict(row), "trend": trend})


def group_cursor(groups: list[Group], limit: int) -> str | None:
    """The cursor of the page after ``groups`` (None when it was the last)."""
    if len(groups) < limit or not groups:
        return None
    return encode_cursor(groups[-1].last_seen, groups[-1].fingerprint)


class GroupQuery(BaseModel):
    model_config = ConfigDict(frozen=True)

    consumer: str | None = None
    fingerprint: str | None = None
    include_hidden: bool = False
    after: str | None = None
    limit: int = Field(default=50, ge=1, le=MAX_PAGE)
    now: datetime | None = None

    def sql(self) -> tuple[Any, ...]:
        after: tuple[datetime | None, str | None] = (None, None)
        if self.after:
            after = _decode(self.after)
        return (
            f"""WITH g AS (
                SELECT fingerprint, min(consumer) AS consumer, min(event_type) AS event_type,
                       min(event_version) AS event_version,
                       min(exception_type) AS exception_type, min(frame) AS frame,
                       min(reason) AS reason, min(reason_pattern) AS reason_pattern,
                       ARRAY[min(queue)] AS queues, count(*) AS count, -- one consumer, one DLQ
                       count(*) FILTER (WHERE replay_count > 0) AS replayed_before,
                       min(first_failure_at) AS first_seen, max(last_failure_at) AS last_seen
                FROM {SCHEMA}.dead_letters
                WHERE ($1::text IS NULL OR consumer = $1)
                  AND ($2::text IS NULL OR fingerprint = $2)
                GROUP BY fingerprint)
            SELECT g.*, s.state, s.until
            FROM g LEFT JOIN {SCHEMA}.dead_letter_groups s USING (fingerprint)
            WHERE ($3 OR s.state IS NULL OR (s.state = 'muted' AND s.until <= now()))
              AND ($4::timestamptz IS NULL OR (g.last_seen, g.fingerprint) < ($4, $5::text))
            ORDER BY g.last_seen DESC, g.fingerprint DESC
            LIMIT $6""",
            self.consumer,
            self.fingerprint,
            self.include_hidden,
            after[0],
            after[1],
            self.limit,
        )


class MessageQuery(BaseModel):
    """One group's messages, filtered; the SQL names only the filters given, so each form
    of the query gets a plan that walks the group's index from the cursor."""

    model_config = ConfigDict(frozen=True)

    fingerprint: str
    booking_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    event_type: str | None = None
    text: str | None = None
    after: str | None = None
    limit: int = Field(default=50, ge=1, le=MAX_PAGE)

    def sql(self) -> tuple[Any, ...]:
        args: list[Any] = [self.fingerprint]
        where = ["fingerprint = $1"]

        def add(condition: str, value: Any) -> None:
            args.append(value)
            where.append(condition.replace("?", f"${len(args)}"))

        if self.booking_id:
            add("booking_id = ?", self.booking_id)
        if self.since:
            add("last_failure_at >= ?", self.since)
        if self.until:
            add("last_failure_at < ?", self.until)
        if self.event_type:
            add("event_type = ?", self.event_type)
        if self.text:
            escaped = self.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            add("exception ILIKE ?", f"%{escaped}%")
        if self.after:
            at, row_id = decode_cursor(self.after)
            args.append(at)
            add(f"(last_failure_at, id) < (${len(args)}, ?)", row_id)
        args.append(self.limit + 1)  # one more: tells whether there is a next page
        return (
            "SELECT id, queue, message_id, event_type, booking_id, reason, exception, attempts, "
            f"replay_count, first_failure_at, last_failure_at FROM {SCHEMA}.dead_letters "
            f"WHERE {' AND '.join(where)} ORDER BY last_failure_at DESC, id DESC "
            f"LIMIT ${len(args)}",
            *args,
        )


class Row(BaseModel):
    id: int
    queue: str
    message_id: str | None
    event_type: str | None
    booking_id: str | None
    reason: str | None
    exception: str | None
    attempts: int
    replay_count: int
    first_failure_at: datetime | None
    last_failure_at: datetime


class MessagePage(BaseModel):
    messages: list[Row]
    next: str | None = Field(description="The cursor of the next page; null on the last")

    @classmethod
    def of(cls, rows: list[asyncpg.Record], limit: int) -> MessagePage:
        page = [Row.model_validate(dict(r)) for r in rows[:limit]]
        more = len(rows) > limit
        last = page[-1] if page else None
        cursor = encode_cursor(last.last_failure_at, last.id) if more and last else None
        return cls(messages=page, next=cursor)


class Indexed(Row):
    """One indexed message with its headers and body."""

    fingerprint: str
    consumer: str
    frame: str | None
    headers: dict[str, Any]
    body: str

    @classmethod
    def of(cls, row: asyncpg.Record) -> Indexed:
        raw: bytes = row["body"]
        try:
            body = json.dumps(json.loads(raw), indent=2, ensure_ascii=False)
        except ValueError:
            body = raw.decode("utf-8", errors="replace")
        return cls.model_validate(
            {**dict(row), "headers": json.loads(row["headers"]), "body": body}
        )


class Parking(BaseModel):
    message_id: str
    queue: str
    last_failure_at: datetime
    first_failure_at: datetime | None
    reason: str | None
    exception: str | None
    frame: str | None
    attempts: int
    replay_count: int
    first_seen_at: datetime

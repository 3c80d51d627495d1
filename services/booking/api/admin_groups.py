"""The admin API's failure groups: what the dead-letter console shows and does, as JSON.

Same bearer token as ``/admin/dlq`` (deps.AdminGroupsDep). The groups come from the index
of dead letters (``ops.dead_letters``, derived from the queues: ``POST /admin/dlq/sync``
re-reads them); every retry and purge acts on the queue's own messages.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from services.booking.api.admin import (
    AUTH_RESPONSES,
    QUEUE_RESPONSES,
    SUMMARY_EXAMPLE,
    SWEEP_RESPONSES,
    actor,
    translated,
)
from services.booking.api.admin_requests import Operator
from services.booking.api.examples import DEAD_LETTER_GROUP as GROUP
from services.booking.api.examples import DEAD_LETTER_ROW as ROW
from services.booking.api.examples import LIVE_STATE as STATE
from services.booking.api.examples import ok
from services.booking.deps import AdminGroupsDep
from services.booking.schemas import JSON_INTEGER
from shared.deadletters.canary import CanaryReport, canary_retry
from shared.deadletters.editing import EditResult, retry_edited
from shared.deadletters.errors import UnknownGroup
from shared.deadletters.model import NO_CONTROL_PATTERN, Label, Summary
from shared.deadletters.pages import (
    CURSOR_PATTERN,
    FINGERPRINT_PATTERN,
    GROUP_CURSOR_PATTERN,
    MAX_PAGE,
    Group,
    GroupQuery,
    Indexed,
    MessagePage,
    MessageQuery,
    Parking,
    group_cursor,
    iso_datetime,
)
from shared.deadletters.reading import ConsumerState

GROUP_RESPONSES = {**QUEUE_RESPONSES, 404: QUEUE_RESPONSES[404] | {"description": "No such group"}}
router = APIRouter(prefix="/admin/dlq", tags=["admin: failure groups"])
Fingerprint = Annotated[str, Path(pattern=FINGERPRINT_PATTERN, description="A group's fingerprint")]
GroupCursor = Annotated[
    str | None,
    Query(pattern=GROUP_CURSOR_PATTERN, description="`next` of the previous page"),
]
Cursor = Annotated[
    str | None, Query(pattern=CURSOR_PATTERN, description="`next` of the previous page")
]
# Stored in PostgreSQL text, which holds no NUL: control characters are refused up front.
Text = Annotated[str | None, Query(max_length=200, pattern=NO_CONTROL_PATTERN)]
When = Annotated[
    datetime | None,
    BeforeValidator(iso_datetime),
    Query(description="An ISO 8601 date and time, e.g. 2026-12-05T18:00:00Z"),
]
RowId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The index row's id")]


class GroupPage(BaseModel):
    groups: list[Group]
    next: str | None


class IndexedMessage(BaseModel):
    message: Indexed
    parkings: list[Parking]


class GroupRetry(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    dry_run: bool = False
    ids: list[Label] = Field(default_factory=list, description="Only these ids of the group")
    rate: float | None = Field(default=None, ge=1, le=1_000_000, allow_inf_nan=False)


class GroupCanary(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    # At most 5 s: the answer comes when the canary ends (up to four stages).
    settle_seconds: float = Field(
        default=5, ge=0, le=5, description="How long each stage is watched for failures"
    )
    rate: float | None = Field(default=None, ge=1, le=1_000_000, allow_inf_nan=False)


class MessageEdit(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    # 1,000 and 200 characters: even escaped as \\uXXXX pairs they fit the 16 KiB body limit.
    body: str = Field(max_length=1000, description="The edited body, JSON text")
    reason: str = Field(min_length=1, max_length=200, description="Why: kept in the audit")
    preview: bool = Field(default=False, description="Only validate and show the diff")


class GroupPurge(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    confirm: str = Field(max_length=16, description="The group's fingerprint, typed again")


class GroupState(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    state: Literal["muted", "archived", "restore"]
    hours: Annotated[int, Field(strict=True, ge=1, le=24 * 90), JSON_INTEGER] = Field(
        default=24, description="How long a mute lasts"
    )


@router.post(
    "/sync",
    summary="Re-read the dead-letter queues into the index",
    responses={200: ok({"booking.dlq": 0, "email.dlq": 3}), **AUTH_RESPONSES},
)
async def sync(groups: AdminGroupsDep) -> dict[str, int]:
    """The number of messages read per queue."""
    with translated():
        return await groups.sync()


@router.get(
    "/live", summary="Live state per consumer", responses={200: ok([STATE]), **AUTH_RESPONSES}
)
async def live(groups: AdminGroupsDep) -> list[ConsumerState]:
    with translated():
        return await groups.live()


@router.get(
    "/groups",
    summary="Failure groups",
    responses={200: ok({"groups": [GROUP], "next": None}), **GROUP_RESPONSES},
)
async def list_groups(
    groups: AdminGroupsDep,
    consumer: Text = None,
    hidden: bool = False,
    after: GroupCursor = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
) -> GroupPage:
    """Newest failure first; `hidden` includes muted and archived groups."""
    with translated():
        query = GroupQuery(consumer=consumer, include_hidden=hidden, after=after, limit=limit)
        found = await groups.index.groups(query)
    return GroupPage(groups=found, next=group_cursor(found, limit))


@router.get(
    "/groups/{fingerprint}",
    summary="One failure group",
    responses={200: ok(GROUP), **GROUP_RESPONSES},
)
async def one_group(groups: AdminGroupsDep, fingerprint: Fingerprint) -> Group:
    with translated():
        return await groups.group(fingerprint)


@router.get(
    "/groups/{fingerprint}/messages",
    summary="A group's messages",
    responses={
        200: ok({"messages": [ROW], "next": "1795512072000000~41"}),
        **GROUP_RESPONSES,
    },
)
async def group_messages(
    groups: AdminGroupsDep,
    fingerprint: Fingerprint,
    booking_id: Text = None,
    since: When = None,
    until: When = None,
    event_type: Text = None,
    text: Text = None,
    after: Cursor = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
) -> MessagePage:
    """Newest failure first, keyset-paginated: pass `next` as `after`."""
    with translated():
        query = MessageQuery(
            fingerprint=fingerprint,
            booking_id=booking_id,
            since=since,
            until=until,
            event_type=event_type,
            text=text,
            after=after,
            limit=limit,
        )
        return await groups.index.messages(query)


@router.get(
    "/index/{row_id}",
    summary="One indexed dead letter",
    responses={
        200: ok(
            {
                "message": {
                    **ROW,
                    "fingerprint": GROUP["fingerprint"],
                    "consumer": "email",
                    "frame": GROUP["frame"],
                    "headers": {"x-reason": "permanent-failure", "x-attempts": 1},
                    "body": '{"event_type": "BookingConfirmed", "version": 1}',
                },
                "parkings": [],
            }
        ),
        **GROUP_RESPONSES,
    },
)
async def indexed(groups: AdminGroupsDep, row_id: RowId) -> IndexedMessage:
    """Its body, headers and every parking seen."""
    with translated():
        message = await groups.index.message(row_id)
        if message is None:
            raise UnknownGroup(f"no indexed dead letter {row_id}: it left its queue")
        parkings = await groups.index.parkings(message.message_id) if message.message_id else []
    return IndexedMessage(message=message, parkings=parkings)


@router.post(
    "/groups/{fingerprint}/retry",
    summary="Retry a group",
    responses={200: ok([SUMMARY_EXAMPLE]), **SWEEP_RESPONSES},
)
async def retry(
    groups: AdminGroupsDep,
    fingerprint: Fingerprint,
    body: GroupRetry,
    request: Request,
    operator: Operator = None,
) -> list[Summary]:
    """Its messages (or `ids` of it) back to their consumer's queue only; audited."""
    with translated():
        return await groups.retry(
            fingerprint,
            actor=actor(request, operator),
            dry_run=body.dry_run,
            rate=body.rate,
            ids=tuple(body.ids),
        )


@router.post(
    "/groups/{fingerprint}/canary",
    summary="Canary retry of a group: 1, 5, 50, then the rest",
    responses={
        200: ok(
            {
                "fingerprint": GROUP["fingerprint"],
                "stages": [SUMMARY_EXAMPLE | {"total": 3, "seen": 1, "replayed": 1}],
                "halted": True,
                "failed_again": [ROW["message_id"]],
            }
        ),
        **SWEEP_RESPONSES,
    },
)
async def canary(
    groups: AdminGroupsDep,
    fingerprint: Fingerprint,
    body: GroupCanary,
    request: Request,
    operator: Operator = None,
) -> CanaryReport:
    """Each stage waits `settle_seconds` and halts the canary when its messages fail again
    (they are back in the dead-letter queue, marked with their retry count)."""
    with translated():
        return await canary_retry(
            groups,
            fingerprint,
            actor=actor(request, operator),
            settle=body.settle_seconds,
            rate=body.rate,
        )


@router.post(
    "/index/{row_id}/edit",
    summary="Edit a dead letter, then retry only the edited copy",
    responses={
        200: ok(
            {
                "diff": '--- original\n+++ edited\n-  "guest_email": "ada@exmple.com"',
                "summary": None,
            }
        ),
        **SWEEP_RESPONSES,
    },
)
async def edit(
    groups: AdminGroupsDep,
    row_id: RowId,
    body: MessageEdit,
    request: Request,
    operator: Operator = None,
) -> EditResult:
    """Validated against the event's schema (same event id, type and version), the diff
    shown; the original is kept in the audit entry with the reason."""
    with translated():
        return await retry_edited(
            groups,
            row_id,
            body.body,
            reason=body.reason,
            actor=actor(request, operator),
            preview=body.preview,
        )


@router.post(
    "/groups/{fingerprint}/purge",
    summary="Purge a group",
    responses={200: ok([SUMMARY_EXAMPLE | {"operation": "purge"}]), **SWEEP_RESPONSES},
)
async def purge(
    groups: AdminGroupsDep,
    fingerprint: Fingerprint,
    body: GroupPurge,
    request: Request,
    operator: Operator = None,
) -> list[Summary]:
    """Only with `confirm` equal to the fingerprint; audited."""
    with translated():
        return await groups.purge(fingerprint, actor=actor(request, operator), confirm=body.confirm)


@router.post(
    "/groups/{fingerprint}/state",
    summary="Mute, archive or restore a group",
    responses={200: ok(GROUP | {"state": "muted"}), **SWEEP_RESPONSES},
)
async def state(
    groups: AdminGroupsDep,
    fingerprint: Fingerprint,
    body: GroupState,
    request: Request,
    operator: Operator = None,
) -> Group:
    until = datetime.now(UTC) + timedelta(hours=body.hours) if body.state == "muted" else None
    with translated():
        await groups.set_state(
            fingerprint,
            None if body.state == "restore" else body.state,
            actor=actor(request, operator),
            until=until,
        )
        return await groups.group(fingerprint)

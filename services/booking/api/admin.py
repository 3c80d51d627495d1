"""The admin API for dead-letter queues: ``/admin/dlq``, the same operations as ``bookingctl``.

Every route requires ``Authorization: Bearer <ADMIN_TOKEN>`` (deps.AdminDep). Without an
ADMIN_TOKEN configured, every route answers 503 "admin API disabled": never open.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from services.booking.api.examples import error, ok
from services.booking.deps import AdminDep
from services.dlq.errors import DlqError, InvalidRequest, UnknownQueue
from services.dlq.model import AuditEntry, DeadLetter, Filters, QueueInfo, Summary, parse_duration

router = APIRouter(prefix="/admin/dlq", tags=["admin: dead-letter queues"])

QueueName = Annotated[
    str, Path(description="A service name (`email`) or a full queue name (`email.dlq`)")
]
AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: error("Missing or wrong bearer token", "missing or wrong admin token"),
    503: error(
        "Admin API disabled, or broker/database down", "admin API disabled: set ADMIN_TOKEN"
    ),
}
QUEUE_RESPONSES: dict[int | str, dict[str, Any]] = {
    **AUTH_RESPONSES,
    404: error("No dead-letter queue of that name", "no dead-letter queue called 'mail'"),
    422: error("A filter that cannot work", "bad duration '5x': use e.g. 30m, 2h or 1d"),
}
DEAD_LETTER = {
    "message_id": "8d6f3c1a-2b4e-4f5a-9c7d-0e1f2a3b4c5d",
    "event_type": "BookingConfirmed",
    "booking_id": "3f2b8c1e-5d4a-4e6f-9a7b-1c2d3e4f5a6b",
    "reason": "retries-exhausted",
    "exception": "TransientError: SMTP 127.0.0.1:1025 answered 451 4.3.0 try again later",
    "attempts": 5,
    "replay_count": 0,
    "first_failure_at": "2026-11-24T09:30:01Z",
    "last_failure_at": "2026-11-24T09:30:16Z",
}
AUDIT_ENTRY = {
    "id": 12,
    "at": "2026-11-24T10:05:00Z",
    "actor": "cli:ops@host",
    "operation": "replay",
    "queue": "email.dlq",
    "filters": {"select_all": True, "reason": "retries-exhausted"},
    "dry_run": False,
    "status": "done",
    "seen": 3000,
    "replayed": 3000,
    "purged": 0,
    "skipped": 0,
    "failed": 0,
    "error": None,
    "finished_at": "2026-11-24T10:05:02Z",
}


def _example(model: type[BaseModel]) -> Any:
    extra: Any = model.model_config.get("json_schema_extra")
    return extra["examples"][0]


class Selection(BaseModel):
    model_config = ConfigDict(extra="forbid")

    all: bool = Field(default=False, description="Every message (filters still apply)")
    ids: list[str] = Field(default_factory=list, description="Exactly these message ids")


class ReplayRequest(Selection):
    reason: str | None = Field(default=None, examples=["retries-exhausted"])
    event_type: str | None = Field(default=None, examples=["BookingConfirmed"])
    older_than: str | None = Field(
        default=None, description="First failed at least this long ago", examples=["30m"]
    )
    limit: int | None = Field(default=None, ge=1)
    rate: float | None = Field(default=None, gt=0, description="Messages per second at most")
    dry_run: bool = False

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"all": True, "reason": "retries-exhausted"}]},
    )


@contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except UnknownQueue as exc:
        raise HTTPException(404, str(exc)) from exc
    except InvalidRequest as exc:
        raise HTTPException(422, str(exc)) from exc
    except DlqError as exc:
        raise HTTPException(503, str(exc)) from exc


def _actor(request: Request) -> str:
    host = request.client.host if request.client else "unknown"
    return f"api:{request.headers.get('X-Operator', 'admin')[:100]}@{host}"


def _answer(summary: Summary) -> JSONResponse:
    """200 with the summary; 503 with it when the broker failed part-way."""
    return JSONResponse(summary.model_dump(mode="json"), status_code=200 if summary.ok else 503)


@router.get(
    "",
    summary="List dead-letter queues",
    responses={200: ok([_example(QueueInfo)]), **AUTH_RESPONSES},
)
async def list_queues(ops: AdminDep) -> list[QueueInfo]:
    """Each consumer's dead-letter queue with its depth and the age of its oldest message."""
    with _translated():
        return await ops.list_queues()


@router.get(
    "/history",
    summary="Audit log of replays and purges",
    responses={200: ok([AUDIT_ENTRY]), **QUEUE_RESPONSES},
)
async def history(
    ops: AdminDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    queue: str | None = None,
) -> list[AuditEntry]:
    with _translated():
        return await ops.history(limit, queue)


@router.get(
    "/{queue}/messages",
    summary="Show dead letters",
    responses={200: ok([DEAD_LETTER]), **QUEUE_RESPONSES},
)
async def show(
    ops: AdminDep, queue: QueueName, limit: Annotated[int, Query(ge=1, le=1000)] = 20
) -> list[DeadLetter]:
    """The messages at the head of the queue, which stay in the queue."""
    with _translated():
        return await ops.show(queue, limit)


@router.post(
    "/{queue}/replay",
    summary="Replay dead letters to their consumer",
    response_model=Summary,
    responses={200: ok(_example(Summary)), **QUEUE_RESPONSES},
)
async def replay(
    ops: AdminDep, queue: QueueName, body: ReplayRequest, request: Request
) -> JSONResponse:
    """Send the matching messages back to this consumer's queue only (never the fanout),
    each removed from the dead-letter queue only after the broker confirmed its copy."""
    with _translated():
        filters = Filters(
            select_all=body.all,
            ids=tuple(body.ids),
            reason=body.reason,
            event_type=body.event_type,
            older_than=parse_duration(body.older_than) if body.older_than else None,
            limit=body.limit,
        )
        summary = await ops.replay(
            queue, filters, actor=_actor(request), rate=body.rate, dry_run=body.dry_run
        )
    return _answer(summary)


@router.post(
    "/{queue}/purge",
    summary="Discard dead letters for good",
    response_model=Summary,
    responses={200: ok(_example(Summary)), **QUEUE_RESPONSES},
)
async def purge(ops: AdminDep, queue: QueueName, body: Selection, request: Request) -> JSONResponse:
    """Discard the given message ids, or everything with `{"all": true}`."""
    with _translated():
        if body.all and body.ids:
            raise InvalidRequest("give either all or ids, not both")
        filters = Filters(select_all=body.all, ids=tuple(body.ids))
        summary = await ops.purge(queue, filters, actor=_actor(request))
    return _answer(summary)

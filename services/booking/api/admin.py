"""The admin API for dead-letter queues: ``/admin/dlq``, the same operations as ``bookingctl``.

Every route requires ``Authorization: Bearer <ADMIN_TOKEN>`` (deps.AdminDep). Without an
ADMIN_TOKEN configured, every route answers 503 "admin API disabled": never open.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from services.booking.api.admin_requests import (
    QUEUE_DESCRIPTION,
    QUEUE_PATTERN,
    Operator,
    QueueName,
    ReplayRequest,
    Selection,
)
from services.booking.api.examples import NOT_JSON, TOO_LARGE, error, ok, validation_error
from services.booking.api.problems import SweepProblem, sweep_failed
from services.booking.deps import AdminDep
from shared.deadletters.errors import (
    AuditUnavailable,
    DlqError,
    InvalidRequest,
    UnknownGroup,
    UnknownQueue,
)
from shared.deadletters.model import AuditEntry, DeadLetter, Filters, QueueInfo, Summary

log = logging.getLogger(__name__)
router = APIRouter(prefix="/admin/dlq", tags=["admin: dead-letter queues"])

AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: error("Missing or wrong bearer token", "missing or wrong admin token"),
    503: error(
        "Admin API disabled, or broker/database down", "admin API disabled: set ADMIN_TOKEN"
    ),
}
QUEUE_RESPONSES: dict[int | str, dict[str, Any]] = {
    **AUTH_RESPONSES,
    404: error("No dead-letter queue of that name", "no dead-letter queue called 'mail'"),
    422: validation_error(
        "Value error, not a duration: '5x' (use e.g. 45s, 30m, 2h, 1d, 1w; at most 8 digits)",
        "body",
        "older_than",
    ),
}
# A replay or purge the broker failed part-way answers 503 with its summary.
SWEEP_RESPONSES: dict[int | str, dict[str, Any]] = {
    **QUEUE_RESPONSES,
    400: NOT_JSON,
    413: TOO_LARGE,
    503: {
        "model": SweepProblem,
        "description": "Admin API disabled, broker or database down (before anything was "
        "done), or the broker failed part-way (a problem with the summary, and its `error`)",
        "content": {"application/json": {"example": {"detail": "admin API disabled"}}},
    },
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


SUMMARY_EXAMPLE = _example(Summary)


@contextmanager
def translated() -> Iterator[None]:
    try:
        yield
    except (UnknownQueue, UnknownGroup) as exc:
        raise HTTPException(404, str(exc)) from exc
    except InvalidRequest as exc:
        raise HTTPException(422, str(exc)) from exc
    except AuditUnavailable as exc:
        # The database's own words (which may quote the request) stay in the log.
        log.warning("admin API: %s", exc)
        raise HTTPException(
            503, "the audit table cannot be reached, so nothing was done; try again shortly"
        ) from exc
    except DlqError as exc:
        raise HTTPException(503, str(exc)) from exc


def actor(request: Request, operator: str | None) -> str:
    host = request.client.host if request.client else "unknown"
    return f"api:{operator or 'admin'}@{host}"


def _answer(summary: Summary) -> JSONResponse:
    """200 with the summary; 503 with it when the broker failed part-way."""
    if not summary.ok:
        return sweep_failed(summary)
    return JSONResponse(summary.model_dump(mode="json"))


@router.get(
    "",
    summary="List dead-letter queues",
    responses={200: ok([_example(QueueInfo)]), **AUTH_RESPONSES},
)
async def list_queues(ops: AdminDep) -> list[QueueInfo]:
    """Each consumer's dead-letter queue with its depth and the age of its oldest message."""
    with translated():
        return await ops.list_queues()


@router.get(
    "/history",
    summary="Audit log of replays and purges",
    responses={200: ok([AUDIT_ENTRY]), **QUEUE_RESPONSES},
)
async def history(
    ops: AdminDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    queue: Annotated[
        str | None,
        Query(description=f"Only this queue: {QUEUE_DESCRIPTION}", pattern=QUEUE_PATTERN),
    ] = None,
) -> list[AuditEntry]:
    with translated():
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
    with translated():
        return await ops.show(queue, limit)


@router.post(
    "/{queue}/replay",
    summary="Replay dead letters to their consumer",
    response_model=Summary,
    responses={200: ok(_example(Summary)), **SWEEP_RESPONSES},
)
async def replay(
    ops: AdminDep,
    queue: QueueName,
    body: ReplayRequest,
    request: Request,
    operator: Operator = None,
) -> JSONResponse:
    """Send the matching messages back to this consumer's queue only (never the fanout),
    each removed from the dead-letter queue only after the broker confirmed its copy."""
    with translated():
        summary = await ops.replay(
            queue,
            body.filters(),
            actor=actor(request, operator),
            rate=body.rate,
            dry_run=body.dry_run,
        )
    return _answer(summary)


@router.post(
    "/{queue}/purge",
    summary="Discard dead letters for good",
    response_model=Summary,
    responses={200: ok(_example(Summary)), **SWEEP_RESPONSES},
)
async def purge(
    ops: AdminDep,
    queue: QueueName,
    body: Selection,
    request: Request,
    operator: Operator = None,
) -> JSONResponse:
    """Discard the given message ids, or everything with `{"all": true}`."""
    with translated():
        filters = Filters(select_all=body.all, ids=tuple(body.ids))
        summary = await ops.purge(queue, filters, actor=actor(request, operator))
    return _answer(summary)

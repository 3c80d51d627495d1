"""The console's actions (POST): sign in and out, re-read the queues, retry (one message, a
selection, a group; dry run or real), purge a group, mute, archive and restore a group.

Every change goes through the dead-letter library (shared/deadletters/groups.py), which
audits it as the admin API's and bookingctl's do; the actor is ``console:<name>@<address>``.
An htmx request gets the result as a fragment, a plain form post the whole page.
"""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import HTTPException, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.booking.api.admin import translated
from services.booking.console import session as sessions
from services.booking.console.jobs import Job
from services.booking.console.pages import render, router
from services.booking.deps import (
    ConsoleActionDep,
    ConsoleDep,
    ConsoleJobsDep,
    FailureGroupsDep,
    SettingsDep,
)
from shared.deadletters.canary import canary_retry
from shared.deadletters.editing import retry_edited
from shared.deadletters.model import Summary, no_control_characters
from shared.deadletters.pages import FINGERPRINT_PATTERN
from shared.deadletters.sweep import Progress

__all__ = ["router"]  # the pages' router, with the actions added
MAX_RATE = 1_000_000.0
Fingerprint = Annotated[str, Path(pattern=FINGERPRINT_PATTERN)]
MAX_MUTE_HOURS = 24 * 90
CANARY_SETTLE = 10.0  # seconds each canary stage is watched


def _result(
    request: Request, session: sessions.Session, summaries: list[Summary], **context: Any
) -> HTMLResponse:
    fragment = request.headers.get("hx-request") == "true"
    return render(
        request, "result.html", session, summaries=summaries, fragment=fragment, **context
    )


def _rate(text: str) -> float | None:
    if not text.strip():
        return None
    try:
        rate = float(text)
    except ValueError:
        raise HTTPException(422, f"rate: not a number of messages per second: {text!r}") from None
    if not 1 <= rate <= MAX_RATE:
        raise HTTPException(422, f"rate: between 1 and {MAX_RATE:g} messages per second")
    return rate


@router.post("/login")
async def login(request: Request, settings: SettingsDep) -> Response:
    if not settings.admin_enabled:
        raise HTTPException(503, "admin API disabled: set ADMIN_TOKEN")
    sessions.same_origin(request)
    data = await sessions.form(request)
    operator = str(data.get("operator", "")).strip()[:100] or "admin"
    try:
        no_control_characters(operator)
    except ValueError as exc:
        raise HTTPException(422, f"name: {exc}") from exc
    if not sessions.token_matches(settings, str(data.get("token", ""))):
        error = "That is not the admin token."
        return render(request, "login.html", None, status_code=401, error=error)
    answer = RedirectResponse(sessions.PATH, status_code=303)
    answer.set_cookie(
        sessions.COOKIE,
        sessions.issue(settings, operator),
        max_age=sessions.LIFETIME,
        path=sessions.PATH,
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )
    return answer


@router.post("/logout")
async def logout(session: ConsoleActionDep) -> Response:
    answer = RedirectResponse(f"{sessions.PATH}/login", status_code=303)
    answer.delete_cookie(sessions.COOKIE, path=sessions.PATH, httponly=True, samesite="strict")
    return answer


@router.post("/sync")
async def sync(request: Request, session: ConsoleActionDep, groups: FailureGroupsDep) -> Response:
    with translated():
        counts = await groups.sync()
    return _result(request, session, [], synced=counts)


@router.post("/groups/{fingerprint}/retry")
async def retry_group(
    request: Request,
    session: ConsoleActionDep,
    groups: FailureGroupsDep,
    jobs: ConsoleJobsDep,
    fingerprint: Fingerprint,
) -> Response:
    """The whole group, or the ``ids`` ticked on the page; ``dry_run`` moves nothing."""
    data = await sessions.form(request)
    ids = tuple(str(i) for i in data.getlist("ids") if str(i))
    dry_run, rate = bool(data.get("dry_run")), _rate(str(data.get("rate", "")))
    with translated():
        await groups.group(fingerprint)  # 404 now, not inside the job

    def work(progress: Progress) -> Awaitable[list[Summary]]:
        actor = session.actor(request)
        return groups.retry(
            fingerprint, actor=actor, dry_run=dry_run, rate=rate, ids=ids, progress=progress
        )

    job = jobs.start(fingerprint, "Dry run" if dry_run else "Retrying", work)
    if request.headers.get("hx-request") != "true":  # a plain form: the whole result page
        assert job.task is not None
        await job.task
    return _job_answer(request, session, job)


@router.get("/jobs/{job_id}")
async def job_state(
    request: Request, session: ConsoleDep, jobs: ConsoleJobsDep, job_id: str
) -> Response:
    """A running retry's progress (polled by its fragment), or its result once it ended."""
    job = jobs.get(job_id)
    if job is None:
        raise HTTPException(404, "no such retry: it ended long ago, or the service restarted")
    return _job_answer(request, session, job)


def _job_answer(request: Request, session: sessions.Session, job: Job) -> HTMLResponse:
    if not job.done:
        return render(request, "progress.html", session, job=job)
    return _result(
        request, session, job.summaries, fingerprint=job.fingerprint, job_error=job.error
    )


@router.post("/groups/{fingerprint}/canary")
async def canary_group(
    request: Request, session: ConsoleActionDep, groups: FailureGroupsDep, fingerprint: Fingerprint
) -> Response:
    """1, then 5, then 50, then the rest; halts when a stage's messages fail again."""
    data = await sessions.form(request)
    with translated():
        report = await canary_retry(
            groups,
            fingerprint,
            actor=session.actor(request),
            settle=CANARY_SETTLE,
            rate=_rate(str(data.get("rate", ""))),
        )
    return _result(request, session, report.stages, fingerprint=fingerprint, canary=report)


@router.post("/messages/{row_id}/retry")
async def retry_message(
    request: Request, session: ConsoleActionDep, groups: FailureGroupsDep, row_id: int
) -> Response:
    data = await sessions.form(request)
    with translated():
        message = await groups.index.message(row_id)
        if message is None or message.message_id is None:
            raise HTTPException(404, f"no indexed dead letter {row_id} with a message id")
        summaries = await groups.retry(
            message.fingerprint,
            actor=session.actor(request),
            dry_run=bool(data.get("dry_run")),
            ids=(message.message_id,),
        )
    return _result(request, session, summaries, fingerprint=message.fingerprint)


@router.post("/messages/{row_id}/edit")
async def edit_message(
    request: Request, session: ConsoleActionDep, groups: FailureGroupsDep, row_id: int
) -> Response:
    """``preview`` validates and shows the diff; without it only the edited copy is sent."""
    data = await sessions.form(request)
    with translated():
        result = await retry_edited(
            groups,
            row_id,
            str(data.get("body", "")),
            reason=str(data.get("reason", "")),
            actor=session.actor(request),
            preview=bool(data.get("preview")),
        )
    summaries = [result.summary] if result.summary else []
    return _result(request, session, summaries, diff=result.diff, preview=result.summary is None)


@router.post("/groups/{fingerprint}/purge")
async def purge_group(
    request: Request, session: ConsoleActionDep, groups: FailureGroupsDep, fingerprint: Fingerprint
) -> Response:
    """Only with the group's fingerprint typed into ``confirm``."""
    data = await sessions.form(request)
    with translated():
        summaries = await groups.purge(
            fingerprint, actor=session.actor(request), confirm=str(data.get("confirm", ""))
        )
    return _result(request, session, summaries, fingerprint=fingerprint)


@router.post("/groups/{fingerprint}/state")
async def group_state(
    request: Request, session: ConsoleActionDep, groups: FailureGroupsDep, fingerprint: Fingerprint
) -> Response:
    """``state``: muted (for ``hours``), archived, or restore."""
    data = await sessions.form(request)
    state = str(data.get("state", ""))
    if state not in ("muted", "archived", "restore"):
        raise HTTPException(422, "state: muted, archived or restore")
    until = None
    if state == "muted":
        hours = str(data.get("hours", "24"))
        if not hours.isdigit() or not 1 <= int(hours) <= MAX_MUTE_HOURS:
            raise HTTPException(422, f"hours: a whole number from 1 to {MAX_MUTE_HOURS}")
        until = datetime.now(UTC) + timedelta(hours=int(hours))
    with translated():
        await groups.set_state(
            fingerprint,
            None if state == "restore" else state,
            actor=session.actor(request),
            until=until,
        )
    return RedirectResponse(f"{sessions.PATH}/groups/{fingerprint}", status_code=303)

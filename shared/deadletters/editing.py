"""Edit a dead letter's body, then retry only the edited copy.

The edit must still be the same event (its ``event_id``, ``event_type`` and ``version``
unchanged: the consumers' idempotency is keyed on the event id) and must match that event's
schema (``shared.events.decode_event``, what a consumer will do with it); a reason is
required. The original leaves the dead-letter queue only once the broker confirmed the
edited copy on the consumer's own queue (the same replay as any other, with the body
replaced), and the audit row (operation ``edit``) keeps the original body, the edited one
and the reason.
"""

from __future__ import annotations

import difflib
import json
from typing import Any

from pydantic import BaseModel

from shared.deadletters.errors import InvalidRequest, UnknownGroup
from shared.deadletters.groups import FailureGroups
from shared.deadletters.model import Filters, Summary, no_control_characters
from shared.deadletters.operations import DeadLetterOps
from shared.errors import SharedError
from shared.events import decode_event

MAX_REASON = 200
SAME = ("event_id", "event_type", "version")


class EditResult(BaseModel):
    diff: str
    summary: Summary | None  # None for a preview


def _object(text: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise InvalidRequest(f"the {what} body is not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise InvalidRequest(f"the {what} body is not a JSON object")
    return value


def check_edit(original: str, edited: str) -> tuple[bytes, str]:
    """The edited body as it will be sent, and its diff to the original; or InvalidRequest
    with the reason it cannot be sent."""
    before, after = _object(original, "original"), _object(edited, "edited")
    for field in SAME:
        if before.get(field) != after.get(field):
            raise InvalidRequest(f"{field} cannot change: an edit retries the same event")
    try:
        event = decode_event(json.dumps(after).encode())
    except SharedError as exc:
        raise InvalidRequest(f"the edited body does not match its schema: {exc}") from exc
    body = event.to_json()
    old, new = (json.dumps(v, indent=2, sort_keys=True).splitlines() for v in (before, after))
    diff = difflib.unified_diff(old, new, "original", "edited", lineterm="")
    return body, "\n".join(diff)


async def retry_edited(
    groups: FailureGroups,
    row_id: int,
    edited: str,
    *,
    reason: str,
    actor: str,
    preview: bool = False,
) -> EditResult:
    message = await groups.index.message(row_id)
    if message is None or message.message_id is None:
        raise UnknownGroup(f"no indexed dead letter {row_id} with a message id")
    reason = reason.strip()
    if not reason or len(reason) > MAX_REASON:
        raise InvalidRequest(f"say why (a reason of 1 to {MAX_REASON} characters)")
    try:
        no_control_characters(reason)
    except ValueError as exc:
        raise InvalidRequest(f"reason: {exc}") from exc
    body, diff = check_edit(message.body, edited)
    if preview:
        return EditResult(diff=diff, summary=None)
    filters = Filters(ids=(message.message_id,))
    details = {"edit_reason": reason, "original": message.body, "edited": body.decode()}
    audit = groups.ops.audit
    audit_id = None
    if audit is not None:
        audit_id = await audit.started(
            actor=actor,
            operation="edit",
            queue=message.queue,
            filters=filters,
            dry_run=False,
            details=details,
        )
    # The audit row above is the record: the replay itself is not audited a second time.
    unaudited = DeadLetterOps(groups.ops.config)
    summary = await unaudited.replay(message.queue, filters, actor=actor, body=body)
    summary.audit_id = audit_id
    if summary.replayed == 0 and summary.error is None:
        summary.error = f"{message.message_id} is no longer in {message.queue}: nothing sent"
    if audit is not None and audit_id is not None:
        await audit.finished(audit_id, summary)
    await groups.sync([message.queue])
    return EditResult(diff=diff, summary=summary)

"""The console's templates render with real records, and every field a person fills in has
a label (what a screen reader reads out; the browser test checks the rest by role)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest

from services.booking.console.pages import templates
from services.booking.schemas import StepProgress
from shared.deadletters.canary import CanaryReport
from shared.deadletters.model import AuditEntry, Summary
from shared.deadletters.pages import Group, Indexed, MessagePage, MessageQuery, Parking, Row
from shared.deadletters.reading import ConsumerState

NOW = datetime(2026, 12, 5, 18, tzinfo=UTC)
FINGERPRINT = "3fa2c1d09b7e4a51"
ROW: dict[str, Any] = {
    "id": 7,
    "queue": "email.dlq",
    "message_id": "8d6f3c1a-2b4e-4f5a-9c7d-0e1f2a3b4c5d",
    "event_type": "BookingConfirmed",
    "booking_id": "3f2b8c1e-5d4a-4e6f-9a7b-1c2d3e4f5a6b",
    "reason": "permanent-failure",
    "exception": "PermanentError: SMTP refused <x@example.com>",
    "attempts": 1,
    "replay_count": 1,
    "first_failure_at": NOW,
    "last_failure_at": NOW,
}
GROUP = Group(
    fingerprint=FINGERPRINT,
    consumer="email",
    event_type="BookingConfirmed",
    event_version=1,
    exception_type="PermanentError",
    frame="services.email.smtp:send",
    reason="permanent-failure",
    reason_pattern="SMTP refused <<email>>",
    queues=["email.dlq"],
    count=3,
    replayed_before=1,
    first_seen=NOW,
    last_seen=NOW,
    state=None,
    until=None,
    trend=[0] * 23 + [3],
)
SESSION = {"session": {"operator": "alice"}, "csrf": "c" * 64}


def page(name: str, **context: Any) -> str:
    return templates.env.get_template(name).render({**SESSION, **context})


def unlabelled(html: str) -> list[str]:
    labelled = set(re.findall(r'<label for="([^"]+)"', html))
    fields = re.findall(r"<(?:input|textarea)\b[^>]*>", html)
    missing = []
    for field in fields:
        if 'type="hidden"' in field or "aria-label=" in field:
            continue
        found = re.search(r'id="([^"]+)"', field)
        wrapped = re.search(re.escape(field) + r"[^<]*</label>", html)
        if not wrapped and (found is None or found[1] not in labelled):
            missing.append(field)
    return missing


@pytest.mark.parametrize(
    ("name", "context", "expected"),
    [
        ("login.html", {"session": None, "error": "That is not the admin token."}, "Admin token"),
        (
            "groups.html",
            {
                "groups": [GROUP],
                "too_deep": [],
                "consumer": "",
                "hidden": False,
                "next_cursor": None,
                "consumers": ["email"],
            },
            "1 failed again after a retry",
        ),
        (
            "group.html",
            {
                "group": GROUP,
                "page": MessagePage(messages=[Row(**ROW)], next="x~1"),
                "query": MessageQuery(fingerprint=FINGERPRINT),
            },
            "failed again after 1 retry",
        ),
        (
            "message.html",
            {
                "message": Indexed(
                    **ROW,
                    fingerprint=FINGERPRINT,
                    consumer="email",
                    frame="services.email.smtp:send",
                    headers={"x-reason": "permanent-failure"},
                    body='{\n  "a": 1\n}',
                ),
                "parkings": [
                    Parking(
                        **{
                            k: ROW[k]
                            for k in (
                                "message_id",
                                "queue",
                                "last_failure_at",
                                "first_failure_at",
                                "reason",
                                "exception",
                                "attempts",
                                "replay_count",
                            )
                        },
                        frame=None,
                        first_seen_at=NOW,
                    )
                ],
                "fulfilment": {"email": StepProgress()},
            },
            "Fulfilment steps",
        ),
        (
            "result.html",
            {
                "fragment": True,
                "summaries": [
                    Summary(
                        operation="replay", queue="email.dlq", dry_run=True, replayed=3, audit_id=4
                    )
                ],
                "canary": CanaryReport(fingerprint=FINGERPRINT, halted=True, failed_again=["m"]),
            },
            "Dry run: 3 message(s) of email.dlq would be retried",
        ),
        (
            "audit.html",
            {
                "queue": "",
                "entries": [
                    AuditEntry(
                        id=1,
                        at=NOW,
                        actor="console:alice@127.0.0.1",
                        operation="replay",
                        queue="email.dlq",
                        filters={"fingerprint": FINGERPRINT},
                        dry_run=False,
                        status="completed",
                        seen=1,
                        replayed=1,
                        purged=0,
                        skipped=0,
                        failed=0,
                        error=None,
                        finished_at=NOW,
                    )
                ],
            },
            "console:alice@127.0.0.1",
        ),
        (
            "live.html",
            {
                "states": [
                    ConsumerState(
                        service="voucher",
                        queue="voucher.booking-events",
                        ready=4,
                        in_flight=None,
                        consumers=0,
                        dead_letters=0,
                        rate_in=None,
                        rate_out=None,
                    )
                ]
            },
            "no consumer attached",
        ),
    ],
)
def test_each_console_page_renders_and_labels_every_field(
    name: str, context: dict[str, Any], expected: str
) -> None:
    html = page(name, **context)
    assert expected in html
    assert unlabelled(html) == []

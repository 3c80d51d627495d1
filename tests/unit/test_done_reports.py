"""A step's done report: a FulfilmentProgressed beside the handler's events, unless one of
them is the report itself (the voucher's VoucherIssued and VoucherVoided), which then
carries the delivery's attempts instead (shared/messaging/progress.py)."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

from shared.events import (
    BookingConfirmed,
    Event,
    FulfilmentProgressed,
    VoucherIssued,
    VoucherVoided,
)
from shared.messaging.progress import ProgressReports
from tests.support.events import confirmed


def reports(step: str, *, enabled: bool = True) -> ProgressReports:
    pool: Any = None  # done() never touches the database
    return ProgressReports(step, enabled, pool, 1.0, lambda: None, f"{step}.booking-events")


def issued(event: BookingConfirmed) -> VoucherIssued:
    return VoucherIssued(booking_id=event.booking_id, code="V-1", pdf_base64="")


def test_a_voucher_issued_is_the_voucher_steps_done_report_and_carries_the_attempts() -> None:
    event = confirmed()
    emitted, report = reports("voucher").done(event, [issued(event)], attempts=3)
    assert report is None
    [voucher] = emitted
    assert isinstance(voucher, VoucherIssued)
    assert voucher.attempts == 3
    assert voucher.code == "V-1"


def test_a_voucher_voided_is_the_voucher_steps_done_report_too() -> None:
    event = confirmed()
    voided = VoucherVoided(booking_id=event.booking_id, code="V-1")
    emitted, report = reports("voucher").done(event, [voided], attempts=1)
    assert report is None
    assert [e.attempts for e in emitted if isinstance(e, VoucherVoided)] == [1]


def test_a_handler_that_emits_nothing_still_sends_its_done_report() -> None:
    event = confirmed()
    emitted, report = reports("voucher").done(event, [], attempts=2)
    assert emitted == []
    assert isinstance(report, FulfilmentProgressed)
    assert (report.step, report.status, report.attempts) == ("voucher", "done", 2)
    assert report.source_event_id == event.event_id


def test_another_steps_events_do_not_stand_for_this_steps_report() -> None:
    event = confirmed()
    voucher = issued(event)
    emitted, report = reports("email").done(event, [voucher], attempts=1)
    assert isinstance(report, FulfilmentProgressed)
    assert report.step == "email"
    assert emitted == [voucher]  # not stamped: it is not the email step's report


def test_without_reports_the_events_are_sent_as_the_handler_made_them() -> None:
    event = confirmed()
    voucher = issued(event)
    emitted, report = reports("voucher", enabled=False).done(event, [voucher], attempts=1)
    assert report is None
    assert emitted == [voucher]
    assert voucher.attempts is None


def test_a_voucher_event_from_an_older_producer_has_no_attempts_and_reads_as_no_report() -> None:
    body = {"event_id": str(uuid4()), "version": 1, "booking_id": str(uuid4()), "code": "V-1"}
    old: Event = VoucherVoided.model_validate(body)
    assert isinstance(old, VoucherVoided)
    assert old.attempts is None

"""Who may report on a booking's fulfilment (services/booking/senders.py): each step only
its own service's broker user; copies only through the booking service's retry exchange."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from services.booking.senders import SenderPolicy, parse_senders
from shared import registry
from shared.events import BookingConfirmed, FulfilmentProgressed, VoucherIssued, VoucherVoided
from shared.messaging.retry import H_EXCEPTION_TYPE
from tests.support.events import confirmed

SENDERS = parse_senders("email=email,notification=notification,voucher=voucher")
STRICT = SenderPolicy(SENDERS)
FANOUT, COPIES = "fulfilment.events", "booking.retry"


def progress(step: str) -> FulfilmentProgressed:
    return FulfilmentProgressed(
        booking_id=uuid.uuid4(),
        occurred_at=datetime.now(UTC),
        step=step,
        status="done",
        attempts=1,
        source_event_id=uuid.uuid4(),
        source_event_type="BookingConfirmed",
    )


def voucher_events() -> list[Any]:
    now, booking_id = datetime.now(UTC), uuid.uuid4()
    return [
        VoucherIssued(booking_id=booking_id, occurred_at=now, code="V", pdf_base64=""),
        VoucherVoided(booking_id=booking_id, occurred_at=now, code="V"),
    ]


@pytest.mark.parametrize("step", registry.NAMES)
def test_a_step_is_reported_by_its_own_user_and_by_no_other(step: str) -> None:
    assert STRICT.problem(progress(step), step, FANOUT, {}) is None
    for other in {*registry.NAMES, "booking", "guest"} - {step}:
        problem = STRICT.problem(progress(step), other, FANOUT, {})
        assert problem == (
            f"FulfilmentProgressed for step {step} must be published by broker user "
            f"{step!r} (AMQP user_id), not {other!r}"
        )
    assert STRICT.problem(progress(step), None, FANOUT, {}) is not None  # no user_id at all


def test_vouchers_come_from_the_voucher_service_only() -> None:
    for event in voucher_events():
        assert STRICT.problem(event, "voucher", FANOUT, {}) is None
        assert STRICT.problem(event, "email", FANOUT, {}) is not None


def test_in_dev_mode_the_user_every_service_shares_is_taken_for_every_step() -> None:
    dev = SenderPolicy(SENDERS, shared_user="guest")
    for event in [progress("email"), progress("voucher"), *voucher_events()]:
        assert dev.problem(event, "guest", FANOUT, {}) is None
        assert STRICT.problem(event, "guest", FANOUT, {}) is not None
    assert dev.problem(progress("voucher"), "email", FANOUT, {}) is not None


def test_copies_through_the_retry_exchange_are_taken_unless_refused_for_their_sender() -> None:
    # A retry of this service's own, or an operator's replay: no user_id of the original.
    assert (
        STRICT.problem(progress("email"), None, COPIES, {H_EXCEPTION_TYPE: "TimeoutError"}) is None
    )
    refused_before = {H_EXCEPTION_TYPE: "WrongSender"}
    assert STRICT.problem(progress("email"), None, COPIES, refused_before) == (
        "a replay of a report refused for its sender"
    )
    # The header means nothing on the fanout, where anyone with write may set it.
    assert STRICT.problem(progress("email"), "voucher", FANOUT, {}) is not None


def test_events_that_are_no_report_are_not_the_policys_business() -> None:
    event: BookingConfirmed = confirmed()
    assert STRICT.problem(event, "anyone", FANOUT, {}) is None


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("email=email,email=x,voucher=v,notification=n", "each of"),
        ("billing=b,email=e,voucher=v,notification=n", "each of"),
        ("email,voucher=v,notification=n", "expected step=user"),
        ("email=,voucher=v,notification=n", "expected step=user"),
    ],
)
def test_report_senders_name_every_step_once(text: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        parse_senders(text)


def test_a_step_not_named_reports_as_the_broker_user_named_after_it() -> None:
    assert parse_senders("") == {step: step for step in registry.NAMES}
    assert parse_senders("email=mailer")["email"] == "mailer"
    assert parse_senders("email=mailer")["voucher"] == "voucher"


def test_report_senders_tolerate_spaces_and_a_trailing_comma() -> None:
    assert parse_senders(" email = e1 , voucher=v1,notification=n1, ") == {
        "email": "e1",
        "voucher": "v1",
        "notification": "n1",
    }

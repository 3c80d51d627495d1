"""What the booking API shows for a failed step: a short code per kind of failure, never the
failure's text (hosts, URLs, other servers' answers)."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import aiosmtplib
import asyncpg
import pytest

from services.booking.fulfilment import public_error
from services.email.composing import check_header_safe, recipient
from services.email.smtp_errors import translate_smtp_error
from shared.errors import DatabaseUnavailable, InvalidMessage, PermanentError, TransientError
from shared.events import BookingConfirmed, FulfilmentProgressed
from shared.messaging.progress import error_code
from tests.support.events import booking_facts


def test_each_kind_of_failure_has_its_code() -> None:
    assert error_code("email", TransientError("SMTP mail.internal:25 answered 451")) == (
        "smtp-temporary-failure"
    )
    assert error_code("email", PermanentError("SMTP mail.internal:25 answered 550")) == (
        "smtp-rejected"
    )
    assert error_code("notification", TransientError("https://hooks.internal/x: 503")) == (
        "webhook-temporary-failure"
    )
    assert error_code("notification", PermanentError("https://hooks.internal/x: 404")) == (
        "webhook-rejected"
    )
    assert error_code("voucher", TransientError("batch interrupted")) == "temporary-failure"
    assert error_code("voucher", PermanentError("no")) == "permanent-failure"
    assert error_code("email", InvalidMessage("not JSON")) == "invalid-message"
    assert error_code("voucher", DatabaseUnavailable("pool timeout")) == "database-unavailable"
    assert error_code("voucher", ConnectionRefusedError()) == "database-unavailable"
    assert error_code("email", asyncpg.UniqueViolationError("dup")) == "database-error"
    assert error_code("voucher", ZeroDivisionError("bug")) == "internal-error"


def test_a_guest_value_that_cannot_go_into_an_email_says_so_not_smtp() -> None:
    injected = BookingConfirmed.model_validate(booking_facts(guest_name="Ada\r\nBcc: x@y.z"))
    with pytest.raises(PermanentError) as refused:
        check_header_safe(injected)
    assert error_code("email", refused.value) == "invalid-guest-details"
    not_an_address = BookingConfirmed.model_validate(booking_facts(guest_email="a@b@c"))
    with pytest.raises(PermanentError) as refused:
        recipient(not_an_address)
    assert error_code("email", refused.value) == "invalid-guest-details"


def test_the_smtp_errors_the_email_service_raises_map_to_the_smtp_codes() -> None:
    temporary = translate_smtp_error(aiosmtplib.SMTPResponseException(451, "later"), "h:25")
    rejected = translate_smtp_error(aiosmtplib.SMTPResponseException(550, "no"), "h:25")
    assert error_code("email", temporary) == "smtp-temporary-failure"
    assert error_code("email", rejected) == "smtp-rejected"


def report(**fields: Any) -> FulfilmentProgressed:
    return FulfilmentProgressed(
        booking_id=uuid4(),
        step="email",
        status="failed",
        attempts=1,
        source_event_id=uuid4(),
        source_event_type="BookingConfirmed",
        **fields,
    )


def test_the_booking_service_shows_the_code_and_never_the_text() -> None:
    text = "TransientError: SMTP mail.internal:25 answered 451 4.3.0"
    assert public_error(report(error=text, error_code="smtp-temporary-failure")) == (
        "smtp-temporary-failure"
    )
    # A report from a consumer older than the codes: only its text, which is not shown.
    assert public_error(report(error=text)) == "unclassified-failure"
    assert public_error(report()) is None


def test_a_report_without_the_code_still_decodes_and_a_code_with_text_in_it_does_not() -> None:
    old = report(error="x").model_dump(mode="json", exclude={"error_code"})
    assert FulfilmentProgressed.model_validate(old).error_code is None
    with pytest.raises(ValueError, match="error_code"):
        report(error_code="SMTP mail.internal:25 answered 451")

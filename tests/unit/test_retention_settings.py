"""Retention settings: the ages, their units, and the floor under the processed-event records'
age that keeps every possible redelivery of an event finding its record."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from services.booking.settings import BookingSettings
from services.email.settings import EmailSettings
from shared.db.retention import PROCESSED_EVENTS_MIN_AGE
from shared.settings import ConsumingSettings

AGES = (
    "RETENTION_INTERVAL",
    "RETENTION_BATCH_SIZE",
    "OUTBOX_SENT_MAX_AGE",
    "PROCESSED_EVENTS_MAX_AGE",
    "IDEMPOTENCY_KEYS_MAX_AGE",
    "EMAILS_MAX_AGE",
    "MAX_ATTEMPTS",
    "RETRY_MAX_DELAY",
)


@pytest.fixture(autouse=True)
def _no_retention_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in AGES:
        monkeypatch.delenv(var, raising=False)


def test_the_defaults_keep_a_week_of_outbox_a_month_of_records_and_emails_a_day_of_keys() -> None:
    booking, email = BookingSettings(), EmailSettings()
    assert booking.outbox_sent_max_age == timedelta(days=7)
    assert booking.processed_events_max_age == timedelta(days=30)
    assert booking.idempotency_keys_max_age == timedelta(days=1)
    assert email.emails_max_age == timedelta(days=30)
    assert (email.retention_interval, email.retention_batch_size) == (3600, 1000)


@pytest.mark.parametrize(
    ("value", "age"),
    [("86400", timedelta(days=1)), ("P2D", timedelta(days=2)), ("PT12H", timedelta(hours=12))],
)
def test_an_age_is_seconds_or_iso_8601(
    monkeypatch: pytest.MonkeyPatch, value: str, age: timedelta
) -> None:
    monkeypatch.setenv("IDEMPOTENCY_KEYS_MAX_AGE", value)
    assert BookingSettings().idempotency_keys_max_age == age


@pytest.mark.parametrize("value", ["0", "-5", "soon"])
def test_an_age_that_is_not_a_positive_duration_is_refused(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("EMAILS_MAX_AGE", value)
    with pytest.raises(ValidationError, match="emails_max_age"):
        EmailSettings()


def test_processed_event_records_may_not_be_deleted_before_the_floor() -> None:
    at_floor = ConsumingSettings(processed_events_max_age=PROCESSED_EVENTS_MIN_AGE)
    assert at_floor.processed_events_max_age == timedelta(days=7)
    with pytest.raises(ValidationError, match="PROCESSED_EVENTS_MAX_AGE must be at least 7 days"):
        ConsumingSettings(processed_events_max_age=PROCESSED_EVENTS_MIN_AGE - timedelta(seconds=1))


def test_the_floor_rises_with_the_retry_span() -> None:
    # 100 attempts, up to 10,000 s apart: copies may circulate for 11.6 days.
    with pytest.raises(ValidationError, match="at least 11 days"):
        ConsumingSettings(
            max_attempts=100, retry_max_delay=10_000, processed_events_max_age=timedelta(days=8)
        )
    ConsumingSettings(
        max_attempts=100, retry_max_delay=10_000, processed_events_max_age=timedelta(days=12)
    )

from __future__ import annotations

import pytest

from services.booking.settings import BookingSettings
from services.email.settings import EmailSettings
from services.notification.settings import NotificationSettings
from services.voucher.settings import VoucherSettings
from shared.building import consumer_config


def test_each_step_reads_its_own_simulated_latency_before_the_shared_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SIMULATED_LATENCY_MS", "7")
    monkeypatch.setenv("VOUCHER_SIMULATED_LATENCY_MS", "1000")
    monkeypatch.setenv("EMAIL_SIMULATED_LATENCY_MS", "500")
    assert VoucherSettings().simulated_latency_ms == 1000
    assert EmailSettings().simulated_latency_ms == 500
    assert NotificationSettings().simulated_latency_ms == 7


def test_a_negative_simulated_latency_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMAIL_SIMULATED_LATENCY_MS", "-1")
    with pytest.raises(ValueError, match="greater than or equal to 0"):
        EmailSettings()


def test_the_booking_service_lingers_for_its_reports_and_the_consumers_do_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """BATCH_LINGER_MS reaches the runtime: 20 ms for the booking service's reports (no one
    waits on them), none by default where a step's latency is what a guest waits for."""
    monkeypatch.delenv("BATCH_LINGER_MS", raising=False)
    db, amqp = "postgresql://x@127.0.0.1/x", "amqp://x@127.0.0.1/"
    booking = consumer_config("booking", BookingSettings(database_url=db, amqp_url=amqp))
    voucher = consumer_config("voucher", VoucherSettings(database_url=db, amqp_url=amqp))
    tuned = consumer_config(
        "voucher", VoucherSettings(database_url=db, amqp_url=amqp, batch_linger_ms=5)
    )
    assert (booking.batch_linger, voucher.batch_linger, tuned.batch_linger) == (0.02, 0.0, 0.005)

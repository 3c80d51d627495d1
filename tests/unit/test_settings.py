from __future__ import annotations

import pytest

from services.email.settings import EmailSettings
from services.notification.settings import NotificationSettings
from services.voucher.settings import VoucherSettings


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

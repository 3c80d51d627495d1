"""The notification process's settings, as read from the environment."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.notification.settings import NotificationSettings
from shared import registry


def test_the_defaults_deliver_nowhere_and_serve_the_feed_on_127_0_0_1_port_8002(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("NOTIFICATION_WEBHOOK_URLS", "NTFY_URL", "NOTIFICATION_HTTP_PORT", "HTTP_PORT"):
        monkeypatch.delenv(name, raising=False)
    settings = NotificationSettings()
    assert settings.webhook_urls == ()
    assert settings.ntfy_url is None
    assert settings.notification_timeout == 5.0
    # No HTTP_PORT: the port of shared/registry.py, 8002.
    assert (settings.http_host, settings.http_port) == ("127.0.0.1", None)
    assert registry.consumer_service("notification").http_port == 8002
    assert settings.uses_default_secret
    assert settings.simulated_latency_ms == 0


def test_webhook_urls_are_read_comma_separated_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(
        "NOTIFICATION_WEBHOOK_URLS", " https://a.example/hook , ,http://b.example:8080/x,"
    )
    monkeypatch.setenv("NTFY_URL", "https://ntfy.example/ ")
    monkeypatch.setenv("NOTIFICATION_WEBHOOK_SECRET", "s3cret")
    monkeypatch.setenv("NOTIFICATION_HTTP_PORT", "0")
    settings = NotificationSettings()
    assert settings.webhook_urls == ("https://a.example/hook", "http://b.example:8080/x")
    assert settings.ntfy_url == "https://ntfy.example"
    assert settings.notification_webhook_secret.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(settings)
    assert not settings.uses_default_secret
    assert settings.http_port == 0


def test_http_port_wins_over_its_older_name_notification_http_port(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NOTIFICATION_HTTP_PORT", "9100")
    assert NotificationSettings().http_port == 9100
    monkeypatch.setenv("HTTP_PORT", "9200")
    assert NotificationSettings().http_port == 9200


def test_an_empty_ntfy_url_turns_push_off() -> None:
    assert NotificationSettings(ntfy_url="").ntfy_url is None


@pytest.mark.parametrize(
    "overrides",
    [
        {"notification_webhook_urls": "ftp://a.example/x"},
        {"notification_webhook_urls": "https://a.example,not a url"},
        {"ntfy_url": "ntfy.example"},
        {"notification_webhook_secret": ""},
        {"notification_timeout": 0},
        {"notification_http_port": 70000},
        {"http_port": -1},
    ],
)
def test_settings_that_cannot_work_are_rejected_at_start(overrides: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        NotificationSettings.model_validate(overrides)

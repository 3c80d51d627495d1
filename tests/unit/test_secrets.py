"""No process starts with a placeholder or short secret outside DEV_MODE: ADMIN_TOKEN under
32 bytes, the default webhook secret, any value of deploy/.env.example (passwords inside
AMQP_URL and DATABASE_URL too). The refusal names the setting, never its value."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from services.booking.settings import BookingSettings
from services.bookingctl.settings import DlqSettings
from services.email.settings import EmailSettings
from services.notification.settings import NotificationSettings
from services.voucher.settings import VoucherSettings
from shared.db.provision import ProvisionSettings
from shared.db.schemas import SCHEMAS
from shared.errors import ConfigurationError
from shared.secrets import url_password, weakness
from shared.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = dict(re.findall(r"^(\w+)=(.*)$", (ROOT / "deploy" / ".env.example").read_text(), re.M))
SECRETS = {k: v for k, v in EXAMPLE.items() if re.search(r"PASSWORD|TOKEN|SECRET", k)}
TOKEN = "t" * 32
STRONG = "a-webhook-key-of-thirty-two-bytes"
PRODUCTION: dict[str, Any] = {"dev_mode": False}


def refusal(settings_class: type[Any], **values: Any) -> str:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(settings_class, **{**PRODUCTION, **values})
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_every_secret_of_the_env_example_is_a_placeholder() -> None:
    assert len(SECRETS) >= 14  # postgres x6, rabbitmq x6, admin token, webhook secret
    for name, value in SECRETS.items():
        assert weakness(value) is not None, name


@pytest.mark.parametrize(
    "settings_class",
    [BookingSettings, EmailSettings, NotificationSettings, VoucherSettings, DlqSettings],
)
def test_a_password_of_the_env_example_in_a_url_is_refused(settings_class: type[Any]) -> None:
    password = EXAMPLE["POSTGRES_PASSWORD"]
    extra = (
        {"notification_webhook_secret": STRONG} if settings_class is NotificationSettings else {}
    )
    message = refusal(
        settings_class, database_url=f"postgresql://postgres:{password}@db/booking", **extra
    )
    assert message.startswith("DATABASE_URL is a placeholder")
    assert password not in message
    message = refusal(
        settings_class,
        amqp_url=f"amqp://email:{EXAMPLE['RABBITMQ_EMAIL_PASSWORD']}@mq/hotel",
        **extra,
    )
    assert message.startswith("AMQP_URL is a placeholder")


def test_an_admin_token_under_32_bytes_is_refused_and_32_are_enough() -> None:
    message = refusal(BookingSettings, admin_token="s" * 31)
    assert message == (
        "ADMIN_TOKEN is 31 bytes long; at least 32 are needed "
        "(DEV_MODE=true allows them on a developer's machine)"
    )
    assert load_settings(BookingSettings, admin_token=TOKEN, **PRODUCTION).admin_enabled
    assert "ADMIN_TOKEN is a placeholder" in refusal(
        BookingSettings, admin_token=EXAMPLE["ADMIN_TOKEN"] + "-padded-to-32-bytes"
    )
    # Unset or empty, the admin API is off: nothing to refuse.
    assert not load_settings(BookingSettings, admin_token="", **PRODUCTION).admin_enabled


def test_the_admin_apis_own_urls_are_checked_too() -> None:
    password = EXAMPLE["RABBITMQ_OPERATOR_PASSWORD"]
    assert refusal(
        BookingSettings, admin_amqp_url=f"amqp://operator:{password}@mq/hotel"
    ).startswith("ADMIN_AMQP_URL is a placeholder")
    password = EXAMPLE["POSTGRES_OPS_PASSWORD"]
    assert refusal(
        BookingSettings, admin_database_url=f"postgresql://ops:{password}@db/booking"
    ).startswith("ADMIN_DATABASE_URL is a placeholder")


def test_the_default_webhook_secret_and_a_short_one_are_refused() -> None:
    assert refusal(NotificationSettings).startswith("NOTIFICATION_WEBHOOK_SECRET is a placeholder")
    assert refusal(NotificationSettings, notification_webhook_secret="s3cret").startswith(
        "NOTIFICATION_WEBHOOK_SECRET is 6 bytes long"
    )
    settings = load_settings(NotificationSettings, notification_webhook_secret=STRONG, **PRODUCTION)
    assert not settings.uses_default_secret


def test_an_smtp_password_and_the_migration_steps_role_passwords_are_checked() -> None:
    message = refusal(
        EmailSettings, smtp_username="mailer", smtp_password="changeme", smtp_tls="starttls"
    )
    assert message.startswith("SMTP_PASSWORD is a placeholder")
    examples = {s.password_variable().lower(): EXAMPLE[s.password_variable()] for s in SCHEMAS}
    message = refusal(ProvisionSettings, **examples)
    assert message.startswith("POSTGRES_BOOKING_PASSWORD is a placeholder")
    assert message.count("is a placeholder") == len(SCHEMAS)


def test_several_problems_are_one_line_naming_each() -> None:
    message = refusal(
        BookingSettings,
        admin_token="short",
        amqp_url=f"amqp://booking:{EXAMPLE['RABBITMQ_BOOKING_PASSWORD']}@mq/hotel",
    )
    assert message.startswith("AMQP_URL is a placeholder")
    assert "; ADMIN_TOKEN is 5 bytes long" in message


def test_dev_mode_accepts_the_examples_and_the_defaults() -> None:
    dev = {"dev_mode": True, "admin_token": "short"}
    password = EXAMPLE["RABBITMQ_BOOKING_PASSWORD"]
    settings = load_settings(BookingSettings, amqp_url=f"amqp://booking:{password}@mq/", **dev)
    assert settings.admin_enabled
    assert load_settings(NotificationSettings, dev_mode=True).uses_default_secret


def test_the_local_defaults_need_no_dev_mode_for_bookingctl() -> None:
    # guest:guest, RabbitMQ's own default, may only log in from the broker's machine: it is
    # no secret to refuse. DATABASE_URL's default has no password.
    load_settings(DlqSettings, **PRODUCTION)


def test_a_refused_setting_is_named_without_repeating_its_value() -> None:
    url = "postgresql://postgres:hunter2-hunter2@db/booking"
    with pytest.raises(ConfigurationError) as caught:
        load_settings(BookingSettings, database_url=url, port="not a port", **PRODUCTION)
    assert (
        str(caught.value)
        == "PORT: Input should be a valid integer, unable to parse string as an integer"
    )
    assert "hunter2" not in str(caught.value)


def test_url_passwords_are_read_decoded() -> None:
    assert url_password("amqp://u:p%40ss@host/") == "p@ss"
    assert url_password("postgresql://postgres@127.0.0.1/booking") is None
    assert url_password("http://[broken") is None

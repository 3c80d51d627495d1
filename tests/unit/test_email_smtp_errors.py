"""How SMTP failures map to the consumer runtime's transient and permanent errors, and the
email service's settings."""

from __future__ import annotations

import ssl
from pathlib import Path

import aiosmtplib
import pytest
from pydantic import ValidationError

from services.email.settings import EmailSettings
from services.email.smtp import SmtpSender
from services.email.smtp_errors import translate_smtp_error
from services.email.smtp_tls import TlsRefused
from shared.errors import ConfigurationError, PermanentError, TransientError

SERVER = "smtp.example:25"


def refused(*codes: int) -> aiosmtplib.SMTPRecipientsRefused:
    return aiosmtplib.SMTPRecipientsRefused(
        [aiosmtplib.SMTPRecipientRefused(code, "nope", f"r{code}@example.com") for code in codes]
    )


def bad_certificate() -> aiosmtplib.SMTPConnectError:
    """What aiosmtplib raises when an implicit-TLS handshake meets a bad certificate."""
    cause = ssl.SSLCertVerificationError(1, "certificate verify failed")
    cause.verify_message = "self-signed certificate"
    error = aiosmtplib.SMTPConnectError("Error connecting to smtp.example on port 465")
    error.__cause__ = cause
    return error


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (aiosmtplib.SMTPDataError(451, "4.3.0 try later"), TransientError),
        (aiosmtplib.SMTPSenderRefused(421, "4.7.0 busy", "a@b.example"), TransientError),
        (aiosmtplib.SMTPDataError(550, "5.1.1 no such user"), PermanentError),
        (aiosmtplib.SMTPAuthenticationError(535, "5.7.8 bad credentials"), PermanentError),
        (aiosmtplib.SMTPConnectResponseError(554, "5.3.2 go away"), PermanentError),
        (aiosmtplib.SMTPResponseException(-1, "garbled reply"), TransientError),
        (refused(450, 451), TransientError),
        (refused(451, 550), PermanentError),
        (refused(550), PermanentError),
        (aiosmtplib.SMTPConnectError("Error connecting"), TransientError),
        (aiosmtplib.SMTPServerDisconnected("lost"), TransientError),
        (aiosmtplib.SMTPConnectTimeoutError("connect timed out"), TransientError),
        (aiosmtplib.SMTPReadTimeoutError("read timed out"), TransientError),
        (ConnectionRefusedError(111, "refused"), TransientError),
        (TimeoutError(), TransientError),
        (aiosmtplib.SMTPNotSupported("SMTPUTF8 is not supported"), PermanentError),
        (aiosmtplib.SMTPException("STARTTLS extension not supported"), TransientError),
        (TlsRefused("refusing to send SMTP credentials"), PermanentError),
        (bad_certificate(), PermanentError),
    ],
)
def test_4xx_and_connection_failures_are_transient_and_5xx_permanent(
    error: BaseException, expected: type[Exception]
) -> None:
    translated = translate_smtp_error(error, SERVER)
    assert type(translated) is expected
    assert SERVER in str(translated)


def test_the_translated_error_carries_the_reply() -> None:
    translated = translate_smtp_error(aiosmtplib.SMTPDataError(451, "4.3.0 try later"), SERVER)
    assert str(translated) == "SMTP smtp.example:25 answered 451 4.3.0 try later"
    assert "451 nope; 550 nope" in str(translate_smtp_error(refused(451, 550), SERVER))
    assert "timed out: TimeoutError" in str(translate_smtp_error(TimeoutError(), SERVER))


SMTP_VARS = (
    "SMTP_HOST",
    "SMTP_PORT",
    "SMTP_USERNAME",
    "SMTP_PASSWORD",
    "SMTP_STARTTLS",
    "SMTP_TLS",
    "SMTP_TLS_CA_FILE",
)
POOL_VARS = ("SMTP_POOL_SIZE", "SMTP_LOCAL_HOSTNAME")


def test_the_settings_default_to_a_local_mail_catcher(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in (*SMTP_VARS, *POOL_VARS, "SMTP_TIMEOUT", "EMAIL_FROM"):
        monkeypatch.delenv(var, raising=False)
    settings = EmailSettings()
    assert (settings.smtp_host, settings.smtp_port) == ("127.0.0.1", 1025)
    assert settings.smtp_tls == "opportunistic"  # STARTTLS when offered
    assert settings.smtp_tls_ca_file is None  # the system's trust store
    assert settings.smtp_timeout == 10
    assert settings.email_from == "Hotel Booking <bookings@hotel.example>"
    assert settings.smtp_username is None
    assert settings.smtp_password is None
    assert settings.smtp_pool_size == 4
    assert settings.smtp_local_hostname is None  # the FQDN, looked up at the first connect


def test_the_settings_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMTP_HOST", "mail.example")
    monkeypatch.setenv("SMTP_PORT", "587")
    monkeypatch.setenv("SMTP_USERNAME", "bookings")
    monkeypatch.setenv("SMTP_PASSWORD", "s3cret")
    monkeypatch.setenv("SMTP_STARTTLS", "true")
    monkeypatch.setenv("EMAIL_FROM", "Bookings <b@hotel.example>")
    monkeypatch.setenv("SMTP_POOL_SIZE", "8")
    monkeypatch.setenv("SMTP_LOCAL_HOSTNAME", "email-1.hotel.example")
    settings = EmailSettings()
    sender = SmtpSender.from_settings(settings)
    assert sender.server == "mail.example:587"
    assert settings.smtp_tls == "starttls"  # the older SMTP_STARTTLS=true
    assert settings.email_from == "Bookings <b@hotel.example>"
    assert settings.smtp_pool_size == 8
    assert settings.smtp_local_hostname == "email-1.hotel.example"
    assert "s3cret" not in repr(settings)
    assert "s3cret" not in repr(sender)


@pytest.mark.parametrize(
    "overrides",
    [
        {"email_from": "no address here"},
        {"email_from": "Bookings <b@hotel.example>\r\nBcc: x@example.com"},
        {"smtp_port": 0},
        {"smtp_timeout": 0},
        {"smtp_username": "only-a-user"},
        {"smtp_pool_size": 0},
        {"smtp_local_hostname": "two words"},
        {"smtp_local_hostname": "host\r\nMAIL FROM:<x@example.com>"},
    ],
)
def test_settings_that_cannot_work_are_refused_at_start(overrides: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        EmailSettings.model_validate(overrides)


def test_an_empty_local_hostname_means_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMTP_LOCAL_HOSTNAME", "")
    assert EmailSettings().smtp_local_hostname is None


@pytest.mark.parametrize(
    ("env", "tls", "port"),
    [
        ({}, "opportunistic", 1025),
        ({"SMTP_STARTTLS": "true"}, "starttls", 1025),
        ({"SMTP_STARTTLS": "false"}, "off", 1025),
        ({"SMTP_STARTTLS": ""}, "opportunistic", 1025),
        ({"SMTP_TLS": "implicit"}, "implicit", 465),
        ({"SMTP_TLS": "implicit", "SMTP_PORT": "2465"}, "implicit", 2465),
        ({"SMTP_TLS": "starttls", "SMTP_STARTTLS": "true"}, "starttls", 1025),
    ],
)
def test_the_tls_mode_comes_from_smtp_tls_or_the_older_smtp_starttls(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], tls: str, port: int
) -> None:
    for var in SMTP_VARS:
        monkeypatch.delenv(var, raising=False)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    settings = EmailSettings()
    assert (settings.smtp_tls, settings.smtp_port) == (tls, port)


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"smtp_tls": "off", "smtp_starttls": "true"}, "contradicts"),
        (
            {"smtp_tls": "off", "smtp_username": "u", "smtp_password": "p"},
            "would send the password in clear",
        ),
        ({"smtp_starttls": "0", "smtp_username": "u", "smtp_password": "p"}, "in clear"),
        ({"smtp_tls": "sometimes"}, "smtp_tls"),
        ({"smtp_tls_ca_file": "/nonexistent/ca.pem"}, "smtp_tls_ca_file"),
    ],
)
def test_tls_settings_that_would_leak_or_cannot_work_are_refused_at_start(
    overrides: dict[str, object], reason: str
) -> None:
    with pytest.raises(ValidationError, match=reason):
        EmailSettings.model_validate(overrides)


def test_a_ca_file_without_a_certificate_stops_the_start_with_a_clear_error(
    tmp_path: Path,
) -> None:
    not_pem = tmp_path / "ca.pem"
    not_pem.write_text("not a certificate")
    settings = EmailSettings.model_validate({"smtp_tls_ca_file": str(not_pem)})
    with pytest.raises(ConfigurationError, match=r"SMTP_TLS_CA_FILE=.* is not a usable PEM"):
        SmtpSender.from_settings(settings)

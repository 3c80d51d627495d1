"""Configuration of the email process, read from environment variables."""

from __future__ import annotations

from datetime import timedelta
from email.headerregistry import Address
from email.utils import parseaddr
from typing import Any

from pydantic import Field, FilePath, SecretStr, TypeAdapter, field_validator, model_validator

from services.email.smtp_tls import IMPLICIT_TLS_PORT, SmtpTls
from shared.settings import Age, ConsumerSettings, simulated_latency

# The older SMTP_STARTTLS, when set and SMTP_TLS is not: true = required, false = never.
_STARTTLS_MEANS: dict[bool, SmtpTls] = {True: "starttls", False: "off"}


class EmailSettings(ConsumerSettings):
    """Configuration of the email process, read from environment variables."""

    simulated_latency_ms: int = simulated_latency("email")

    # The SMTP server mail is handed to (a local mail catcher by default); the port is 465
    # by default with SMTP_TLS=implicit.
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=1025, ge=1, le=65535)
    # Both set: AUTH after EHLO, only ever over TLS (see smtp_tls.py).
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    # opportunistic (STARTTLS when offered), starttls (required), implicit (SMTPS), off.
    smtp_tls: SmtpTls = "opportunistic"
    # The older switch, still read when SMTP_TLS is not set: true = starttls, false = off.
    smtp_starttls: bool | None = None
    # PEM file of the CAs that may sign the server's certificate; unset: the system's.
    smtp_tls_ca_file: FilePath | None = None
    # Seconds allowed for each step of an SMTP session (connect, each command and reply).
    smtp_timeout: float = Field(default=10.0, gt=0, le=300)
    # SMTP connections kept open and reused between emails; also the most emails being
    # handed to the server at once (the others wait for a free connection).
    smtp_pool_size: int = Field(default=4, ge=1, le=100)
    # The name this client gives in EHLO; unset: this machine's FQDN, looked up once.
    smtp_local_hostname: str | None = None
    # Emails sent (email.emails: the guest's name and address) are deleted after this long.
    emails_max_age: Age = timedelta(days=30)
    # The From header; its address is also the envelope sender.
    email_from: str = "Hotel Booking <bookings@hotel.example>"

    @field_validator("email_from")
    @classmethod
    def _check_from(cls, value: str) -> str:
        name, address = parseaddr(value)
        if not address or "@" not in address or any(c in value for c in "\r\n"):
            raise ValueError(f"not an email address: {value!r}")
        Address(display_name=name, addr_spec=address)  # ValueError if it cannot be a header
        return value

    @field_validator("smtp_local_hostname")
    @classmethod
    def _check_local_hostname(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None  # set but empty: the default
        # It goes on the EHLO line: whitespace or a control character would add to it.
        if any(c.isspace() or not c.isprintable() for c in value):
            raise ValueError(f"not a host name: {value!r}")
        return value

    @model_validator(mode="before")
    @classmethod
    def _tls_mode_and_its_port(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if data.get("smtp_starttls") == "":
            del data["smtp_starttls"]  # set but empty: not set
        starttls = data.get("smtp_starttls")
        if starttls is not None:
            older = _STARTTLS_MEANS[TypeAdapter(bool).validate_python(starttls)]
            if data.setdefault("smtp_tls", older) != older:
                raise ValueError(
                    f"SMTP_STARTTLS={starttls} contradicts SMTP_TLS={data['smtp_tls']}: "
                    "set SMTP_TLS only (SMTP_STARTTLS is its older name)"
                )
        if data.get("smtp_tls") == "implicit":
            data.setdefault("smtp_port", IMPLICIT_TLS_PORT)
        return data

    def secrets(self) -> dict[str, tuple[str | None, int]]:
        password = self.smtp_password.get_secret_value() if self.smtp_password else None
        return {**super().secrets(), "SMTP_PASSWORD": (password, 0)}

    @model_validator(mode="after")
    def _credentials_in_pairs(self) -> EmailSettings:
        if (self.smtp_username is None) != (self.smtp_password is None):
            raise ValueError("set both SMTP_USERNAME and SMTP_PASSWORD, or neither")
        if self.smtp_username is not None and self.smtp_tls == "off":
            # A configuration error, refused at start: AUTH in clear gives the password to
            # anyone on the path.
            raise ValueError(
                "SMTP_USERNAME with SMTP_TLS=off would send the password in clear: use "
                "opportunistic, starttls or implicit TLS"
            )
        return self

"""Configuration of the email process, read from environment variables."""

from __future__ import annotations

from email.headerregistry import Address
from email.utils import parseaddr

from pydantic import Field, SecretStr, field_validator, model_validator

from shared.settings import ConsumerSettings, simulated_latency


class EmailSettings(ConsumerSettings):
    """Configuration of the email process, read from environment variables."""

    simulated_latency_ms: int = simulated_latency("email")

    # The SMTP server mail is handed to (a local mail catcher by default).
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=1025, ge=1, le=65535)
    # Both set: AUTH LOGIN/PLAIN after EHLO (and STARTTLS, when enabled).
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    # Upgrade the connection with STARTTLS (required when on; never attempted when off).
    smtp_starttls: bool = False
    # Seconds allowed for each step of an SMTP session (connect, each command and reply).
    smtp_timeout: float = Field(default=10.0, gt=0, le=300)
    # SMTP connections kept open and reused between emails; also the most emails being
    # handed to the server at once (the others wait for a free connection).
    smtp_pool_size: int = Field(default=4, ge=1, le=100)
    # The name this client gives in EHLO; unset: this machine's FQDN, looked up once.
    smtp_local_hostname: str | None = None
    # The From header; its address is also the envelope sender.
    email_from: str = "Hotel Booking <bookings@hotel.example>"
    http_port: int = Field(default=8003, ge=0, le=65535)

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

    @model_validator(mode="after")
    def _credentials_in_pairs(self) -> EmailSettings:
        if (self.smtp_username is None) != (self.smtp_password is None):
            raise ValueError("set both SMTP_USERNAME and SMTP_PASSWORD, or neither")
        return self

"""SmtpSender and TLS against real aiosmtpd servers with certificates from a test CA
(trustme): STARTTLS when offered, plain when not, credentials only ever over TLS, implicit
TLS (SMTPS), and certificates verified by default."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from services.email.smtp import SmtpSender
from services.email.smtp_tls import SmtpTls
from shared.errors import PermanentError
from tests.integration.test_email_smtp_sender import email
from tests.support.processes import free_port
from tests.support.smtp import SmtpRecorder


class TlsRecorder(SmtpRecorder):
    """Notes, for each email and each AUTH, whether the connection was encrypted."""

    def __init__(self) -> None:
        super().__init__()
        self.data_over_tls: list[bool] = []
        self.auth_over_tls: list[bool] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.data_over_tls.append(_encrypted(server))
        return await super().handle_DATA(server, session, envelope)

    def authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        self.auth_over_tls.append(_encrypted(server))
        return AuthResult(success=auth_data.password == b"s3cret")


def _encrypted(server: Any) -> bool:
    return server.transport.get_extra_info("ssl_object") is not None


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


def server_context(ca: trustme.CA, host: str = "127.0.0.1") -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(host).configure_cert(context)
    return context


@asynccontextmanager
async def tls_server(
    *, starttls: ssl.SSLContext | None = None, implicit: ssl.SSLContext | None = None
) -> AsyncIterator[TlsRecorder]:
    """An SMTP server offering STARTTLS with ``starttls``, or speaking TLS from the first byte
    with ``implicit``, or neither; it offers AUTH on plain connections too, so a client that
    sent credentials in clear would be seen doing it."""
    smtp = TlsRecorder()
    smtp.port = free_port()
    controller = Controller(
        smtp,
        hostname="127.0.0.1",
        port=smtp.port,
        tls_context=starttls,
        ssl_context=implicit,
        authenticator=smtp.authenticate,
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield smtp
    finally:
        controller.stop()


async def send_one(port: int, tls: SmtpTls, ca_file: Path | None, **options: Any) -> None:
    sender = SmtpSender("127.0.0.1", port, tls=tls, ca_file=ca_file, timeout=5, **options)
    try:
        await sender.send(email())
    finally:
        await sender.close()


async def test_starttls_is_used_by_default_when_the_server_offers_it(
    ca: trustme.CA, ca_file: Path
) -> None:
    async with tls_server(starttls=server_context(ca)) as smtp:
        await send_one(smtp.port, "opportunistic", ca_file)
    assert smtp.data_over_tls == [True]
    assert len(smtp.envelopes) == 1


async def test_without_starttls_on_offer_the_email_goes_in_plain_by_default(
    ca_file: Path,
) -> None:
    async with tls_server() as smtp:
        await send_one(smtp.port, "opportunistic", ca_file)
    assert smtp.data_over_tls == [False]


async def test_credentials_go_only_after_starttls(ca: trustme.CA, ca_file: Path) -> None:
    async with tls_server(starttls=server_context(ca)) as smtp:
        await send_one(smtp.port, "opportunistic", ca_file, username="u", password="s3cret")
    assert smtp.auth_over_tls == [True]
    assert smtp.data_over_tls == [True]


async def test_credentials_are_refused_on_a_plain_connection_and_nothing_is_sent(
    ca_file: Path,
) -> None:
    async with tls_server() as smtp:
        with pytest.raises(PermanentError, match="refusing to send SMTP credentials"):
            await send_one(smtp.port, "opportunistic", ca_file, username="u", password="s3cret")
    assert smtp.auth_over_tls == []  # the server never saw an AUTH
    assert smtp.envelopes == []


async def test_starttls_required_but_not_offered_is_permanent_and_nothing_is_sent(
    ca_file: Path,
) -> None:
    async with tls_server() as smtp:
        with pytest.raises(PermanentError, match="does not offer STARTTLS"):
            await send_one(smtp.port, "starttls", ca_file)
    assert smtp.envelopes == []


async def test_implicit_tls_sends_over_tls_from_the_first_byte(
    ca: trustme.CA, ca_file: Path
) -> None:
    async with tls_server(implicit=server_context(ca)) as smtp:
        await send_one(smtp.port, "implicit", ca_file, username="u", password="s3cret")
    assert smtp.auth_over_tls == [True]
    assert smtp.data_over_tls == [True]


@pytest.mark.parametrize("mode", ["opportunistic", "implicit"])
@pytest.mark.parametrize("fault", ["a CA not trusted", "another host's certificate"])
async def test_a_bad_certificate_is_refused_as_permanent_and_nothing_is_sent(
    ca: trustme.CA, ca_file: Path, mode: SmtpTls, fault: str
) -> None:
    if fault == "a CA not trusted":
        context, trusted = server_context(trustme.CA()), None  # the system's trust store
    else:
        context, trusted = server_context(ca, host="mail.example"), ca_file
    offer = {"starttls": context} if mode == "opportunistic" else {"implicit": context}
    async with tls_server(**offer) as smtp:
        with pytest.raises(PermanentError, match="certificate refused") as raised:
            await send_one(smtp.port, mode, trusted)
    assert smtp.envelopes == []
    assert raised.value.__cause__ is not None
